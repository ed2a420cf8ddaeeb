//! Product names: naming a request's product for logs, resolving a user's `--product`
//! argument to a SKU, and free-text search over SKUs.

use uuid::Uuid;

use crate::lookup::{fold, Catalog};
use crate::model::Sku;

/// How many candidate names a [`FindError::Ambiguous`] lists at most.
pub const MAX_CANDIDATES: usize = 10;

/// Why [`Catalog::find_product`] found no single SKU.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FindError {
    /// Nothing matches the query.
    #[error("no product matches {query:?}; give a SKU ID (GUID) or a product name or part of one")]
    NotFound {
        /// The query as given.
        query: String,
    },
    /// Several products match and none is an exact name match.
    #[error(
        "{query:?} matches {total} products: {}{}; give more of the name or a SKU ID (GUID)",
        candidates.join(", "),
        more(*total, candidates.len()),
    )]
    Ambiguous {
        /// The query as given.
        query: String,
        /// Names of the first matching products (at most [`MAX_CANDIDATES`]), in file order.
        /// Where matches share a name, it is followed by the SKU ID in parentheses.
        candidates: Vec<String>,
        /// How many products match in all.
        total: usize,
    },
}

fn more(total: usize, listed: usize) -> String {
    if total > listed {
        format!(" and {} more", total - listed)
    } else {
        String::new()
    }
}

impl Catalog {
    /// A product name for logs (PROTOCOL.md §6.1): the SKU's name if `sku` is known, else the
    /// KMS item's name if `kms` is known, else the application's name if `app` is known, else
    /// `unknown (<sku>)` with the SKU ID in canonical form.
    pub fn product_name(&self, sku: &Uuid, kms: &Uuid, app: &Uuid) -> String {
        if let Some(s) = self.sku(sku) {
            s.display_name.clone()
        } else if let Some(k) = self.kms_item(kms) {
            k.display_name.clone()
        } else if let Some(a) = self.application(app) {
            a.name.clone()
        } else {
            format!("unknown ({sku})")
        }
    }

    /// Resolves a `--product` argument to one SKU.
    ///
    /// In order: a SKU GUID (with or without braces, any case); a display name equal to the
    /// query; a unique display name starting with it; a unique display name containing it.
    /// Names compare case-insensitively and the query is trimmed. The first rule with matches
    /// decides: one match wins; several matches with different names are
    /// [`FindError::Ambiguous`]; several SKUs with the *same* name (possible in user
    /// extensions) are resolved to the first one that is neither retail nor preview, else the
    /// first in file order — unless two or more volume SKUs share the name, which is ambiguous.
    pub fn find_product(&self, query: &str) -> Result<&Sku, FindError> {
        let q = query.trim();
        let not_found = || FindError::NotFound {
            query: query.to_owned(),
        };
        if q.is_empty() {
            return Err(not_found());
        }
        if let Ok(id) = Uuid::parse_str(q) {
            return self.sku(&id).ok_or_else(not_found);
        }

        let q = fold(q);
        // Each SKU under its display name, then under its aliases (vlmcsd's and py-kms' names).
        let names: Vec<(String, &Sku, bool)> = self
            .skus
            .iter()
            .map(|s| (fold(&s.display_name), s, false))
            .chain(
                self.skus
                    .iter()
                    .flat_map(|s| s.aliases.iter().map(move |a| (fold(a), s, true))),
            )
            .collect();
        let words: Vec<String> = name_words(&q);
        // Exact display names first, then exact aliases, then the looser rules over both.
        type Rule<'r> = &'r dyn Fn(&str, bool) -> bool;
        let rules: [Rule; 5] = [
            &|name, alias| !alias && name == q,
            &|name, alias| alias && name == q,
            &|name, _| name.starts_with(&q),
            &|name, _| name.contains(&q),
            // Every word of the query is a word of the name ("windows 11 pro" finds
            // "Windows 10/11 Pro").
            &|name, _| {
                let have = name_words(name);
                words.iter().all(|w| have.contains(w))
            },
        ];
        for (i, rule) in rules.iter().enumerate() {
            let mut matches: Vec<(&Sku, usize)> = Vec::new();
            for (name, sku, alias) in &names {
                if rule(name, *alias) && !matches.iter().any(|(m, _)| m.id == sku.id) {
                    matches.push((sku, name_words(name).len()));
                }
            }
            // Word matches: the names with the fewest extra words win ("Windows 10/11 Pro"
            // rather than "Windows 10/11 Pro N").
            if i == rules.len() - 1 {
                let fewest = matches.iter().map(|(_, n)| *n).min().unwrap_or(0);
                matches.retain(|(_, n)| *n == fewest);
            }
            if !matches.is_empty() {
                let skus: Vec<&Sku> = matches.into_iter().map(|(s, _)| s).collect();
                return pick(query, &skus);
            }
        }
        Err(not_found())
    }

    /// SKUs whose display name, GVLK, KMS item name or application name contains `query`
    /// (case-insensitive, trimmed), in file order; an empty query returns every SKU.
    pub fn search(&self, query: &str) -> Vec<&Sku> {
        let q = fold(query.trim());
        self.skus
            .iter()
            .filter(|s| {
                q.is_empty()
                    || fold(&s.display_name).contains(&q)
                    || s.gvlk.as_deref().is_some_and(|g| fold(g).contains(&q))
                    || self
                        .kms_item(&s.kms_id)
                        .is_some_and(|k| fold(&k.display_name).contains(&q))
                    || self
                        .application(&s.app_id)
                        .is_some_and(|a| fold(&a.name).contains(&q))
            })
            .collect()
    }
}

/// The words of a folded name, split at spaces, slashes and commas.
fn name_words(name: &str) -> Vec<String> {
    name.split([' ', '/', ','])
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Chooses among the SKUs one rule matched (see [`Catalog::find_product`]).
fn pick<'a>(query: &str, matches: &[&'a Sku]) -> Result<&'a Sku, FindError> {
    let first = matches[0];
    let same_name = matches
        .iter()
        .all(|s| fold(&s.display_name) == fold(&first.display_name));
    if matches.len() == 1 {
        return Ok(first);
    }
    if same_name {
        let volume: Vec<&&Sku> = matches
            .iter()
            .filter(|s| !s.is_retail && !s.is_preview)
            .collect();
        match volume.len() {
            0 => return Ok(first),
            1 => return Ok(volume[0]),
            _ => {}
        }
    }
    Err(FindError::Ambiguous {
        query: query.to_owned(),
        candidates: matches
            .iter()
            .take(MAX_CANDIDATES)
            .map(|s| {
                let shared = matches
                    .iter()
                    .any(|o| o.id != s.id && fold(&o.display_name) == fold(&s.display_name));
                if shared {
                    format!("{} ({})", s.display_name, s.id)
                } else {
                    s.display_name.clone()
                }
            })
            .collect(),
        total: matches.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sku(id: u128, name: &str, retail: bool, preview: bool) -> Sku {
        Sku {
            id: Uuid::from_u128(id),
            display_name: name.into(),
            app_id: Uuid::nil(),
            kms_id: Uuid::nil(),
            gvlk: None,
            is_retail: retail,
            is_preview: preview,
            default_protocol: 6,
            ncount_policy: 25,
            aliases: Vec::new(),
        }
    }

    #[test]
    fn same_name_prefers_the_volume_sku() {
        let (a, b, c) = (
            sku(1, "Foo", true, false),
            sku(2, "foo", false, false),
            sku(3, "Foo", false, true),
        );
        assert_eq!(pick("foo", &[&a, &b, &c]).unwrap().id, b.id);
    }

    #[test]
    fn same_name_without_volume_sku_takes_the_first() {
        let (a, b) = (sku(1, "Foo", true, false), sku(2, "Foo", false, true));
        assert_eq!(pick("foo", &[&a, &b]).unwrap().id, a.id);
    }

    #[test]
    fn two_volume_skus_with_one_name_are_ambiguous_and_listed_with_ids() {
        let (a, b) = (sku(1, "Foo", false, false), sku(2, "Foo", false, false));
        let err = pick("foo", &[&a, &b]).unwrap_err();
        let FindError::Ambiguous {
            candidates, total, ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(*total, 2);
        assert_eq!(candidates[0], format!("Foo ({})", a.id));
        assert_eq!(candidates[1], format!("Foo ({})", b.id));
    }

    #[test]
    fn ambiguous_message_lists_at_most_ten_and_counts_the_rest() {
        let skus: Vec<Sku> = (0..13)
            .map(|i| sku(i, &format!("Name {i}"), false, false))
            .collect();
        let refs: Vec<&Sku> = skus.iter().collect();
        let err = pick("name", &refs).unwrap_err();
        let FindError::Ambiguous {
            candidates, total, ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(candidates.len(), MAX_CANDIDATES);
        assert_eq!(*total, 13);
        let msg = err.to_string();
        assert!(
            msg.starts_with("\"name\" matches 13 products: Name 0, Name 1,"),
            "{msg}"
        );
        assert!(msg.contains("Name 9 and 3 more;"), "{msg}");
    }
}

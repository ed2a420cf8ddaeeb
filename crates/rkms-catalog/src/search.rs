//! Product names: naming a request's product for logs, resolving a user's `--product`
//! argument to a SKU, and free-text search over SKUs.

use std::borrow::Cow;
use uuid::Uuid;

use crate::lookup::{fold, Catalog};
use crate::model::Sku;

/// How many candidate names a [`FindError::Ambiguous`] lists at most.
pub const MAX_CANDIDATES: usize = 10;

/// Why [`Catalog::find_product`] found no single SKU.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FindError {
    /// Nothing matches the query.
    #[error(
        "no product matches {query:?}{}; `rkms products [SEARCH]` lists the products \
         (give a name, some of its words, or a SKU ID)",
        suggest(suggestions)
    )]
    NotFound {
        /// The query as given.
        query: String,
        /// The closest product names (at most [`MAX_SUGGESTIONS`]), closest first.
        suggestions: Vec<String>,
    },
    /// Several products match and none is an exact name match.
    #[error(
        "{query:?} matches {total} products: {}{}; give more of the name or a SKU ID (GUID) \
         (`rkms products {query:?}` lists them)",
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

/// How many close names a [`FindError::NotFound`] suggests at most.
pub const MAX_SUGGESTIONS: usize = 5;

/// py-kms' client product names (`pykms_Client.py -m`) and the catalog product each stands for:
/// py-kms picks the Enterprise edition of a Windows version and the Professional Plus edition
/// of an Office version.
pub const PYKMS_CLIENT_MODES: &[(&str, &str)] = &[
    ("WindowsVista", "Windows Vista Enterprise"),
    ("Windows7", "Windows 7 Enterprise"),
    ("Windows8", "Windows 8 Enterprise"),
    ("Windows8.1", "Windows 8.1 Enterprise"),
    ("Windows81", "Windows 8.1 Enterprise"),
    ("Windows10", "Windows 10/11 Enterprise"),
    ("Windows11", "Windows 10/11 Enterprise"),
    ("Office2010", "Office Professional Plus 2010"),
    ("Office2013", "Office Professional Plus 2013"),
    ("Office2016", "Office Professional Plus 2016"),
    ("Office2019", "Office Professional Plus 2019"),
    ("Office2021", "Office LTSC Professional Plus 2021"),
    ("Office2024", "Office LTSC Professional Plus 2024"),
];

/// The catalog product name a py-kms client mode (`Windows10`, `office2019`, …) stands for.
pub fn pykms_client_mode(mode: &str) -> Option<&'static str> {
    PYKMS_CLIENT_MODES
        .iter()
        .find(|(m, _)| m.eq_ignore_ascii_case(mode.trim()))
        .map(|(_, p)| *p)
}

/// Whether a product name matches a user's product search, the one rule `rkms products`,
/// `rkms clients --product` and (as its looser steps) `--product` share: case-insensitively,
/// the name contains the query, or every word of the query is a word of the name ("windows 11
/// pro" matches "Windows 10/11 Pro", "ltsc 2024" matches "… LTSC 2021-2024"), or the query is
/// a py-kms client name for it (`Office2019`). An empty query matches every name.
pub fn name_matches(name: &str, query: &str) -> bool {
    let q = fold(query.trim());
    if q.is_empty() {
        return true;
    }
    let name = fold(name);
    if name.contains(&q) {
        return true;
    }
    let have = name_words(&name);
    let words = name_words(&q);
    if !words.is_empty() && words.iter().all(|w| have.contains(w)) {
        return true;
    }
    pykms_client_mode(&q).is_some_and(|p| fold(p) == name)
}

fn suggest(names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!("; closest: {}", names.join(", "))
    }
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
    /// `unknown (<sku>)` with the SKU ID in canonical form. A known name is borrowed from the
    /// catalog (a host logs one per request).
    pub fn product_name(&self, sku: &Uuid, kms: &Uuid, app: &Uuid) -> Cow<'_, str> {
        if let Some(s) = self.sku(sku) {
            Cow::Borrowed(&s.display_name)
        } else if let Some(k) = self.kms_item(kms) {
            Cow::Borrowed(&k.display_name)
        } else if let Some(a) = self.application(app) {
            Cow::Borrowed(&a.name)
        } else {
            Cow::Owned(format!("unknown ({sku})"))
        }
    }

    /// Resolves a `--product` argument to one SKU.
    ///
    /// In order: a SKU GUID (with or without braces, any case); a display name equal to the
    /// query; an alias equal to it; a py-kms client name (`Windows10`, see
    /// [`PYKMS_CLIENT_MODES`]); a unique display name starting with it; a unique display name
    /// containing it; the names having every word of the query, fewest words first ("Windows
    /// 10 Pro" finds "Windows 10/11 Pro", not "Windows 10/11 Pro N"). When no rule gives one
    /// product, the first rule with matches lists them; when nothing matches, the closest
    /// names are suggested.
    /// Names compare case-insensitively and the query is trimmed. The first rule with matches
    /// decides: one match wins; several matches with different names are
    /// [`FindError::Ambiguous`]; several SKUs with the *same* name (possible in user
    /// extensions) are resolved to the first one that is neither retail nor preview, else the
    /// first in file order — unless two or more volume SKUs share the name, which is ambiguous.
    pub fn find_product(&self, query: &str) -> Result<&Sku, FindError> {
        let q = query.trim();
        let not_found = |suggestions| FindError::NotFound {
            query: query.to_owned(),
            suggestions,
        };
        if q.is_empty() {
            return Err(not_found(Vec::new()));
        }
        if let Ok(id) = Uuid::parse_str(q) {
            return self.sku(&id).ok_or_else(|| not_found(Vec::new()));
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
        // A py-kms client name, unless a product is named so.
        if let Some(product) = pykms_client_mode(&q) {
            if !names.iter().any(|(name, _, _)| *name == q) {
                if let Ok(sku) = self.find_product(product) {
                    return Ok(sku);
                }
            }
        }
        // The first rule with one match (or one volume SKU among same-named ones) wins; when
        // none has, the first rule with matches says which names were meant.
        let mut ambiguous = None;
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
                match pick(query, &skus) {
                    Ok(sku) => return Ok(sku),
                    Err(e) => {
                        ambiguous.get_or_insert(e);
                    }
                }
            }
        }
        match ambiguous {
            Some(e) => Err(e),
            None => Err(not_found(self.closest_names(&q))),
        }
    }

    /// The display names closest to a query nothing matched: those sharing the most query
    /// words, allowing a typo or two in longer words ("windwos 11 pro"), shortest first.
    fn closest_names(&self, query: &str) -> Vec<String> {
        // Long texts (from a file, say) get no suggestions: they name no product.
        if query.len() > 200 {
            return Vec::new();
        }
        let words = name_words(query);
        let mut scored: Vec<(usize, usize, &str)> = Vec::new();
        for sku in &self.skus {
            let have = name_words(&fold(&sku.display_name));
            let score = words
                .iter()
                .filter(|w| have.iter().any(|h| close(w, h)))
                .count();
            if score > 0 && !scored.iter().any(|(_, _, n)| *n == sku.display_name) {
                scored.push((score, have.len(), &sku.display_name));
            }
        }
        let best = scored.iter().map(|(s, _, _)| *s).max().unwrap_or(0);
        scored.retain(|(s, _, _)| *s == best);
        scored.sort_by_key(|(_, len, _)| *len);
        scored
            .into_iter()
            .take(MAX_SUGGESTIONS)
            .map(|(_, _, n)| n.to_string())
            .collect()
    }

    /// SKUs whose display name or an alias matches `query` by [`name_matches`], whose SKU ID it
    /// is, or whose GVLK, KMS item name or application name contains it (case-insensitive,
    /// trimmed), in file order; an empty query returns every SKU.
    pub fn search(&self, query: &str) -> Vec<&Sku> {
        let q = fold(query.trim());
        let id = Uuid::parse_str(&q).ok();
        self.skus
            .iter()
            .filter(|s| {
                q.is_empty()
                    || id == Some(s.id)
                    || name_matches(&s.display_name, &q)
                    || s.aliases.iter().any(|a| name_matches(a, &q))
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

/// The words of a folded name: its runs of letters, digits and dots ("10/11" is two words,
/// "2021-2024" too, "8.1" one).
fn name_words(name: &str) -> Vec<String> {
    name.split(|c: char| !(c.is_alphanumeric() || c == '.'))
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether a query word stands for a name word: equal, or for words of 4 or more letters
/// one edit apart (a letter added, dropped, changed or two swapped), 2 from 7 letters on.
fn close(query_word: &str, name_word: &str) -> bool {
    if query_word == name_word {
        return true;
    }
    let n = query_word.chars().count();
    let allowed = match n {
        0..=3 => return false,
        4..=6 => 1,
        _ => 2,
    };
    edit_distance(query_word, name_word) <= allowed
}

/// Optimal string alignment distance (Levenshtein with adjacent swaps).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
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

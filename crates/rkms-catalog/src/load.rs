//! Parsing `products.json`-format text into a [`Catalog`], validating it, and merging
//! extension files into an existing catalog.
//!
//! Parsing goes in two steps: the text becomes a [`serde_json::Value`] (syntax errors carry line
//! and column), then every entry of every section is deserialised and checked on its own, so an
//! error can name its section and entry. Rules that involve several entries (duplicates,
//! cross-references) run afterwards.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::Hash;
use std::sync::{Arc, OnceLock};

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use time::{Date, Month};
use uuid::Uuid;

use crate::error::{CatalogError, Section};
use crate::lookup::{fold, Catalog, Index, FALLBACK_EPID_PROFILE};
use crate::model::{Application, Csvlk, EpidProfile, HostBuild, KmsItem, Sku};

/// The built-in product database as the build script embeds it: the spec pack's
/// `products.json` (`data/products.json`) with the white space between tokens left out,
/// compressed with DEFLATE (raw, no header): 40 kB in the binary instead of 240 kB.
const BUILTIN_PRODUCTS_DEFLATED: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/products.min.json.deflate"));

/// The length of the inflated [`BUILTIN_PRODUCTS_DEFLATED`], in bytes.
const BUILTIN_PRODUCTS_LEN: usize = include!(concat!(env!("OUT_DIR"), "/products.min.json.len"));

/// The built-in product database: the spec pack's `products.json` (`data/products.json`) with
/// the white space between tokens left out (the same JSON value), inflated anew on each call
/// (a few milliseconds; [`Catalog::builtin`] parses it once and keeps the catalog).
///
/// # Panics
///
/// Only if the embedded data does not inflate to its recorded length of UTF-8 text, which the
/// crate's tests rule out.
pub fn builtin_products_json() -> String {
    let mut text = vec![0; BUILTIN_PRODUCTS_LEN];
    let inflated = miniz_oxide::inflate::decompress_slice_iter_to_slice(
        &mut text,
        std::iter::once(BUILTIN_PRODUCTS_DEFLATED),
        false,
        true,
    );
    assert_eq!(
        inflated,
        Ok(BUILTIN_PRODUCTS_LEN),
        "the embedded products.json does not inflate to its length"
    );
    String::from_utf8(text).expect("the embedded products.json is UTF-8")
}

/// Value of the optional top-level `format` key.
const FORMAT: &str = "kms-products";
/// Highest supported value of the optional top-level `format_version` key.
const FORMAT_VERSION: u64 = 1;

impl Catalog {
    /// The built-in catalog, parsed on first use and shared afterwards.
    ///
    /// # Panics
    ///
    /// Only if the embedded `products.json` is invalid, which the crate's tests rule out.
    pub fn builtin() -> &'static Catalog {
        builtin_cell()
    }

    /// The built-in catalog of [`Catalog::builtin`] as a shared handle: the same copy, not a
    /// clone of it (a host holds one catalog).
    ///
    /// # Panics
    ///
    /// Only if the embedded `products.json` is invalid, which the crate's tests rule out.
    pub fn builtin_shared() -> Arc<Catalog> {
        Arc::clone(builtin_cell())
    }
}

/// The built-in catalog, parsed on first use.
fn builtin_cell() -> &'static Arc<Catalog> {
    static BUILTIN: OnceLock<Arc<Catalog>> = OnceLock::new();
    BUILTIN.get_or_init(|| {
        Arc::new(
            Catalog::from_json_str(&builtin_products_json())
                .expect("the embedded products.json is invalid (the crate's tests check it)"),
        )
    })
}

impl Catalog {
    /// Parses and validates a full catalog in `products.json` format.
    ///
    /// All seven arrays (`applications`, `epid_profiles`, `csvlks`, `kms_items`, `sku_items`,
    /// `host_builds`, `lcids`) are required; other top-level keys and unknown fields of entries
    /// are ignored. If `format` / `format_version` are present they must be `kms-products` / 1.
    pub fn from_json_str(json: &str) -> Result<Catalog, CatalogError> {
        let mut doc = parse_document(json)?;
        // Every section is looked for first (a missing one is reported before any entry);
        // each is then read into JSON values only when its entries are converted, so that the
        // values of one section at a time are in memory (a host's peak memory), not the
        // whole document's.
        let mut take = |section| -> Result<Pending<'_>, CatalogError> {
            take_section(&mut doc, section)?.ok_or(CatalogError::MissingSection { section })
        };
        let applications = take(Section::Applications)?;
        let epid_profiles = take(Section::EpidProfiles)?;
        let csvlks = take(Section::Csvlks)?;
        let kms_items = take(Section::KmsItems)?;
        let skus = take(Section::SkuItems)?;
        let host_builds = take(Section::HostBuilds)?;
        let lcids = take(Section::Lcids)?;

        let parts = Parts {
            applications: Entries::loaded(parse_applications(applications.values()?)?),
            epid_profiles: Entries::loaded(parse_epid_profiles(epid_profiles.values()?)?),
            csvlks: Entries::loaded(parse_csvlks(csvlks.values()?)?),
            kms_items: Entries::loaded(parse_kms_items(kms_items.values()?)?),
            skus: Entries::loaded(parse_skus(skus.values()?)?),
            host_builds: Entries::loaded(parse_host_builds(host_builds.values()?)?),
            lcids: Entries::loaded(parse_lcids(lcids.values()?)?),
        };
        parts.finish()
    }

    /// A new catalog made of this one plus the entries of `other_json`, a user file in the same
    /// format.
    ///
    /// Every top-level array is optional here, but at least one must be present. Entries
    /// replace entries of this catalog with the same key (GUID `id`; profile `name`, compared
    /// case-insensitively; host `build`; CSVLKs without an `id` are always added), other entries
    /// are added after the existing ones, and new LCIDs are appended. The result is validated
    /// as a whole; error indexes refer to the extension file. `self` is left unchanged.
    pub fn extended_with(&self, other_json: &str) -> Result<Catalog, CatalogError> {
        let mut doc = parse_document(other_json)?;
        let mut sections: HashMap<Section, Vec<&RawValue>> = HashMap::new();
        for section in Section::ALL {
            if let Some(pending) = take_section(&mut doc, section)? {
                sections.insert(section, pending.values()?);
            }
        }
        if sections.is_empty() {
            let names: Vec<&str> = Section::ALL.iter().map(|s| s.key()).collect();
            return Err(CatalogError::Document {
                reason: format!(
                    "the extension file contains none of the sections {}",
                    names.join(", ")
                ),
            });
        }
        let mut take = |section| sections.remove(&section).unwrap_or_default();

        let parts = Parts {
            applications: merge(
                &self.applications,
                parse_applications(take(Section::Applications))?,
                |a| Some(a.id),
            ),
            epid_profiles: merge(
                &self.epid_profiles,
                parse_epid_profiles(take(Section::EpidProfiles))?,
                |p| Some(fold(&p.name)),
            ),
            csvlks: merge(&self.csvlks, parse_csvlks(take(Section::Csvlks))?, |c| c.id),
            kms_items: merge(
                &self.kms_items,
                parse_kms_items(take(Section::KmsItems))?,
                |k| Some(k.id),
            ),
            skus: merge(&self.skus, parse_skus(take(Section::SkuItems))?, |s| {
                Some(s.id)
            }),
            host_builds: merge(
                &self.host_builds,
                parse_host_builds(take(Section::HostBuilds))?,
                |h| Some(h.build),
            ),
            lcids: merge(&self.lcids, parse_lcids(take(Section::Lcids))?, |&l| {
                Some(l)
            }),
        };
        parts.finish()
    }
}

/// Whether `s` has the form of a product key: five groups of five characters `0-9` / `A-Z`
/// separated by `-`, e.g. `W269N-WFGWX-YVC9B-4J6C9-T83GX`.
pub fn is_product_key_format(s: &str) -> bool {
    s.len() == 29
        && s.bytes().enumerate().all(|(i, c)| {
            if i % 6 == 5 {
                c == b'-'
            } else {
                c.is_ascii_digit() || c.is_ascii_uppercase()
            }
        })
}

// ---------------------------------------------------------------------------------------------
// Document level

/// The top-level object: each key with its value's text, checked to be JSON but not read
/// further (see [`Pending`]).
type Document<'a> = BTreeMap<String, &'a RawValue>;

fn parse_document(json: &str) -> Result<Document<'_>, CatalogError> {
    // The whole text is checked here, so that a syntax error has its place in the file.
    let whole: &RawValue = serde_json::from_str(json).map_err(|e| {
        let (line, column) = (e.line(), e.column());
        let full = e.to_string();
        let suffix = format!(" at line {line} column {column}");
        let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
        CatalogError::Syntax {
            line,
            column,
            message,
        }
    })?;
    if !whole.get().trim_start().starts_with('{') {
        return Err(CatalogError::Document {
            reason: format!(
                "the top level must be a JSON object, found {}",
                raw_kind(whole)
            ),
        });
    }
    let map: Document<'_> =
        serde_json::from_str(whole.get()).map_err(|e| CatalogError::Document {
            reason: e.to_string(),
        })?;
    let value = |key: &str| map.get(key).and_then(|raw| read::<Value>(raw).ok());
    if let Some(format) = value("format") {
        if format.as_str() != Some(FORMAT) {
            return Err(CatalogError::Document {
                reason: format!("`format` is {format}, expected \"{FORMAT}\""),
            });
        }
    }
    if let Some(version) = value("format_version") {
        if version.as_u64() != Some(FORMAT_VERSION) {
            return Err(CatalogError::Document {
                reason: format!(
                    "`format_version` {version} is not supported (expected {FORMAT_VERSION})"
                ),
            });
        }
    }
    Ok(map)
}

/// A JSON text already checked by [`parse_document`], read as `T`.
fn read<'a, T: Deserialize<'a>>(raw: &'a RawValue) -> serde_json::Result<T> {
    serde_json::from_str(raw.get())
}

/// What kind of JSON value `raw` holds ("an array", …).
fn raw_kind(raw: &RawValue) -> &'static str {
    match raw.get().trim_start().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// A section found to be an array, whose entries are read by [`Pending::values`].
struct Pending<'a> {
    section: Section,
    raw: &'a RawValue,
}

impl<'a> Pending<'a> {
    /// The section's entries, each as its JSON text: an entry becomes a JSON value only while
    /// it is converted (a value tree of a whole section took several times its text's size).
    fn values(self) -> Result<Vec<&'a RawValue>, CatalogError> {
        read(self.raw).map_err(|e| CatalogError::Section {
            section: self.section,
            reason: e.to_string(),
        })
    }
}

/// Removes a section from the document: `None` if absent, an error if not an array.
fn take_section<'a>(
    doc: &mut Document<'a>,
    section: Section,
) -> Result<Option<Pending<'a>>, CatalogError> {
    match doc.remove(section.key()) {
        None => Ok(None),
        Some(raw) if raw.get().trim_start().starts_with('[') => Ok(Some(Pending { section, raw })),
        Some(other) => Err(CatalogError::Section {
            section,
            reason: format!("must be an array, found {}", raw_kind(other)),
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// Entry level: raw records as in the file, and their conversion to the typed model

#[derive(Deserialize)]
struct RawApplication {
    id: String,
    name: String,
    default_epid_profile: String,
    vlmcsd_client_list_size: u32,
    min_active_clients: u32,
}

#[derive(Deserialize)]
struct RawEpidProfile {
    name: String,
    display_name: String,
    group_id: u32,
    min_key_id: u32,
    max_key_id: u32,
    release_date: String,
    default_epid: String,
    csvlk_id: String,
    valid_host_builds: Vec<u32>,
}

#[derive(Deserialize)]
struct RawCsvlk {
    id: Option<String>,
    display_name: String,
    epid_profile: Option<String>,
    group_id: Option<u32>,
    min_key_id: Option<u32>,
    max_key_id: Option<u32>,
    release_date: Option<String>,
    is_lab: bool,
    is_preview: bool,
    default_epid: Option<String>,
    valid_host_builds: Vec<u32>,
    activates_kms_ids: Vec<String>,
}

#[derive(Deserialize)]
struct RawKmsItem {
    id: String,
    display_name: String,
    app_id: String,
    ncount_policy: u32,
    default_protocol: u16,
    is_retail: bool,
    is_preview: bool,
    epid_profile: String,
    alias_of: Option<String>,
}

#[derive(Deserialize)]
struct RawSku {
    id: String,
    display_name: String,
    app_id: String,
    kms_id: String,
    gvlk: Option<String>,
    is_retail: bool,
    is_preview: bool,
    default_protocol: u16,
    ncount_policy: u32,
    #[serde(default)]
    vlmcsd_name: Option<String>,
    #[serde(default)]
    pykms_name: Option<String>,
}

#[derive(Deserialize)]
struct RawHostBuild {
    build: u32,
    display_name: String,
    platform_id: u32,
    release_date: String,
    use_for_epid: bool,
    may_be_server: bool,
    uses_ndr64: bool,
}

fn parse_guid(field: &str, text: &str) -> Result<Uuid, String> {
    Uuid::parse_str(text).map_err(|e| format!("{field} {text:?} is not a GUID ({e})"))
}

/// Parses a strict `YYYY-MM-DD` date.
pub(crate) fn parse_date(field: &str, text: &str) -> Result<Date, String> {
    let bad = || format!("{field} {text:?} is not a valid YYYY-MM-DD date");
    let b = text.as_bytes();
    let shape_ok = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !shape_ok {
        return Err(bad());
    }
    let year: i32 = text[0..4].parse().map_err(|_| bad())?;
    let month: u8 = text[5..7].parse().map_err(|_| bad())?;
    let day: u8 = text[8..10].parse().map_err(|_| bad())?;
    let month = Month::try_from(month).map_err(|_| bad())?;
    Date::from_calendar_date(year, month, day).map_err(|_| bad())
}

fn check_key_range(min: u32, max: u32) -> Result<(), String> {
    if min > max {
        Err(format!("min_key_id {min} is greater than max_key_id {max}"))
    } else {
        Ok(())
    }
}

fn parse_applications(values: Vec<&RawValue>) -> Result<Vec<Application>, CatalogError> {
    let items = parse_entries(Section::Applications, values, |r: RawApplication| {
        Ok(Application {
            id: parse_guid("id", &r.id)?,
            name: r.name,
            default_epid_profile: r.default_epid_profile,
            vlmcsd_client_list_size: r.vlmcsd_client_list_size,
            min_active_clients: r.min_active_clients,
        })
    })?;
    check_unique(
        Section::Applications,
        &items,
        "id",
        |a| Some(a.id),
        |a| a.id.to_string(),
    )?;
    Ok(items)
}

fn parse_epid_profiles(values: Vec<&RawValue>) -> Result<Vec<EpidProfile>, CatalogError> {
    let items = parse_entries(Section::EpidProfiles, values, |r: RawEpidProfile| {
        check_key_range(r.min_key_id, r.max_key_id)?;
        Ok(EpidProfile {
            release_date: parse_date("release_date", &r.release_date)?,
            csvlk_id: parse_guid("csvlk_id", &r.csvlk_id)?,
            name: r.name,
            display_name: r.display_name,
            group_id: r.group_id,
            min_key_id: r.min_key_id,
            max_key_id: r.max_key_id,
            default_epid: r.default_epid,
            valid_host_builds: r.valid_host_builds,
        })
    })?;
    check_unique(
        Section::EpidProfiles,
        &items,
        "name (compared case-insensitively)",
        |p| Some(fold(&p.name)),
        |p| p.name.clone(),
    )?;
    Ok(items)
}

fn parse_csvlks(values: Vec<&RawValue>) -> Result<Vec<Csvlk>, CatalogError> {
    let items = parse_entries(Section::Csvlks, values, |r: RawCsvlk| {
        if let (Some(min), Some(max)) = (r.min_key_id, r.max_key_id) {
            check_key_range(min, max)?;
        }
        Ok(Csvlk {
            id: r.id.as_deref().map(|s| parse_guid("id", s)).transpose()?,
            release_date: r
                .release_date
                .as_deref()
                .map(|s| parse_date("release_date", s))
                .transpose()?,
            activates_kms_ids: r
                .activates_kms_ids
                .iter()
                .map(|s| parse_guid("activates_kms_ids entry", s))
                .collect::<Result<_, _>>()?,
            display_name: r.display_name,
            epid_profile: r.epid_profile,
            group_id: r.group_id,
            min_key_id: r.min_key_id,
            max_key_id: r.max_key_id,
            is_lab: r.is_lab,
            is_preview: r.is_preview,
            default_epid: r.default_epid,
            valid_host_builds: r.valid_host_builds,
        })
    })?;
    check_unique(
        Section::Csvlks,
        &items,
        "id",
        |c| c.id,
        |c| c.id.map(|id| id.to_string()).unwrap_or_default(),
    )?;
    Ok(items)
}

fn parse_kms_items(values: Vec<&RawValue>) -> Result<Vec<KmsItem>, CatalogError> {
    let items = parse_entries(Section::KmsItems, values, |r: RawKmsItem| {
        Ok(KmsItem {
            id: parse_guid("id", &r.id)?,
            app_id: parse_guid("app_id", &r.app_id)?,
            alias_of: r
                .alias_of
                .as_deref()
                .map(|s| parse_guid("alias_of", s))
                .transpose()?,
            display_name: r.display_name,
            ncount_policy: r.ncount_policy,
            default_protocol: r.default_protocol,
            is_retail: r.is_retail,
            is_preview: r.is_preview,
            epid_profile: r.epid_profile,
        })
    })?;
    check_unique(
        Section::KmsItems,
        &items,
        "id",
        |k| Some(k.id),
        |k| k.id.to_string(),
    )?;
    Ok(items)
}

fn parse_skus(values: Vec<&RawValue>) -> Result<Vec<Sku>, CatalogError> {
    let items = parse_entries(Section::SkuItems, values, |r: RawSku| {
        // An empty key means "unknown", like null.
        let gvlk = r.gvlk.filter(|g| !g.trim().is_empty());
        if let Some(g) = &gvlk {
            if !is_product_key_format(g) {
                return Err(format!(
                    "gvlk {g:?} is not a product key (5 groups of 5 characters 0-9/A-Z joined by '-')"
                ));
            }
        }
        let mut aliases: Vec<String> = Vec::new();
        for name in [&r.vlmcsd_name, &r.pykms_name].into_iter().flatten() {
            if name != &r.display_name && !aliases.contains(name) {
                aliases.push(name.clone());
            }
        }
        Ok(Sku {
            aliases,
            id: parse_guid("id", &r.id)?,
            app_id: parse_guid("app_id", &r.app_id)?,
            kms_id: parse_guid("kms_id", &r.kms_id)?,
            gvlk,
            display_name: r.display_name,
            is_retail: r.is_retail,
            is_preview: r.is_preview,
            default_protocol: r.default_protocol,
            ncount_policy: r.ncount_policy,
        })
    })?;
    check_unique(
        Section::SkuItems,
        &items,
        "id",
        |s| Some(s.id),
        |s| s.id.to_string(),
    )?;
    Ok(items)
}

fn parse_host_builds(values: Vec<&RawValue>) -> Result<Vec<HostBuild>, CatalogError> {
    let items = parse_entries(Section::HostBuilds, values, |r: RawHostBuild| {
        Ok(HostBuild {
            release_date: parse_date("release_date", &r.release_date)?,
            build: r.build,
            display_name: r.display_name,
            platform_id: r.platform_id,
            use_for_epid: r.use_for_epid,
            may_be_server: r.may_be_server,
            uses_ndr64: r.uses_ndr64,
        })
    })?;
    check_unique(
        Section::HostBuilds,
        &items,
        "build",
        |h| Some(h.build),
        |h| h.build.to_string(),
    )?;
    Ok(items)
}

fn parse_lcids(values: Vec<&RawValue>) -> Result<Vec<u32>, CatalogError> {
    let items = parse_entries(Section::Lcids, values, |l: u32| Ok(l))?;
    check_unique(
        Section::Lcids,
        &items,
        "LCID",
        |&l| Some(l),
        |l| l.to_string(),
    )?;
    Ok(items)
}

/// Deserialises and converts every entry of a section, naming the entry on failure.
fn parse_entries<R: DeserializeOwned, T>(
    section: Section,
    values: Vec<&RawValue>,
    convert: impl Fn(R) -> Result<T, String>,
) -> Result<Vec<T>, CatalogError> {
    values
        .into_iter()
        .enumerate()
        .map(|(index, text)| {
            // The document was checked as a whole: an entry's text is valid JSON.
            let value: Value = read(text).map_err(|e| CatalogError::Entry {
                section,
                index,
                id: None,
                reason: e.to_string(),
            })?;
            let id = entry_label(section, &value);
            let fail = |reason: String| CatalogError::Entry {
                section,
                index,
                id: id.clone(),
                reason,
            };
            let raw: R = serde_json::from_value(value).map_err(|e| fail(e.to_string()))?;
            convert(raw).map_err(fail)
        })
        .collect()
}

/// The identifier of a raw entry as written, for error messages.
fn entry_label(section: Section, value: &Value) -> Option<String> {
    let key = match section {
        Section::Lcids => return None,
        Section::HostBuilds => "build",
        Section::EpidProfiles => "name",
        _ => "id",
    };
    match value.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Refuses the second of two entries with the same key.
fn check_unique<T, K: Hash + Eq>(
    section: Section,
    items: &[T],
    what: &str,
    key: impl Fn(&T) -> Option<K>,
    label: impl Fn(&T) -> String,
) -> Result<(), CatalogError> {
    let mut seen: HashMap<K, usize> = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        let Some(k) = key(item) else { continue };
        if let Some(first) = seen.insert(k, index) {
            return Err(CatalogError::Entry {
                section,
                index,
                id: Some(label(item)),
                reason: format!("duplicate {what}: already used by {section}[{first}]"),
            });
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Catalog level: merging and cross-reference validation

/// Where an entry of a catalog under construction came from.
#[derive(Debug, Clone, Copy)]
enum Origin {
    /// Index in the file being loaded (the extension file for `extended_with`).
    Loaded(usize),
    /// Index in the base catalog of `extended_with`.
    Base(usize),
}

/// One section's entries with their origins.
struct Entries<T> {
    items: Vec<T>,
    origins: Vec<Origin>,
}

impl<T> Entries<T> {
    fn loaded(items: Vec<T>) -> Self {
        let origins = (0..items.len()).map(Origin::Loaded).collect();
        Entries { items, origins }
    }
}

/// `base` followed by `ext`, where an `ext` entry with the key of a `base` entry replaces it.
fn merge<T: Clone, K: Hash + Eq>(
    base: &[T],
    ext: Vec<T>,
    key: impl Fn(&T) -> Option<K>,
) -> Entries<T> {
    let mut items = base.to_vec();
    let mut origins: Vec<Origin> = (0..base.len()).map(Origin::Base).collect();
    let mut position: HashMap<K, usize> = items
        .iter()
        .enumerate()
        .filter_map(|(i, t)| key(t).map(|k| (k, i)))
        .collect();
    for (j, item) in ext.into_iter().enumerate() {
        if let Some(k) = key(&item) {
            if let Some(&i) = position.get(&k) {
                items[i] = item;
                origins[i] = Origin::Loaded(j);
                continue;
            }
            position.insert(k, items.len());
        }
        items.push(item);
        origins.push(Origin::Loaded(j));
    }
    Entries { items, origins }
}

/// All sections of a catalog under construction.
struct Parts {
    applications: Entries<Application>,
    epid_profiles: Entries<EpidProfile>,
    csvlks: Entries<Csvlk>,
    kms_items: Entries<KmsItem>,
    skus: Entries<Sku>,
    host_builds: Entries<HostBuild>,
    lcids: Entries<u32>,
}

fn entry_error(section: Section, origin: Origin, id: String, reason: String) -> CatalogError {
    match origin {
        Origin::Loaded(index) => CatalogError::Entry {
            section,
            index,
            id: Some(id),
            reason,
        },
        Origin::Base(index) => CatalogError::Entry {
            section,
            index,
            id: Some(id),
            reason: format!("{reason} (an entry of the base catalog, broken by the extension)"),
        },
    }
}

impl Parts {
    /// Sorts host builds, checks every cross-reference and builds the indexes.
    fn finish(mut self) -> Result<Catalog, CatalogError> {
        // Host builds in ascending order, for the §8.2 range lookups.
        let mut hosts: Vec<(HostBuild, Origin)> = self
            .host_builds
            .items
            .into_iter()
            .zip(self.host_builds.origins)
            .collect();
        hosts.sort_by_key(|(h, _)| h.build);
        let (items, origins) = hosts.into_iter().unzip();
        self.host_builds = Entries { items, origins };

        self.validate()?;

        let index = Index::build(
            &self.applications.items,
            &self.epid_profiles.items,
            &self.csvlks.items,
            &self.kms_items.items,
            &self.skus.items,
        );
        Ok(Catalog {
            applications: self.applications.items,
            epid_profiles: self.epid_profiles.items,
            csvlks: self.csvlks.items,
            kms_items: self.kms_items.items,
            skus: self.skus.items,
            host_builds: self.host_builds.items,
            lcids: self.lcids.items,
            index,
        })
    }

    fn validate(&self) -> Result<(), CatalogError> {
        if self.host_builds.items.is_empty() {
            return Err(CatalogError::Section {
                section: Section::HostBuilds,
                reason: "must list at least one host build".into(),
            });
        }
        if self.lcids.items.is_empty() {
            return Err(CatalogError::Section {
                section: Section::Lcids,
                reason: "must list at least one LCID".into(),
            });
        }

        let applications: HashSet<Uuid> = self.applications.items.iter().map(|a| a.id).collect();
        let profiles: HashSet<String> = self
            .epid_profiles
            .items
            .iter()
            .map(|p| fold(&p.name))
            .collect();
        let hosts: HashSet<u32> = self.host_builds.items.iter().map(|h| h.build).collect();
        let kms: HashMap<Uuid, Option<Uuid>> = self
            .kms_items
            .items
            .iter()
            .map(|k| (k.id, k.alias_of))
            .collect();

        if !profiles.contains(&fold(FALLBACK_EPID_PROFILE)) {
            return Err(CatalogError::Section {
                section: Section::EpidProfiles,
                reason: format!(
                    "no profile named `{FALLBACK_EPID_PROFILE}` (it answers requests whose \
                     application is unknown)"
                ),
            });
        }
        let profile_ok = |name: &str, field: &str| {
            if profiles.contains(&fold(name)) {
                Ok(())
            } else {
                Err(format!("{field} {name:?} is not a known ePID profile"))
            }
        };
        let hosts_ok = |builds: &[u32]| match builds.iter().find(|b| !hosts.contains(b)) {
            None => Ok(()),
            Some(b) => Err(format!(
                "valid_host_builds entry {b} is not a known host build"
            )),
        };
        let app_ok = |id: &Uuid| {
            if applications.contains(id) {
                Ok(())
            } else {
                Err(format!("app_id {id} is not a known application"))
            }
        };

        check_each(
            Section::Applications,
            &self.applications,
            |a| a.id.to_string(),
            |a| profile_ok(&a.default_epid_profile, "default_epid_profile"),
        )?;
        check_each(
            Section::EpidProfiles,
            &self.epid_profiles,
            |p| p.name.clone(),
            |p| hosts_ok(&p.valid_host_builds),
        )?;
        check_each(
            Section::Csvlks,
            &self.csvlks,
            |c| {
                c.id.map(|id| id.to_string())
                    .unwrap_or_else(|| c.display_name.clone())
            },
            |c| {
                if let Some(p) = &c.epid_profile {
                    profile_ok(p, "epid_profile")?;
                }
                hosts_ok(&c.valid_host_builds)
            },
        )?;
        check_each(
            Section::KmsItems,
            &self.kms_items,
            |k| k.id.to_string(),
            |k| {
                app_ok(&k.app_id)?;
                profile_ok(&k.epid_profile, "epid_profile")?;
                if let Some(target) = k.alias_of {
                    match kms.get(&target) {
                        None => return Err(format!("alias_of {target} is not a known KMS item")),
                        Some(Some(next)) => {
                            return Err(format!(
                                "alias_of {target} is itself an alias (of {next}); it must name \
                                 a genuine KMS item"
                            ))
                        }
                        Some(None) => {}
                    }
                }
                Ok(())
            },
        )?;
        check_each(
            Section::SkuItems,
            &self.skus,
            |s| s.id.to_string(),
            |s| {
                if !kms.contains_key(&s.kms_id) {
                    return Err(format!("kms_id {} is not a known KMS item", s.kms_id));
                }
                app_ok(&s.app_id)
            },
        )?;
        Ok(())
    }
}

/// Runs `rule` on every entry of a section, naming the first entry that breaks it.
fn check_each<T>(
    section: Section,
    entries: &Entries<T>,
    label: impl Fn(&T) -> String,
    rule: impl Fn(&T) -> Result<(), String>,
) -> Result<(), CatalogError> {
    for (item, origin) in entries.items.iter().zip(&entries.origins) {
        rule(item).map_err(|reason| entry_error(section, *origin, label(item), reason))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_catalog_is_embedded_deflated() {
        // Less than a third of the text in the binary, and it inflates to the recorded length
        // of the minified products.json.
        assert!(
            BUILTIN_PRODUCTS_DEFLATED.len() * 3 < BUILTIN_PRODUCTS_LEN,
            "{} of {}",
            BUILTIN_PRODUCTS_DEFLATED.len(),
            BUILTIN_PRODUCTS_LEN
        );
        let text = builtin_products_json();
        assert_eq!(text.len(), BUILTIN_PRODUCTS_LEN);
        assert!(text.starts_with('{') && text.ends_with('}'));
    }

    #[test]
    fn product_key_format() {
        assert!(is_product_key_format("W269N-WFGWX-YVC9B-4J6C9-T83GX"));
        assert!(!is_product_key_format("w269n-WFGWX-YVC9B-4J6C9-T83GX"));
        assert!(!is_product_key_format("W269N-WFGWX-YVC9B-4J6C9-T83G"));
        assert!(!is_product_key_format("W269N-WFGWX-YVC9B-4J6C9-T83GXX"));
        assert!(!is_product_key_format("W269NWWFGWX-YVC9B-4J6C9-T83GX"));
        assert!(!is_product_key_format("W269N-WFGWX-YVC9B-4J6C9_T83GX"));
        assert!(!is_product_key_format(""));
    }

    #[test]
    fn dates_are_strict() {
        assert_eq!(
            parse_date("d", "2024-02-29").unwrap(),
            Date::from_calendar_date(2024, Month::February, 29).unwrap()
        );
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-1-01",
            "24-01-01",
            "2024/01/01",
            "+024-01-01",
            "2024-01-01 ",
            "",
        ] {
            let err = parse_date("release_date", bad).unwrap_err();
            assert!(err.contains("YYYY-MM-DD"), "{bad}: {err}");
        }
    }

    #[test]
    fn merge_replaces_by_key_and_appends_new() {
        let merged = merge(&[(1, "a"), (2, "b")], vec![(2, "B"), (3, "c")], |t| {
            Some(t.0)
        });
        assert_eq!(merged.items, vec![(1, "a"), (2, "B"), (3, "c")]);
        assert!(matches!(
            merged.origins[..],
            [Origin::Base(0), Origin::Loaded(0), Origin::Loaded(1)]
        ));
    }

    #[test]
    fn merge_without_key_always_appends() {
        let merged = merge(&[None, Some(1)], vec![None, Some(1)], |t: &Option<i32>| *t);
        assert_eq!(merged.items, vec![None, Some(1), None]);
    }

    #[test]
    fn syntax_error_message_has_no_duplicate_position() {
        let err = Catalog::from_json_str("{\n  \"applications\": [,]\n}").unwrap_err();
        let CatalogError::Syntax {
            line,
            column,
            message,
        } = &err
        else {
            panic!("expected a syntax error, got {err:?}");
        };
        assert_eq!((*line, *column), (2, 20));
        assert!(!message.contains("line"), "{message}");
        assert!(err
            .to_string()
            .starts_with("invalid JSON at line 2, column 20: "));
    }

    #[test]
    fn non_object_document_refused() {
        let err = Catalog::from_json_str("[1, 2]").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the top level must be a JSON object, found an array"
        );
    }
}

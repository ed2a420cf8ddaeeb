//! Helpers shared by the integration tests.
#![allow(dead_code)]

use rkms_catalog::{builtin_products_json, Catalog, CatalogError, Section};
use serde_json::Value;

pub const WINDOWS_APP: &str = "55c92734-d682-4d71-983e-d6ec3f16059f";
pub const OFFICE2010_APP: &str = "59a52881-a989-479d-af46-f275c6370663";
pub const OFFICE2013_APP: &str = "0ff1ce15-a989-479d-af46-f275c6370663";

/// The embedded products.json as a JSON value.
pub fn builtin_value() -> Value {
    serde_json::from_str(&builtin_products_json()).expect("embedded products.json is JSON")
}

/// The array `section` of a products.json value.
pub fn section<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} is an array"))
}

/// Parses a GUID literal.
pub fn guid(s: &str) -> uuid::Uuid {
    uuid::Uuid::parse_str(s).expect("test GUID literal")
}

/// Loads the builtin JSON after applying `mutate`, expecting it to be refused.
pub fn broken(mutate: impl FnOnce(&mut Value)) -> CatalogError {
    let mut v = builtin_value();
    mutate(&mut v);
    match Catalog::from_json_str(&v.to_string()) {
        Ok(_) => panic!("the mutated catalog was accepted"),
        Err(e) => e,
    }
}

/// Asserts that `err` is about entry `index` of `section` with the given id, and that its
/// reason contains `reason`; also checks the Display form starts with `section[index] (id ...)`.
pub fn assert_entry(err: &CatalogError, section: Section, index: usize, id: &str, reason: &str) {
    match err {
        CatalogError::Entry {
            section: s,
            index: i,
            id: Some(got_id),
            reason: r,
        } => {
            assert_eq!((*s, *i), (section, index), "wrong place: {err}");
            assert_eq!(got_id, id, "wrong id: {err}");
            assert!(r.contains(reason), "reason {r:?} lacks {reason:?}");
            let prefix = format!("{}[{index}] (id {id}): ", section.key());
            assert!(err.to_string().starts_with(&prefix), "{err} vs {prefix}");
        }
        other => panic!("expected an entry error in {section}[{index}], got {other:?} ({other})"),
    }
}

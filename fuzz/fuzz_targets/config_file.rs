//! The configuration file reader (`rkms_config::parse_file`) on arbitrary text: it never
//! panics; every error names the file; every entry it accepts has a kebab-case key and a line
//! of the file; and what it accepts, written back as TOML strings, reads back the same.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use rkms_config::{parse_file, Entry, Origin};

fn sorted(entries: &[Entry]) -> Vec<(String, Vec<String>)> {
    let mut v: Vec<_> = entries
        .iter()
        .map(|e| (e.key.clone(), e.values.clone()))
        .collect();
    v.sort();
    v
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz.toml");
    let entries = match parse_file(text, path) {
        Ok(entries) => entries,
        Err(message) => {
            assert!(message.starts_with("fuzz.toml"), "{message}");
            return;
        }
    };
    let lines = text.matches('\n').count() + 1;
    for e in &entries {
        assert!(!e.key.contains('_'), "key {:?} keeps an underscore", e.key);
        match &e.origin {
            Origin::File { path: p, line } => {
                assert_eq!(p, path);
                assert!((1..=lines).contains(line), "line {line} of {lines}");
            }
            other => panic!("a file entry from {other}"),
        }
    }
    // Written back (every value as a string), the file reads back the same. Keys that
    // differ only by `_`/`-` become one table key, so those files are not rewritten.
    let mut table = toml::Table::new();
    for e in &entries {
        let values = e.values.iter().cloned().map(toml::Value::String).collect();
        if table
            .insert(e.key.clone(), toml::Value::Array(values))
            .is_some()
        {
            return;
        }
    }
    let again = toml::to_string(&table).expect("a table of strings serialises");
    let reread = parse_file(&again, path).expect("what was accepted, written back, is accepted");
    assert_eq!(sorted(&reread), sorted(&entries));
});

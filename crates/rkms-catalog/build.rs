//! Embeds `data/products.json` without the white space between its tokens (a fifth of the
//! file, and of what the catalog adds to the binary): `$OUT_DIR/products.min.json`, which
//! `BUILTIN_PRODUCTS_JSON` includes. Strings are copied byte for byte, so the catalog read is
//! the same.

use std::path::PathBuf;

/// `json` with the white space outside strings left out (JSON's four white-space characters;
/// escapes inside strings, `\"` among them, are kept as they are).
fn minify(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if matches!(c, ' ' | '\t' | '\n' | '\r') {
            continue;
        } else if c == '"' {
            in_string = true;
        }
        out.push(c);
    }
    out
}

fn main() {
    let source = "data/products.json";
    println!("cargo:rerun-if-changed={source}");
    let json = std::fs::read_to_string(source).expect("crates/rkms-catalog/data/products.json");
    let out =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("products.min.json");
    std::fs::write(&out, minify(&json)).expect("writing products.min.json");
}

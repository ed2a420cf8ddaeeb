//! Embeds `data/products.json` without the white space between its tokens (a fifth of the
//! file), then compressed with DEFLATE (raw, no zlib header): `$OUT_DIR/products.min.json.deflate`,
//! which `load.rs` includes and `builtin_products_json` inflates. Strings are copied byte for
//! byte, so the catalog read is the same.

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
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let minified = minify(&json);
    // Level 10: miniz' best (the build's cost is a fraction of a second).
    let deflated = miniz_oxide::deflate::compress_to_vec(minified.as_bytes(), 10);
    std::fs::write(out_dir.join("products.min.json.deflate"), deflated)
        .expect("writing products.min.json.deflate");
    // The inflated length: the text is inflated into one allocation of that size.
    std::fs::write(
        out_dir.join("products.min.json.len"),
        minified.len().to_string(),
    )
    .expect("writing products.min.json.len");
}

//! Text and JSON renderings of catalog entries for the command line: the product table, its
//! JSON form and the client-side activation guide. Pure string building, no I/O.

use std::fmt::Write as _;

use serde_json::{json, Value};
use uuid::Uuid;

use crate::lookup::Catalog;
use crate::model::{KmsItem, Sku};

/// Application ID of Windows.
pub const WINDOWS_APP_ID: Uuid = Uuid::from_u128(0x55c92734_d682_4d71_983e_d6ec3f16059f);
/// Application ID of Office 2010.
pub const OFFICE2010_APP_ID: Uuid = Uuid::from_u128(0x59a52881_a989_479d_af46_f275c6370663);
/// Application ID of Office 2013 and later.
pub const OFFICE2013_APP_ID: Uuid = Uuid::from_u128(0x0ff1ce15_a989_479d_af46_f275c6370663);

/// Shown in the GVLK column and field for a SKU without a known GVLK.
pub const NO_KEY: &str = "(none)";

/// Why [`guide`] cannot give activation commands for a SKU.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuideError {
    /// The SKU has no known GVLK, so there is no key to install on the client.
    #[error(
        "{product} ({sku_id}) has no known KMS client setup key (GVLK), so there is no key to \
         install on the client; choose another edition"
    )]
    NoKey {
        /// The SKU's display name.
        product: String,
        /// The SKU's ID.
        sku_id: Uuid,
    },
    /// The SKU belongs to an application that is neither Windows nor Office.
    #[error(
        "{product} belongs to application {app_id}, which is neither Windows nor Office; no \
         activation commands are known for it"
    )]
    UnsupportedApplication {
        /// The SKU's display name.
        product: String,
        /// The SKU's application ID.
        app_id: Uuid,
    },
}

/// The SKU's KMS item, aliases resolved (always present in a validated catalog).
fn kms_item<'a>(catalog: &'a Catalog, sku: &Sku) -> Option<&'a KmsItem> {
    catalog.kms_item_resolved(&sku.kms_id)
}

/// The activation threshold of the SKU's KMS item (`ncount_policy`), falling back to the
/// SKU's own value if the KMS item is unknown.
fn min_count(catalog: &Catalog, sku: &Sku) -> u32 {
    kms_item(catalog, sku).map_or(sku.ncount_policy, |k| k.ncount_policy)
}

/// A fixed-width text table of `skus`, in the order given, for `products`-style listings.
///
/// Columns: `PRODUCT` (display name), `GVLK` (or `(none)`), `KMS GROUP` (the display name of
/// the SKU's KMS item, aliases resolved), `MIN COUNT` (that item's `ncount_policy`,
/// right-aligned) and `PROTOCOL` (`V4`/`V5`/`V6`, the SKU's `default_protocol`). Column widths
/// fit the longest entry (nothing is truncated), columns are separated by two spaces and lines
/// carry no trailing spaces. A header row and a row of dashes come first, a line `N products`
/// (`1 product`) last; every line, the last included, ends with `\n`.
pub fn products_table(catalog: &Catalog, skus: &[&Sku]) -> String {
    const HEADER: [&str; 5] = ["PRODUCT", "GVLK", "KMS GROUP", "MIN COUNT", "PROTOCOL"];
    const RIGHT: [bool; 5] = [false, false, false, true, false];

    let rows: Vec<[String; 5]> = skus
        .iter()
        .map(|sku| {
            [
                sku.display_name.clone(),
                sku.gvlk.clone().unwrap_or_else(|| NO_KEY.to_owned()),
                kms_item(catalog, sku)
                    .map_or_else(|| "(unknown)".to_owned(), |k| k.display_name.clone()),
                min_count(catalog, sku).to_string(),
                format!("V{}", sku.default_protocol),
            ]
        })
        .collect();

    let mut widths = HEADER.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }

    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            let w = widths[i];
            if RIGHT[i] {
                let _ = write!(text, "{cell:>w$}");
            } else {
                let _ = write!(text, "{cell:<w$}");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&HEADER);
    let dashes = widths.map(|w| "-".repeat(w));
    line(&dashes.each_ref().map(String::as_str));
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
    let n = rows.len();
    let _ = writeln!(out, "{n} product{}", if n == 1 { "" } else { "s" });
    out
}

/// `skus` as a JSON array, in the order given, one object per SKU:
///
/// `name`, `sku_id`, `gvlk` (string or `null`), `kms_id` (the SKU's KMS ID as stored),
/// `kms_name` (display name of its KMS item, aliases resolved), `application_id`,
/// `application` (name, or `null` if unknown), `min_count` (the KMS item's `ncount_policy`,
/// a number), `protocol` (the SKU's `default_protocol` as a number: 4, 5 or 6), `retail`,
/// `preview` (booleans). IDs are canonical lower-case GUID strings.
pub fn products_json(catalog: &Catalog, skus: &[&Sku]) -> Value {
    Value::Array(
        skus.iter()
            .map(|sku| {
                json!({
                    "name": sku.display_name,
                    "sku_id": sku.id.to_string(),
                    "gvlk": sku.gvlk,
                    "kms_id": sku.kms_id.to_string(),
                    "kms_name": kms_item(catalog, sku).map(|k| k.display_name.clone()),
                    "application_id": sku.app_id.to_string(),
                    "application": catalog.application(&sku.app_id).map(|a| a.name.clone()),
                    "min_count": min_count(catalog, sku),
                    "protocol": sku.default_protocol,
                    "retail": sku.is_retail,
                    "preview": sku.is_preview,
                })
            })
            .collect(),
    )
}

/// The Office installation folder name (`Office14`, `Office15` or `Office16`) holding
/// `ospp.vbs` for an Office SKU, or `None` for a SKU of another application.
///
/// Rule: the Office 2010 application is `Office14`. For the Office 2013+ application the
/// version is the first year (a four-digit number starting with `20`) in the display name of
/// the SKU's KMS item, or else in the SKU's display name: a year before 2016 (i.e. 2013) is
/// `Office15`, any later year (2016, 2019, 2021, 2024, …) or no year at all is `Office16`,
/// the folder every Office version since 2016 uses.
pub fn office_folder(catalog: &Catalog, sku: &Sku) -> Option<&'static str> {
    if sku.app_id == OFFICE2010_APP_ID {
        return Some("Office14");
    }
    if sku.app_id != OFFICE2013_APP_ID {
        return None;
    }
    let year = kms_item(catalog, sku)
        .and_then(|k| year_in(&k.display_name))
        .or_else(|| year_in(&sku.display_name));
    Some(match year {
        Some(y) if y < 2016 => "Office15",
        _ => "Office16",
    })
}

/// The first whole four-digit number starting with `20` in `name`.
fn year_in(name: &str) -> Option<u32> {
    name.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 4 && w.starts_with("20"))
        .and_then(|w| w.parse().ok())
}

/// `host` without surrounding brackets, and whether it is an IPv6 address (contains `:`).
fn bare_host(host: &str) -> (&str, bool) {
    let h = host.trim();
    let h = h
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(h);
    (h, h.contains(':'))
}

/// The exact commands a user types on a client to activate `sku` against the KMS host
/// `host`:`port`, with a short troubleshooting section.
///
/// * Windows: `slmgr /ipk <GVLK>`, `slmgr /skms <host>:<port>`, `slmgr /ato`, `slmgr /dlv` in
///   an elevated Command Prompt. An IPv6 host (any host containing `:`, given with or without
///   brackets) is written `[addr]:port`, e.g. `slmgr /skms [::1]:1688`.
/// * Office: `cd /d` into the Office folder (both `C:\Program Files\Microsoft Office\OfficeNN`
///   and `C:\Program Files (x86)\...`, `NN` from [`office_folder`]), then `cscript ospp.vbs`
///   with `/inpkey:<GVLK>`, `/sethst:<host>`, `/setprt:<port>`, `/act`, `/dstatus`. An IPv6
///   host is given in brackets (`/sethst:[::1]`), the form `slmgr /skms` stores.
/// * Then one line each for `0xC004F074` (host unreachable; includes `Test-NetConnection
///   <host> -Port <port>`, an IPv6 address in single quotes),
///   `0xC004F038` (count too low; the threshold is the KMS item's `ncount_policy`) and
///   `0x8007000D` (host activating itself, or protocol not supported).
///
/// The first line names the product. The text ends with `\n`.
///
/// # Errors
///
/// [`GuideError::NoKey`] if the SKU has no GVLK; [`GuideError::UnsupportedApplication`] if
/// it is neither a Windows nor an Office SKU.
pub fn guide(catalog: &Catalog, sku: &Sku, host: &str, port: u16) -> Result<String, GuideError> {
    let gvlk = sku.gvlk.as_deref().ok_or_else(|| GuideError::NoKey {
        product: sku.display_name.clone(),
        sku_id: sku.id,
    })?;
    let (bare, ipv6) = bare_host(host);
    let named = if ipv6 {
        format!("[{bare}]")
    } else {
        bare.to_owned()
    };
    let endpoint = format!("{named}:{port}");
    // PowerShell takes the bare address; quote IPv6 so no `:` is read as syntax.
    let probe = if ipv6 {
        format!("'{bare}'")
    } else {
        bare.to_owned()
    };

    let mut out = String::new();
    let _ = writeln!(
        out,
        "Activate {} with the KMS host {endpoint}",
        sku.display_name
    );
    out.push('\n');

    if sku.app_id == WINDOWS_APP_ID {
        out.push_str(
            "Run these commands in an elevated Command Prompt \
             (right-click Command Prompt, \"Run as administrator\"):\n\n",
        );
        for cmd in [
            format!("slmgr /ipk {gvlk}"),
            format!("slmgr /skms {endpoint}"),
            "slmgr /ato".to_owned(),
            "slmgr /dlv".to_owned(),
        ] {
            let _ = writeln!(out, "  {cmd}");
        }
        out.push_str(
            "\n/ipk installs the KMS client setup key (GVLK), /skms sets the KMS host, \
             /ato activates now, /dlv shows the licence status.\n",
        );
    } else if let Some(folder) = office_folder(catalog, sku) {
        out.push_str(
            "Open an elevated Command Prompt (right-click Command Prompt, \"Run as \
             administrator\") and change to the Office folder, whichever of the two exists:\n\n",
        );
        let _ = writeln!(
            out,
            "  cd /d \"C:\\Program Files\\Microsoft Office\\{folder}\""
        );
        let _ = writeln!(
            out,
            "  cd /d \"C:\\Program Files (x86)\\Microsoft Office\\{folder}\""
        );
        out.push_str(
            "\n(the first for 64-bit Office, or 32-bit Office on 32-bit Windows; the second for \
             32-bit Office on 64-bit Windows). Then run:\n\n",
        );
        for cmd in [
            format!("/inpkey:{gvlk}"),
            format!("/sethst:{named}"),
            format!("/setprt:{port}"),
            "/act".to_owned(),
            "/dstatus".to_owned(),
        ] {
            let _ = writeln!(out, "  cscript ospp.vbs {cmd}");
        }
        out.push_str(
            "\n/inpkey installs the KMS client setup key (GVLK), /sethst and /setprt set the \
             KMS host and port, /act activates now, /dstatus shows the licence status.\n",
        );
    } else {
        return Err(GuideError::UnsupportedApplication {
            product: sku.display_name.clone(),
            app_id: sku.app_id,
        });
    }

    let _ = write!(
        out,
        "\nIf it fails:\n\
         \x20 0xC004F074  The KMS host cannot be reached: check that the host is running and that \
         TCP port {port} is open in its firewall and any on the way; test from the client in \
         PowerShell: Test-NetConnection {probe} -Port {port}\n\
         \x20 0xC004F038  The count is too low: the host reports fewer active clients than this \
         product needs (at least {count}).\n\
         \x20 0x8007000D  A KMS host cannot activate the machine it runs on (use another machine \
         or a VM), or the host does not support the protocol this product uses (V{protocol}).\n",
        count = min_count(catalog, sku),
        protocol = sku.default_protocol,
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn years_in_names() {
        assert_eq!(year_in("Office LTSC 2024"), Some(2024));
        assert_eq!(year_in("Office Mondo 1 2010"), Some(2010));
        assert_eq!(year_in("Office 2013 (Pre-release)"), Some(2013));
        assert_eq!(year_in("Office 20245"), None);
        assert_eq!(year_in("Office 1999"), None);
        assert_eq!(year_in("Office"), None);
    }

    #[test]
    fn hosts_are_bracketed_only_for_ipv6() {
        assert_eq!(bare_host("kms.example.lan"), ("kms.example.lan", false));
        assert_eq!(bare_host("192.0.2.1"), ("192.0.2.1", false));
        assert_eq!(bare_host("::1"), ("::1", true));
        assert_eq!(bare_host("[fe80::1%12]"), ("fe80::1%12", true));
        assert_eq!(bare_host(" [::1] "), ("::1", true));
    }
}

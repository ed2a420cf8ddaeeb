//! The host's identity: one ePID per ePID profile (CSVLK slot) and the HwId.

use std::collections::BTreeMap;

use rkms_catalog::Catalog;
use rkms_proto::kms::BaseResponse;

/// vlmcsd's default HwId (a well-known emulator fingerprint; override with --hwid).
pub const DEFAULT_HWID: [u8; 8] = [0x3A, 0x1C, 0x04, 0x96, 0x00, 0xB6, 0x00, 0x76];

/// Parses a HwId: 16 hex digits in wire order; spaces, colons and dashes are ignored.
pub fn parse_hwid(text: &str) -> Result<[u8; 8], String> {
    let digits: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | ':' | '-'))
        .collect();
    let digits = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
        .unwrap_or(&digits);
    if digits.len() != 16 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "'{text}' is not a HwId: expected 16 hexadecimal digits, e.g. 3A1C049600B60076"
        ));
    }
    let mut out = [0u8; 8];
    hex::decode_to_slice(digits, &mut out).map_err(|e| format!("'{text}': {e}"))?;
    Ok(out)
}

/// ePIDs per profile and the HwId, fixed for the life of the process.
#[derive(Debug, Clone)]
pub struct Identity {
    epids: BTreeMap<String, String>,
    fallback: String,
    hwid: [u8; 8],
}

impl Identity {
    /// One stable ePID per profile: `epid` for all when given, else each profile's built-in
    /// ePID (PROTOCOL.md §8.3) with `lcid` written into it when given.
    pub fn new(
        catalog: &Catalog,
        epid: Option<&str>,
        lcid: Option<u32>,
        hwid: [u8; 8],
    ) -> Result<Self, String> {
        if let Some(e) = epid {
            BaseResponse::check_epid(e).map_err(|err| format!("--epid '{e}': {err}"))?;
            if e.contains(char::is_whitespace) {
                return Err(format!("--epid '{e}': an ePID contains no spaces"));
            }
        }
        let mut epids = BTreeMap::new();
        for profile in catalog.epid_profiles() {
            let value = match (epid, lcid) {
                (Some(e), _) => e.to_string(),
                (None, Some(l)) => with_lcid(&profile.default_epid, l),
                (None, None) => profile.default_epid.clone(),
            };
            epids.insert(profile.name.to_ascii_lowercase(), value);
        }
        let fallback = epids
            .get("windows")
            .cloned()
            .ok_or("the catalog has no Windows ePID profile")?;
        Ok(Identity {
            epids,
            fallback,
            hwid,
        })
    }

    /// The ePID answering requests of `profile`.
    pub fn epid_for(&self, profile: &str) -> &str {
        self.epids
            .get(&profile.to_ascii_lowercase())
            .unwrap_or(&self.fallback)
    }

    /// Every profile and its ePID.
    pub fn epids(&self) -> impl Iterator<Item = (&str, &str)> {
        self.epids.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The HwId.
    pub fn hwid(&self) -> [u8; 8] {
        self.hwid
    }
}

/// Replaces the LCID field (the sixth, dash-separated) of an ePID.
fn with_lcid(epid: &str, lcid: u32) -> String {
    let mut fields: Vec<String> = epid.split('-').map(str::to_string).collect();
    if fields.len() == 8 {
        fields[5] = lcid.to_string();
    }
    fields.join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hwid_forms() {
        assert_eq!(parse_hwid("3A1C049600B60076"), Ok(DEFAULT_HWID));
        assert_eq!(parse_hwid("3a 1c 04 96 00 b6 00 76"), Ok(DEFAULT_HWID));
        assert_eq!(parse_hwid("0x3A1C049600B60076"), Ok(DEFAULT_HWID));
        assert!(parse_hwid("3A1C")
            .unwrap_err()
            .contains("16 hexadecimal digits"));
        assert!(parse_hwid("3A1C049600B6007G").is_err());
    }

    #[test]
    fn builtin_epids_per_profile_and_overrides() {
        let catalog = Catalog::builtin();
        let id = Identity::new(catalog, None, None, DEFAULT_HWID).unwrap();
        assert_eq!(
            id.epid_for("Windows"),
            "03612-04919-018-914043-03-1033-20348.0000-1162026"
        );
        assert_eq!(
            id.epid_for("office2024"),
            "03612-00206-606-131950-03-1033-20348.0000-2882026"
        );
        assert_eq!(id.epids().count(), 8);
        let id = Identity::new(catalog, None, Some(1031), DEFAULT_HWID).unwrap();
        assert_eq!(
            id.epid_for("Windows"),
            "03612-04919-018-914043-03-1031-20348.0000-1162026"
        );
        let id = Identity::new(catalog, Some("X-1"), None, DEFAULT_HWID).unwrap();
        assert_eq!(id.epid_for("Office2010"), "X-1");
        assert!(Identity::new(catalog, Some(&"9".repeat(64)), None, DEFAULT_HWID).is_err());
        assert!(Identity::new(catalog, Some("a b"), None, DEFAULT_HWID).is_err());
    }
}

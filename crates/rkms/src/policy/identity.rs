//! The host's identity: one ePID (and HwId) per ePID profile (CSVLK slot), generated like a
//! genuine host's (PROTOCOL.md §8.4-8.6) or configured.

use std::collections::BTreeMap;

use rand::RngCore;
use rkms_catalog::{Catalog, EpidProfile};
use rkms_proto::epid::{generate, ymd_to_unix, Epid, EpidParams};
use rkms_proto::kms::BaseResponse;

/// vlmcsd's default HwId (a well-known emulator fingerprint; override with --hwid).
pub const DEFAULT_HWID: [u8; 8] = [0x3A, 0x1C, 0x04, 0x96, 0x00, 0xB6, 0x00, 0x76];

/// Windows Server 2025 general availability: no ePID of a build-26100 server host is older.
const SERVER_2025_GA_UNIX: i64 = 1_730_419_200;

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

/// How ePIDs that are not configured are chosen (vlmcsd -r0/-r1/-r2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Randomization {
    /// The catalog's built-in ePIDs (one host: build 20348, LCID 1033).
    Fixed,
    /// Generated once at start, one host build and LCID for all profiles.
    #[default]
    PerStart,
    /// Generated afresh for every request (detectable; for testing clients only).
    PerRequest,
}

/// A configured ePID for one profile (`--epid PROFILE=EPID[/HWID]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileEpid {
    /// Profile name (case-insensitive).
    pub profile: String,
    /// The ePID.
    pub epid: String,
    /// The profile's own HwId.
    pub hwid: Option<[u8; 8]>,
}

/// Parses `PROFILE=EPID[/HWID]`.
pub fn parse_profile_epid(text: &str) -> Result<ProfileEpid, String> {
    let (profile, rest) = text
        .split_once('=')
        .ok_or_else(|| format!("'{text}': expected PROFILE=EPID[/HWID]"))?;
    let (epid, hwid) = match rest.split_once('/') {
        Some((e, h)) => (e, Some(parse_hwid(h)?)),
        None => (rest, None),
    };
    Ok(ProfileEpid {
        profile: profile.trim().to_string(),
        epid: epid.trim().to_string(),
        hwid,
    })
}

/// Identity settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentityConfig {
    /// ePID for every profile.
    pub epid: Option<String>,
    /// ePIDs (and HwIds) for single profiles; they win over `epid`.
    pub profile_epids: Vec<ProfileEpid>,
    /// HwId of every profile without its own.
    pub hwid: Option<[u8; 8]>,
    /// Fixed LCID.
    pub lcid: Option<u32>,
    /// Fixed host build.
    pub host_build: Option<u32>,
    /// Randomisation level.
    pub randomization: Randomization,
    /// Whether the host negotiates NDR64 (the claimed build must agree: ≥ 9200 iff NDR64).
    pub ndr64: bool,
}

#[derive(Debug, Clone)]
struct Slot {
    epid: String,
    hwid: [u8; 8],
    /// Configured by the user: never regenerated.
    configured: bool,
    params: EpidParams,
}

/// ePIDs and HwIds per profile.
#[derive(Debug, Clone)]
pub struct Identity {
    slots: BTreeMap<String, Slot>,
    randomization: Randomization,
    build: u32,
    lcid: u32,
    warnings: Vec<String>,
}

fn check_epid_text(what: &str, e: &str) -> Result<(), String> {
    BaseResponse::check_epid(e).map_err(|err| format!("{what} '{e}': {err}"))?;
    if e.contains(char::is_whitespace) {
        return Err(format!("{what} '{e}': an ePID contains no spaces"));
    }
    Ok(())
}

impl Identity {
    /// Builds the identity for a host started at `now_unix`.
    pub fn new(
        catalog: &Catalog,
        cfg: &IdentityConfig,
        now_unix: i64,
        rng: &mut dyn RngCore,
    ) -> Result<Self, String> {
        let mut warnings = Vec::new();
        let mut check_form = |option: &str, e: &str| {
            if let Err(why) = Epid::parse(e) {
                warnings.push(format!(
                    "{option}{e} is not an ePID a genuine host sends ({why}); it is sent as given, \
                     and clients or tools that check ePIDs will not find it plausible \
                     (`rkms epid check` tells what is wrong)"
                ));
            }
        };
        if let Some(e) = &cfg.epid {
            check_epid_text("--epid", e)?;
            check_form("--epid ", e);
        }
        for p in &cfg.profile_epids {
            if catalog.epid_profile(&p.profile).is_none() {
                let names: Vec<&str> = catalog.epid_profiles().map(|p| p.name.as_str()).collect();
                return Err(format!(
                    "--epid {}=…: unknown ePID profile (known: {})",
                    p.profile,
                    names.join(", ")
                ));
            }
            check_epid_text(&format!("--epid {}=", p.profile), &p.epid)?;
            check_form(&format!("--epid {}=", p.profile), &p.epid);
        }
        let lcid = match cfg.lcid {
            Some(l) => {
                if !catalog.lcids().contains(&l) {
                    warnings.push(format!(
                        "LCID {l} is not one a Windows host uses for KMS ePIDs; clients accept it"
                    ));
                }
                l
            }
            None if cfg.randomization == Randomization::Fixed => 1033,
            None => catalog.lcids()[(rng.next_u32() as usize) % catalog.lcids().len()],
        };
        let build = choose_build(catalog, cfg, rng, &mut warnings)?;
        let hwid = cfg.hwid.unwrap_or(DEFAULT_HWID);
        let mut slots = BTreeMap::new();
        for profile in catalog.epid_profiles() {
            let params = params_for(catalog, profile, build, lcid, now_unix);
            let own = cfg
                .profile_epids
                .iter()
                .rev()
                .find(|p| p.profile.eq_ignore_ascii_case(&profile.name));
            let (epid, configured) = match (own, &cfg.epid) {
                (Some(p), _) => (p.epid.clone(), true),
                (None, Some(e)) => (e.clone(), true),
                (None, None) => match cfg.randomization {
                    Randomization::Fixed => (fixed_epid(&profile.default_epid, cfg.lcid), false),
                    _ => (generate(&params, rng).to_string(), false),
                },
            };
            let hwid = own.and_then(|p| p.hwid).unwrap_or(hwid);
            slots.insert(
                profile.name.to_ascii_lowercase(),
                Slot {
                    epid,
                    hwid,
                    configured,
                    params,
                },
            );
        }
        if !slots.contains_key("windows") {
            return Err("the catalog has no Windows ePID profile".into());
        }
        Ok(Identity {
            slots,
            randomization: cfg.randomization,
            build,
            lcid,
            warnings,
        })
    }

    fn slot(&self, profile: &str) -> &Slot {
        self.slots
            .get(&profile.to_ascii_lowercase())
            .unwrap_or_else(|| &self.slots["windows"])
    }

    /// The ePID and HwId answering a request of `profile`.
    pub fn answer(&self, profile: &str, now_unix: i64, rng: &mut dyn RngCore) -> (String, [u8; 8]) {
        let slot = self.slot(profile);
        if self.randomization == Randomization::PerRequest && !slot.configured {
            let params = EpidParams {
                now_unix,
                ..slot.params
            };
            return (generate(&params, rng).to_string(), slot.hwid);
        }
        (slot.epid.clone(), slot.hwid)
    }

    /// The current ePID of a profile (the start-up one under per-request randomisation).
    pub fn epid_for(&self, profile: &str) -> &str {
        &self.slot(profile).epid
    }

    /// Every profile with its ePID and HwId.
    pub fn slots(&self) -> impl Iterator<Item = (&str, &str, [u8; 8])> {
        self.slots
            .iter()
            .map(|(k, s)| (k.as_str(), s.epid.as_str(), s.hwid))
    }

    /// The default HwId (of the Windows profile).
    pub fn hwid(&self) -> [u8; 8] {
        self.slot("windows").hwid
    }

    /// The host build the generated ePIDs claim.
    pub fn host_build(&self) -> u32 {
        self.build
    }

    /// The LCID of the generated ePIDs.
    pub fn lcid(&self) -> u32 {
        self.lcid
    }

    /// Things worth a warning at start (inconsistent or unusual settings).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

/// The built-in ePID, with the LCID replaced when one is configured.
fn fixed_epid(default: &str, lcid: Option<u32>) -> String {
    match (Epid::parse(default), lcid) {
        (Ok(mut e), Some(l)) => {
            e.lcid = l;
            e.to_string()
        }
        _ => default.to_string(),
    }
}

/// The earliest activation date of a profile's ePID on a host build (§8.4, §8.5).
pub fn min_date_unix(catalog: &Catalog, profile: &EpidProfile, build: u32) -> i64 {
    earliest_activation(catalog, profile.release_date, build)
}

/// The earliest activation date (Unix time) of an ePID for a key released on `released`, on a
/// host build: neither before the key nor before the build existed (§8.4, §8.5).
pub fn earliest_activation(catalog: &Catalog, released: time::Date, build: u32) -> i64 {
    let d = |date: time::Date| ymd_to_unix(date.year(), date.month() as u32, date.day() as u32);
    let mut min = d(released).max(d(catalog.release_date(build)));
    if build >= 26100 {
        min = min.max(SERVER_2025_GA_UNIX);
    }
    min
}

fn params_for(
    catalog: &Catalog,
    profile: &EpidProfile,
    build: u32,
    lcid: u32,
    now_unix: i64,
) -> EpidParams {
    EpidParams {
        platform_id: catalog.platform_id(build),
        group_id: profile.group_id,
        min_key_id: profile.min_key_id,
        max_key_id: profile.max_key_id,
        lcid,
        build,
        min_date_unix: min_date_unix(catalog, profile, build),
        now_unix,
    }
}

/// The lowest server build that may host a profile's CSVLK beyond its `valid_host_builds`
/// (Office LTSC 2024 needs Windows Server 2022 or later, PROTOCOL.md §8.5).
pub fn min_server_build(profile: &str) -> u32 {
    if profile.eq_ignore_ascii_case("Office2024") {
        20348
    } else {
        0
    }
}

/// Whether a server of build `b` can hold every profile's CSVLK.
fn valid_for_all(catalog: &Catalog, b: u32) -> bool {
    catalog
        .epid_profiles()
        .all(|p| p.valid_host_builds.contains(&b) && b >= min_server_build(&p.name))
}

fn choose_build(
    catalog: &Catalog,
    cfg: &IdentityConfig,
    rng: &mut dyn RngCore,
    warnings: &mut Vec<String>,
) -> Result<u32, String> {
    if let Some(b) = cfg.host_build {
        let hb = catalog.host_build(b).ok_or_else(|| {
            let known: Vec<String> = catalog
                .host_builds()
                .filter(|h| h.use_for_epid)
                .map(|h| h.build.to_string())
                .collect();
            format!(
                "--host-build {b}: not a known Windows build (ePID builds: {})",
                known.join(", ")
            )
        })?;
        if !valid_for_all(catalog, b) {
            warnings.push(format!(
                "host build {b} ({}) cannot hold every KMS host key this host answers for; a client that checks would notice",
                hb.display_name
            ));
        }
        if hb.uses_ndr64 != cfg.ndr64 {
            warnings.push(format!(
                "host build {b} {} NDR64 but NDR64 is {}; a genuine host's RPC and ePID agree",
                if hb.uses_ndr64 {
                    "negotiates"
                } else {
                    "does not negotiate"
                },
                if cfg.ndr64 { "on" } else { "off" }
            ));
        }
        return Ok(b);
    }
    if cfg.randomization == Randomization::Fixed {
        return Ok(20348);
    }
    let candidates: Vec<u32> = catalog
        .host_builds()
        .filter(|h| {
            h.use_for_epid
                && h.may_be_server
                && h.uses_ndr64 == cfg.ndr64
                && valid_for_all(catalog, h.build)
        })
        .map(|h| h.build)
        .collect();
    if !candidates.is_empty() {
        return Ok(candidates[(rng.next_u32() as usize) % candidates.len()]);
    }
    let fallback: Vec<u32> = catalog
        .host_builds()
        .filter(|h| h.use_for_epid && h.uses_ndr64 == cfg.ndr64)
        .map(|h| h.build)
        .collect();
    let b = *fallback
        .last()
        .ok_or("the catalog has no host build usable for ePIDs")?;
    warnings.push(format!(
        "no host build without NDR64 can hold the Windows Server 2025 KMS host key; ePIDs claim build {b}, \
         which a client that checks would notice (drop --no-ndr64 to be consistent)"
    ));
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

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
    fn profile_epid_form() {
        let p = parse_profile_epid(
            "Office2019=03612-00206-684-137669-03-1033-17763.0000-2972018/0102030405060708",
        )
        .unwrap();
        assert_eq!(p.profile, "Office2019");
        assert_eq!(p.hwid, Some([1, 2, 3, 4, 5, 6, 7, 8]));
        assert!(parse_profile_epid("no-equals").is_err());
        assert!(parse_profile_epid("Windows=x/zz").is_err());
    }

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    const NOW: i64 = 1_795_000_000; // 2026-11-17

    #[test]
    fn fixed_level_uses_builtin_epids_and_lcid() {
        let c = Catalog::builtin();
        let cfg = IdentityConfig {
            randomization: Randomization::Fixed,
            ndr64: true,
            ..Default::default()
        };
        let id = Identity::new(c, &cfg, NOW, &mut rng()).unwrap();
        assert_eq!(
            id.epid_for("Windows"),
            "03612-04919-018-914043-03-1033-20348.0000-1162026"
        );
        assert_eq!(
            id.epid_for("office2024"),
            "03612-00206-606-131950-03-1033-20348.0000-2882026"
        );
        assert_eq!(id.slots().count(), 8);
        let cfg = IdentityConfig {
            lcid: Some(1031),
            ..cfg
        };
        let id = Identity::new(c, &cfg, NOW, &mut rng()).unwrap();
        assert_eq!(
            id.epid_for("Windows"),
            "03612-04919-018-914043-03-1031-20348.0000-1162026"
        );
    }

    #[test]
    fn per_start_level_shares_build_and_lcid() {
        let c = Catalog::builtin();
        let cfg = IdentityConfig {
            ndr64: true,
            ..Default::default()
        };
        for seed in 0..50 {
            let id = Identity::new(c, &cfg, NOW, &mut StdRng::seed_from_u64(seed)).unwrap();
            assert!(
                [20348, 26100].contains(&id.host_build()),
                "{}",
                id.host_build()
            );
            assert!(id.warnings().is_empty());
            for (_, epid, _) in id.slots() {
                let e = Epid::parse(epid).unwrap();
                assert_eq!(e.build, id.host_build());
                assert_eq!(e.lcid, id.lcid());
            }
            // Stable across requests.
            let (a, _) = id.answer("Windows", NOW, &mut rng());
            assert_eq!(a, id.epid_for("Windows"));
        }
    }

    #[test]
    fn per_request_level_changes_unconfigured_profiles_only() {
        let c = Catalog::builtin();
        let cfg = IdentityConfig {
            randomization: Randomization::PerRequest,
            ndr64: true,
            profile_epids: vec![ProfileEpid {
                profile: "office2019".into(),
                epid: "FIXED-1".into(),
                hwid: Some([9; 8]),
            }],
            ..Default::default()
        };
        let id = Identity::new(c, &cfg, NOW, &mut rng()).unwrap();
        let mut r = rng();
        let a: Vec<String> = (0..5)
            .map(|_| id.answer("Windows", NOW, &mut r).0)
            .collect();
        assert!(a.windows(2).any(|w| w[0] != w[1]));
        assert_eq!(
            id.answer("Office2019", NOW, &mut r),
            ("FIXED-1".to_string(), [9; 8])
        );
        assert_eq!(id.answer("Windows", NOW, &mut r).1, DEFAULT_HWID);
    }

    #[test]
    fn bad_settings_are_errors_or_warnings() {
        let c = Catalog::builtin();
        let mut cfg = IdentityConfig {
            ndr64: true,
            ..Default::default()
        };
        cfg.epid = Some("9".repeat(64));
        assert!(Identity::new(c, &cfg, NOW, &mut rng()).is_err());
        cfg.epid = None;
        cfg.profile_epids = vec![ProfileEpid {
            profile: "Nope".into(),
            epid: "x".into(),
            hwid: None,
        }];
        assert!(Identity::new(c, &cfg, NOW, &mut rng())
            .unwrap_err()
            .contains("unknown ePID profile"));
        // Any text within the size limit is served, with a warning unless it has ePID form.
        cfg.profile_epids = vec![ProfileEpid {
            profile: "Office2013".into(),
            epid: "garbage".into(),
            hwid: None,
        }];
        let id = Identity::new(c, &cfg, NOW, &mut rng()).unwrap();
        assert_eq!(id.epid_for("office2013"), "garbage");
        assert_eq!(id.warnings().len(), 1, "{:?}", id.warnings());
        assert!(
            id.warnings()[0].starts_with("--epid Office2013=garbage is not an ePID"),
            "{:?}",
            id.warnings()
        );
        cfg.profile_epids.clear();
        cfg.host_build = Some(12345);
        assert!(Identity::new(c, &cfg, NOW, &mut rng())
            .unwrap_err()
            .contains("not a known Windows build"));
        cfg.host_build = Some(7601);
        let id = Identity::new(c, &cfg, NOW, &mut rng()).unwrap();
        assert_eq!(id.warnings().len(), 2, "{:?}", id.warnings());
        let cfg = IdentityConfig {
            ndr64: false,
            ..Default::default()
        };
        let id = Identity::new(c, &cfg, NOW, &mut rng()).unwrap();
        assert!(id.warnings()[0].contains("NDR64"));
        let cfg = IdentityConfig {
            ndr64: true,
            lcid: Some(9999),
            ..Default::default()
        };
        assert!(
            Identity::new(c, &cfg, NOW, &mut rng()).unwrap().warnings()[0].contains("LCID 9999")
        );
    }
}

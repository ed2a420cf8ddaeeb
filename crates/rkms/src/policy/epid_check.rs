//! `rkms epid check`: is an ePID well formed and plausible for a genuine KMS host, field by field?

use rkms_catalog::Catalog;
use rkms_proto::epid::{unix_to_ymd, ymd_to_unix, Epid};

use super::identity::min_server_build;

/// The verdict on one aspect of an ePID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked.
    pub what: &'static str,
    /// Whether it passed.
    pub ok: bool,
    /// What was found.
    pub detail: String,
}

/// Checks `text` against the catalog, as of `today_unix`. Every check must pass for a
/// plausible genuine ePID.
pub fn check_epid(catalog: &Catalog, text: &str, today_unix: i64) -> Vec<Check> {
    let mut out = Vec::new();
    let mut push = |what, ok, detail: String| out.push(Check { what, ok, detail });
    let e = match Epid::parse(text.trim()) {
        Ok(e) => {
            push(
                "format",
                true,
                "PPPPP-GGGGG-KKK-KKKKKK-CC-LLLL-BBBBB.0000-DDDYYYY".into(),
            );
            e
        }
        Err(err) => {
            push("format", false, err.to_string());
            return out;
        }
    };
    push(
        "channel",
        e.channel == 3,
        format!(
            "{:02} ({})",
            e.channel,
            if e.channel == 3 {
                "volume"
            } else {
                "not volume: a KMS host key is always 03"
            }
        ),
    );

    let build = catalog.host_build(e.build);
    match build {
        Some(b) => push(
            "host build",
            b.use_for_epid,
            format!(
                "{} = {}{}",
                e.build,
                b.display_name,
                if b.use_for_epid {
                    ""
                } else {
                    " (never a KMS host)"
                }
            ),
        ),
        None => push(
            "host build",
            false,
            format!("{} is not a known Windows build", e.build),
        ),
    }
    let platform = catalog.platform_id(e.build);
    push(
        "platform",
        platform == e.platform_id,
        format!(
            "{:05} (build {} has platform {:05})",
            e.platform_id, e.build, platform
        ),
    );

    // Which key (CSVLK) can this be? Same group and a key ID inside its range.
    let key_owner = catalog
        .epid_profiles()
        .find(|p| p.group_id == e.group_id && (p.min_key_id..=p.max_key_id).contains(&e.key_id))
        .map(|p| {
            (
                p.display_name.clone(),
                p.name.clone(),
                p.release_date,
                p.valid_host_builds.clone(),
            )
        })
        .or_else(|| {
            catalog.csvlks().find_map(|c| {
                let (g, lo, hi) = (c.group_id?, c.min_key_id?, c.max_key_id?);
                let released = c.release_date?;
                (g == e.group_id && (lo..=hi).contains(&e.key_id)).then(|| {
                    let profile = c.epid_profile.clone().unwrap_or_default();
                    (
                        c.display_name.clone(),
                        profile,
                        released,
                        c.valid_host_builds.clone(),
                    )
                })
            })
        });
    let Some((key_name, profile, released, valid_builds)) = key_owner else {
        push(
            "key group and ID",
            false,
            format!(
                "no known KMS host key has group {} with key ID {}",
                e.group_id, e.key_id
            ),
        );
        push(
            "LCID",
            catalog.lcids().contains(&e.lcid),
            format!("{}", e.lcid),
        );
        return out;
    };
    push(
        "key group and ID",
        true,
        format!(
            "group {}, key ID {} belong to the {key_name} key",
            e.group_id, e.key_id
        ),
    );
    let min_build = min_server_build(&profile);
    let hostable = valid_builds.contains(&e.build) && e.build >= min_build;
    push(
        "key on this build",
        hostable,
        format!(
            "the {key_name} key can be hosted on builds {valid_builds:?}{}",
            if min_build > 0 {
                format!(" (servers from {min_build})")
            } else {
                String::new()
            }
        ),
    );
    push(
        "LCID",
        catalog.lcids().contains(&e.lcid),
        format!(
            "{}{}",
            e.lcid,
            if catalog.lcids().contains(&e.lcid) {
                ""
            } else {
                " is not a Windows LCID"
            }
        ),
    );

    match e.activation_date() {
        None => push(
            "activation date",
            false,
            format!("day {} does not exist in {}", e.day_of_year, e.year),
        ),
        Some((y, m, d)) => {
            let t = ymd_to_unix(y, m, d);
            let earliest = super::identity::earliest_activation(catalog, released, e.build);
            let (ey, em, ed) = unix_to_ymd(earliest);
            let ok = t >= earliest && t <= today_unix;
            let why = if t > today_unix {
                ", in the future"
            } else if t < earliest {
                ", before the key or build existed"
            } else {
                ""
            };
            push(
                "activation date",
                ok,
                format!(
                    "{y:04}-{m:02}-{d:02} (possible from {ey:04}-{em:02}-{ed:02} to today{why})"
                ),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Identity, IdentityConfig, Randomization};
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    const NOW: i64 = 1_795_000_000;

    fn all_ok(text: &str) -> bool {
        check_epid(Catalog::builtin(), text, NOW)
            .iter()
            .all(|c| c.ok)
    }

    #[test]
    fn builtin_epids_are_plausible() {
        for p in Catalog::builtin().epid_profiles() {
            let checks = check_epid(Catalog::builtin(), &p.default_epid, NOW);
            assert!(checks.iter().all(|c| c.ok), "{}: {checks:#?}", p.name);
        }
    }

    #[test]
    fn implausible_epids_fail_the_right_check() {
        let failing = |t: &str| -> Vec<&'static str> {
            check_epid(Catalog::builtin(), t, NOW)
                .into_iter()
                .filter(|c| !c.ok)
                .map(|c| c.what)
                .collect()
        };
        // vlmcsd's Windows ePID: Server 2019 key is valid, but nothing wrong with it as such.
        assert!(all_ok("03612-00206-556-123727-03-1033-17763.0000-2972018"));
        assert_eq!(
            failing("03612-04919-018-914043-03-1033-9600.0000-1162026"),
            vec!["platform", "key on this build"]
        );
        assert_eq!(
            failing("03612-04919-018-914043-02-1033-20348.0000-1162026"),
            vec!["channel"]
        );
        assert_eq!(
            failing("03612-04919-018-914043-03-9999-20348.0000-1162026"),
            vec!["LCID"]
        );
        assert_eq!(
            failing("03612-04919-018-914043-03-1033-20348.0000-1002024"),
            vec!["activation date"]
        );
        assert_eq!(
            failing("03612-04919-018-914043-03-1033-20348.0000-1002099"),
            vec!["activation date"]
        );
        assert_eq!(
            failing("03612-00999-018-914043-03-1033-20348.0000-1162026"),
            vec!["key group and ID"]
        );
        assert_eq!(
            failing("03612-00206-606-131950-03-1033-17763.0000-2882026"),
            vec!["key on this build"]
        );
        assert_eq!(failing("not an epid"), vec!["format"]);
    }

    #[test]
    fn ten_thousand_generated_epids_per_profile_pass() {
        let catalog = Catalog::builtin();
        let mut rng = StdRng::seed_from_u64(42);
        for level in [Randomization::PerStart, Randomization::PerRequest] {
            let cfg = IdentityConfig {
                randomization: level,
                ndr64: true,
                ..Default::default()
            };
            let id = Identity::new(catalog, &cfg, NOW, &mut rng).unwrap();
            for profile in catalog.epid_profiles() {
                let n = if level == Randomization::PerRequest {
                    10_000
                } else {
                    1
                };
                for _ in 0..n {
                    let (epid, _) = id.answer(&profile.name, NOW, &mut rng);
                    let checks = check_epid(catalog, &epid, NOW);
                    assert!(
                        checks.iter().all(|c| c.ok),
                        "{}: {epid}: {checks:#?}",
                        profile.name
                    );
                    let e = Epid::parse(&epid).unwrap();
                    assert_eq!((e.group_id, e.build >= 20348), (profile.group_id, true));
                }
            }
        }
    }
}

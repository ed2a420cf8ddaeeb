//! The Cargo features this rkms was built with (`web`, `postgres`, `dns`, `sqlite`,
//! `completions`; all in the default build), and the refusal of the options of a feature left
//! out: an option is never silently ignored because its part is missing, whether it comes from
//! the command line, an `RKMS_*` variable or the configuration file (`rkms completions` is
//! refused by a build without `completions`).
//!
//! Options that take a value the feature alone can use are refused by their parser (`--web
//! ADDR:PORT`, `--dns-publish ZONE`, …; `--db` values by the store, `rkms_store::StoreError::NotBuilt`);
//! the others of the feature (`--web-token`, `--dns-ttl`, …) by [`check_options`], once the
//! sources are merged.

use rkms_config::Origin;

/// Every optional feature and whether this build has it.
pub const FEATURES: &[(&str, bool)] = &[
    ("web", cfg!(feature = "web")),
    ("postgres", cfg!(feature = "postgres")),
    ("dns", cfg!(feature = "dns")),
    ("sqlite", cfg!(feature = "sqlite")),
    ("completions", cfg!(feature = "completions")),
];

/// The features this build has, comma-separated ("none" for none).
pub fn built() -> String {
    let names: Vec<&str> = FEATURES
        .iter()
        .filter(|(_, on)| *on)
        .map(|(name, _)| *name)
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// The message refusing what needs `feature`: "this rkms was built without the `web`
/// feature, so it cannot WHAT; …".
pub fn unbuilt(feature: &str, what: &str) -> String {
    format!(
        "this rkms was built without the `{feature}` feature, so it cannot {what}; remove the \
         option or use a build with it (the default build has every feature)"
    )
}

/// The `rkms serve` options (long names) of each feature that its parser does not already
/// refuse, and what they are for. `--web` itself is refused by its parser unless "off".
const FEATURE_OPTIONS: &[(&str, &str, &[&str])] = &[
    (
        "web",
        "serve the dashboard, API and /metrics",
        &[
            "web-token",
            "web-public",
            "web-host",
            "web-max-connections",
            "web-header-timeout",
        ],
    ),
    (
        "dns",
        "publish this host in DNS",
        &[
            "dns-publish",
            "dns-publish-name",
            "dns-update-server",
            "dns-tsig-key",
            "dns-priority",
            "dns-weight",
            "dns-ttl",
            "dns-refresh",
            "dns-unpublish-on-exit",
        ],
    ),
    (
        "postgres",
        "share a PostgreSQL database with other hosts",
        &["count-refresh"],
    ),
    ("sqlite", "keep clients in an SQLite file", &["db-cache"]),
];

/// Whether the `rkms serve` option `long` belongs to a feature this build has (or to none).
/// The example configuration leaves out the others.
pub fn option_built(long: &str) -> bool {
    let feature_of = |name: &str| {
        FEATURE_OPTIONS
            .iter()
            .find(|(_, _, keys)| keys.contains(&name))
            .map(|(f, _, _)| *f)
    };
    feature_of(long).is_none_or(|f| FEATURES.iter().any(|(name, on)| *name == f && *on))
}

/// Refuses any option set (on the command line, in the environment or in the configuration
/// file: `origins` as `config::merge` returns them) that belongs to a feature this build left
/// out; the message names the option, where it was set and the feature.
pub fn check_options(origins: &[(String, Origin)]) -> Result<(), String> {
    for (key, origin) in origins {
        let Some((feature, what, _)) = FEATURE_OPTIONS
            .iter()
            .find(|(_, _, keys)| keys.contains(&key.as_str()))
        else {
            continue;
        };
        if FEATURES.iter().any(|(f, on)| f == feature && *on) {
            continue;
        }
        let place = match origin {
            Origin::CommandLine => format!("--{key}"),
            Origin::File { .. } => format!("{origin}: {key}"),
            other => format!("{other}: --{key}"),
        };
        return Err(format!("{place}: {}", unbuilt(feature, what)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_of_a_missing_feature_are_refused_by_name() {
        let set = |key: &str, origin: Origin| vec![(key.to_string(), origin)];
        let file = Origin::File {
            path: "rkms.toml".into(),
            line: 3,
        };
        for (key, feature) in [
            ("web-token", "web"),
            ("dns-ttl", "dns"),
            ("count-refresh", "postgres"),
            ("db-cache", "sqlite"),
        ] {
            let built = FEATURES.iter().any(|(f, on)| *f == feature && *on);
            for origin in [
                Origin::CommandLine,
                Origin::Env("RKMS_X".into()),
                file.clone(),
            ] {
                let result = check_options(&set(key, origin.clone()));
                if built {
                    assert_eq!(result, Ok(()), "{key}");
                } else {
                    let e = result.unwrap_err();
                    assert!(
                        e.contains(&format!(
                            "this rkms was built without the `{feature}` feature"
                        )),
                        "{e}"
                    );
                    assert!(e.contains(key), "{e}");
                    if let Origin::File { .. } = origin {
                        assert!(e.starts_with("rkms.toml:3: "), "{e}");
                    }
                }
            }
        }
        // Options of no feature always pass.
        assert_eq!(check_options(&set("lcid", Origin::CommandLine)), Ok(()));
        assert!(option_built("lcid"));
        assert_eq!(option_built("web-token"), cfg!(feature = "web"));
        assert_eq!(option_built("dns-ttl"), cfg!(feature = "dns"));
    }
}

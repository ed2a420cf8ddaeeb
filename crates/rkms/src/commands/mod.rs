//! One function per subcommand, turning parsed options into work; shared option handling.

pub mod activate;
pub mod clients;
pub mod config;
pub mod epid;
pub mod products;
pub mod serve;
pub mod service;
pub mod tools;

use std::path::Path;
use std::sync::Arc;

use rand::RngCore;
use rkms_catalog::Catalog;

use crate::cli::IdentityArgs;
pub use crate::clock::now_unix;
use crate::policy::{parse_hwid, parse_profile_epid, IdentityConfig};

/// Exit code for bad options or configuration.
pub const EXIT_USAGE: u8 = 2;

/// Prints an error and returns the usage exit code.
pub fn usage(msg: &str) -> u8 {
    eprintln!("error: {msg}");
    EXIT_USAGE
}

/// The built-in catalog, extended with `--products FILE` when given.
pub fn load_catalog(path: Option<&Path>) -> Result<Arc<Catalog>, String> {
    let Some(path) = path else {
        return Ok(Catalog::builtin_shared());
    };
    let builtin = Catalog::builtin();
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("--products {}: {e}", path.display()))?;
    // Editors on Windows may start a UTF-8 file with a byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    builtin
        .extended_with(text)
        .map(Arc::new)
        .map_err(|e| format!("--products {}: {e}", path.display()))
}

/// Turns the identity options into the policy's identity settings.
pub fn identity_config(
    args: &IdentityArgs,
    rng: &mut dyn RngCore,
) -> Result<IdentityConfig, String> {
    let hwid = if args.hwid.eq_ignore_ascii_case("random") {
        let mut h = [0u8; 8];
        rng.fill_bytes(&mut h);
        h
    } else {
        parse_hwid(&args.hwid).map_err(|e| format!("--hwid: {e}"))?
    };
    let mut cfg = IdentityConfig {
        hwid: Some(hwid),
        lcid: args.lcid,
        host_build: args.host_build,
        randomization: args.randomize,
        ndr64: !args.no_ndr64,
        ..Default::default()
    };
    for e in &args.epid {
        if e.contains('=') {
            cfg.profile_epids
                .push(parse_profile_epid(e).map_err(|err| format!("--epid: {err}"))?);
        } else if cfg.epid.replace(e.clone()).is_some() {
            return Err("--epid EPID given twice; use PROFILE=EPID for per-profile ePIDs".into());
        }
    }
    Ok(cfg)
}

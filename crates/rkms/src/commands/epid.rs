//! `rkms epid` and `rkms epid check`.

use rand::rngs::OsRng;

use super::{identity_config, load_catalog, now_unix, usage};
use crate::cli::{EpidArgs, EpidCommand};
use crate::policy::{check_epid, Identity};

/// Prints the identity a server with these options would use, or checks one ePID.
pub fn run(args: EpidArgs, file: Option<&std::path::Path>) -> u8 {
    let catalog = match load_catalog(file) {
        Ok(c) => c,
        Err(e) => return usage(&e),
    };
    if let Some(EpidCommand::Check { epid }) = args.check {
        let checks = check_epid(&catalog, &epid, now_unix());
        let width = checks.iter().map(|c| c.what.len()).max().unwrap_or(0);
        for c in &checks {
            crate::outln!(
                "{} {:width$}  {}",
                if c.ok { "ok  " } else { "FAIL" },
                c.what,
                c.detail
            );
        }
        let ok = checks.iter().all(|c| c.ok);
        crate::outln!(
            "{}",
            if ok {
                "plausible: a genuine KMS host could have this ePID"
            } else {
                "not plausible"
            }
        );
        return if ok { 0 } else { 1 };
    }
    let cfg = match identity_config(&args.identity, &mut OsRng) {
        Ok(c) => c,
        Err(e) => return usage(&e),
    };
    let id = match Identity::new(&catalog, &cfg, now_unix(), &mut OsRng) {
        Ok(i) => i,
        Err(e) => return usage(&e),
    };
    for w in id.warnings() {
        eprintln!("warning: {w}");
    }
    crate::outln!("host build {}, LCID {}", id.host_build(), id.lcid());
    let width = id.slots().map(|(p, _, _)| p.len()).max().unwrap_or(0);
    for profile in catalog.epid_profiles() {
        let (_, epid, hwid) = id
            .slots()
            .find(|(p, _, _)| p.eq_ignore_ascii_case(&profile.name))
            .expect("every profile has a slot");
        crate::outln!(
            "{:width$}  {epid}  HwId {}  ({})",
            profile.name,
            hex::encode_upper(hwid),
            profile.display_name
        );
    }
    if let Some(note) = random_note(&args.identity) {
        eprintln!("note: {note}");
    }
    0
}

/// What to know about the ePIDs printed when they are drawn at random: `rkms serve` draws its
/// own, so the ones printed are an example unless given with --epid.
fn random_note(identity: &crate::cli::IdentityArgs) -> Option<String> {
    use crate::policy::Randomization;
    // One ePID for every profile: nothing is drawn.
    if identity.epid.iter().any(|e| !e.contains('=')) {
        return None;
    }
    let when = match identity.randomize {
        Randomization::Fixed => return None,
        Randomization::PerStart => "at every start",
        Randomization::PerRequest => "for every request",
    };
    Some(format!(
        "with --randomize {} a server draws new ePIDs {when} (those without --epid), so these \
         are an example, not what the next `rkms serve` answers with; to keep these, give them \
         as --epid PROFILE=EPID (or epid = [...] in the configuration), or use --randomize fixed",
        match identity.randomize {
            Randomization::PerRequest => "request",
            _ => "start",
        }
    ))
}

//! vlmcs' command line (vlmcs(1)), translated into `rkms activate` with vlmcs' exit
//! behaviour: 0 once the host answered (an error HRESULT included, which vlmcs prints),
//! [`EXIT_UNREACHABLE`] when no host could be reached, [`EXIT_INVALID`] for bad options.

use std::net::ToSocketAddrs;

use super::vlmcsd::getopt;
use super::{Outcome, Refusal, Translation};

/// vlmcs' exit code when it cannot reach a host (ECONNABORTED on Linux).
pub const EXIT_UNREACHABLE: u8 = 103;
/// vlmcs' exit code for invalid options (EINVAL).
pub const EXIT_INVALID: u8 = 22;

/// vlmcs' default product.
pub const DEFAULT_PRODUCT: &str = "Windows Vista Business";

const WITH_ARG: &str = "lKjaksncoGwrtgiNB";
const FLAGS: &str = "456mdTvpxeVh?";

fn invalid(msg: impl Into<String>) -> Refusal {
    Refusal {
        message: msg.into(),
        code: EXIT_INVALID,
    }
}

fn guid(v: &str, opt: &str) -> Result<String, Refusal> {
    uuid::Uuid::parse_str(v.trim())
        .map(|u| u.to_string())
        .map_err(|_| {
            invalid(format!(
                "Fatal: Command line contains an invalid GUID ({opt} '{v}')."
            ))
        })
}

/// Translates vlmcs' options and target (program name excluded).
pub fn translate(words: &[String]) -> Result<Outcome, Refusal> {
    let (opts, pos) = getopt(words, WITH_ARG, FLAGS, "vlmcs").map_err(invalid)?;
    if opts.iter().any(|(c, _)| *c == 'h' || *c == '?') {
        return Ok(Outcome::Help(HELP.into()));
    }
    if opts.iter().any(|(c, _)| *c == 'V') {
        return Ok(Outcome::Help(format!(
            "rkms {} answering vlmcs' command line (rkms vlmcs -h lists the options)\n",
            env!("CARGO_PKG_VERSION")
        )));
    }
    if opts.iter().any(|(c, _)| *c == 'e') {
        return Ok(Outcome::Help(EXAMPLES.into()));
    }
    if opts.iter().any(|(c, _)| *c == 'x') {
        let mut t = Translation::new("products");
        t.info("vlmcs -x: the products rkms activate knows (any name below works with -l)".into());
        return Ok(Outcome::Run(t));
    }
    if pos.len() > 1 {
        return Err(invalid(format!(
            "Incorrect parameter specified: more than one target ({})",
            pos.join(" ")
        )));
    }
    let mut t = Translation::new("activate");
    t.set("vlmcs-exit", None);
    let mut product = DEFAULT_PRODUCT.to_string();
    let mut protocol: Option<u16> = None;
    let mut family: Option<char> = None;
    let mut grab_file: Option<String> = None;
    // -K with a version no host supports, sent as is to test a host.
    let mut odd_version: Option<String> = None;
    let mut netbios = false;
    for (c, v) in &opts {
        let opt = format!("-{c}");
        match c {
            'l' => {
                if v.trim().parse::<u32>().is_ok() {
                    return Err(invalid(format!(
                        "-l {v}: rkms does not number its products; give a name (rkms vlmcs -x lists them)"
                    )));
                }
                product = v.clone();
            }
            '4' | '5' | '6' => protocol = c.to_digit(10).map(|d| d as u16),
            'K' => {
                let (major, minor) = v.trim().split_once('.').unwrap_or((v.trim(), "0"));
                match (major.parse::<u16>(), minor.parse::<u16>()) {
                    (Ok(n @ 4..=6), Ok(0)) => protocol = Some(n),
                    (Ok(major), Ok(minor)) => odd_version = Some(format!("{major}.{minor}")),
                    _ => {
                        return Err(invalid(format!(
                            "vlmcs option -K {v}: expected MAJOR.MINOR, e.g. 6.0 (or 7.0 to test a host)"
                        )))
                    }
                }
            }
            'j' => {
                return Err(invalid(
                    "vlmcs option -j (a KMS data file) has no rkms equivalent; rkms has its own product catalog: add products with --products FILE (rkms activate --products)",
                ))
            }
            'm' => t.set("vm", None),
            'd' => netbios = true,
            'a' => t.set("app-id", Some(guid(v, &opt)?)),
            'k' => t.set("kms-id", Some(guid(v, &opt)?)),
            's' => t.set("sku-id", Some(guid(v, &opt)?)),
            'n' => {
                let n: u32 = v
                    .trim()
                    .parse()
                    .ok()
                    .filter(|n| (1..=100_000).contains(n))
                    .ok_or_else(|| invalid(format!("-n '{v}': expected 1 to 100000 requests")))?;
                t.set("count", Some(n.to_string()));
            }
            'T' => t.set("new-connection", None),
            'c' => t.set("cmid", Some(guid(v, &opt)?)),
            'o' => {
                return Err(invalid(
                    "vlmcs option -o (previous client machine ID) has no rkms equivalent: rkms activate always sends the nil GUID, as clients do; leave -o out",
                ))
            }
            'G' => grab_file = Some(v.clone()),
            'w' => {
                if v.chars().count() > 63 {
                    t.note(format!(
                        "vlmcs option -w: the workstation name is cut to 63 characters ({v})"
                    ));
                }
                t.set("name", Some(v.clone()));
            }
            'r' => {
                let n: u32 = v
                    .trim()
                    .parse()
                    .map_err(|_| invalid(format!("-r '{v}': not a number")))?;
                t.set("required-count", Some(n.to_string()));
            }
            't' => {
                let n: u32 = v
                    .trim()
                    .parse()
                    .ok()
                    .filter(|n| *n <= 6)
                    .ok_or_else(|| invalid(format!("-t '{v}': expected a licence status 0 to 6")))?;
                t.set("license-status", Some(n.to_string()));
            }
            'g' => {
                let n: u32 = v
                    .trim()
                    .parse()
                    .map_err(|_| invalid(format!("-g '{v}': expected a number of minutes")))?;
                t.set("grace-minutes", Some(n.to_string()));
            }
            'i' => match v.trim() {
                "4" | "6" => family = v.trim().chars().next(),
                "5" => return Err(invalid("IPv5 does not exist.")),
                _ => return Err(invalid(format!("-i '{v}': expected 4 or 6"))),
            },
            'N' => match v.trim() {
                "0" => t.set("no-ndr64", None),
                "1" => t.unset("no-ndr64"),
                _ => return Err(invalid(format!("-N{v}: expected -N0 or -N1"))),
            },
            'B' => match v.trim() {
                "0" => t.set("no-btfn", None),
                "1" => t.unset("no-btfn"),
                _ => return Err(invalid(format!("-B{v}: expected -B0 or -B1"))),
            },
            'p' => t.set("no-multiplex", None),
            'v' => t.global("log-level", "debug".into()),
            _ => {}
        }
    }
    // -d: NetBIOS-style names, a new one for every request (unless -w names the workstation).
    if netbios && !opts.iter().any(|(c, _)| *c == 'w') {
        t.set("name", Some(crate::client::RANDOM_NAME.to_string()));
    }
    if let Some(file) = grab_file {
        if let Some((c, _)) = opts.iter().find(|(c, _)| "l456askrnK".contains(*c)) {
            return Err(invalid(format!("-G cannot be used with -{c}")));
        }
        let target = match pos.first().map(String::as_str) {
            None => if family == Some('6') {
                "[::1]:1688"
            } else {
                "127.0.0.1:1688"
            }
            .to_string(),
            Some(t) if t == "-" || t.starts_with('.') => {
                return Err(invalid("-G needs a host (HOST[:PORT]), not DNS discovery"))
            }
            Some(t) => pick_family(t, family)?,
        };
        return Ok(Outcome::Grab(Grab {
            file: file.into(),
            target,
        }));
    }
    // The product decides the protocol unless one is forced, as in vlmcs.
    let (product, suffix) = short_name(&product);
    let catalog = crate::commands::load_catalog(None).map_err(invalid)?;
    let sku = catalog.find_product(&product).map_err(|e| {
        invalid(format!(
            "Invalid client application. \"{product}\" is not valid for -l: {e} (rkms vlmcs -x lists them)"
        ))
    })?;
    t.set("product", Some(sku.id.to_string()));
    t.set(
        "protocol",
        Some(odd_version.unwrap_or_else(|| {
            protocol
                .or(suffix)
                .unwrap_or(sku.default_protocol)
                .to_string()
        })),
    );
    match pos.first().map(String::as_str) {
        Some("-") => {
            // The system's own domain: rkms activate's DNS discovery without --domain.
        }
        Some(d) if d.starts_with('.') => {
            let domain = d.trim_start_matches('.');
            if domain.is_empty() {
                return Err(invalid(
                    "'.': give a domain after the dot, e.g. .example.com",
                ));
            }
            t.set("domain", Some(domain.to_string()));
        }
        Some(target) => t.positional.push(pick_family(target, family)?),
        None => {
            let host = if family == Some('6') {
                "[::1]:1688"
            } else {
                "127.0.0.1:1688"
            };
            t.positional.push(host.into());
        }
    }
    Ok(Outcome::Run(t))
}

/// `vlmcs -G FILE HOST`: ask the host for the ePID (and HwId) of every CSVLK and write them
/// as vlmcsd.ini lines (`Windows = ePID / HwId`), for `rkms vlmcsd -i FILE` or vlmcsd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grab {
    /// The file written (an existing one is updated, its old version kept as `FILE~`).
    pub file: std::path::PathBuf,
    /// HOST[:PORT].
    pub target: String,
}

/// The CSVLKs `-G` asks for, as vlmcs does.
const GRABBED: &[&str] = &[
    "Windows",
    "Office2010",
    "Office2013",
    "Office2016",
    "Office2019",
    "WinChinaGov",
];

/// Runs `-G`; returns vlmcs' exit code.
pub fn grab(g: &Grab) -> u8 {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vlmcs: error: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let (host, port) = match crate::addr::split_host_port(&g.target, crate::addr::DEFAULT_PORT) {
        Ok(hp) => hp,
        Err(e) => {
            eprintln!("vlmcs: error: target {e}");
            return EXIT_INVALID;
        }
    };
    let addrs: Vec<std::net::SocketAddr> = match (host.as_str(), port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => {
            eprintln!("Fatal: Could not resolve {host}: {e}");
            return EXIT_UNREACHABLE;
        }
    };
    let catalog = rkms_catalog::Catalog::builtin();
    let mut lines = Vec::new();
    let mut reached = false;
    for profile in GRABBED {
        let Some(sku) = catalog
            .skus()
            .find(|s| catalog.epid_profile_for(&s.kms_id, &s.app_id).name == *profile)
        else {
            continue;
        };
        let target = crate::client::Target::of(catalog, sku);
        let request = target.request(6, uuid::Uuid::new_v4(), "rkms-vlmcs", 2);
        let offer = rkms_proto::rpc::client::BindOffer {
            ndr64: true,
            btfn: true,
            multiplex: true,
        };
        let answer = rt.block_on(async {
            let mut last = String::from("no address");
            for a in &addrs {
                match crate::client::Session::open(*a, offer, std::time::Duration::from_secs(10))
                    .await
                {
                    Ok(mut s) => {
                        return match s.activate(&request.bytes).await {
                            Ok((stub, _)) => Ok(stub.result),
                            Err(e) => Err(e.to_string()),
                        }
                    }
                    Err(e) => last = e.to_string(),
                }
            }
            Err(last)
        });
        match answer {
            Ok(Ok(payload)) => {
                reached = true;
                match request.verify_response(&payload) {
                    Ok(v) if !crate::client::is_plain_epid(&v.base.epid) => eprintln!(
                        "{profile}: the ePID {:?} is not letters, digits, dots and dashes; left out",
                        crate::escape::terminal(&v.base.epid)
                    ),
                    Ok(v) => {
                        let epid = v.base.epid.clone();
                        let line = match v.hwid {
                            Some(h) => format!(
                                "{profile} = {epid} / {}",
                                h.iter()
                                    .map(|b| format!("{b:02X}"))
                                    .collect::<Vec<_>>()
                                    .join(" ")
                            ),
                            None => format!("{profile} = {epid}"),
                        };
                        println!("{line}");
                        lines.push((profile.to_string(), line));
                    }
                    Err(e) => eprintln!("{profile}: the response failed verification: {e}"),
                }
            }
            Ok(Err(hresult)) => {
                reached = true;
                eprintln!("{profile}: the host refused with {hresult}");
            }
            Err(e) => {
                if !reached {
                    eprintln!("Fatal: Could not connect to {}: {e}", g.target);
                    return EXIT_UNREACHABLE;
                }
                eprintln!("{profile}: {e}");
            }
        }
    }
    // An existing file keeps its other lines; its old version is kept as FILE~.
    let mut text = String::new();
    if let Ok(old) = std::fs::read_to_string(&g.file) {
        let backup = format!("{}~", g.file.display());
        if let Err(e) = std::fs::write(&backup, &old) {
            eprintln!("Fatal: Cannot create {backup}: {e}");
            return 1;
        }
        for l in old.lines() {
            let key = l.split('=').next().unwrap_or_default().trim();
            if !lines.iter().any(|(p, _)| p.eq_ignore_ascii_case(key)) {
                text.push_str(l);
                text.push('\n');
            }
        }
    } else {
        text.push_str(&format!(
            "# ePIDs and HwIds of the KMS host {}, for vlmcsd.ini (rkms vlmcsd -i)\n",
            g.target
        ));
    }
    for (_, l) in &lines {
        text.push_str(l);
        text.push('\n');
    }
    if let Err(e) = std::fs::write(&g.file, text) {
        eprintln!("Fatal: Cannot write to {}: {e}", g.file.display());
        return 1;
    }
    0
}

/// vlmcs' short licence-pack names (`Windows10`, `Office2013`, `Office2013v5`, …) as catalog
/// products, with the protocol a `v4`/`v5`/`v6` suffix forces; other names go to the catalog.
fn short_name(name: &str) -> (String, Option<u16>) {
    let lower = name.to_ascii_lowercase();
    let (base, protocol) = [("v4", 4), ("v5", 5), ("v6", 6)]
        .into_iter()
        .find_map(|(suffix, p)| lower.strip_suffix(suffix).map(|b| (b, Some(p))))
        .unwrap_or((lower.as_str(), None));
    let base = if base == "vista" {
        "windowsvista"
    } else {
        base
    };
    match super::pykms::CLIENT_MODES
        .iter()
        .find(|(m, _)| m.eq_ignore_ascii_case(base))
    {
        Some((_, product)) => ((*product).to_string(), protocol),
        None => (name.to_string(), None),
    }
}

/// With `-i 4` or `-i 6`, a host name is resolved to an address of that family.
fn pick_family(target: &str, family: Option<char>) -> Result<String, Refusal> {
    let Some(f) = family else {
        return Ok(target.to_string());
    };
    let (host, port) = crate::addr::split_host_port(target, crate::addr::DEFAULT_PORT)
        .map_err(|e| invalid(format!("target {e}")))?;
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(target.to_string());
    }
    let addrs = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| Refusal {
            message: format!("Fatal: Could not resolve {host}: {e}"),
            code: EXIT_UNREACHABLE,
        })?;
    addrs
        .into_iter()
        .find(|a| (f == '6') == a.is_ipv6())
        .map(|a| a.to_string())
        .ok_or_else(|| Refusal {
            message: format!("Fatal: {host} has no IPv{f} address"),
            code: EXIT_UNREACHABLE,
        })
}

const HELP: &str = "\
rkms vlmcs: vlmcs' command line, run by rkms activate.

usage: vlmcs [options] [host[:port] | .domain | -] [options]
  (no target: 127.0.0.1:1688, [::1]:1688 with -i6; .domain: hosts from DNS SRV records of
  the domain; -: of this machine's domain)

  -l PRODUCT       product name, as rkms vlmcs -x lists (default Windows Vista Business)
  -4 / -5 / -6     protocol version (default: the product's)            (--protocol)
  -K MAJOR.MINOR   the same; another version (7.0) tests that the host refuses it
  -a / -k / -s GUID  application, KMS and SKU ID to send                (--app-id …)
  -n N             requests to send (default 1)                         (--count)
  -T               a new connection for every request                   (--new-connection)
  -c GUID          client machine ID                                    (--cmid)
  -w NAME          workstation name                                     (--name)
  -r N             required client count                                (--required-count)
  -N0 / -N1        offer NDR64 or not                                   (--no-ndr64)
  -B0 / -B1        offer bind-time feature negotiation or not           (--no-btfn)
  -p               no multiplex flag in the bind                        (--no-multiplex)
  -i 4|6           use this IP version for a host name
  -v               details (debug log)
  -x               list the products;  -e  examples
  -m               say the client is a virtual machine                   (--vm)
  -d               random NetBIOS-style workstation names                (--name random)
  -t N             licence status sent, 0 to 6                           (--license-status)
  -g MINUTES       binding expiration sent                               (--grace-minutes)
  -G FILE          write the host's ePIDs and HwIds as vlmcsd.ini lines (FILE~ keeps the old one)
Refused, with what to use instead: -j, -o.
Exit status: 0 when the host answered (also with an error code), 103 when no host could be
reached, 22 for bad options.
RKMS_COMPAT_PRINT=1 prints the rkms command line instead of running it.
";

const EXAMPLES: &str = "\
rkms vlmcs kms.example.com          activate Windows Vista Business at kms.example.com:1688
rkms vlmcs -                        find the host in this machine's DNS domain
rkms vlmcs .example.com             find the host in the DNS domain example.com
rkms vlmcs -6 -l Office2013 -v -n 1 one V6 Office 2013 request to 127.0.0.1, with details
";

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn line(s: &str) -> String {
        match translate(&w(s)) {
            Ok(Outcome::Run(t)) => t.display(),
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn forms() {
        let d = line("kms.example.com");
        assert!(
            d.starts_with("rkms activate --vlmcs-exit --product "),
            "{d}"
        );
        assert!(d.ends_with("--protocol 4 -- kms.example.com"), "{d}");
        assert!(line("-l Office2013v5").contains("--protocol 5"));
        // Names that are no short name go to the catalog, whatever their characters.
        assert!(translate(&w("-l éa")).is_err());
        assert!(translate(&w("-l aév5")).is_err());
        assert!(line("-l Windows10").contains("--protocol 6"));
        let d = line("-6 -l Office2013 -v -n 1");
        assert!(d.contains("--log-level debug activate"), "{d}");
        assert!(d.contains("--count 1"), "{d}");
        assert!(d.ends_with("--protocol 6 -- 127.0.0.1:1688"), "{d}");
        let d = line(
            "-T -N0 -B0 -p -w PC01 -r 25 -c 6e8b9c3f-5a8b-4f6e-9a53-6d1f3b1a2c4d .example.com",
        );
        for part in [
            "--new-connection",
            "--no-ndr64",
            "--no-btfn",
            "--no-multiplex",
            "--name PC01",
            "--required-count 25",
            "--cmid 6e8b9c3f-5a8b-4f6e-9a53-6d1f3b1a2c4d",
            "--domain example.com",
        ] {
            assert!(d.contains(part), "{part}: {d}");
        }
        assert!(!line("-").contains(" -- "), "{}", line("-"));
        assert!(line("-i6").ends_with("'[::1]:1688'"));
        assert_eq!(line("-x"), "rkms products");
    }

    #[test]
    fn client_parity_options_map_to_activate() {
        let d = line("-m -d -t 1 -g 600 -K 7.0 kms.example.com");
        for part in [
            "--vm",
            "--name random",
            "--license-status 1",
            "--grace-minutes 600",
            "--protocol 7.0",
        ] {
            assert!(d.contains(part), "{part}: {d}");
        }
        // -w names the workstation even with -d; -K 5.0 is protocol 5.
        let d = line("-d -w PC01 -K 5.0 kms.example.com");
        assert!(d.contains("--name PC01") && !d.contains("random"), "{d}");
        assert!(d.contains("--protocol 5"), "{d}");
    }

    #[test]
    fn errors_exit_like_vlmcs() {
        for (l, needle) in [
            ("-l NoSuchProduct", "Invalid client application"),
            ("-c nonsense", "invalid GUID"),
            ("-K x.0", "-K x.0"),
            ("-t 9", "-t '9'"),
            ("-G x.ini -l Windows10", "-G cannot be used with -l"),
            ("-i5", "IPv5"),
            ("-Z", "unknown option -Z"),
            ("a b", "more than one target"),
        ] {
            let e = translate(&w(l)).unwrap_err();
            assert_eq!(e.code, EXIT_INVALID, "{l}");
            assert!(e.message.contains(needle), "{l}: {}", e.message);
        }
    }
}

//! vlmcsd's command line (vlmcsd(8)) and configuration file (vlmcsd.ini(5)), translated into
//! `rkms serve`. Options follow getopt: values may be glued (`-t30`, `-N1`, `-r2`) or separate
//! (`-t 30`), flags may be grouped (`-De`). The command line wins over the file (`-i`).

use std::path::Path;

use super::ini::{self, IniOption, CSVLK_NAMES};
use super::{listen_addr, vlmcsd_minutes, Outcome, Refusal, Translation};

/// Options that take an argument.
const WITH_ARG: &str = "LPOtmlpugaijCHRAoUWNBrKcMExFT";
/// Options without one.
const FLAGS: &str = "DedkvqsSVh?";

/// Options (letter, argument; empty for flags) and positional arguments.
pub(crate) type Getopt = (Vec<(char, String)>, Vec<String>);

/// Splits a getopt-style command line into (option letter, argument) and positionals.
pub(crate) fn getopt(
    words: &[String],
    with_arg: &str,
    flags: &str,
    program: &str,
) -> Result<Getopt, String> {
    let mut opts = Vec::new();
    let mut pos = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        i += 1;
        if w == "--" {
            pos.extend(words[i..].iter().cloned());
            break;
        }
        if !w.starts_with('-') || w == "-" {
            pos.push(w.clone());
            continue;
        }
        let chars: Vec<char> = w.chars().skip(1).collect();
        let mut j = 0;
        while j < chars.len() {
            let c = chars[j];
            j += 1;
            if with_arg.contains(c) {
                let rest: String = chars[j..].iter().collect();
                let value = if !rest.is_empty() {
                    rest
                } else if i < words.len() {
                    i += 1;
                    words[i - 1].clone()
                } else {
                    return Err(format!("option -{c} requires an argument"));
                };
                opts.push((c, value));
                break;
            } else if flags.contains(c) {
                opts.push((c, String::new()));
            } else {
                return Err(format!(
                    "unknown option -{c} (in '{w}'; see `{program} -h`)"
                ));
            }
        }
    }
    Ok((opts, pos))
}

/// The translation under way: the rkms options and vlmcsd's state that decides them at the end.
struct State {
    t: Translation,
    port: u16,
    listen: Vec<String>,
    stdout_log: bool,
    log_file: Option<String>,
    maintain: bool,
    start_empty: bool,
    foreground: bool,
}

fn digit(v: &str, allowed: &str, opt: &str) -> Result<char, String> {
    let v = v.trim();
    let mut it = v.chars();
    match (it.next(), it.next()) {
        (Some(c), None) if allowed.contains(c) => Ok(c),
        _ => Err(format!(
            "{opt}: '{v}' is not one of {}",
            allowed
                .chars()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn number<T: std::str::FromStr>(v: &str, opt: &str, what: &str) -> Result<T, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("{opt}: '{v}' is not {what}"))
}

/// `-a CSVLK=ePID[/HwId]`, HwId digits with any separators, as rkms' `--epid PROFILE=…`.
fn profile_epid(v: &str, opt: &str) -> Result<String, String> {
    let (name, rest) = v
        .split_once('=')
        .ok_or_else(|| format!("{opt}: '{v}': expected CSVLK=ePID[/HwId]"))?;
    let name = name.trim();
    let profile = CSVLK_NAMES
        .iter()
        .find(|c| c.eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            format!(
                "{opt}: '{name}' is not a CSVLK name rkms knows ({})",
                CSVLK_NAMES.join(", ")
            )
        })?;
    let (epid, hwid) = match rest.split_once('/') {
        Some((e, h)) => {
            let digits: String = h.chars().filter(char::is_ascii_hexdigit).collect();
            crate::policy::parse_hwid(&digits).map_err(|e| format!("{opt}: HwId {e}"))?;
            (e.trim(), Some(digits))
        }
        None => (rest.trim(), None),
    };
    if epid.is_empty() || epid.contains(',') {
        return Err(format!("{opt}: '{epid}' is not an ePID"));
    }
    Ok(match hwid {
        Some(h) => format!("{profile}={epid}/{h}"),
        None => format!("{profile}={epid}"),
    })
}

impl State {
    fn new() -> State {
        State {
            t: Translation::new("serve"),
            port: crate::addr::DEFAULT_PORT,
            listen: Vec::new(),
            stdout_log: false,
            log_file: None,
            maintain: false,
            start_empty: false,
            foreground: false,
        }
    }

    /// Applies one option; `opt` names it in messages (`-t` or `vlmcsd.ini:3: ConnectionTimeout`).
    fn apply(&mut self, c: char, v: &str, opt: &str) -> Result<(), Refusal> {
        let t = &mut self.t;
        match c {
            'L' => {
                let (host, port) = crate::addr::split_host_port(v, self.port)
                    .map_err(|e| format!("{opt}: {e}"))?;
                self.listen.push(listen_addr(&host, port, opt)?);
            }
            'P' => {
                self.port = number::<u16>(v, opt, "a port number (1-65535)")?;
                if self.port == 0 {
                    return Err(format!("{opt}: the port must be 1-65535").into());
                }
            }
            'O' => return Err(refuse(opt, "a VPN adapter (Windows builds of vlmcsd only)", "listen on an address of this machine with -L (rkms --listen)")),
            'x' => {
                if digit(v, "01", opt)? == '0' {
                    return Err(refuse(opt, "-x0 (keep running when some -L address cannot be bound)", "rkms stops when any listening address cannot be bound, as vlmcsd -x1 does: give only addresses that exist (-L), or -x1"));
                }
            }
            'F' => {
                if digit(v, "01", opt)? == '1' {
                    return Err(refuse(opt, "-F1 (bind to addresses not configured yet)", "start rkms once the network is up (systemd: After=network-online.target), or listen on [::] (rkms --listen [::]:1688)"));
                }
            }
            't' => {
                let n: u64 = number(v, opt, "a number of seconds")?;
                if !(1..=86400).contains(&n) {
                    return Err(format!("{opt}: rkms' --idle-timeout takes 1 to 86400 seconds").into());
                }
                t.set("idle-timeout", Some(n.to_string()));
            }
            'm' => {
                let n: u64 = number(v, opt, "a number of clients")?;
                if !(1..=1_000_000).contains(&n) {
                    return Err(format!("{opt}: rkms' --max-connections takes 1 to 1000000").into());
                }
                t.set("max-connections", Some(n.to_string()));
            }
            'd' => t.set("disconnect-after-request", None),
            'k' => t.unset("disconnect-after-request"),
            'N' => match digit(v, "01", opt)? {
                '0' => t.set("no-ndr64", None),
                _ => t.unset("no-ndr64"),
            },
            'B' => match digit(v, "01", opt)? {
                '0' => t.set("no-btfn", None),
                _ => t.unset("no-btfn"),
            },
            'l' => self.log_file = Some(v.to_string()),
            'T' => {
                if digit(v, "01", opt)? == '0' {
                    t.note(format!("vlmcsd option {opt}0 (no date and time in log lines): rkms' text log lines keep their time stamp"));
                }
            }
            'D' => self.foreground = true,
            'e' => self.stdout_log = true,
            'v' => t.global("log-level", "debug".into()),
            'q' => t.unset_global("log-level"),
            'p' => t.set("pidfile", Some(v.to_string())),
            'u' => t.set("user", Some(v.to_string())),
            'g' => t.set("group", Some(v.to_string())),
            'a' => {
                let e = profile_epid(v, opt)?;
                let profile = e.split('=').next().unwrap_or_default().to_string();
                t.options
                    .retain(|(k, val)| !(k == "epid" && val.as_deref().is_some_and(|x| x.starts_with(&format!("{profile}=")))));
                t.add("epid", e);
            }
            'j' => return Err(refuse(opt, "a KMS data file (vlmcsd.kmd)", "rkms has its own product catalog (`rkms products`); add or replace products with --products FILE in the catalog's JSON format")),
            'r' => {
                let level = match digit(v, "012", opt)? {
                    '0' => "fixed",
                    '1' => "start",
                    _ => "request",
                };
                t.set("randomize", Some(level.into()));
            }
            'C' => {
                let n: u32 = number(v, opt, "an LCID (a decimal number)")?;
                if !(1..=0xFFFF).contains(&n) {
                    return Err(format!("{opt}: the LCID must be 1 to 65535").into());
                }
                t.set("lcid", Some(n.to_string()));
            }
            'H' => {
                let n: u32 = number(v, opt, "a Windows build number")?;
                t.set("host-build", Some(n.to_string()));
            }
            'K' => {
                let level = match digit(v, "0123", opt)? {
                    '0' => "any",
                    '1' => "known",
                    '2' => "volume",
                    _ => "known-volume",
                };
                t.set("allow", Some(level.into()));
            }
            'c' => match digit(v, "01", opt)? {
                '1' => t.set("check-client-time", None),
                _ => t.unset("check-client-time"),
            },
            'M' => self.maintain = digit(v, "01", opt)? == '1',
            'E' => self.start_empty = digit(v, "01", opt)? == '1',
            'R' => t.set("renewal-interval", Some(vlmcsd_minutes(v, opt)?.to_string())),
            'A' => t.set("activation-interval", Some(vlmcsd_minutes(v, opt)?.to_string())),
            'o' => match digit(v, "0123", opt)? {
                '0' => t.unset("private-only"),
                '2' => t.set("private-only", None),
                level => {
                    return Err(refuse(
                        &format!("{opt}{level}"),
                        "listening on this machine's private addresses only",
                        "use -o2 (rkms --private-only: public clients are closed before a byte is sent) and -L with each private address to listen on",
                    ))
                }
            },
            's' | 'S' | 'U' | 'W' => return Err(refuse(opt, "installing or removing a Windows service", "rkms service install [--account ACCOUNT] [serve options] and rkms service uninstall")),
            _ => return Err(format!("{opt}: not supported").into()),
        }
        Ok(())
    }
}

fn refuse(opt: &str, what: &str, instead: &str) -> Refusal {
    Refusal::usage(format!(
        "vlmcsd option {opt} ({what}) has no rkms equivalent; {instead}"
    ))
}

/// Translates vlmcsd's options (program name excluded).
pub fn translate(words: &[String]) -> Result<Outcome, Refusal> {
    let (opts, pos) = getopt(words, WITH_ARG, FLAGS, "vlmcsd")?;
    if let Some(p) = pos.first() {
        return Err(format!("vlmcsd takes no arguments besides options; found '{p}'").into());
    }
    if opts.iter().any(|(c, _)| *c == 'h' || *c == '?') {
        return Ok(Outcome::Help(HELP.into()));
    }
    if opts.iter().any(|(c, _)| *c == 'V') {
        return Ok(Outcome::Help(format!(
            "rkms {} answering vlmcsd's command line (rkms vlmcsd -h lists the options)\n",
            env!("CARGO_PKG_VERSION")
        )));
    }
    let mut st = State::new();
    // The configuration file first: the command line wins over it.
    if let Some((_, file)) = opts.iter().rev().find(|(c, _)| *c == 'i') {
        if file != "-" {
            for o in ini::load(Path::new(file))? {
                apply_ini(&mut st, &o)?;
            }
        }
    }
    let from_file = std::mem::take(&mut st.listen);
    for (c, v) in opts.iter().filter(|(c, _)| *c != 'i') {
        st.apply(*c, v, &format!("-{c}"))?;
    }
    // -L on the command line replaces the file's Listen lines.
    if st.listen.is_empty() {
        st.listen = from_file;
    }
    if st.listen.is_empty() && st.port != crate::addr::DEFAULT_PORT {
        // vlmcsd listens on 0.0.0.0 and :: without -L: rkms' [::] is dual-stack.
        st.listen.push(format!("[::]:{}", st.port));
    }
    Ok(Outcome::Run(finish(st)))
}

fn apply_ini(st: &mut State, o: &IniOption) -> Result<(), Refusal> {
    match o.letter {
        'F' | 'x' | 'O' | 'j' if o.value == "0" || o.value == "-" => Ok(()),
        c => st.apply(c, &o.value, &o.origin),
    }
}

fn finish(mut st: State) -> Translation {
    // 0.0.0.0:P next to [::]:P: rkms' [::] already accepts IPv4 (dual-stack), and both cannot
    // be bound together.
    let dual: Vec<u16> = st
        .listen
        .iter()
        .filter_map(|a| a.strip_prefix("[::]:").and_then(|p| p.parse().ok()))
        .collect();
    let before = st.listen.len();
    st.listen.retain(|a| {
        !a.strip_prefix("0.0.0.0:")
            .and_then(|p| p.parse::<u16>().ok())
            .is_some_and(|p| dual.contains(&p))
    });
    if st.listen.len() < before {
        st.t.info("0.0.0.0 and [::] on the same port: rkms listens on [::] dual-stack, which serves IPv4 too".into());
    }
    let mut seen = std::collections::BTreeSet::new();
    for a in std::mem::take(&mut st.listen) {
        if seen.insert(a.clone()) {
            st.t.add("listen", a);
        }
    }
    if st.stdout_log {
        // -e wins over -l and logs to the console: rkms' standard error.
        st.t.unset_global("log-file");
    } else if let Some(file) = st.log_file {
        if file.eq_ignore_ascii_case("syslog") {
            st.t.note("vlmcsd option -l syslog: rkms logs to standard error; under systemd or procd that reaches the journal or syslog".into());
        } else {
            st.t.global("log-file", file);
        }
    }
    if st.maintain {
        st.t.set("client-count", Some("auto".into()));
        if st.start_empty {
            st.t.set("start", Some("empty".into()));
        }
    } else if st.start_empty {
        st.t.note("vlmcsd option -E1 has an effect only with -M1 (as in vlmcsd): ignored".into());
    }
    // vlmcsd keeps its client list in memory only.
    st.t.set("db", Some("none".into()));
    // Without -D vlmcsd detaches into the background (never on Windows).
    st.t.detach = !st.foreground && cfg!(unix);
    st.t
}

const HELP: &str = "\
rkms vlmcsd: vlmcsd's command line, run by rkms serve.

  -L ADDR[:PORT]   listen address, repeatable (default: every address)  (--listen)
  -P PORT          port for the following -L (default 1688)
  -o 0|2           2: close public clients before a byte is sent        (--private-only)
  -t SECONDS       close idle connections (default 30)                  (--idle-timeout)
  -m N             clients served at once                               (--max-connections)
  -d / -k          disconnect after each request / do not               (--disconnect-after-request)
  -N0 / -N1        NDR64 off / on                                       (--no-ndr64)
  -B0 / -B1        bind-time feature negotiation off / on               (--no-btfn)
  -l FILE|syslog   log file (syslog: standard error, for the journal)   (--log-file)
  -e               log to the console (wins over -l)
  -D               foreground (rkms always is)
  -T0 / -T1        accepted; log lines keep their time
  -v / -q          verbose (debug) / not                                (--log-level)
  -p FILE          pid file                                             (--pidfile)
  -u USER, -g GROUP  drop privileges after binding                      (--user, --group)
  -a CSVLK=EPID[/HWID]  ePID (and HwId) of one CSVLK                    (--epid PROFILE=…)
  -r0 / -r1 / -r2  ePIDs: fixed, random per start, random per request   (--randomize)
  -C LCID          LCID of random ePIDs                                 (--lcid)
  -H BUILD         host build of random ePIDs                           (--host-build)
  -K0..-K3         which KMS IDs are served                             (--allow)
  -c0 / -c1        check the client's clock                             (--check-client-time)
  -M0 / -M1        report the real count of client machines             (--client-count auto)
  -E0 / -E1        with -M1: start charged / empty                      (--start)
  -R INTERVAL      renewal interval, minutes or with s m h d w          (--renewal-interval)
  -A INTERVAL      activation retry interval                            (--activation-interval)
  -i FILE          vlmcsd.ini (every keyword; the command line wins)
  -x1, -F0, -o0    accepted (rkms behaves so)
Refused, with what to use instead: -j (KMS data file), -O (VPN adapter), -x0, -F1, -o1,
-o3, -s/-S/-U/-W (Windows service: rkms service install).
Client records are kept in memory only (--db none), as vlmcsd does.
RKMS_COMPAT_PRINT=1 prints the rkms command line instead of running it.
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
    fn man_page_examples() {
        assert_eq!(line("-De"), "rkms serve --db none");
        assert_eq!(
            line("-l /var/log/vlmcsd.log"),
            "rkms --log-file /var/log/vlmcsd.log serve --db none"
        );
        assert_eq!(
            line("-D -L 192.168.1.17"),
            "rkms serve --listen 192.168.1.17:1688 --db none"
        );
    }

    #[test]
    fn line_of_the_issue() {
        assert_eq!(
            line("-L 0.0.0.0:1688 -L [::]:1688 -e -D -t 30"),
            "rkms serve --idle-timeout 30 --listen '[::]:1688' --db none"
        );
    }

    #[test]
    fn glued_grouped_and_separate_values() {
        let d =
            line("-De -N0 -B0 -r2 -K3 -t30 -m 10 -c1 -M1 -E1 -R3d -A 2h -C 1049 -H17763 -d -v -o2");
        for part in [
            "--log-level debug serve",
            "--no-ndr64",
            "--no-btfn",
            "--randomize request",
            "--allow known-volume",
            "--idle-timeout 30",
            "--max-connections 10",
            "--check-client-time",
            "--renewal-interval 4320",
            "--activation-interval 120",
            "--lcid 1049",
            "--host-build 17763",
            "--disconnect-after-request",
            "--private-only",
            "--client-count auto",
            "--start empty",
        ] {
            assert!(d.contains(part), "{part}: {d}");
        }
        assert_eq!(
            line("-D -P 1700"),
            "rkms serve --listen '[::]:1700' --db none"
        );
        assert_eq!(
            line("-D -P 1700 -L 127.0.0.1 -L [::1]:1701"),
            "rkms serve --listen 127.0.0.1:1700 --listen '[::1]:1701' --db none"
        );
        let d = line("-D -a Windows=06401-00206-471-111111-03-1033-17763.0000-2822018/01:02:03:04:05:06:07:08 -l /tmp/v.log");
        assert!(
            d.contains(
                "--epid Windows=06401-00206-471-111111-03-1033-17763.0000-2822018/0102030405060708"
            ),
            "{d}"
        );
        assert!(d.starts_with("rkms --log-file /tmp/v.log serve"), "{d}");
        // -e wins over -l.
        assert!(!line("-D -e -l /tmp/v.log").contains("log-file"));
    }

    #[test]
    fn refusals_name_the_option_and_the_alternative() {
        for (l, needle) in [
            ("-j /etc/vlmcsd.kmd", "-j (a KMS data file"),
            ("-O .", "-O (a VPN adapter"),
            ("-o1", "-o1 (listening"),
            ("-o 3", "--private-only"),
            ("-s", "rkms service install"),
            ("-s -U /n -l C:\\logs\\vlmcsd.log", "rkms service install"),
            ("-F1", "-F1"),
            ("-x0", "-x0"),
            ("-N2", "-N: '2' is not one of 0, 1"),
            ("-Z", "unknown option -Z"),
            ("-t", "option -t requires an argument"),
            ("-a Office2099=1", "not a CSVLK name"),
            ("-R 3y", "-R '3y'"),
        ] {
            let e = translate(&w(l)).unwrap_err();
            assert!(e.message.contains(needle), "{l}: {}", e.message);
        }
    }

    #[test]
    fn ini_file_and_command_line_precedence() {
        let dir = std::env::temp_dir().join(format!("rkms-ini-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("vlmcsd.ini");
        std::fs::write(
            &f,
            "Listen = 127.0.0.1:1700\nConnectionTimeout = 10\nUseBTFN = false\nMaintainClients = TRUE\nStartEmpty = yes\nOffice2019 = 06401-00206-666-666666-03-1033-17763.0000-2822018 / 01 02 03 04 05 06 07 08\nLogVerbose = true\nFreeBind = false\n",
        )
        .unwrap();
        let d = line(&format!("-D -i {} -t 20", f.display()));
        assert!(d.contains("--listen 127.0.0.1:1700"), "{d}");
        assert!(d.contains("--idle-timeout 20"), "{d}");
        assert!(!d.contains("--idle-timeout 10"), "{d}");
        assert!(
            d.contains("--no-btfn --client-count auto --start empty")
                || (d.contains("--no-btfn") && d.contains("--start empty")),
            "{d}"
        );
        assert!(d.contains("--epid Office2019=06401-00206-666-666666-03-1033-17763.0000-2822018/0102030405060708"), "{d}");
        let d = line(&format!("-D -i {} -L 127.0.0.2", f.display()));
        assert!(
            d.contains("--listen 127.0.0.2:1688") && !d.contains("1700"),
            "{d}"
        );
        std::fs::write(&f, "Listen = 127.0.0.1\nBogus = 1\n").unwrap();
        let e = translate(&w(&format!("-i {}", f.display()))).unwrap_err();
        assert!(
            e.message.contains("vlmcsd.ini:2: unknown keyword 'Bogus'"),
            "{}",
            e.message
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

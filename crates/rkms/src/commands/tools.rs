//! Small commands: `rkms healthcheck`, `rkms dns-record`, `rkms completions`.

use std::time::Duration;

use rkms_catalog::Catalog;

use super::usage;
use crate::addr::{split_host_port, DEFAULT_PORT};
use crate::cli::{CompletionsArgs, DnsRecordArgs, HealthcheckArgs};

/// One verified V6 activation against `host` ([`crate::client::check`]); Ok with a summary,
/// or why it failed.
pub async fn check_host(host: &str, timeout: Duration) -> Result<String, String> {
    let (name, port) = split_host_port(host, DEFAULT_PORT)?;
    let addr = tokio::net::lookup_host((name.as_str(), port))
        .await
        .map_err(|e| format!("cannot resolve {name}: {e}"))?
        .next()
        .ok_or_else(|| format!("{name} has no address"))?;
    let v = crate::client::check(addr, timeout).await?;
    Ok(format!(
        "{addr}: verified V6 answer, ePID {}",
        crate::escape::terminal(&v.base.epid)
    ))
}

/// `rkms healthcheck`.
pub async fn healthcheck(args: HealthcheckArgs) -> u8 {
    if !(args.timeout > 0.0 && args.timeout <= 600.0) {
        return usage("--timeout must be more than 0 and at most 600 seconds");
    }
    match check_host(&args.host, Duration::from_secs_f64(args.timeout)).await {
        Ok(summary) => {
            crate::outln!("healthy: {summary}");
            0
        }
        Err(e) => {
            crate::outln!("unhealthy: {}: {e}", args.host);
            1
        }
    }
}

/// `rkms dns-record`.
pub fn dns_record(args: DnsRecordArgs) -> u8 {
    let bare = args.host.trim();
    let address = bare
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(bare)
        .parse::<std::net::IpAddr>()
        .ok();
    // An SRV target must be a name (RFC 2782): an address gets a name of its own.
    let target = match (address, &args.name) {
        (Some(_), name) => name.as_deref().unwrap_or("kms"),
        (None, None) => args.host.as_str(),
        (None, Some(_)) => {
            return usage(
                "--name names an IP address given as --host; with a host name, the SRV record \
                 points at --host itself",
            )
        }
    };
    let target = &target.to_string();
    for (option, name) in [
        (
            if address.is_some() {
                "--name"
            } else {
                "--host"
            },
            target,
        ),
        ("--domain", &args.domain),
    ] {
        if let Err(e) = check_dns_name(name) {
            return usage(&format!("{option} '{name}': {e}"));
        }
    }
    if args.port == 0 {
        return usage("--port 0: clients cannot connect to port 0");
    }
    if let Some(ip) = address {
        let record = crate::dns::address_records(target, ip, &args.domain, args.ttl);
        let name = record
            .lines()
            .nth(1)
            .and_then(|l| l.split(' ').next())
            .unwrap_or(target);
        eprintln!(
            "note: {ip} is an address, and an SRV record must point at a host name: the \
             records below give it the name {name} (choose another with --name), then point \
             the SRV record at that name. Skip the first record if the name already exists."
        );
        crate::out!("{record}\n");
    }
    crate::out!(
        "{}",
        crate::dns::records(
            target,
            args.port,
            &args.domain,
            args.ttl,
            args.priority,
            args.weight
        )
    );
    0
}

/// A DNS name the records can carry: dot-separated labels of letters, digits, `-` and `_`
/// (one trailing dot allowed), each 1 to 63 characters.
fn check_dns_name(name: &str) -> Result<(), String> {
    let labels = name.strip_suffix('.').unwrap_or(name);
    if labels.is_empty() {
        return Err("a DNS name is needed".into());
    }
    for label in labels.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("each dot-separated label must have 1 to 63 characters".into());
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!(
                "'{c}' cannot be part of a DNS name (letters, digits, '-' and '_')"
            ));
        }
    }
    Ok(())
}

/// `rkms completions SHELL|man`, refused by a build without the `completions` feature.
#[cfg(not(feature = "completions"))]
pub fn completions(_args: CompletionsArgs) -> u8 {
    usage(&format!(
        "rkms completions: {}",
        crate::features::unbuilt("completions", "print shell completions or man pages")
    ))
}

/// `rkms completions SHELL|man`.
#[cfg(feature = "completions")]
pub fn completions(args: CompletionsArgs) -> u8 {
    let mut cmd = crate::cli::command();
    if args.shell != "man" && (args.dir.is_some() || !args.subcommand.is_empty()) {
        return usage("a directory or a subcommand goes with `rkms completions man` only");
    }
    if args.shell == "man" {
        if let Some(dir) = &args.dir {
            let written =
                std::fs::create_dir_all(dir).and_then(|()| clap_mangen::generate_to(cmd, dir));
            return match written {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("error: {}: {e}", dir.display());
                    1
                }
            };
        }
        // A subcommand's page: its name in the manual is rkms-serve(1), rkms-config-check(1).
        cmd = cmd.disable_help_subcommand(true);
        cmd.build();
        for name in &args.subcommand {
            match cmd.find_subcommand(name).filter(|c| !c.is_hide_set()) {
                Some(sub) => cmd = sub.clone(),
                None => return usage(&format!("'{name}': no such subcommand")),
            }
        }
        let mut out = Vec::new();
        if let Err(e) = clap_mangen::Man::new(cmd).render(&mut out) {
            eprintln!("error: {e}");
            return 1;
        }
        crate::out::print_bytes(&out);
        return 0;
    }
    let shell = match args.shell.parse::<clap_complete::Shell>() {
        Ok(s) => s,
        Err(_) => {
            return usage(&format!(
                "'{}': expected bash, zsh, fish, elvish, powershell or man",
                args.shell
            ))
        }
    };
    // Generated in memory: clap_complete panics when its writer fails (a closed pipe).
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "rkms", &mut out);
    crate::out::print_bytes(&out);
    0
}

/// `rkms bench`.
pub async fn bench(args: crate::cli::BenchArgs) -> u8 {
    use crate::bench::{BenchOptions, Mode};
    if !(args.timeout > 0.0 && args.timeout <= 600.0) {
        return usage("--timeout must be more than 0 and at most 600 seconds");
    }
    if args.duration.is_some_and(|d| !(d > 0.0 && d <= 86_400.0)) {
        return usage("--duration must be more than 0 and at most 86400 seconds (a day)");
    }
    if args.close == "reset" && args.mode != "new-connection" {
        return usage(
            "--close reset applies to --mode new-connection (kept connections stay open)",
        );
    }
    let (name, port) = match split_host_port(&args.host, DEFAULT_PORT) {
        Ok(hp) => hp,
        Err(e) => return usage(&e),
    };
    if port == 0 {
        return usage(&format!("'{}': port 0 cannot be connected to", args.host));
    }
    let addr = match tokio::net::lookup_host((name.as_str(), port)).await {
        Ok(mut addrs) => match addrs.next() {
            Some(a) => a,
            None => {
                eprintln!("error: {name} has no address");
                return 1;
            }
        },
        Err(e) => {
            eprintln!("error: cannot resolve {name}: {e}");
            return 1;
        }
    };
    let opts = BenchOptions {
        addr,
        connections: args.connections as usize,
        threads: args
            .threads
            .map_or_else(crate::bench::default_threads, |t| t as usize),
        duration: match (args.duration, args.requests) {
            (Some(d), _) => Some(Duration::from_secs_f64(d)),
            (None, None) => Some(Duration::from_secs(10)),
            (None, Some(_)) => None,
        },
        requests: args.requests,
        mode: if args.mode == "new-connection" {
            Mode::NewConnection
        } else {
            Mode::KeepAlive
        },
        protocol: args.protocol,
        ndr64: args.ndr64,
        verify: !args.no_verify,
        reset_close: args.close == "reset",
        target: match Catalog::builtin().find_product(crate::client::DEFAULT_PRODUCT) {
            Ok(sku) => crate::client::Target::of(Catalog::builtin(), sku),
            Err(e) => return usage(&format!("built-in catalog: {e}")),
        },
        timeout: Duration::from_secs_f64(args.timeout),
        progress: !args.json,
    };
    // The load runs on threads of its own (one single-threaded runtime each).
    let summary = match tokio::task::spawn_blocking(move || crate::bench::run(opts)).await {
        Ok(Ok(summary)) => summary,
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            return 1;
        }
        Err(e) => {
            eprintln!("error: the load stopped: {e}");
            return 1;
        }
    };
    if args.json {
        crate::outln!(
            "{}",
            serde_json::to_string(&summary).expect("summary serialises")
        );
    } else {
        crate::out!("{}", summary.text());
    }
    if summary.errors == 0 && summary.ok > 0 {
        0
    } else {
        1
    }
}

/// `rkms null-server`.
pub async fn null_server(addr: std::net::SocketAddr) -> u8 {
    match crate::bench::null_server(addr).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {addr}: {e}");
            1
        }
    }
}

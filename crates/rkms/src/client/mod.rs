//! `rkms activate`: send activation requests to any KMS host and verify the answers as a
//! genuine client does.

mod report;
mod session;

use std::net::SocketAddr;
use std::time::Duration;

use rand::rngs::OsRng;
use rkms_catalog::Catalog;
use rkms_proto::kms::{
    build_request, filetime_from_unix, BaseRequest, ClientRequest, HResult, VerifiedResponse,
    Version,
};
use rkms_proto::rpc::client::BindOffer;
use uuid::Uuid;

pub use report::Outcome;
pub use session::{Session, SessionError};

use crate::addr::{split_host_port, DEFAULT_PORT};
use crate::dns::{discover_addrs, ResolverChoice};

/// The product `rkms activate` asks for unless told otherwise.
pub const DEFAULT_PRODUCT: &str = "Windows 10/11 Pro";

/// Everything one `rkms activate` run needs.
#[derive(Debug, Clone)]
pub struct ActivateOptions {
    /// `HOST[:PORT]`; none: discover hosts through DNS SRV records.
    pub host: Option<String>,
    /// DNS domain for SRV discovery (default: the system's search domain).
    pub domain: Option<String>,
    /// DNS server for SRV discovery (default: the system's).
    pub dns_server: Option<SocketAddr>,
    /// 4.0, 5.0 or 6.0, or any other version to test a host's refusal (default 6.0; with all
    /// products, each product's own).
    pub protocol: Option<Version>,
    /// Catalog name or SKU GUID.
    pub product: String,
    /// Overrides of the catalog's IDs.
    pub app_id: Option<Uuid>,
    /// See `app_id`.
    pub kms_id: Option<Uuid>,
    /// See `app_id`.
    pub sku_id: Option<Uuid>,
    /// Fixed client machine ID (else a fresh random one per request).
    pub cmid: Option<Uuid>,
    /// Workstation name sent; [`RANDOM_NAME`]: a new random one for every request.
    pub name: String,
    /// Say the client runs in a virtual machine.
    pub vm: bool,
    /// Licence status sent (0 unlicensed, 1 licensed, 2 initial grace, …).
    pub license_status: u32,
    /// Minutes left until the client's activation (binding) expires.
    pub grace_minutes: u32,
    /// Write the host's ePIDs and HwId as an rkms.toml snippet to this file.
    pub save_epids: Option<std::path::PathBuf>,
    /// Override of the product's activation threshold.
    pub required_count: Option<u32>,
    /// Requests to send.
    pub count: u32,
    /// One TCP connection per request.
    pub new_connection: bool,
    /// Offer NDR64.
    pub ndr64: bool,
    /// Offer BTFN.
    pub btfn: bool,
    /// Set the multiplex flag in the bind.
    pub multiplex: bool,
    /// Per-step timeout.
    pub timeout: Duration,
    /// One JSON object per response instead of text.
    pub json: bool,
}

impl ActivateOptions {
    /// What the bind offers.
    pub fn offer(&self) -> BindOffer {
        BindOffer {
            ndr64: self.ndr64,
            btfn: self.btfn,
            multiplex: self.multiplex,
        }
    }
}

/// The IDs and threshold a request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Product name for display.
    pub name: String,
    /// Application ID.
    pub app_id: Uuid,
    /// KMS counted ID.
    pub kms_id: Uuid,
    /// SKU ID.
    pub sku_id: Uuid,
    /// Activation threshold sent.
    pub required_count: u32,
    /// The product's own protocol version.
    pub protocol: u16,
}

impl Target {
    /// The catalog's IDs and activation threshold of `sku`.
    pub fn of(catalog: &Catalog, sku: &rkms_catalog::Sku) -> Target {
        let required = catalog
            .kms_item_resolved(&sku.kms_id)
            .map_or(sku.ncount_policy, |k| k.ncount_policy);
        Target {
            name: catalog
                .product_name(&sku.id, &sku.kms_id, &sku.app_id)
                .into_owned(),
            app_id: sku.app_id,
            kms_id: sku.kms_id,
            sku_id: sku.id,
            required_count: required,
            protocol: sku.default_protocol,
        }
    }

    /// A request for this product from client `cmid` named `workstation`, in licence state
    /// `license_status` (1 licensed, 2 initial grace …), sent now.
    pub fn request(
        &self,
        protocol: u16,
        cmid: Uuid,
        workstation: &str,
        license_status: u32,
    ) -> ClientRequest {
        self.request_with(protocol, cmid, workstation, license_status, &mut OsRng)
    }

    /// Like [`Target::request`], with the request's random salt drawn from `rng` (a load
    /// generator uses a seeded CSPRNG instead of asking the operating system each time).
    pub fn request_with(
        &self,
        protocol: u16,
        cmid: Uuid,
        workstation: &str,
        license_status: u32,
        rng: &mut dyn rand::RngCore,
    ) -> ClientRequest {
        self.request_as_with(
            &Sender {
                version: Version::new(protocol),
                cmid,
                workstation,
                license_status,
                grace_minutes: DEFAULT_GRACE_MINUTES,
                vm: false,
            },
            rng,
        )
    }

    /// A request for this product from the client `sender` describes, sent now.
    pub fn request_as(&self, sender: &Sender<'_>) -> ClientRequest {
        self.request_as_with(sender, &mut OsRng)
    }

    /// Like [`Target::request_as`], with the request's random salt drawn from `rng`.
    pub fn request_as_with(
        &self,
        sender: &Sender<'_>,
        rng: &mut dyn rand::RngCore,
    ) -> ClientRequest {
        let protocol = sender.version;
        let (cmid, workstation) = (sender.cmid, sender.workstation);
        let base = BaseRequest {
            version: protocol,
            is_client_vm: u32::from(sender.vm),
            license_status: sender.license_status,
            grace_time: sender.grace_minutes,
            application_id: self.app_id,
            sku_id: self.sku_id,
            kms_id: self.kms_id,
            cmid,
            required_client_count: self.required_count,
            request_time: filetime_from_unix(crate::clock::now_unix().max(0) as u64),
            previous_cmid: Uuid::nil(),
            workstation: BaseRequest::workstation_field(workstation),
        };
        build_request(protocol, &base, rng)
    }
}

/// Minutes until a client's activation expires that requests carry unless told otherwise
/// (30 days, as Windows in its initial grace period).
pub const DEFAULT_GRACE_MINUTES: u32 = 43_200;

/// The `--name` that asks for a new random workstation name for every request.
pub const RANDOM_NAME: &str = "random";

/// Who sends a request and how ([`Target::request_as`]).
#[derive(Debug, Clone)]
pub struct Sender<'a> {
    /// Protocol version.
    pub version: Version,
    /// Client machine ID.
    pub cmid: Uuid,
    /// Workstation name.
    pub workstation: &'a str,
    /// Licence status (0 unlicensed, 1 licensed, 2 initial grace, …).
    pub license_status: u32,
    /// Minutes until the activation expires.
    pub grace_minutes: u32,
    /// The client runs in a virtual machine.
    pub vm: bool,
}

/// A NetBIOS-style name as Windows gives new machines: `DESKTOP-` and 7 random letters and
/// digits (15 characters, the NetBIOS limit).
pub fn random_workstation(rng: &mut impl rand::Rng) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let tail: String = (0..7)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect();
    format!("DESKTOP-{tail}")
}

/// The client machine ID every health check sends: one fixed ID, so that a host counting
/// them (another implementation, or rkms reached over the network) sees a single machine,
/// never one per check.
pub const CHECK_CMID: Uuid = Uuid::from_u128(0x726b_6d73_7365_4c66_8063_6865_636b_0001);

/// The health check of `rkms healthcheck` and of the dashboard's readiness: one V6 activation
/// of [`DEFAULT_PRODUCT`] from client [`CHECK_CMID`] named
/// [`crate::policy::SELF_CHECK_WORKSTATION`] (which rkms, over loopback, neither counts nor
/// records) on a new connection to `addr`. Ok with the verified answer, else what failed.
pub async fn check(addr: SocketAddr, timeout: Duration) -> Result<VerifiedResponse, String> {
    let catalog = Catalog::builtin();
    let sku = catalog
        .find_product(DEFAULT_PRODUCT)
        .map_err(|e| format!("built-in catalog: {e}"))?;
    let request =
        Target::of(catalog, sku).request(6, CHECK_CMID, crate::policy::SELF_CHECK_WORKSTATION, 1);
    let offer = BindOffer {
        ndr64: true,
        btfn: true,
        multiplex: true,
    };
    let mut session = Session::open(addr, offer, timeout)
        .await
        .map_err(|e| e.to_string())?;
    let (stub, _) = session
        .activate(&request.bytes)
        .await
        .map_err(|e| e.to_string())?;
    let payload = stub.result.map_err(|h| {
        format!(
            "the host refused the request with {h} ({})",
            h.description()
        )
    })?;
    request
        .verify_response(&payload)
        .map_err(|e| format!("the response failed verification: {e}"))
}

/// Resolves the product and the ID overrides into what the request carries.
pub fn resolve_target(catalog: &Catalog, opts: &ActivateOptions) -> Result<Target, String> {
    let sku = catalog
        .find_product(&opts.product)
        .map_err(|e| e.to_string())?;
    Ok(target_for(catalog, sku, opts))
}

/// The target for one catalog SKU, with the ID overrides of `opts`.
fn target_for(catalog: &Catalog, sku: &rkms_catalog::Sku, opts: &ActivateOptions) -> Target {
    let own = Target::of(catalog, sku);
    let sku_id = opts.sku_id.unwrap_or(own.sku_id);
    let kms_id = opts.kms_id.unwrap_or(own.kms_id);
    let app_id = opts.app_id.unwrap_or(own.app_id);
    Target {
        name: catalog.product_name(&sku_id, &kms_id, &app_id).into_owned(),
        app_id,
        kms_id,
        sku_id,
        required_count: opts.required_count.unwrap_or(own.required_count),
        protocol: own.protocol,
    }
}

/// Where `rkms activate` goes when given no host, no --domain and no --dns-server while the
/// system names no DNS domain to look hosts up in: this machine, as vlmcs does.
pub const FALLBACK_HOST: &str = "127.0.0.1:1688";

/// `opts` with [`FALLBACK_HOST`] as host when nothing says where to look (no host, no
/// `--domain`, no `--dns-server`, no system DNS domain; a build without the `dns` feature
/// never looks one up by itself), saying so on standard error.
fn with_fallback_host(mut opts: ActivateOptions) -> ActivateOptions {
    if opts.host.is_none()
        && opts.domain.is_none()
        && opts.dns_server.is_none()
        && (!cfg!(feature = "dns") || crate::dns::system_domain().is_err())
    {
        eprintln!(
            "note: no KMS host given and no DNS domain to find one in (no --domain, no search \
             domain in /etc/resolv.conf): trying {FALLBACK_HOST}, this machine, as vlmcs does"
        );
        opts.host = Some(FALLBACK_HOST.to_string());
    }
    opts
}

/// Runs `rkms activate` and returns the process exit code (0 only if every response was
/// verified, carried success and the last one reported enough clients to activate).
pub async fn run(catalog: &Catalog, opts: ActivateOptions) -> i32 {
    run_reporting(catalog, opts).await.0
}

/// [`run`], also saying whether a host was reached (some request got an answer).
pub async fn run_reporting(catalog: &Catalog, opts: ActivateOptions) -> (i32, bool) {
    let opts = with_fallback_host(opts);
    let mut out = report::Reporter::new(opts.json);
    let target = match resolve_target(catalog, &opts) {
        Ok(t) => t,
        Err(e) => {
            out.fatal(&format!("--product: {e}"));
            return (2, false);
        }
    };
    let addrs = match resolve_hosts(&opts).await {
        Ok(a) => a,
        Err(e) => {
            out.fatal(&e);
            return (1, false);
        }
    };
    let offer = opts.offer();
    let mut session: Option<(Session, SocketAddr)> = None;
    let mut all_ok = true;
    let mut last_activated = false;
    let mut answered = false;
    let mut outcomes = Vec::new();
    for n in 1..=opts.count {
        if session.is_none() || opts.new_connection {
            match connect_any(&addrs, offer, opts.timeout).await {
                Ok((s, addr)) => {
                    out.connected(
                        opts.host.as_deref().unwrap_or("KMS host from DNS"),
                        addr,
                        s.bound(),
                    );
                    session = Some((s, addr));
                }
                Err(e) => {
                    out.fatal(&e);
                    return (1, answered);
                }
            }
        }
        let (s, addr) = session.as_mut().expect("connected above");
        let protocol = opts.protocol.unwrap_or(Version::V6);
        let outcome = one_request(s, *addr, &opts, &target, protocol, n, opts.count).await;
        // A version no host supports (--protocol 7.0) succeeds when the host refuses it.
        let expected = outcome.refused_as_expected();
        all_ok &= outcome.ok() || expected;
        answered |= !outcome.connection_failed();
        last_activated = outcome.activated() || expected;
        out.outcome(&outcome);
        if outcome.connection_failed() {
            session = None;
        }
        outcomes.push(outcome);
    }
    if let Err(e) = save_epids(catalog, &opts, &outcomes) {
        out.fatal(&e);
        return (1, answered);
    }
    (i32::from(!(all_ok && last_activated)), answered)
}

/// Sends one request per catalog product (each with its own protocol unless one is given) on
/// one connection, reconnecting after a failure, and prints a table (or JSON lines).
pub async fn run_all(catalog: &Catalog, opts: ActivateOptions) -> i32 {
    let opts = with_fallback_host(opts);
    let mut out = report::Reporter::new(opts.json);
    let addrs = match resolve_hosts(&opts).await {
        Ok(a) => a,
        Err(e) => {
            out.fatal(&e);
            return 1;
        }
    };
    let offer = opts.offer();
    let skus: Vec<_> = catalog.skus().collect();
    let mut session: Option<(Session, SocketAddr)> = None;
    let mut outcomes = Vec::with_capacity(skus.len());
    for (i, sku) in skus.iter().enumerate() {
        let target = target_for(catalog, sku, &opts);
        if session.is_none() || opts.new_connection {
            match connect_any(&addrs, offer, opts.timeout).await {
                Ok(s) => session = Some(s),
                Err(e) => {
                    out.fatal(&e);
                    return 1;
                }
            }
        }
        let (s, addr) = session.as_mut().expect("connected above");
        let protocol = opts
            .protocol
            .unwrap_or_else(|| Version::new(target.protocol));
        let of = skus.len() as u32;
        let outcome = one_request(s, *addr, &opts, &target, protocol, i as u32 + 1, of).await;
        if outcome.connection_failed() {
            session = None;
        }
        if opts.json {
            out.outcome(&outcome);
        }
        outcomes.push(outcome);
    }
    if !opts.json {
        crate::out!("{}", report::table(&outcomes));
    }
    if let Err(e) = save_epids(catalog, &opts, &outcomes) {
        out.fatal(&e);
        return 1;
    }
    if outcomes
        .iter()
        .all(|o| o.activated() || o.refused_as_expected())
    {
        0
    } else {
        1
    }
}

async fn one_request(
    s: &mut Session,
    addr: SocketAddr,
    opts: &ActivateOptions,
    target: &Target,
    protocol: Version,
    n: u32,
    of: u32,
) -> Outcome {
    let cmid = opts.cmid.unwrap_or_else(Uuid::new_v4);
    let workstation = if opts.name.eq_ignore_ascii_case(RANDOM_NAME) {
        random_workstation(&mut rand::thread_rng())
    } else {
        opts.name.clone()
    };
    let request = target.request_as(&Sender {
        version: protocol,
        cmid,
        workstation: &workstation,
        license_status: opts.license_status,
        grace_minutes: opts.grace_minutes,
        vm: opts.vm,
    });
    let mut outcome = Outcome::new(n, of, addr, target.clone(), cmid, protocol.major);
    outcome.set_sent(protocol.minor, &workstation);
    match s.activate(&request.bytes).await {
        Err(e) => outcome.set_error(e.to_string(), true),
        Ok((stub, syntax)) => {
            outcome.syntax = Some(syntax);
            outcome.warnings.extend(stub.warnings);
            match stub.result {
                Err(hresult) => outcome.set_refused(hresult),
                Ok(payload) => match request.verify_response(&payload) {
                    Ok(v) => outcome.set_verified(v),
                    Err(e) => {
                        outcome.set_error(format!("response failed verification: {e}"), false)
                    }
                },
            }
        }
    }
    outcome
}

/// With `--save-epids FILE`: writes the ePIDs and HwId the verified answers carried as an
/// rkms.toml snippet ([`epid_snippet`]) to FILE, which must not exist.
fn save_epids(
    catalog: &Catalog,
    opts: &ActivateOptions,
    outcomes: &[Outcome],
) -> Result<(), String> {
    let Some(path) = &opts.save_epids else {
        return Ok(());
    };
    let found: Vec<_> = outcomes.iter().filter_map(Outcome::host_identity).collect();
    if found.is_empty() {
        return Err(format!(
            "--save-epids {}: no verified answer carried an ePID; nothing written",
            path.display()
        ));
    }
    let host = opts.host.as_deref().unwrap_or("the KMS host from DNS");
    let (text, skipped) = epid_snippet(catalog, host, &found);
    for s in skipped {
        eprintln!("warning: --save-epids: {s}");
    }
    use std::io::Write as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| {
            format!(
                "--save-epids {}: {e} (the file must not exist)",
                path.display()
            )
        })?;
    eprintln!(
        "wrote the host's ePIDs and HwId to {} (an rkms.toml snippet)",
        path.display()
    );
    Ok(())
}

/// Whether an ePID a host answered is plain letters, digits, dots and dashes (at most 128):
/// only such an answer is written into a configuration file (a host's answer is not trusted
/// to be TOML or INI).
pub fn is_plain_epid(epid: &str) -> bool {
    !epid.is_empty()
        && epid.len() <= 128
        && epid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// An rkms.toml snippet (`epid = ["PROFILE=EPID/HWID", …]`) that makes `rkms serve` answer
/// with the ePIDs and HwId `host` answered with, one per ePID profile (the first answer for a
/// profile wins), and the reasons answers were left out: an ePID that is not plain letters,
/// digits, dots and dashes (a host's answer is not trusted to be TOML) is not written.
pub fn epid_snippet(
    catalog: &Catalog,
    host: &str,
    found: &[(Uuid, Uuid, &str, Option<[u8; 8]>)],
) -> (String, Vec<String>) {
    let mut entries: Vec<(String, String)> = Vec::new();
    let mut skipped = Vec::new();
    for (kms_id, app_id, epid, hwid) in found {
        let profile = catalog.epid_profile_for(kms_id, app_id).name.clone();
        if entries.iter().any(|(p, _)| *p == profile) {
            continue;
        }
        if !is_plain_epid(epid) {
            skipped.push(format!(
                "{profile}: the ePID {:?} is not letters, digits, dots and dashes; left out",
                crate::escape::terminal(epid)
            ));
            continue;
        }
        let value = match hwid {
            Some(h) => format!("{profile}={epid}/{}", hex::encode_upper(h)),
            None => format!("{profile}={epid}"),
        };
        entries.push((profile, value));
    }
    let mut text = format!(
        "# ePIDs and HwId answered by {}, saved by `rkms activate --save-epids`:\n\
         # put these lines in rkms.toml (or give each as --epid) to answer as that host does.\n\
         epid = [\n",
        crate::escape::terminal(host).replace(['\n', '\r'], " ")
    );
    for (_, v) in &entries {
        text.push_str(&format!("    \"{v}\",\n"));
    }
    text.push_str("]\n");
    (text, skipped)
}

/// The addresses to try, in order: the given host's, or every SRV target's (RFC 2782 order).
async fn resolve_hosts(opts: &ActivateOptions) -> Result<Vec<SocketAddr>, String> {
    if let Some(host) = &opts.host {
        return resolve(host).await;
    }
    let choice = opts
        .dns_server
        .map_or(ResolverChoice::System, ResolverChoice::Server);
    // Targets' addresses come from the same DNS server (--dns-server) as the SRV records.
    let found = discover_addrs(opts.domain.as_deref(), choice)
        .await
        .map_err(|e| e.to_string())?;
    let mut addrs: Vec<SocketAddr> = Vec::new();
    let mut errors = Vec::new();
    let mut targets = Vec::new();
    for (t, a) in found {
        match a {
            Ok(a) => {
                for a in a {
                    if !addrs.contains(&a) {
                        addrs.push(a);
                    }
                }
            }
            Err(e) => errors.push(e),
        }
        targets.push(t);
    }
    if addrs.is_empty() {
        return Err(format!(
            "no SRV target could be resolved: {}",
            errors.join("; ")
        ));
    }
    tracing::info!(targets = ?targets.iter().map(|t| t.to_string()).collect::<Vec<_>>(), "KMS hosts from DNS");
    Ok(addrs)
}

async fn resolve(host: &str) -> Result<Vec<SocketAddr>, String> {
    let (name, port) = split_host_port(host, DEFAULT_PORT)?;
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), port))
        .await
        .map_err(|e| format!("cannot resolve '{name}': {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("'{name}' has no address"));
    }
    Ok(addrs)
}

async fn connect_any(
    addrs: &[SocketAddr],
    offer: BindOffer,
    timeout: Duration,
) -> Result<(Session, SocketAddr), String> {
    let mut errors = Vec::new();
    for addr in addrs {
        match Session::open(*addr, offer, timeout).await {
            Ok(s) => return Ok((s, *addr)),
            Err(e) => errors.push(format!("{addr}: {e}")),
        }
    }
    Err(format!(
        "no KMS host could be contacted ({}; {})",
        HResult::SERVICE_UNAVAILABLE,
        errors.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rkms_proto::kms::decode_request;

    #[test]
    fn request_carries_what_the_sender_says() {
        let catalog = Catalog::builtin();
        let target = Target::of(catalog, catalog.find_product(DEFAULT_PRODUCT).unwrap());
        let cmid = Uuid::new_v4();
        for version in [Version::V4, Version::V5, Version::V6] {
            let rq = target.request_as(&Sender {
                version,
                cmid,
                workstation: "PC-07",
                license_status: 5,
                grace_minutes: 1234,
                vm: true,
            });
            let d = decode_request(&rq.bytes).unwrap();
            assert_eq!(d.base.is_client_vm, 1);
            assert_eq!(d.base.license_status, 5);
            assert_eq!(d.base.grace_time, 1234);
            assert_eq!(d.base.cmid, cmid);
        }
        // The old entry point keeps its defaults.
        let d = decode_request(&target.request(6, cmid, "x", 2).bytes).unwrap();
        assert_eq!(
            (d.base.is_client_vm, d.base.grace_time),
            (0, DEFAULT_GRACE_MINUTES)
        );
    }

    #[test]
    fn random_workstations_are_netbios_names() {
        let mut rng = rand::thread_rng();
        let names: Vec<String> = (0..20).map(|_| random_workstation(&mut rng)).collect();
        for n in &names {
            assert_eq!(n.len(), 15, "{n}");
            assert!(n.starts_with("DESKTOP-"), "{n}");
        }
        assert!(names.iter().any(|n| n != &names[0]));
    }

    #[test]
    fn snippet_leaves_out_epids_that_are_not_plain() {
        let catalog = Catalog::builtin();
        let sku = catalog.find_product(DEFAULT_PRODUCT).unwrap();
        let office = catalog
            .find_product("Office Professional Plus 2019")
            .unwrap();
        let (text, skipped) = epid_snippet(
            catalog,
            "host\nnext",
            &[
                (sku.kms_id, sku.app_id, "1\"]\nevil = 1", None),
                (
                    office.kms_id,
                    office.app_id,
                    "03612-00206-1",
                    Some([0xAB; 8]),
                ),
            ],
        );
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert!(!text.contains("evil"), "{text}");
        assert!(
            text.contains("\"Office2019=03612-00206-1/ABABABABABABABAB\",\n"),
            "{text}"
        );
        assert_eq!(
            text.lines().filter(|l| l.starts_with('#')).count(),
            2,
            "{text}"
        );
    }
}

//! The host publishes itself: `_vlmcs._tcp.<zone>` SRV records kept by RFC 2136 dynamic
//! updates, signed with TSIG (RFC 8945), like a genuine KMS host's DNS publishing.
//!
//! Every update touches this host's own record only: members of the SRV RRset with our target
//! and port but other values are deleted one by one ("delete an RR from an RRset", class NONE)
//! and ours is added; the RRset as a whole is never deleted, so several hosts publish side by
//! side. Messages are built, signed, encoded and parsed by hickory-proto; they travel over TCP.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use hickory_proto::op::{Message, OpCode, Query, ResponseCode, UpdateMessage};
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::rdata::SRV;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, TSigner};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::{info, warn};

use super::{srv_name, trim_domain, DnsPublishArgs};
use crate::clock::now_unix;

/// How long one exchange with the DNS server may take.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(5);
/// TSIG fudge: the clock difference the server tolerates, in seconds (BIND's and RFC's 300).
const TSIG_FUDGE: u16 = 300;
/// First retry delay after a failure; doubled after each failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
/// Longest delay between retries after failures (never longer than the refresh interval).
const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// `name` as an absolute DNS name.
pub(super) fn absolute(name: &str) -> Result<Name, String> {
    let mut n = Name::from_ascii(format!("{}.", trim_domain(name))).map_err(|e| e.to_string())?;
    n.set_fqdn(true);
    Ok(n)
}

/// A TSIG key read from a BIND key file.
#[derive(Clone)]
pub struct TsigKey {
    /// The key's name, as the server knows it.
    pub name: String,
    /// The HMAC algorithm.
    pub algorithm: TsigAlgorithm,
    secret: Vec<u8>,
}

impl std::fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl TsigKey {
    /// Reads the first `key` statement of a BIND key file.
    pub fn load(path: &Path) -> Result<TsigKey, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--dns-tsig-key {}: {e}", path.display()))?;
        TsigKey::parse(&text).map_err(|e| format!("--dns-tsig-key {}: {e}", path.display()))
    }

    /// Parses `key "NAME" { algorithm ALG; secret "BASE64"; };` (comments `#`, `//`, `/* */`).
    pub fn parse(text: &str) -> Result<TsigKey, String> {
        let tokens = tokenize(text)?;
        let mut it = tokens.iter().map(String::as_str);
        loop {
            match it.next() {
                None => return Err("no key statement (key \"NAME\" { … };)".into()),
                Some("key") => break,
                Some(_) => {}
            }
        }
        let name = it
            .next()
            .filter(|n| !["{", "}", ";"].contains(n))
            .ok_or("key statement without a name")?
            .to_string();
        if it.next() != Some("{") {
            return Err(format!("key \"{name}\": expected '{{' after the name"));
        }
        let (mut algorithm, mut secret) = (None, None);
        loop {
            match it.next() {
                None => return Err(format!("key \"{name}\": missing '}}'")),
                Some("}") => break,
                Some(";") => {}
                Some(word) => {
                    let value = it
                        .next()
                        .ok_or_else(|| format!("key \"{name}\": '{word}' without a value"))?;
                    if it.next() != Some(";") {
                        return Err(format!("key \"{name}\": expected ';' after {word}"));
                    }
                    match word {
                        "algorithm" => algorithm = Some(value.to_string()),
                        "secret" => secret = Some(value.to_string()),
                        other => return Err(format!("key \"{name}\": unknown clause '{other}'")),
                    }
                }
            }
        }
        let algorithm = algorithm.ok_or_else(|| format!("key \"{name}\": no algorithm"))?;
        let algorithm = match algorithm.to_ascii_lowercase().as_str() {
            "hmac-sha256" => TsigAlgorithm::HmacSha256,
            "hmac-sha384" => TsigAlgorithm::HmacSha384,
            "hmac-sha512" => TsigAlgorithm::HmacSha512,
            other => {
                return Err(format!(
                    "key \"{name}\": algorithm '{other}' is not supported (use hmac-sha256, hmac-sha384 or hmac-sha512)"
                ))
            }
        };
        let secret = secret.ok_or_else(|| format!("key \"{name}\": no secret"))?;
        let secret = base64::engine::general_purpose::STANDARD
            .decode(secret.trim())
            .map_err(|e| format!("key \"{name}\": the secret is not base64: {e}"))?;
        if secret.is_empty() {
            return Err(format!("key \"{name}\": empty secret"));
        }
        absolute(&name).map_err(|e| format!("key \"{name}\": not a valid key name: {e}"))?;
        Ok(TsigKey {
            name,
            algorithm,
            secret,
        })
    }

    fn signer(&self) -> Result<TSigner, String> {
        TSigner::new(
            self.secret.clone(),
            self.algorithm.clone(),
            absolute(&self.name)?,
            TSIG_FUDGE,
        )
        .map_err(|e| format!("TSIG key \"{}\": {e}", self.name))
    }
}

/// Splits BIND configuration text into words, quoted strings (unquoted) and `{ } ;`.
fn tokenize(text: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                let mut closed = false;
                for c in chars.by_ref() {
                    if prev == '*' && c == '/' {
                        closed = true;
                        break;
                    }
                    prev = c;
                }
                if !closed {
                    return Err("unterminated /* comment".into());
                }
            }
            '{' | '}' | ';' => tokens.push(c.to_string()),
            '"' => {
                let mut s = String::new();
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == '"' {
                        closed = true;
                        break;
                    }
                    s.push(c);
                }
                if !closed {
                    return Err("unterminated quoted string".into());
                }
                tokens.push(s);
            }
            c => {
                let mut s = c.to_string();
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || "{};\"#".contains(n) {
                        break;
                    }
                    s.push(n);
                    chars.next();
                }
                tokens.push(s);
            }
        }
    }
    Ok(tokens)
}

/// What went wrong in one exchange with the DNS server.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// No address for the update server, or no SOA to find it.
    #[error("no update server: {0}")]
    NoServer(String),
    /// Connection refused, reset, unreachable.
    #[error("{server}: {reason}")]
    Network {
        /// The server.
        server: SocketAddr,
        /// The I/O error.
        reason: String,
    },
    /// No answer in time.
    #[error("{server}: no answer within {}s", EXCHANGE_TIMEOUT.as_secs())]
    Timeout {
        /// The server.
        server: SocketAddr,
    },
    /// The server answered with an error RCODE (and maybe a TSIG error).
    #[error("{server} answered {rcode}{}", tsig.as_ref().map(|t| format!(", TSIG error {t}")).unwrap_or_default())]
    Rcode {
        /// The server.
        server: SocketAddr,
        /// The RCODE's name (`REFUSED`, `NOTAUTH`, …).
        rcode: String,
        /// The TSIG error (`BADKEY`, `BADSIG`, `BADTIME`), when the answer carries one.
        tsig: Option<String>,
    },
    /// A malformed or unauthenticated answer, or a message that cannot be built.
    #[error("{0}")]
    Protocol(String),
}

/// The name of an RCODE as in RFC 1035/2136/8945 (`NOERROR`, `REFUSED`, `NOTAUTH`, …).
fn rcode_name(rcode: ResponseCode) -> String {
    let code: u16 = rcode.into();
    match code {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        6 => "YXDOMAIN".into(),
        7 => "YXRRSET".into(),
        8 => "NXRRSET".into(),
        9 => "NOTAUTH".into(),
        10 => "NOTZONE".into(),
        16 => "BADSIG".into(),
        17 => "BADKEY".into(),
        18 => "BADTIME".into(),
        n => format!("RCODE {n}"),
    }
}

fn tsig_error_name(e: &hickory_proto::rr::rdata::tsig::TsigError) -> String {
    let code: u16 = (*e).into();
    match code {
        16 => "BADSIG".into(),
        17 => "BADKEY".into(),
        18 => "BADTIME".into(),
        22 => "BADTRUNC".into(),
        n => format!("{n}"),
    }
}

/// Sends `msg` (signed with `signer` if given) over TCP and returns the answer. An error RCODE
/// is an error; a signed request's NOERROR answer must carry a valid TSIG.
async fn exchange(
    server: SocketAddr,
    mut msg: Message,
    signer: Option<&TSigner>,
) -> Result<Message, UpdateError> {
    msg.metadata.id = rand::random();
    let verifier = match signer {
        Some(s) => msg
            .finalize(s, u64::try_from(now_unix()).unwrap_or(0))
            .map_err(|e| UpdateError::Protocol(format!("cannot sign the message: {e}")))?,
        None => None,
    };
    let bytes = msg
        .to_vec()
        .map_err(|e| UpdateError::Protocol(format!("cannot encode the message: {e}")))?;
    let len =
        u16::try_from(bytes.len()).map_err(|_| UpdateError::Protocol("message too long".into()))?;
    let net = |e: std::io::Error| UpdateError::Network {
        server,
        reason: e.to_string(),
    };
    let answer = tokio::time::timeout(EXCHANGE_TIMEOUT, async {
        let mut tcp = tokio::net::TcpStream::connect(server).await.map_err(net)?;
        let mut framed = Vec::with_capacity(bytes.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&bytes);
        tcp.write_all(&framed).await.map_err(net)?;
        let mut n = [0u8; 2];
        tcp.read_exact(&mut n).await.map_err(net)?;
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(n))];
        tcp.read_exact(&mut buf).await.map_err(net)?;
        Ok::<_, UpdateError>(buf)
    })
    .await
    .map_err(|_| UpdateError::Timeout { server })??;
    let response = Message::from_vec(&answer)
        .map_err(|e| UpdateError::Protocol(format!("{server}: malformed answer: {e}")))?;
    if response.id != msg.id {
        return Err(UpdateError::Protocol(format!(
            "{server}: answer to another message (ID {} instead of {})",
            response.id, msg.id
        )));
    }
    if response.response_code != ResponseCode::NoError {
        return Err(UpdateError::Rcode {
            server,
            rcode: rcode_name(response.response_code),
            tsig: response
                .signature()
                .and_then(|s| s.data.error.as_ref())
                .map(tsig_error_name),
        });
    }
    if let Some(mut v) = verifier {
        v.verify(&answer).map_err(|e| {
            UpdateError::Protocol(format!(
                "{server}: the answer's TSIG signature does not verify: {e}"
            ))
        })?;
    }
    Ok(response)
}

/// One zone's publishing state, as shown by `/readyz`, `/metrics` and the dashboard.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ZoneStatus {
    /// The record published, in zone-file syntax.
    pub record: String,
    /// The update server last used.
    pub server: Option<String>,
    /// Unix time of the last successful update.
    pub last_success: Option<i64>,
    /// Failed updates since the start.
    pub failures: u64,
    /// The last failure, while failing (cleared by a success).
    pub last_error: Option<String>,
}

/// The state of every published zone, shared between the publishing tasks and the web server.
#[derive(Debug, Default)]
pub struct PublishStatus {
    zones: Mutex<BTreeMap<String, ZoneStatus>>,
}

impl PublishStatus {
    /// A copy of every zone's state, by zone.
    pub fn zones(&self) -> BTreeMap<String, ZoneStatus> {
        self.zones
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn update(&self, zone: &str, f: impl FnOnce(&mut ZoneStatus)) {
        let mut zones = self.zones.lock().unwrap_or_else(PoisonError::into_inner);
        f(zones.entry(zone.to_string()).or_default());
    }

    /// One line per zone for humans: published when, or failing why.
    pub fn summary(&self) -> Vec<(String, String)> {
        self.zones()
            .into_iter()
            .map(|(zone, s)| {
                let when = s
                    .last_success
                    .map(|t| format!("last published {}", utc(t)))
                    .unwrap_or_else(|| "not published yet".into());
                let text = match &s.last_error {
                    Some(e) => format!(
                        "{} — FAILING ({} failures): {e}; {when}",
                        s.record, s.failures
                    ),
                    None => format!("{} — {when}", s.record),
                };
                (zone, text)
            })
            .collect()
    }

    /// OpenMetrics lines: `rkms_dns_publish_last_success_timestamp` and
    /// `rkms_dns_publish_failures_total`, labelled by zone.
    pub fn metrics_text(&self) -> String {
        let zones = self.zones();
        let mut out = String::from(
            "# HELP rkms_dns_publish_last_success_timestamp Unix time of the last successful DNS update of this host's SRV record (0: never).\n\
             # TYPE rkms_dns_publish_last_success_timestamp gauge\n",
        );
        for (zone, s) in &zones {
            out.push_str(&format!(
                "rkms_dns_publish_last_success_timestamp{{zone=\"{}\"}} {}\n",
                label(zone),
                s.last_success.unwrap_or(0)
            ));
        }
        out.push_str(
            "# HELP rkms_dns_publish_failures Failed DNS updates of this host's SRV record.\n\
             # TYPE rkms_dns_publish_failures counter\n",
        );
        for (zone, s) in &zones {
            out.push_str(&format!(
                "rkms_dns_publish_failures_total{{zone=\"{}\"}} {}\n",
                label(zone),
                s.failures
            ));
        }
        out
    }
}

/// `2026-05-01 12:34:56 UTC`.
fn utc(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// A label value escaped for the text exposition.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Everything needed to publish the host in its zones.
#[derive(Clone)]
pub struct Publisher {
    zones: Vec<String>,
    host: Option<String>,
    port: u16,
    priority: u16,
    weight: u16,
    ttl: u32,
    refresh: Duration,
    update_server: Option<String>,
    signer: Option<TSigner>,
    key_name: Option<String>,
    status: Arc<PublishStatus>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("zones", &self.zones)
            .field("port", &self.port)
            .field("key", &self.key_name)
            .finish_non_exhaustive()
    }
}

impl Publisher {
    /// Checks the options (reads the key file); `None` when no zone is to be published.
    pub fn new(args: &DnsPublishArgs, port: u16) -> Result<Option<Publisher>, String> {
        if args.zones.is_empty() {
            return Ok(None);
        }
        let (signer, key_name) = match &args.tsig_key {
            Some(path) => {
                let key = TsigKey::load(path)?;
                (Some(key.signer()?), Some(key.name))
            }
            None => (None, None),
        };
        let mut zones: Vec<String> = Vec::new();
        for z in &args.zones {
            if !zones.iter().any(|y| y.eq_ignore_ascii_case(z)) {
                zones.push(z.clone());
            }
        }
        let publisher = Publisher {
            zones,
            host: args.name.clone(),
            port,
            priority: args.priority,
            weight: args.weight,
            ttl: args.ttl,
            refresh: Duration::from_secs(u64::from(args.refresh) * 60),
            update_server: args.update_server.clone(),
            signer,
            key_name,
            status: Arc::new(PublishStatus::default()),
        };
        for zone in &publisher.zones {
            let record = publisher.record(zone)?;
            publisher.status.update(zone, |s| {
                s.record = format!(
                    "{} {} IN SRV {} {} {} {}",
                    record.name,
                    record.ttl,
                    publisher.priority,
                    publisher.weight,
                    port,
                    {
                        match &record.data {
                            RData::SRV(srv) => srv.target.to_ascii(),
                            _ => String::new(),
                        }
                    }
                )
            });
        }
        Ok(Some(publisher))
    }

    /// The shared status, for the web server.
    pub fn status(&self) -> Arc<PublishStatus> {
        self.status.clone()
    }

    /// The SRV target: `--dns-publish-name`, else the machine's host name, qualified with the
    /// zone when it has no dot.
    fn target(&self, zone: &str) -> Result<Name, String> {
        let host = match &self.host {
            Some(h) => h.clone(),
            None => machine_host_name().ok_or(
                "cannot tell this machine's host name: give --dns-publish-name".to_string(),
            )?,
        };
        let host = host.trim();
        let fq = match host.strip_suffix('.') {
            Some(abs) => abs.to_string(),
            None if host.contains('.') => host.to_string(),
            None => format!("{host}.{zone}"),
        };
        absolute(&fq).map_err(|e| format!("SRV target '{fq}': {e}"))
    }

    /// This host's SRV record in `zone`.
    fn record(&self, zone: &str) -> Result<Record, String> {
        let owner = absolute(&srv_name(zone))?;
        let srv = SRV::new(self.priority, self.weight, self.port, self.target(zone)?);
        Ok(Record::from_rdata(owner, self.ttl, RData::SRV(srv)))
    }

    /// The update server for `zone`: `--dns-update-server`, else the SOA's MNAME.
    async fn server(&self, zone: &str) -> Result<SocketAddr, UpdateError> {
        let (host, port) = match &self.update_server {
            Some(s) => crate::addr::split_host_port(s, 53).map_err(UpdateError::NoServer)?,
            None => (primary_name_server(zone).await?, 53),
        };
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, port));
        }
        let first = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| UpdateError::NoServer(format!("cannot resolve '{host}': {e}")))?
            .next();
        first.ok_or_else(|| UpdateError::NoServer(format!("'{host}' has no address")))
    }

    /// Publishes (or refreshes) this host's record in `zone`: deletes our own stale records
    /// (same target and port, other priority or weight) one by one and adds ours.
    pub async fn publish_zone(&self, zone: &str) -> Result<SocketAddr, UpdateError> {
        let ours = self.record(zone).map_err(UpdateError::Protocol)?;
        let server = self.server(zone).await?;
        // What is there now (unsigned query; if the server answers with an error, e.g. REFUSED
        // for queries, we only add ours; if it does not answer, neither would it to the update).
        let mut query = Message::query();
        query.metadata.recursion_desired = false;
        query.add_query(Query::query(ours.name.clone(), RecordType::SRV));
        let existing = match exchange(server, query, None).await {
            Ok(answer) => answer.answers,
            Err(e @ UpdateError::Rcode { .. }) => {
                tracing::debug!(
                    zone,
                    "cannot read the current SRV records ({e}); adding ours"
                );
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        let msg = publish_message(zone, ours, existing)?;
        exchange(server, msg, self.signer.as_ref()).await?;
        Ok(server)
    }

    /// Removes this host's record from `zone` (the exact record; others stay).
    pub async fn unpublish_zone(&self, zone: &str) -> Result<(), UpdateError> {
        let mut ours = self.record(zone).map_err(UpdateError::Protocol)?;
        let server = self.server(zone).await?;
        ours.dns_class = DNSClass::NONE;
        ours.ttl = 0;
        let mut msg = update_message(zone)?;
        msg.add_update(ours);
        exchange(server, msg, self.signer.as_ref()).await?;
        Ok(())
    }

    /// Keeps the record published in every zone until the task is dropped: refreshed every
    /// --dns-refresh; failures are logged, counted and retried with back-off.
    pub async fn run(self) {
        let tasks: Vec<_> = self
            .zones
            .iter()
            .map(|zone| {
                let me = self.clone();
                let zone = zone.clone();
                async move { me.keep_published(&zone).await }
            })
            .collect();
        futures_join_all(tasks).await;
    }

    async fn keep_published(&self, zone: &str) {
        let mut backoff = FIRST_BACKOFF;
        let mut failing = false;
        loop {
            let wait = match self.publish_zone(zone).await {
                Ok(server) => {
                    let now = now_unix();
                    self.status.update(zone, |s| {
                        s.last_success = Some(now);
                        s.last_error = None;
                        s.server = Some(server.to_string());
                    });
                    let record = self.status.zones().get(zone).map(|s| s.record.clone());
                    info!(
                        zone,
                        server = %server,
                        record = record.unwrap_or_default(),
                        recovered = failing,
                        "DNS: SRV record published"
                    );
                    failing = false;
                    backoff = FIRST_BACKOFF;
                    self.refresh
                }
                Err(e) => {
                    self.status.update(zone, |s| {
                        s.failures += 1;
                        s.last_error = Some(e.to_string());
                    });
                    warn!(
                        zone,
                        key = self.key_name.as_deref().unwrap_or("(none)"),
                        retry_in = ?backoff,
                        "DNS UPDATE FAILED: {e}; activations continue, the update is retried"
                    );
                    failing = true;
                    let wait = backoff.min(self.refresh);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    wait
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Removes the record from every zone (each within the exchange timeout), logging the
    /// outcome; for a clean stop with --dns-unpublish-on-exit.
    pub async fn unpublish_all(&self) {
        for zone in &self.zones {
            match self.unpublish_zone(zone).await {
                Ok(()) => info!(zone, "DNS: SRV record removed"),
                Err(e) => warn!(zone, "DNS: cannot remove the SRV record: {e}"),
            }
        }
    }
}

/// Waits for every future (the zones are few).
async fn futures_join_all<F: std::future::Future<Output = ()> + Send + 'static>(tasks: Vec<F>) {
    let handles: Vec<_> = tasks.into_iter().map(tokio::spawn).collect();
    let _guard = AbortOnDrop(handles.iter().map(|h| h.abort_handle()).collect());
    for h in handles {
        let _ = h.await;
    }
}

/// Aborts the spawned zone tasks when the publisher's task is aborted.
struct AbortOnDrop(Vec<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

/// The UPDATE that publishes `ours` in `zone`, given the SRV records there now: each record with
/// our owner, target and port but another priority or weight is deleted on its own (class NONE,
/// TTL 0: "delete an RR from an RRset"), then ours is added. Other hosts' records are not in it,
/// and the RRset is never deleted as a whole (no class ANY).
fn publish_message(
    zone: &str,
    ours: Record,
    existing: Vec<Record>,
) -> Result<Message, UpdateError> {
    let RData::SRV(our_srv) = &ours.data else {
        return Err(UpdateError::Protocol("not an SRV record".into()));
    };
    let stale: Vec<Record> = existing
        .into_iter()
        .filter(|r| r.name == ours.name)
        .filter(|r| match &r.data {
            RData::SRV(s) => {
                s.target == our_srv.target
                    && s.port == our_srv.port
                    && (s.priority, s.weight) != (our_srv.priority, our_srv.weight)
            }
            _ => false,
        })
        .collect();
    let mut msg = update_message(zone)?;
    for mut r in stale {
        r.dns_class = DNSClass::NONE;
        r.ttl = 0;
        msg.add_update(r);
    }
    msg.add_update(ours);
    Ok(msg)
}

/// An empty UPDATE message for `zone` (zone section: `zone IN SOA`).
fn update_message(zone: &str) -> Result<Message, UpdateError> {
    let origin = absolute(zone).map_err(UpdateError::Protocol)?;
    let mut zq = Query::new();
    zq.set_name(origin)
        .set_query_class(DNSClass::IN)
        .set_query_type(RecordType::SOA);
    let mut msg = Message::query();
    msg.metadata.op_code = OpCode::Update;
    msg.metadata.recursion_desired = false;
    msg.add_zone(zq);
    Ok(msg)
}

/// The zone's primary name server (MNAME of its SOA), asked of the system's resolvers.
async fn primary_name_server(zone: &str) -> Result<String, UpdateError> {
    let resolver = hickory_resolver::TokioResolver::builder_tokio()
        .and_then(|b| b.build())
        .map_err(|e| UpdateError::NoServer(format!("cannot set up the DNS resolver: {e}")))?;
    let name = absolute(zone).map_err(UpdateError::NoServer)?;
    let lookup = resolver
        .lookup(name, RecordType::SOA)
        .await
        .map_err(|e| UpdateError::NoServer(format!("SOA of {zone}: {e}")))?;
    lookup
        .answers()
        .iter()
        .find_map(|r| match &r.data {
            RData::SOA(soa) => Some(soa.mname.to_ascii().trim_end_matches('.').to_string()),
            _ => None,
        })
        .filter(|m| !m.is_empty())
        .ok_or_else(|| UpdateError::NoServer(format!("{zone} has no SOA record")))
}

/// The machine's host name (Linux: the kernel's; elsewhere HOSTNAME or COMPUTERNAME).
fn machine_host_name() -> Option<String> {
    let from_kernel = std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
    from_kernel
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && h != "(none)" && absolute(h).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "key \"rkms-key\" {\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0LXNlY3JldC1zZWNyZXQ=\";\n};\n";

    #[test]
    fn parses_tsig_keygen_output() {
        let k = TsigKey::parse(KEY).unwrap();
        assert_eq!(k.name, "rkms-key");
        assert_eq!(k.algorithm, TsigAlgorithm::HmacSha256);
        assert_eq!(k.secret, b"secret-secret-secret");
        let k = TsigKey::parse(
            "# comment\n/* block\n */ key other.key. { algorithm HMAC-SHA512; // x\n secret \"AAAA\"; };",
        )
        .unwrap();
        assert_eq!(k.name, "other.key.");
        assert_eq!(k.algorithm, TsigAlgorithm::HmacSha512);
        assert!(k.signer().is_ok());
        assert!(!format!("{k:?}").contains("AAAA"));
    }

    #[test]
    fn bad_key_files_are_clear_errors() {
        for (text, want) in [
            ("", "no key statement"),
            (
                "key \"k\" { algorithm hmac-md5; secret \"AAAA\"; };",
                "not supported",
            ),
            ("key \"k\" { algorithm hmac-sha256; };", "no secret"),
            ("key \"k\" { secret \"AAAA\"; };", "no algorithm"),
            (
                "key \"k\" { algorithm hmac-sha256; secret \"!!\"; };",
                "not base64",
            ),
            (
                "key \"k\" { algorithm hmac-sha256; secret \"AAAA\";",
                "missing '}'",
            ),
            ("key \"k { algorithm", "unterminated"),
            ("key \"k\" { colour blue; };", "unknown clause"),
        ] {
            let e = TsigKey::parse(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn record_and_update_message() {
        let args = DnsPublishArgs {
            zones: vec!["example.lan".into(), "EXAMPLE.lan".into()],
            name: Some("kms1".into()),
            priority: 1,
            weight: 2,
            ttl: 600,
            refresh: 60,
            ..Default::default()
        };
        let p = Publisher::new(&args, 1688).unwrap().unwrap();
        assert_eq!(
            p.zones,
            ["example.lan"],
            "duplicate zones are published once"
        );
        let r = p.record("example.lan").unwrap();
        assert_eq!(r.name.to_ascii(), "_vlmcs._tcp.example.lan.");
        assert_eq!(
            r.data,
            RData::SRV(SRV::new(1, 2, 1688, absolute("kms1.example.lan").unwrap()))
        );
        let status = p.status().zones();
        assert_eq!(
            status["example.lan"].record,
            "_vlmcs._tcp.example.lan. 600 IN SRV 1 2 1688 kms1.example.lan."
        );
        let msg = update_message("example.lan").unwrap();
        assert_eq!(msg.op_code, OpCode::Update);
        assert_eq!(msg.queries[0].query_type(), RecordType::SOA);
        assert!(Publisher::new(&DnsPublishArgs::default(), 1688)
            .unwrap()
            .is_none());
    }

    #[test]
    fn update_touches_only_our_record() {
        let srv = |p, w, port, host: &str| {
            Record::from_rdata(
                absolute("_vlmcs._tcp.example.lan").unwrap(),
                3600,
                RData::SRV(SRV::new(p, w, port, absolute(host).unwrap())),
            )
        };
        let ours = srv(0, 0, 1688, "kms1.example.lan");
        let existing = vec![
            srv(10, 5, 1688, "KMS1.example.lan"), // our old record (names are case-blind)
            srv(0, 0, 1688, "kms1.example.lan"),  // ours already: re-added, not deleted
            srv(0, 0, 1689, "kms1.example.lan"),  // another port: another host's
            srv(0, 0, 1688, "kms2.example.lan"),  // another host
        ];
        let msg = publish_message("example.lan", ours.clone(), existing).unwrap();
        let updates = &msg.authorities;
        assert_eq!(updates.len(), 2, "{updates:?}");
        assert_eq!(updates[0].dns_class, DNSClass::NONE);
        assert_eq!(updates[0].ttl, 0);
        assert_eq!(updates[0].data, srv(10, 5, 1688, "kms1.example.lan").data);
        assert_eq!(updates[1], ours);
        assert_eq!(updates[1].dns_class, DNSClass::IN);
        assert!(updates.iter().all(|r| r.dns_class != DNSClass::ANY));
        // It encodes, and decodes to the same update.
        let bytes = msg.to_vec().unwrap();
        assert_eq!(Message::from_vec(&bytes).unwrap().authorities, *updates);
        // Signed, it carries a TSIG record with our key name.
        let key = TsigKey::parse(KEY).unwrap();
        let mut signed = msg.clone();
        signed
            .finalize(&key.signer().unwrap(), 1_800_000_000)
            .unwrap();
        let decoded = Message::from_vec(&signed.to_vec().unwrap()).unwrap();
        assert_eq!(
            decoded.signature().map(|s| s.name.to_ascii()),
            Some("rkms-key.".to_string())
        );
    }

    #[test]
    fn status_texts() {
        let s = PublishStatus::default();
        s.update("example.lan", |z| {
            z.record = "R".into();
            z.failures = 2;
            z.last_error = Some("127.0.0.1:53 answered NOTAUTH, TSIG error BADSIG".into());
        });
        let m = s.metrics_text();
        assert!(
            m.contains("rkms_dns_publish_failures_total{zone=\"example.lan\"} 2"),
            "{m}"
        );
        assert!(m.contains("rkms_dns_publish_last_success_timestamp{zone=\"example.lan\"} 0"));
        s.update("example.lan", |z| z.last_success = Some(1_800_000_000));
        let (zone, text) = &s.summary()[0];
        assert!(
            text.contains("last published 2027-01-15 08:00:00 UTC"),
            "{text}"
        );
        assert_eq!(zone, "example.lan");
        assert!(
            text.contains("FAILING (2 failures)") && text.contains("BADSIG"),
            "{text}"
        );
    }
}

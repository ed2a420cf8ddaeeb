//! What `rkms activate` prints: a readable block per response, or one JSON object per line.

use std::net::SocketAddr;

use rkms_proto::kms::{HResult, VerifiedResponse};
use rkms_proto::rpc::client::Bound;
use rkms_proto::rpc::TransferSyntax;
use serde_json::json;
use uuid::Uuid;

use super::Target;
use crate::escape::terminal;

/// The result of one activation request.
#[derive(Debug, Clone)]
pub struct Outcome {
    n: u32,
    of: u32,
    addr: SocketAddr,
    target: Target,
    cmid: Uuid,
    protocol: u16,
    /// Minor protocol version (0 but when testing hosts with other versions).
    minor: u16,
    /// Workstation name sent.
    workstation: String,
    /// Transfer syntax used.
    pub syntax: Option<TransferSyntax>,
    response: Option<VerifiedResponse>,
    hresult: Option<HResult>,
    error: Option<String>,
    connection_failed: bool,
    /// Warnings from the RPC and KMS checks.
    pub warnings: Vec<String>,
}

impl Outcome {
    pub(super) fn new(
        n: u32,
        of: u32,
        addr: SocketAddr,
        target: Target,
        cmid: Uuid,
        protocol: u16,
    ) -> Self {
        Outcome {
            n,
            of,
            addr,
            target,
            cmid,
            protocol,
            minor: 0,
            workstation: String::new(),
            syntax: None,
            response: None,
            hresult: None,
            error: None,
            connection_failed: false,
            warnings: Vec::new(),
        }
    }

    /// Records the full protocol version and the workstation name sent.
    pub(super) fn set_sent(&mut self, minor: u16, workstation: &str) {
        self.minor = minor;
        self.workstation = workstation.to_string();
    }

    /// "6" for the supported versions, "7.1" when a minor version was sent.
    fn version_text(&self) -> String {
        if self.minor == 0 {
            self.protocol.to_string()
        } else {
            format!("{}.{}", self.protocol, self.minor)
        }
    }

    /// The host's identity as a verified answer gave it: (KMS ID, application ID, ePID, HwId).
    pub fn host_identity(&self) -> Option<(Uuid, Uuid, &str, Option<[u8; 8]>)> {
        self.response.as_ref().map(|r| {
            (
                self.target.kms_id,
                self.target.app_id,
                r.base.epid.as_str(),
                r.hwid,
            )
        })
    }

    pub(super) fn set_error(&mut self, e: String, connection: bool) {
        self.error = Some(e);
        self.connection_failed = connection;
    }

    pub(super) fn set_refused(&mut self, h: HResult) {
        self.hresult = Some(h);
    }

    pub(super) fn set_verified(&mut self, v: VerifiedResponse) {
        self.warnings.extend(v.warnings.iter().cloned());
        self.hresult = Some(HResult::S_OK);
        self.response = Some(v);
    }

    /// Verified with success.
    pub fn ok(&self) -> bool {
        self.response.is_some() && self.error.is_none()
    }

    /// Verified, and the count reaches the threshold.
    pub fn activated(&self) -> bool {
        self.response
            .as_ref()
            .is_some_and(|r| r.base.current_count >= self.target.required_count)
    }

    /// A version no KMS host supports was sent and the host refused it with 0x8007000D, as it
    /// must: what `--protocol 7.0` tests.
    pub fn refused_as_expected(&self) -> bool {
        self.unsupported_version() && self.hresult == Some(HResult::INVALID_DATA)
    }

    fn unsupported_version(&self) -> bool {
        !(self.minor == 0 && (4..=6).contains(&self.protocol))
    }

    /// The connection is unusable afterwards.
    pub fn connection_failed(&self) -> bool {
        self.connection_failed
    }

    fn verdict(&self) -> String {
        if let Some(e) = &self.error {
            return format!("failed: {e}");
        }
        match (&self.response, self.hresult) {
            (Some(r), _) if r.base.current_count >= self.target.required_count => {
                "activated".into()
            }
            (Some(r), _) => format!(
                "not activated: the host reports {}, the product needs {} ({})",
                crate::interval::count(r.base.current_count, "client"),
                self.target.required_count,
                HResult::NOT_ENOUGH_COUNT
            ),
            (None, Some(h)) if self.refused_as_expected() => format!(
                "refused by the host with {h} ({}), as a KMS host must refuse protocol {}",
                h.description(),
                self.version_text()
            ),
            (None, Some(h)) => format!("refused by the host: {h} ({})", h.description()),
            (None, None) => "failed".into(),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        let r = self.response.as_ref();
        json!({
            "request": self.n,
            "address": self.addr.to_string(),
            "protocol": if self.minor == 0 { json!(self.protocol) } else { json!(self.version_text()) },
            "workstation": self.workstation,
            "syntax": self.syntax.map(|s| s.to_string()),
            "product": self.target.name,
            "app_id": self.target.app_id,
            "kms_id": self.target.kms_id,
            "sku_id": self.target.sku_id,
            "cmid": self.cmid,
            "required_count": self.target.required_count,
            "hresult": self.hresult.map(|h| h.to_string()),
            "verified": r.is_some(),
            "activated": self.activated(),
            "epid": r.map(|r| r.base.epid.clone()),
            "hwid": r.and_then(|r| r.hwid).map(hex::encode_upper),
            "current_count": r.map(|r| r.base.current_count),
            "activation_interval": r.map(|r| r.base.activation_interval),
            "renewal_interval": r.map(|r| r.base.renewal_interval),
            "warnings": self.warnings,
            "error": self.error,
            "verdict": self.verdict(),
        })
    }
}

/// Prints results as text or JSON lines.
pub struct Reporter {
    json: bool,
}

impl Reporter {
    pub(super) fn new(json: bool) -> Self {
        Reporter { json }
    }

    pub(super) fn fatal(&mut self, msg: &str) {
        if self.json {
            crate::outln!("{}", json!({ "error": msg }));
        } else {
            eprintln!("error: {}", terminal(msg));
        }
    }

    pub(super) fn connected(&mut self, host: &str, addr: SocketAddr, b: &Bound) {
        if self.json {
            return;
        }
        let mut syntaxes = Vec::new();
        if b.ndr32.is_some() {
            syntaxes.push("NDR32");
        }
        if b.ndr64.is_some() {
            syntaxes.push("NDR64");
        }
        let btfn = if b.btfn { ", BTFN acknowledged" } else { "" };
        crate::outln!(
            "Connected to {host} ({addr}): bound {}{btfn}",
            syntaxes.join(" + ")
        );
        for w in &b.warnings {
            crate::outln!("  warning: {}", terminal(w));
        }
    }

    pub(super) fn outcome(&mut self, o: &Outcome) {
        if self.json {
            crate::outln!("{}", o.to_json());
            return;
        }
        let syntax = o.syntax.map(|s| format!(" over {s}")).unwrap_or_default();
        crate::outln!(
            "Request {} of {}: KMS V{}{syntax}",
            o.n,
            o.of,
            o.version_text()
        );
        crate::outln!("  Product          : {}", o.target.name);
        crate::outln!(
            "  IDs              : app {} / KMS {} / SKU {}",
            o.target.app_id,
            o.target.kms_id,
            o.target.sku_id
        );
        crate::outln!("  Client machine ID: {}", o.cmid);
        crate::outln!("  Workstation      : {}", terminal(&o.workstation));
        if let Some(r) = &o.response {
            crate::outln!("  KMS host ePID    : {}", terminal(&r.base.epid));
            if let Some(h) = r.hwid {
                crate::outln!("  KMS host HwId    : {}", hex::encode_upper(h));
            }
            crate::outln!(
                "  Current count    : {} (product needs {})",
                r.base.current_count,
                o.target.required_count
            );
            crate::outln!(
                "  Intervals        : activation {} min, renewal {} min",
                r.base.activation_interval,
                r.base.renewal_interval
            );
            crate::outln!(
                "  Verified         : yes (version, CMID, time stamp, {})",
                checks(o.protocol)
            );
        }
        for w in &o.warnings {
            crate::outln!("  warning: {}", terminal(w));
        }
        crate::outln!("  Result           : {}", terminal(&o.verdict()));
    }
}

fn checks(protocol: u16) -> &'static str {
    match protocol {
        4 => "MAC, size",
        5 => "hash, response IV, size",
        _ => "HMAC, hash, XorSalts, response IV, size",
    }
}

/// A table of results, one row per product, for `--all-products`.
pub fn table(outcomes: &[Outcome]) -> String {
    let rows: Vec<[String; 5]> = outcomes
        .iter()
        .map(|o| {
            let r = o.response.as_ref();
            [
                o.target.name.clone(),
                format!("V{}", o.version_text()),
                if o.activated() {
                    "activated".to_string()
                } else {
                    terminal(&o.verdict()).into_owned()
                },
                r.map(|r| format!("{}/{}", r.base.current_count, o.target.required_count))
                    .unwrap_or_default(),
                r.map(|r| terminal(&r.base.epid).into_owned())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    let header = ["PRODUCT", "PROTOCOL", "RESULT", "COUNT", "EPID"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(&header.map(String::from));
    out.push_str(&line(&widths.map(|w| "-".repeat(w))));
    for row in &rows {
        out.push_str(&line(row));
    }
    let ok = outcomes.iter().filter(|o| o.activated()).count();
    out.push_str(&format!("{ok} of {} products activated\n", outcomes.len()));
    out
}

//! Web test helpers: a KMS host and its web server in-process on loopback, clients activated
//! through the real protocol, and a tiny HTTP/1.1 client over raw TCP.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rand::rngs::OsRng;
use rkms::client::Session;
use rkms::policy::{Allow, Policy, PolicyConfig};
use rkms::server::{serve_listeners, Metrics, ServerConfig, Services, StoreHandle};
use rkms::web::{self, Health, WebState};
use rkms_catalog::Catalog;
use rkms_proto::kms::{build_request, filetime_from_unix, BaseRequest, Version};
use rkms_proto::rpc::client::BindOffer;
use rkms_store::{ClientStore, MemoryStore, Writer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use uuid::Uuid;

/// The token of hosts started with [`Options::token`].
pub const TOKEN: &str = "t0ken-for-tests";

/// How a test host is set up.
#[derive(Clone, Default)]
pub struct Options {
    /// Require this token on the web server.
    pub token: Option<String>,
    /// Self-check interval (default 1 s).
    pub self_check: Option<Duration>,
    /// Run the self-check against this address instead of the KMS listener.
    pub self_check_target: Option<SocketAddr>,
    /// Keep records in this store instead of a fresh memory store.
    pub store: Option<Arc<dyn ClientStore>>,
    /// Web server options (`--web-host` names, connection limits); default otherwise.
    pub web: Option<web::WebOptions>,
}

/// A KMS host and its web server, stopped on drop.
pub struct Host {
    /// The KMS listener.
    pub kms: SocketAddr,
    /// The web listener.
    pub web: SocketAddr,
    /// What the web server reads.
    pub state: Arc<WebState>,
    stop: watch::Sender<bool>,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Starts a host (policy `--allow known`, memory store, durable acks so a response means its
/// record is written) and its web server on loopback ports.
pub async fn start(options: Options) -> Host {
    let catalog = Arc::new(Catalog::builtin().clone());
    let config = PolicyConfig {
        allow: Allow::Known,
        ..PolicyConfig::default()
    };
    let now = rkms::clock::now_unix();
    let policy = Arc::new(ArcSwap::from_pointee(
        Policy::new(catalog, config, now, &mut OsRng).unwrap(),
    ));
    let store: Arc<dyn ClientStore> = options
        .store
        .clone()
        .unwrap_or_else(|| Arc::new(MemoryStore::new()));
    let writer = Arc::new(Writer::new(store.clone(), Box::new(|_| {})));
    let metrics = Arc::new(Metrics::new());
    let kms_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let kms = kms_listener.local_addr().unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let services = Services {
        policy: policy.clone(),
        store: Some(StoreHandle {
            writer: writer.clone(),
            durable: true,
        }),
        metrics: metrics.clone(),
    };
    tokio::spawn(serve_listeners(
        vec![kms_listener],
        ServerConfig::default(),
        services,
        stopped(stop_rx.clone()),
    ));
    let interval = options.self_check.unwrap_or(Duration::from_secs(1));
    let health = Arc::new(Health::new(interval));
    health.set_listeners_bound(true);
    let state = Arc::new(WebState {
        policy,
        store: Some(store),
        writer: Some(writer),
        metrics,
        started_unix: now - 3725,
        listeners: vec![kms],
        settings: vec![
            ("listen".into(), kms.to_string(), "command line".into()),
            ("db".into(), "none".into(), "command line".into()),
            (
                "web-token".into(),
                options.token.clone().unwrap_or_else(|| "(not set)".into()),
                "environment RKMS_WEB_TOKEN".into(),
            ),
        ],
        db: "none".into(),
        health,
        web_token: options.token.clone(),
        fleet_cache: rkms::web::FleetCache::default(),
    });
    let web_listener = web::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let web = web_listener.local_addr().unwrap();
    tokio::spawn(web::serve_with(
        web_listener,
        state.clone(),
        options.web.clone().unwrap_or_default(),
        stopped(stop_rx.clone()),
    ));
    tokio::spawn(web::self_check_loop(
        options.self_check_target.unwrap_or(kms),
        state.clone(),
        interval,
        stopped(stop_rx),
    ));
    Host {
        kms,
        web,
        state,
        stop,
    }
}

/// A client to activate.
#[derive(Debug, Clone)]
pub struct Client {
    /// Catalog product name.
    pub product: &'static str,
    /// Workstation name sent.
    pub workstation: &'static str,
    /// Client machine ID.
    pub cmid: Uuid,
    /// Protocol major version.
    pub protocol: u16,
    /// Send this KMS ID instead of the product's (refused by `--allow known`).
    pub bogus_kms_id: bool,
}

/// The clients [`activate_all`] activates: Windows client twice and Office on the same machine,
/// Windows Server, and one refused request.
pub fn clients() -> Vec<Client> {
    let alpha = Uuid::from_u128(0xa1fa_0000_0000_4000_8000_0000_0000_0001);
    vec![
        Client {
            product: "Windows 10/11 Pro",
            workstation: "WS-ALPHA",
            cmid: alpha,
            protocol: 6,
            bogus_kms_id: false,
        },
        Client {
            product: "Windows 10/11 Pro",
            workstation: "WS-ALPHA",
            cmid: alpha,
            protocol: 6,
            bogus_kms_id: false,
        },
        Client {
            product: "Office Excel 2013",
            workstation: "WS-ALPHA",
            cmid: alpha,
            protocol: 5,
            bogus_kms_id: false,
        },
        Client {
            product: "Windows Server 2022 Standard",
            workstation: "SRV-BRAVO",
            cmid: Uuid::from_u128(0xb4a0_0000_0000_4000_8000_0000_0000_0002),
            protocol: 6,
            bogus_kms_id: false,
        },
        Client {
            product: "Windows 10/11 Pro",
            workstation: "PC-CHARLIE",
            cmid: Uuid::from_u128(0xc4a4_0000_0000_4000_8000_0000_0000_0003),
            protocol: 4,
            bogus_kms_id: false,
        },
        Client {
            product: "Windows 10/11 Pro",
            workstation: "PC-DELTA-REFUSED",
            cmid: Uuid::from_u128(0xde17_0000_0000_4000_8000_0000_0000_0004),
            protocol: 6,
            bogus_kms_id: true,
        },
    ]
}

/// Sends one activation request through the real protocol; returns whether it was activated
/// (a verified response) or refused (an HRESULT).
pub async fn activate(kms: SocketAddr, c: &Client) -> bool {
    let catalog = Catalog::builtin();
    let sku = catalog.find_product(c.product).unwrap();
    let kms_id = if c.bogus_kms_id {
        Uuid::from_u128(0xbad0_0000_0000_4000_8000_0000_0000_0bad)
    } else {
        sku.kms_id
    };
    let now = u64::try_from(rkms::clock::now_unix()).unwrap();
    let base = BaseRequest {
        version: Version::new(c.protocol),
        is_client_vm: 0,
        license_status: 2,
        grace_time: 43200,
        application_id: sku.app_id,
        sku_id: sku.id,
        kms_id,
        cmid: c.cmid,
        required_client_count: 25,
        request_time: filetime_from_unix(now),
        previous_cmid: Uuid::nil(),
        workstation: BaseRequest::workstation_field(c.workstation),
    };
    let request = build_request(Version::new(c.protocol), &base, &mut OsRng);
    let offer = BindOffer {
        ndr64: true,
        btfn: true,
        multiplex: false,
    };
    let mut s = Session::open(kms, offer, Duration::from_secs(5))
        .await
        .unwrap();
    let (stub, _) = s.activate(&request.bytes).await.unwrap();
    match stub.result {
        Ok(payload) => {
            request.verify_response(&payload).unwrap();
            true
        }
        Err(_) => false,
    }
}

/// Activates every client of [`clients`], in order; returns how many were activated.
pub async fn activate_all(kms: SocketAddr) -> usize {
    let mut activated = 0;
    for c in clients() {
        if activate(kms, &c).await {
            activated += 1;
        }
    }
    activated
}

/// An HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names in lower case, in order.
    pub headers: Vec<(String, String)>,
    /// Body (decoded from chunked transfer encoding).
    pub body: String,
}

impl Response {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Sends one request with `Connection: close` and reads the whole response.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Response {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (n, v) in headers {
        text.push_str(&format!("{n}: {v}\r\n"));
    }
    text.push_str("\r\n");
    s.write_all(text.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw))
        .await
        .expect("response within 10 s")
        .unwrap();
    parse(&raw, method == "HEAD")
}

/// `GET path`.
pub async fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, "GET", path, &[]).await
}

fn parse(raw: &[u8], head: bool) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head_text = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head_text.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked && !head {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        body: String::from_utf8(body).expect("UTF-8 body"),
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size_text = std::str::from_utf8(&data[..line_end]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// Waits (up to 10 s) until `/readyz` answers 200.
pub async fn wait_ready(addr: SocketAddr) -> Response {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = get(addr, "/readyz").await;
        if r.status == 200 {
            return r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never ready: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

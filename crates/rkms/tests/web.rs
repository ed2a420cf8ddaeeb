//! The web server against a host that activated clients through the real protocol: every
//! page and API route, status codes (400, 401, 404, 405, 503), the OpenAPI document against
//! real responses, a Prometheus parse of `/metrics`, readiness and the live feed.

mod web_common;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};
use web_common::{activate_all, get, request, start, wait_ready, Options, Response, TOKEN};

const OPENAPI_FILE: &str = include_str!("../../../openapi/rkms-v1.json");

fn openapi() -> Value {
    serde_json::from_str(OPENAPI_FILE).unwrap()
}

/// Validates a JSON response against the schema the OpenAPI document gives for `path` and
/// its status code.
fn check_against_openapi(doc: &Value, path: &str, r: &Response) {
    let status = r.status.to_string();
    let schema =
        &doc["paths"][path]["get"]["responses"][&status]["content"]["application/json"]["schema"];
    assert!(
        !schema.is_null(),
        "the OpenAPI document describes no JSON {status} answer for GET {path}"
    );
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{path}: {:?}",
        r.header("content-type")
    );
    let root = json!({ "$ref": schema["$ref"], "components": doc["components"] });
    let root = if schema.get("$ref").is_some() {
        root
    } else {
        schema.clone()
    };
    let validator = jsonschema::validator_for(&root).unwrap();
    let body = r.json();
    let errors: Vec<String> = validator
        .iter_errors(&body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "GET {path} ({status}) does not match the OpenAPI document: {errors:#?}\n{}",
        r.body
    );
}

/// Nothing refers to another server (the SVG namespace is a name, not a download).
fn assert_self_contained(text: &str) {
    let text = text.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(
        !text.contains("http://") && !text.contains("https://") && !text.contains("//cdn"),
        "refers to another server"
    );
}

fn alpha() -> String {
    web_common::clients()[0].cmid.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_show_the_activated_clients() {
    let host = start(Options::default()).await;
    assert_eq!(activate_all(host.kms).await, 5);
    let web = host.web;

    let r = get(web, "/").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r.header("content-security-policy").is_some());
    for text in [
        "Overview",
        "WS-ALPHA",
        "SRV-BRAVO",
        "PC-CHARLIE",
        "PC-DELTA-REFUSED",
        "Windows Server 2022 Standard",
        "<svg class=\"chart\"",
        "Windows 10/11 2015 (Volume)",
        "1h 2m",
        "refused",
        "0xC004F042",
    ] {
        assert!(r.body.contains(text), "overview lacks {text:?}");
    }
    assert!(
        !r.body.contains("rkms-selfcheck"),
        "self-checks are not shown"
    );
    assert_self_contained(&r.body);

    let r = get(web, "/clients").await;
    assert_eq!(r.status, 200);
    assert_self_contained(&r.body);
    for text in [
        "WS-ALPHA",
        "SRV-BRAVO",
        "PC-CHARLIE",
        "PC-DELTA-REFUSED",
        "Office Excel 2013",
        "5 client records of 4 machines",
        &alpha(),
    ] {
        assert!(r.body.contains(text), "clients page lacks {text:?}");
    }
    let r = get(web, "/clients?q=bravo").await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("SRV-BRAVO") && !r.body.contains("PC-CHARLIE"));
    let r = get(web, "/clients?status=refused").await;
    assert!(r.body.contains("PC-DELTA-REFUSED") && !r.body.contains("SRV-BRAVO"));
    let r = get(web, "/clients?sort=workstation&order=asc&limit=2&page=2").await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Page 2 of 3"), "{}", r.body);
    let names: Vec<&str> = ["PC-CHARLIE", "PC-DELTA-REFUSED", "SRV-BRAVO", "WS-ALPHA"]
        .into_iter()
        .filter(|n| r.body.contains(&format!(">{n}<")))
        .collect();
    // PC-CHARLIE, PC-DELTA-REFUSED | SRV-BRAVO, WS-ALPHA | WS-ALPHA (Office).
    assert_eq!(names, ["SRV-BRAVO", "WS-ALPHA"]);

    let r = get(web, &format!("/clients/{}", alpha())).await;
    assert_eq!(r.status, 200);
    for text in [
        "WS-ALPHA",
        "Windows 10/11 Pro",
        "Office Excel 2013",
        "History",
        "Initial grace period",
    ] {
        assert!(r.body.contains(text), "client page lacks {text:?}");
    }
    assert_eq!(
        r.body.matches("<time").count(),
        2 * 2 + 3,
        "2 records, 3 requests"
    );

    let r = get(web, "/products").await;
    assert_eq!(r.status, 200);
    let kms = host.kms;
    for text in [
        "W269N-WFGWX-YVC9B-4J6C9-T83GX",
        "Windows 10/11 Pro",
        &format!("slmgr /skms 127.0.0.1:{}", kms.port()),
        "cscript ospp.vbs /sethst:127.0.0.1",
        "data-copy=\"W269N-WFGWX-YVC9B-4J6C9-T83GX\"",
    ] {
        assert!(r.body.contains(text), "products page lacks {text:?}");
    }
    let r = get(web, "/products?q=server+2022+standard&host=kms.example.lan").await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("VDYBN-27WPP-V4HQT-9VMD4-VMK7H"));
    assert!(r
        .body
        .contains(&format!("slmgr /skms kms.example.lan:{}", kms.port())));
    assert!(!r.body.contains("W269N-WFGWX-YVC9B-4J6C9-T83GX"));

    let r = get(web, "/settings").await;
    assert_eq!(r.status, 200);
    assert_self_contained(&r.body);
    let policy = host.state.policy();
    for (profile, epid, _) in policy.identity().slots() {
        assert!(r.body.contains(epid), "settings lack the ePID of {profile}");
    }
    assert!(r
        .body
        .contains(&hex::encode_upper(policy.identity().hwid())));
    assert!(r.body.contains("Client database"));
    for asset in ["style.css", "app.js", "favicon.svg"] {
        let r = get(web, &format!("/assets/{asset}")).await;
        assert_eq!(r.status, 200, "{asset}");
        assert_self_contained(&r.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_answers_match_the_openapi_document() {
    let host = start(Options::default()).await;
    activate_all(host.kms).await;
    wait_ready(host.web).await;
    let web = host.web;
    let doc = openapi();

    let served = get(web, "/api/v1/openapi.json").await;
    assert_eq!(served.status, 200);
    assert_eq!(
        served.json(),
        doc,
        "the served document is the checked-in one"
    );

    let mut covered = BTreeSet::new();
    let mut check = |path: &str, url: &str, r: &Response| {
        check_against_openapi(&doc, path, r);
        covered.insert(path.to_owned());
        let _ = url;
    };
    let alpha = alpha();
    let cases: Vec<(&str, String, u16)> = vec![
        ("/api/v1/clients", "/api/v1/clients".into(), 200),
        (
            "/api/v1/clients",
            "/api/v1/clients?q=ws&sort=requests&order=desc&limit=1&offset=0&status=activated&family=windows-client".into(),
            200,
        ),
        ("/api/v1/clients", "/api/v1/clients?limit=0".into(), 400),
        ("/api/v1/clients/{cmid}", format!("/api/v1/clients/{alpha}"), 200),
        (
            "/api/v1/clients/{cmid}",
            "/api/v1/clients/00000000-0000-4000-8000-000000000000".into(),
            404,
        ),
        ("/api/v1/clients/{cmid}", "/api/v1/clients/nope".into(), 400),
        ("/api/v1/activations", "/api/v1/activations?limit=2".into(), 200),
        ("/api/v1/activations", format!("/api/v1/activations?cmid={alpha}"), 200),
        ("/api/v1/activations", "/api/v1/activations?limit=x".into(), 400),
        ("/api/v1/products", "/api/v1/products".into(), 200),
        ("/api/v1/products", "/api/v1/products?q=office&host=kms.lan".into(), 200),
        ("/api/v1/products", "/api/v1/products?host=%3Cscript%3E".into(), 400),
        ("/api/v1/stats", "/api/v1/stats".into(), 200),
        ("/api/v1/stats", "/api/v1/stats?x=1".into(), 400),
        ("/api/v1/fleet", "/api/v1/fleet".into(), 200),
        ("/api/v1/fleet", "/api/v1/fleet?x=1".into(), 400),
        ("/api/v1/clients", "/api/v1/clients?state=current".into(), 200),
        (
            "/api/v1/clients",
            "/api/v1/clients?state=failing&sort=expires&order=desc".into(),
            200,
        ),
        ("/api/v1/clients", "/api/v1/clients?state=soon".into(), 400),
        ("/api/v1/config", "/api/v1/config".into(), 200),
        ("/livez", "/livez".into(), 200),
        ("/readyz", "/readyz".into(), 200),
    ];
    for (path, url, status) in &cases {
        let r = get(web, url).await;
        assert_eq!(r.status, *status, "GET {url}: {}", r.body);
        check(path, url, &r);
    }
    // Every JSON operation of the document was exercised.
    let documented: BTreeSet<String> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, item)| {
            item["get"]["responses"]["200"]["content"]["application/json"]["schema"]
                .get("$ref")
                .is_some()
        })
        .map(|(p, _)| p.clone())
        .collect();
    assert_eq!(covered, documented);

    // Contents, not just shapes.
    let page = get(web, "/api/v1/clients").await.json();
    assert_eq!(page["total"], 5);
    let names: BTreeSet<&str> = page["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["workstation"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["WS-ALPHA", "SRV-BRAVO", "PC-CHARLIE", "PC-DELTA-REFUSED"])
    );
    let one = get(web, &format!("/api/v1/clients/{alpha}")).await.json();
    assert_eq!(one["records"].as_array().unwrap().len(), 2);
    assert_eq!(one["history"].as_array().unwrap().len(), 3);
    let windows = one["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["product"] == "Windows 10/11 Pro")
        .unwrap();
    assert_eq!(windows["requests"], 2);
    assert_eq!(windows["family"], "windows-client");
    let latest = get(web, "/api/v1/activations?limit=2").await.json();
    let latest = latest["activations"].as_array().unwrap();
    assert_eq!(latest[0]["workstation"], "PC-DELTA-REFUSED");
    assert_eq!(latest[0]["status"], "refused");
    assert_eq!(latest[0]["hresult"], 0xC004_F042_u32);
    assert_eq!(latest[1]["workstation"], "PC-CHARLIE");
    let stats = get(web, "/api/v1/stats").await.json();
    assert_eq!(stats["activations"]["today"]["activated"], 5);
    assert_eq!(stats["activations"]["today"]["refused"], 1);
    assert_eq!(stats["activations"]["total"]["activated"], 5);
    assert_eq!(stats["ready"], true);
    let pool = stats["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Windows 10/11 2015 (Volume)")
        .expect("the Windows client pool");
    assert_eq!(
        (pool["clients"].as_u64(), pool["threshold"].as_u64()),
        (Some(2), Some(25))
    );
    let families: BTreeSet<&str> = stats["by_day"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["family"].as_str().unwrap())
        .collect();
    assert_eq!(
        families,
        BTreeSet::from(["office", "windows-client", "windows-server"])
    );
    let products = get(web, "/api/v1/products?q=W269N-WFGWX").await.json();
    assert_eq!(products["total"], 1);
    assert_eq!(products["products"][0]["guide"], Value::Null);
    let products = get(web, "/api/v1/products?q=W269N-WFGWX&host=kms.lan")
        .await
        .json();
    assert!(products["products"][0]["guide"]
        .as_str()
        .unwrap()
        .contains("slmgr /skms kms.lan:"));
    let config = get(web, "/api/v1/config").await.json();
    assert_eq!(config["database"], "none");
    assert_eq!(config["web"]["authentication"], "none");
    assert_eq!(
        config["identity"]["epids"].as_array().unwrap().len(),
        host.state.policy().identity().slots().count()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_missing_pages_and_writes_are_refused() {
    let host = start(Options::default()).await;
    let web = host.web;
    for url in [
        "/api/v1/clients?bogus=1",
        "/api/v1/clients?limit=5000",
        "/api/v1/clients?limit=-1",
        "/api/v1/clients?sort=nope",
        "/api/v1/clients?order=sideways",
        "/api/v1/clients?kms_id=not-a-guid",
        "/api/v1/clients?q=a&q=b",
        "/api/v1/clients?page=2&offset=3",
        "/api/v1/clients?since=yesterday",
        "/api/v1/activations?limit=0",
        "/api/v1/activations?cmid=x",
        "/api/v1/clients/123",
        "/api/v1/products?family=linux",
        "/api/v1/config?secret=1",
    ] {
        let r = get(web, url).await;
        assert_eq!(r.status, 400, "{url}: {}", r.body);
        let message = r.json()["error"].as_str().unwrap().to_owned();
        assert!(!message.is_empty(), "{url}");
    }
    let r = get(web, "/api/v1/clients?limit=abc").await;
    assert!(r.json()["error"].as_str().unwrap().contains("'limit'"));
    // Pages refuse bad parameters too, as HTML.
    let r = get(web, "/clients?sort=nope").await;
    assert_eq!(r.status, 400);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r.body.contains("sort"));
    assert_eq!(get(web, "/clients/not-a-cmid").await.status, 400);

    for url in [
        "/nope",
        "/clients/00000000-0000-4000-8000-000000000000",
        "/assets/x.js",
    ] {
        assert_eq!(get(web, url).await.status, 404, "{url}");
    }
    for url in [
        "/api/v1/nope",
        "/api/v1/clients/00000000-0000-4000-8000-000000000000",
    ] {
        let r = get(web, url).await;
        assert_eq!(r.status, 404, "{url}");
        assert!(r.json()["error"].is_string());
    }
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        for url in ["/", "/api/v1/clients", "/metrics", "/nope"] {
            let r = request(web, method, url, &[("Content-Length", "0")]).await;
            assert_eq!(r.status, 405, "{method} {url}");
            assert_eq!(r.header("allow"), Some("GET, HEAD"));
            assert!(r.json()["error"].as_str().unwrap().contains("read-only"));
        }
    }
    let r = request(web, "HEAD", "/api/v1/clients", &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_required_when_set() {
    let host = start(Options {
        token: Some(TOKEN.into()),
        ..Options::default()
    })
    .await;
    activate_all(host.kms).await;
    let web = host.web;
    for url in [
        "/",
        "/clients",
        "/api/v1/clients",
        "/api/v1/config",
        "/metrics",
        "/assets/app.js",
    ] {
        for auth in [
            None,
            Some("Bearer wrong"),
            Some("Basic YWRtaW46d3Jvbmc="), // admin:wrong
            Some("Token t0ken-for-tests"),
        ] {
            let headers: Vec<(&str, &str)> =
                auth.map(|a| ("Authorization", a)).into_iter().collect();
            let r = request(web, "GET", url, &headers).await;
            assert_eq!(r.status, 401, "{url} with {auth:?}");
            let challenges = r.headers_named("www-authenticate");
            assert!(
                challenges.iter().any(|c| c.starts_with("Basic")),
                "{challenges:?}"
            );
            assert!(
                challenges.iter().any(|c| c.starts_with("Bearer")),
                "{challenges:?}"
            );
            assert!(r.json()["error"].is_string());
            assert!(!r.body.contains("WS-ALPHA"));
        }
        let bearer = format!("Bearer {TOKEN}");
        let r = request(web, "GET", url, &[("Authorization", &bearer)]).await;
        assert_eq!(r.status, 200, "{url} with the bearer token");
        // "anyone:t0ken-for-tests"
        let basic = "Basic YW55b25lOnQwa2VuLWZvci10ZXN0cw==";
        let r = request(web, "GET", url, &[("Authorization", basic)]).await;
        assert_eq!(r.status, 200, "{url} with basic auth");
    }
    // Probes stay open for orchestrators.
    assert_eq!(get(web, "/livez").await.status, 200);
    assert_ne!(get(web, "/readyz").await.status, 401);
    // The token is never shown.
    let bearer = format!("Bearer {TOKEN}");
    for url in ["/api/v1/config", "/settings"] {
        let r = request(web, "GET", url, &[("Authorization", &bearer)]).await;
        assert_eq!(r.status, 200);
        assert!(!r.body.contains(TOKEN), "{url} shows the token");
        assert!(r.body.contains("web-token"), "{url} lists the option");
    }
    let config = request(web, "GET", "/api/v1/config", &[("Authorization", &bearer)]).await;
    assert_eq!(config.json()["web"]["authentication"], "token");
}

/// A minimal Prometheus/OpenMetrics text parser: `# TYPE`/`# HELP`/`# UNIT`/`# EOF` lines and
/// samples `name{label="value",...} number`. Returns (types, samples).
#[allow(clippy::type_complexity)]
fn parse_prometheus(
    text: &str,
) -> (
    Vec<(String, String)>,
    Vec<(String, Vec<(String, String)>, f64)>,
) {
    let mut types = Vec::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut words = rest.splitn(3, ' ');
            match words.next().unwrap() {
                "TYPE" => {
                    let name = words.next().unwrap().to_owned();
                    let kind = words.next().unwrap().to_owned();
                    assert!(
                        [
                            "counter",
                            "gauge",
                            "histogram",
                            "info",
                            "summary",
                            "unknown",
                            "stateset",
                            "gaugehistogram"
                        ]
                        .contains(&kind.as_str()),
                        "{line}"
                    );
                    types.push((name, kind));
                }
                "HELP" | "UNIT" => {}
                "EOF" => {}
                other => panic!("unknown comment {other}: {line}"),
            }
            continue;
        }
        if line == "# EOF" {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_owned(), Vec::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("{line}"));
                let labels = body
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p.split_once('=').unwrap_or_else(|| panic!("{line}"));
                        let v = v
                            .strip_prefix('"')
                            .and_then(|v| v.strip_suffix('"'))
                            .unwrap_or_else(|| panic!("unquoted label in {line}"));
                        (k.to_owned(), v.to_owned())
                    })
                    .collect();
                (name.to_owned(), labels)
            }
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        samples.push((name, labels, value));
    }
    (types, samples)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_after_real_activations() {
    // The self-check aims at a closed port so that only the test's requests reach the server.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let host = start(Options {
        self_check_target: Some(dead),
        ..Options::default()
    })
    .await;
    activate_all(host.kms).await;
    // Each answer waits for its record at most --store-wait, and a request's duration is
    // observed once its answer is written: on a loaded machine the last record and duration
    // may be counted just after the client has its answer, so give the counters a moment.
    let mut r = get(host.web, "/metrics").await;
    for _ in 0..50 {
        let has = |line: &str| r.body.lines().any(|l| l == line);
        if has("rkms_store_written 6") && has("rkms_request_duration_seconds_count 6") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        r = get(host.web, "/metrics").await;
    }
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/openmetrics-text"));
    assert!(r.body.trim_end().ends_with("# EOF"));
    let (types, samples) = parse_prometheus(&r.body);
    let kind = |name: &str| {
        types
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, k)| k.as_str())
    };
    assert_eq!(kind("rkms_activations"), Some("counter"));
    assert_eq!(kind("rkms_refusals"), Some("counter"));
    assert_eq!(kind("rkms_connections_open"), Some("gauge"));
    assert_eq!(kind("rkms_request_duration_seconds"), Some("histogram"));
    assert_eq!(kind("rkms_store_write_errors"), Some("gauge"));
    assert_eq!(kind("rkms_build_info"), Some("gauge"));
    // Every sample belongs to a declared family.
    for (name, _, _) in &samples {
        assert!(
            types.iter().any(|(t, _)| name.starts_with(t.as_str())),
            "{name} has no # TYPE"
        );
    }
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        samples
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(_, _, v)| v)
            .sum()
    };
    let activated = |protocol, family| {
        value(
            "rkms_activations_total",
            &[
                ("protocol", protocol),
                ("family", family),
                ("result", "activated"),
            ],
        )
    };
    assert_eq!(activated("6", "windows-client"), 2.0);
    assert_eq!(activated("4", "windows-client"), 1.0);
    assert_eq!(activated("6", "windows-server"), 1.0);
    assert_eq!(activated("5", "office"), 1.0);
    assert_eq!(
        value("rkms_activations_total", &[("result", "refused")]),
        1.0
    );
    assert_eq!(
        value("rkms_refusals_total", &[("reason", "kms_id_not_served")]),
        1.0
    );
    assert_eq!(value("rkms_request_duration_seconds_count", &[]), 6.0);
    assert_eq!(value("rkms_store_written", &[]), 6.0);
    assert_eq!(value("rkms_store_write_errors", &[]), 0.0);
    assert_eq!(
        value("rkms_build_info", &[("version", env!("CARGO_PKG_VERSION"))]),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_needs_listeners_store_and_a_recent_self_check() {
    let host = start(Options {
        self_check: Some(Duration::from_millis(300)),
        ..Options::default()
    })
    .await;
    let web = host.web;
    let r = wait_ready(web).await;
    assert_eq!(r.json()["status"], "ready");
    // The self-check went through the real protocol but left no trace in the store.
    let clients = get(web, "/api/v1/clients").await.json();
    assert_eq!(clients["total"], 0);
    assert_eq!(
        host.state
            .store
            .as_ref()
            .unwrap()
            .recent_activations(10)
            .unwrap()
            .len(),
        0
    );
    host.state.health.set_listeners_bound(false);
    let r = get(web, "/readyz").await;
    assert_eq!(r.status, 503);
    let body = r.json();
    assert_eq!(body["status"], "not ready");
    assert!(
        body["reason"].as_str().unwrap().contains("listeners"),
        "{body}"
    );
    host.state.health.set_listeners_bound(true);
    assert_eq!(get(web, "/readyz").await.status, 200);
    assert_eq!(get(web, "/livez").await.json()["status"], "alive");

    // A self-check against a port where nothing listens never succeeds.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let host = start(Options {
        self_check: Some(Duration::from_millis(200)),
        self_check_target: Some(dead),
        ..Options::default()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let r = get(host.web, "/readyz").await;
    assert_eq!(r.status, 503);
    let reason = r.json()["reason"].as_str().unwrap().to_owned();
    assert!(reason.contains("self_check"), "{reason}");
    assert!(reason.contains("cannot connect"), "{reason}");
    let overview = get(host.web, "/").await;
    assert!(overview.body.contains("Not ready"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_while_the_store_is_read_only() {
    let dir = std::env::temp_dir().join(format!("rkms-web-ro-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("clients.db");
    drop(rkms_store::SqliteStore::open(&path).unwrap());
    let store = rkms_store::SqliteStore::open_read_only(&path).unwrap();
    let host = start(Options {
        self_check: Some(Duration::from_millis(200)),
        store: Some(std::sync::Arc::new(store)),
        ..Options::default()
    })
    .await;
    // Poll until both probes have run (the self-check's timing depends on machine load).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let body = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let r = get(host.web, "/readyz").await;
        assert_eq!(r.status, 503, "{}", r.body);
        let body = r.json();
        let ran = |name: &str| {
            body["checks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["name"] == name && c["ok"] == (name == "self_check"))
        };
        if (ran("store") && ran("self_check")) || std::time::Instant::now() > deadline {
            break body;
        }
    };
    let store_check = body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "store")
        .unwrap()
        .clone();
    assert_eq!(store_check["ok"], false, "{body}");
    assert!(
        body["reason"].as_str().unwrap().contains("not writable"),
        "{body}"
    );
    let self_check = body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "self_check")
        .unwrap()
        .clone();
    assert_eq!(self_check["ok"], true, "activations continue: {body}");
    drop(host);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_feed_follows_new_activations() {
    let host = start(Options::default()).await;
    let first = get(host.web, "/api/v1/activations").await.json();
    assert_eq!(first["activations"].as_array().unwrap().len(), 0);
    let overview = get(host.web, "/").await;
    assert!(overview
        .body
        .contains("data-src=\"/api/v1/activations?limit=20\""));
    assert!(overview.body.contains("No activations yet."));
    let c = &web_common::clients()[3];
    assert!(web_common::activate(host.kms, c).await);
    let feed = get(host.web, "/api/v1/activations").await.json();
    let feed = feed["activations"].as_array().unwrap();
    assert_eq!(feed.len(), 1);
    assert_eq!(feed[0]["workstation"], "SRV-BRAVO");
    assert_eq!(feed[0]["family"], "windows-server");
    assert_eq!(feed[0]["protocol"], "6.0");
}

#[test]
fn the_dashboard_needs_a_token_off_loopback() {
    use rkms::web::needs_token;
    let any: std::net::SocketAddr = "0.0.0.0:8080".parse().unwrap();
    let e = needs_token(any, false, None).unwrap_err();
    assert!(
        e.contains("--web-token") && e.contains("--web-public"),
        "{e}"
    );
    assert!(needs_token(any, false, Some(TOKEN)).is_ok());
    assert!(needs_token(any, true, None).is_ok());
    assert!(needs_token("[::1]:8080".parse().unwrap(), false, None).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_is_reported_not_fatal() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap();
    let e = rkms::web::bind(addr).await.unwrap_err();
    assert!(
        e.contains("dashboard is off") && e.contains(&addr.to_string()),
        "{e}"
    );
    assert!(e.contains("--web"), "{e}");
}

/// More than 10,000 records match a search: the clients page and the API say the count
/// stopped ("more than", `total_is_lower_bound`), the pages still go on, and the unfiltered
/// total stays exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_stop_at_ten_thousand_matches_and_say_so() {
    use std::sync::Arc;

    use rkms_store::{Activation, ClientRecord, ClientStore, SqliteStore, MATCH_COUNT_LIMIT};
    use uuid::Uuid;

    let dir = std::env::temp_dir().join(format!("rkms-web-capped-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = SqliteStore::open(&dir.join("clients.db")).unwrap();
    let n = MATCH_COUNT_LIMIT + 50;
    let now = rkms::clock::now_unix();
    let records: Vec<ClientRecord> = (0..n)
        .map(|i| {
            ClientRecord::from_activation(&Activation {
                cmid: Uuid::from_u128(u128::from(i) << 64 | 1),
                application_id: Uuid::parse_str("55c92734-d682-4d71-983e-d6ec3f16059f").unwrap(),
                sku_id: Uuid::parse_str("2de67392-b7a7-462a-b1ca-108dd189f588").unwrap(),
                kms_id: Uuid::parse_str("58e2134f-8e11-4d17-9cb2-91069c151148").unwrap(),
                workstation: format!("BULK-{i:05}"),
                license_status: 1,
                grace_minutes: 0,
                is_vm: false,
                protocol: "6.0".into(),
                time: now - 60 - i as i64,
                address: "192.0.2.9:1688".into(),
                epid: String::new(),
                hresult: 0,
            })
        })
        .collect();
    store.import(&records, &[]).unwrap();
    let host = start(Options {
        store: Some(Arc::new(store) as Arc<dyn ClientStore>),
        ..Options::default()
    })
    .await;
    let web = host.web;
    let doc = openapi();

    let r = get(web, "/api/v1/clients?q=bulk-&limit=2").await;
    assert_eq!(r.status, 200, "{}", r.body);
    check_against_openapi(&doc, "/api/v1/clients", &r);
    let body = r.json();
    assert_eq!(body["total"], MATCH_COUNT_LIMIT + 1);
    assert_eq!(body["total_is_lower_bound"], true);
    assert_eq!(body["clients"].as_array().unwrap().len(), 2);
    // Beyond the count: the list goes on to the last match.
    let r = get(
        web,
        &format!("/api/v1/clients?q=bulk-&limit=100&offset={}", n - 10),
    )
    .await;
    assert_eq!(r.json()["clients"].as_array().unwrap().len(), 10);
    // A search matching a few is counted exactly.
    let r = get(web, "/api/v1/clients?q=bulk-0001").await;
    assert_eq!(r.json()["total"], 10);
    assert_eq!(r.json()["total_is_lower_bound"], false);
    // No filter: exact.
    let r = get(web, "/api/v1/clients?limit=1").await;
    assert_eq!(r.json()["total"], n);
    assert_eq!(r.json()["total_is_lower_bound"], false);

    let r = get(web, "/clients?q=bulk-").await;
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("More than 10000 client records"),
        "{}",
        r.body
    );
    assert!(r.body.contains("of at least 201"), "{}", r.body);
    assert!(r.body.contains("page=2"), "no next page: {}", r.body);
    let r = get(web, "/clients").await;
    assert!(
        r.body.contains(&format!("{n} client records")),
        "{}",
        r.body
    );
    drop(host);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A host whose store holds machines last activated at chosen times (relative to now, an
/// hour later so whole days do not tick over during the test).
async fn fleet_host() -> (web_common::Host, Vec<(&'static str, uuid::Uuid)>) {
    use rkms_store::{Activation, ClientStore, MemoryStore};
    use uuid::Uuid;
    const DAY: i64 = 86_400;
    let now = rkms::clock::now_unix();
    let windows = (
        Uuid::parse_str("55c92734-d682-4d71-983e-d6ec3f16059f").unwrap(),
        Uuid::parse_str("2de67392-b7a7-462a-b1ca-108dd189f588").unwrap(),
        Uuid::parse_str("58e2134f-8e11-4d17-9cb2-91069c151148").unwrap(),
    );
    let office = (
        Uuid::parse_str("0ff1ce15-a989-479d-af46-f275c6370663").unwrap(),
        Uuid::parse_str("85dd8b5f-eaf4-4af3-a628-cce9e77c9a03").unwrap(),
        Uuid::parse_str("617d9eb1-ef36-4f82-86e0-a65ae07b96c6").unwrap(),
    );
    let store = std::sync::Arc::new(MemoryStore::new());
    let mut machines = Vec::new();
    let mut add = |name: &'static str, product: (Uuid, Uuid, Uuid), days_ago: i64, hresult: u32| {
        let cmid = Uuid::from_u128(0x000f_1ee7_0000 + machines.len() as u128);
        if !machines.iter().any(|(n, _)| *n == name) {
            machines.push((name, cmid));
        }
        let cmid = machines.iter().find(|(n, _)| *n == name).unwrap().1;
        store
            .record(&Activation {
                cmid,
                application_id: product.0,
                sku_id: product.1,
                kms_id: product.2,
                workstation: name.into(),
                license_status: 1,
                grace_minutes: 0,
                is_vm: false,
                protocol: "6.0".into(),
                time: now - days_ago * DAY + 3600,
                address: "192.0.2.9:50000".into(),
                epid: String::new(),
                hresult,
            })
            .unwrap();
    };
    add("FLEET-CURRENT", windows, 1, 0);
    add("FLEET-OVERDUE", windows, 20, 0);
    add("FLEET-RISK-SOONER", windows, 170, 0);
    add("FLEET-RISK-LATER", office, 160, 0);
    add("FLEET-LAPSED", windows, 200, 0);
    add("FLEET-FAILING", windows, 3, 0);
    add("FLEET-FAILING", windows, 1, 0xC004_F038);
    // The self-check aims at a closed port: only these records are in the store.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let host = start(Options {
        store: Some(store),
        self_check_target: Some(dead),
        ..Options::default()
    })
    .await;
    (host, machines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_health_at_chosen_times() {
    let (host, machines) = fleet_host().await;
    let web = host.web;
    let doc = openapi();
    let cmid = |name: &str| machines.iter().find(|(n, _)| *n == name).unwrap().1;

    // Counts per state, in all and per family.
    let r = get(web, "/api/v1/fleet").await;
    assert_eq!(r.status, 200);
    check_against_openapi(&doc, "/api/v1/fleet", &r);
    let fleet = r.json();
    assert_eq!(
        fleet["states"],
        json!({"current": 1, "overdue": 1, "at-risk": 2, "lapsed": 1, "failing": 1})
    );
    assert_eq!(fleet["total"], 6);
    assert_eq!(fleet["renewal_interval_minutes"], 10080);
    let family = |name: &str| {
        fleet["families"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["family"] == name)
            .unwrap()["states"]
            .clone()
    };
    assert_eq!(
        family("windows-client"),
        json!({"current": 1, "overdue": 1, "at-risk": 1, "lapsed": 1, "failing": 1})
    );
    assert_eq!(
        family("office"),
        json!({"current": 0, "overdue": 0, "at-risk": 1, "lapsed": 0, "failing": 0})
    );

    // The at-risk list, soonest to expire first, with states and expiry dates.
    let r = get(web, "/api/v1/clients?state=at-risk").await;
    assert_eq!(r.status, 200);
    check_against_openapi(&doc, "/api/v1/clients", &r);
    let page = r.json();
    assert_eq!(page["total"], 2);
    let clients = page["clients"].as_array().unwrap();
    let names: Vec<&str> = clients
        .iter()
        .map(|c| c["workstation"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["FLEET-RISK-SOONER", "FLEET-RISK-LATER"]);
    assert_eq!(clients[0]["state"], "at-risk");
    assert_eq!(clients[0]["days_to_expiry"], 10);
    assert_eq!(clients[1]["days_to_expiry"], 20);
    let expires = clients[0]["expires"].as_str().unwrap();
    let last = clients[0]["last_activated"].as_i64().unwrap();
    assert_eq!(expires, rkms::clock::iso8601(last + 180 * 86_400));
    // Every state lists exactly its machines; every client object carries its state.
    for (state, names) in [
        ("current", vec!["FLEET-CURRENT"]),
        ("overdue", vec!["FLEET-OVERDUE"]),
        ("lapsed", vec!["FLEET-LAPSED"]),
        ("failing", vec!["FLEET-FAILING"]),
    ] {
        let page = get(web, &format!("/api/v1/clients?state={state}"))
            .await
            .json();
        let got: Vec<&str> = page["clients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["workstation"].as_str().unwrap())
            .collect();
        assert_eq!(got, names, "{state}");
        assert!(page["clients"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["state"] == state));
    }
    // A refused renewal keeps the activation it had.
    let failing = get(web, &format!("/api/v1/clients/{}", cmid("FLEET-FAILING")))
        .await
        .json();
    let record = &failing["records"][0];
    assert_eq!(record["state"], "failing");
    assert_eq!(
        record["last_activated"].as_i64().unwrap(),
        record["last_seen"].as_i64().unwrap() - 2 * 86_400
    );
    assert_eq!(record["days_to_expiry"], 177);
    // The whole list by expiry, ascending: the oldest activation first.
    let all = get(web, "/api/v1/clients?sort=expires").await.json();
    assert_eq!(all["clients"][0]["workstation"], "FLEET-LAPSED");

    // Pages: the overview panel, the filtered list, the client's expiry date.
    let r = get(web, "/").await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Fleet health"), "{}", r.body);
    assert!(r.body.contains("id=\"fleet-at-risk\">2<"), "{}", r.body);
    assert!(r.body.contains("href=\"/clients?state=lapsed\""));
    let r = get(web, "/clients?state=at-risk").await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("FLEET-RISK-SOONER") && r.body.contains("FLEET-RISK-LATER"));
    assert!(!r.body.contains("FLEET-CURRENT"));
    assert!(r.body.contains("<option value=\"at-risk\" selected>"));
    assert!(r.body.contains("in 10 days"), "{}", r.body);
    assert!(r.body.find("FLEET-RISK-SOONER").unwrap() < r.body.find("FLEET-RISK-LATER").unwrap());
    let r = get(web, "/clients?state=bogus").await;
    assert_eq!(r.status, 400);
    let r = get(web, &format!("/clients/{}", cmid("FLEET-RISK-SOONER"))).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains(&expires[..10]), "{}", r.body);
    assert!(r.body.contains("at-risk"));

    // Prometheus gauges.
    let r = get(web, "/metrics").await;
    let (types, samples) = parse_prometheus(&r.body);
    assert!(types.contains(&("rkms_clients".into(), "gauge".into())));
    assert!(types.contains(&("rkms_clients_by_family".into(), "gauge".into())));
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        samples
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && l.len() == labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(_, _, v)| v)
            .sum()
    };
    assert_eq!(value("rkms_clients", &[("state", "at-risk")]), 2.0);
    assert_eq!(value("rkms_clients", &[("state", "current")]), 1.0);
    assert_eq!(
        value(
            "rkms_clients_by_family",
            &[("family", "office"), ("state", "at-risk")]
        ),
        1.0
    );
    assert_eq!(
        value(
            "rkms_clients_by_family",
            &[("family", "windows-server"), ("state", "current")]
        ),
        0.0
    );
    assert!(r.body.trim_end().ends_with("# EOF"));
}

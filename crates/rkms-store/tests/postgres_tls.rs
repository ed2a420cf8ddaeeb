//! PostgreSQL over TLS: every `sslmode`, `sslrootcert`, and client-certificate
//! authentication, against throw-away servers (one with `ssl = on` and certificates made here,
//! one without TLS) that the test starts itself (see tls_server/mod.rs).
//!
//! Needs PostgreSQL's server binaries (`initdb`, `pg_ctl`, `psql`; CI installs them through
//! scripts/with-postgres.sh). Without them every test is reported as ignored, not passed.

mod common;
mod tls_server;

use std::sync::{Arc, Mutex};

use libtest_mimic::{Arguments, Failed, Trial};
use rkms_store::{ClientStore, PgStore, StoreError};

use common::{activation, id};
use tls_server::{find_bindir, Certs, PgServer};

/// The servers and certificates the tests share, started by the first test that needs them.
struct Env {
    certs: Certs,
    tls: PgServer,
}

static ENV: Mutex<Option<Arc<Env>>> = Mutex::new(None);
static PLAIN: Mutex<Option<Arc<PgServer>>> = Mutex::new(None);

fn env() -> Arc<Env> {
    let mut guard = ENV.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(env) = guard.as_ref() {
        return env.clone();
    }
    let bindir = find_bindir().expect("PostgreSQL server binaries (initdb, pg_ctl) not found");
    let certs = Certs::new();
    let tls = PgServer::start(&bindir, Some(&certs)).unwrap_or_else(|e| panic!("{e}"));
    let env = Arc::new(Env { certs, tls });
    *guard = Some(env.clone());
    env
}

fn plain_server() -> Arc<PgServer> {
    let mut guard = PLAIN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = guard.as_ref() {
        return s.clone();
    }
    let bindir = find_bindir().expect("PostgreSQL server binaries (initdb, pg_ctl) not found");
    let server = Arc::new(PgServer::start(&bindir, None).unwrap_or_else(|e| panic!("{e}")));
    *guard = Some(server.clone());
    server
}

/// A query string: `?` then `parts` joined by `&`, with a unique `application_name` (to find
/// the store's connections in pg_stat_ssl) and a fresh schema name via `options`.
fn query(app: &str, parts: &[String]) -> String {
    let mut all = vec![
        format!("application_name={app}"),
        format!("options=-csearch_path%3D{app}"),
        "connect_timeout=10".to_string(),
    ];
    all.extend(parts.iter().cloned());
    format!("?{}", all.join("&"))
}

/// Opens a store on `url`, writes and counts one record: the store works end to end.
fn use_store(url: &str) -> Result<PgStore, StoreError> {
    let store = PgStore::open(url)?;
    store.record(&activation(id(1), id(0xa), 100))?;
    assert_eq!(store.count()?, 1);
    Ok(store)
}

fn check(ok: bool, message: impl Into<String>) -> Result<(), Failed> {
    let message: String = message.into();
    if ok {
        Ok(())
    } else {
        Err(message.into())
    }
}

fn verify_full_by_address_and_by_name() -> Result<(), Failed> {
    let env = env();
    let ca = format!("sslrootcert={}", env.certs.ca.display());
    for (host, app) in [("127.0.0.1", "vf_ip"), ("localhost", "vf_name")] {
        let url = env.tls.url(
            host,
            &query(app, &["sslmode=verify-full".into(), ca.clone()]),
        );
        env.tls.schema(app);
        let store = use_store(&url).map_err(|e| format!("{host}: {e}"))?;
        let tls = env.tls.tls_in_use(app);
        check(
            !tls.is_empty() && tls.iter().all(|t| *t),
            format!("{host}: TLS {tls:?}"),
        )?;
        check(
            store.target()
                == format!(
                    "postgres://rkms_test@{host}:{}/rkms_test?sslmode=verify-full&sslrootcert={}",
                    env.tls.port,
                    env.certs.ca.display()
                ),
            store.target().to_string(),
        )?;
        // The read-only opening (`rkms clients`) uses the same settings.
        let reader = PgStore::open_read_only(&url)?;
        check(reader.count()? == 1, "read-only count")?;
    }
    Ok(())
}

fn verify_ca_checks_the_chain_not_the_name() -> Result<(), Failed> {
    let env = env();
    let ca = format!("sslrootcert={}", env.certs.ca.display());
    // The certificate is for localhost and 127.0.0.1, not for db.invalid.
    let host = "db.invalid";
    let addr = "hostaddr=127.0.0.1".to_string();
    let url = env.tls.url(
        host,
        &query(
            "vca",
            &["sslmode=verify-ca".into(), ca.clone(), addr.clone()],
        ),
    );
    env.tls.schema("vca");
    use_store(&url).map_err(|e| format!("verify-ca: {e}"))?;
    check(
        env.tls.tls_in_use("vca").iter().all(|t| *t),
        "verify-ca TLS",
    )?;

    let url = env.tls.url(
        host,
        &query("vfull_bad", &["sslmode=verify-full".into(), ca, addr]),
    );
    let e = PgStore::open(&url).unwrap_err();
    let text = e.to_string();
    check(
        matches!(e, StoreError::Unavailable { .. })
            && text.contains("does not match the host name")
            && text.contains("db.invalid")
            && !text.contains(&env.tls.password),
        text,
    )
}

fn a_wrong_ca_is_refused() -> Result<(), Failed> {
    let env = env();
    let other = format!("sslrootcert={}", env.certs.other_ca.display());
    for mode in ["verify-full", "verify-ca", "require", "prefer"] {
        let url = env.tls.url(
            "127.0.0.1",
            &query("wrong_ca", &[format!("sslmode={mode}"), other.clone()]),
        );
        let e = PgStore::open(&url).unwrap_err();
        let text = e.to_string();
        check(
            matches!(e, StoreError::Unavailable { .. })
                && text.contains("the server's certificate is not trusted")
                && text.contains(&env.certs.other_ca.display().to_string())
                && !text.contains(&env.tls.password),
            format!("{mode}: {text}"),
        )?;
    }
    // No sslrootcert under verify-full: the system's roots, which do not hold the test CA.
    let url = env.tls.url(
        "127.0.0.1",
        &query("sys_ca", &["sslmode=verify-full".into()]),
    );
    let text = PgStore::open(&url).unwrap_err().to_string();
    check(
        text.contains("not trusted") || text.contains("no system root certificates"),
        text,
    )
}

fn require_and_prefer_encrypt_disable_does_not() -> Result<(), Failed> {
    let env = env();
    for (mode, app, want_tls) in [
        ("require", "m_require", true),
        ("prefer", "m_prefer", true),
        ("disable", "m_disable", false),
    ] {
        env.tls.schema(app);
        let url = env
            .tls
            .url("127.0.0.1", &query(app, &[format!("sslmode={mode}")]));
        let _store = use_store(&url).map_err(|e| format!("{mode}: {e}"))?;
        let tls = env.tls.tls_in_use(app);
        check(
            !tls.is_empty() && tls.iter().all(|t| *t == want_tls),
            format!("{mode}: TLS {tls:?}"),
        )?;
    }
    // No sslmode at all is prefer.
    env.tls.schema("m_default");
    let url = env.tls.url("127.0.0.1", &query("m_default", &[]));
    let _store = use_store(&url)?;
    let tls = env.tls.tls_in_use("m_default");
    check(
        !tls.is_empty() && tls.iter().all(|t| *t),
        format!("default is prefer: TLS {tls:?}"),
    )
}

fn require_against_a_server_without_tls_fails() -> Result<(), Failed> {
    let server = plain_server();
    for mode in ["require", "verify-ca", "verify-full"] {
        let env = env();
        let url = server.url(
            "127.0.0.1",
            &query(
                "no_tls",
                &[
                    format!("sslmode={mode}"),
                    format!("sslrootcert={}", env.certs.ca.display()),
                ],
            ),
        );
        let e = PgStore::open(&url).unwrap_err();
        let text = e.to_string();
        check(
            matches!(e, StoreError::Unavailable { .. })
                && text.contains("does not accept TLS connections")
                && text.contains(&format!("sslmode={mode}"))
                && !text.contains(&server.password),
            format!("{mode}: {text}"),
        )?;
    }
    // prefer falls back to a plain connection, as libpq does.
    server.schema("plain_prefer");
    let url = server.url(
        "127.0.0.1",
        &query("plain_prefer", &["sslmode=prefer".into()]),
    );
    let _store = use_store(&url)?;
    let tls = server.tls_in_use("plain_prefer");
    check(
        !tls.is_empty() && tls.iter().all(|t| !*t),
        format!("plain: TLS {tls:?}"),
    )
}

fn client_certificate_authentication() -> Result<(), Failed> {
    let env = env();
    let c = &env.certs;
    let ca = format!("sslrootcert={}", c.ca.display());
    let cert = format!("sslcert={}", c.client_cert.display());
    let key = format!("sslkey={}", c.client_key.display());
    // pg_hba.conf: `hostssl all rkms_cert 127.0.0.1/32 cert`; no password is given.
    let url = env.tls.cert_url(
        "localhost",
        &query(
            "public",
            &[
                "sslmode=verify-full".into(),
                ca.clone(),
                cert.clone(),
                key.clone(),
            ],
        ),
    );
    let store = use_store(&url).map_err(|e| format!("client certificate: {e}"))?;
    drop(store);

    // Without a certificate, the server refuses the login.
    let url = env.tls.cert_url(
        "localhost",
        &query("public", &["sslmode=verify-full".into(), ca.clone()]),
    );
    let text = PgStore::open(&url).unwrap_err().to_string();
    check(
        text.contains("connection requires a valid client certificate"),
        format!("no client cert: {text}"),
    )?;

    // A certificate from a CA the server does not trust: the handshake fails.
    let url = env.tls.cert_url(
        "localhost",
        &query(
            "public",
            &[
                "sslmode=verify-full".into(),
                ca.clone(),
                format!("sslcert={}", c.stranger_cert.display()),
                format!("sslkey={}", c.stranger_key.display()),
            ],
        ),
    );
    let text = PgStore::open(&url).unwrap_err().to_string();
    check(
        text.contains("the server does not accept the client certificate"),
        format!("untrusted client cert: {text}"),
    )?;

    // A key that is not the certificate's: refused before connecting, naming both files and
    // quoting neither.
    let url = env.tls.cert_url(
        "localhost",
        &query(
            "public",
            &[
                "sslmode=verify-full".into(),
                ca.clone(),
                cert.clone(),
                format!("sslkey={}", c.stranger_key.display()),
            ],
        ),
    );
    let e = PgStore::open(&url).unwrap_err();
    let text = e.to_string();
    let key_pem = std::fs::read_to_string(&c.stranger_key).unwrap();
    let key_body = key_pem.lines().nth(1).unwrap();
    check(
        matches!(e, StoreError::Open { .. })
            && text.contains("is not the private key of the certificate")
            && !text.contains(key_body),
        format!("mismatched key: {text}"),
    )?;

    // A file that holds no key.
    let url = env.tls.cert_url(
        "localhost",
        &query(
            "public",
            &[
                "sslmode=verify-full".into(),
                ca,
                cert,
                format!("sslkey={}", c.ca.display()),
            ],
        ),
    );
    let text = PgStore::open(&url).unwrap_err().to_string();
    check(
        text.contains("no private key in the file"),
        format!("bad key: {text}"),
    )
}

fn stores_on_two_connections_share_the_count() -> Result<(), Failed> {
    // Two stores (as two hosts would hold) on one database over verified TLS.
    let env = env();
    env.tls.schema("shared");
    let q = query(
        "shared",
        &[
            "sslmode=verify-full".into(),
            format!("sslrootcert={}", env.certs.ca.display()),
        ],
    );
    let a = PgStore::open(&env.tls.url("127.0.0.1", &q))?;
    let b = PgStore::open(&env.tls.url("localhost", &q))?;
    a.record(&activation(id(1), id(0xa), 100))?;
    b.record(&activation(id(2), id(0xa), 100))?;
    check(a.count()? == 2 && b.count()? == 2, "shared count")?;
    check(a.distinct_clients_since(&id(0xa), 0)? == 2, "distinct")
}

type TestFn = fn() -> Result<(), Failed>;

fn main() {
    let args = Arguments::from_args();
    let tests: [(&str, TestFn); 7] = [
        (
            "verify_full_by_address_and_by_name",
            verify_full_by_address_and_by_name,
        ),
        (
            "verify_ca_checks_the_chain_not_the_name",
            verify_ca_checks_the_chain_not_the_name,
        ),
        ("a_wrong_ca_is_refused", a_wrong_ca_is_refused),
        (
            "require_and_prefer_encrypt_disable_does_not",
            require_and_prefer_encrypt_disable_does_not,
        ),
        (
            "require_against_a_server_without_tls_fails",
            require_against_a_server_without_tls_fails,
        ),
        (
            "client_certificate_authentication",
            client_certificate_authentication,
        ),
        (
            "stores_on_two_connections_share_the_count",
            stores_on_two_connections_share_the_count,
        ),
    ];
    let missing = find_bindir().is_none();
    if missing {
        eprintln!(
            "PostgreSQL server binaries (initdb, pg_ctl, psql) not found: the TLS tests are \
             ignored (install PostgreSQL, e.g. through scripts/with-postgres.sh)"
        );
    }
    let trials = tests
        .into_iter()
        .map(|(name, f)| Trial::test(name, f).with_ignored_flag(missing))
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    // Stop the servers (their directories are removed too).
    drop(ENV.lock().unwrap_or_else(|e| e.into_inner()).take());
    drop(PLAIN.lock().unwrap_or_else(|e| e.into_inner()).take());
    conclusion.exit();
}

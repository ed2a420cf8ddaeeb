//! The PostgreSQL store: connection strings and errors (without a server), and, when
//! `RKMS_TEST_POSTGRES` names a database (`scripts/with-postgres.sh` starts one), migrations
//! under concurrent start-up, refused schemas, read-only opening, several hosts on one
//! database, reconnection, outages under load through the `Writer`, and copies from SQLite.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use common::{activation, id, PgSchema, TempDir};
use rkms_store::pg_schema::{PG_MIGRATIONS, VERSION_TABLE};
use rkms_store::{
    copy_all, open_store, open_store_read_only, Activation, ClientFilter, ClientStore, PgStore,
    SqliteStore, StoreError, Writer, WriterOptions, SCHEMA_VERSION,
};

// ---------------------------------------------------------------------------------------------
// Without a server

#[test]
fn unreachable_server_is_unavailable_and_the_password_never_shown() {
    let url = "postgres://rkms:s3cret-pw@127.0.0.1:1/rkms?connect_timeout=2";
    let e = PgStore::open(url).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, StoreError::Unavailable { .. }), "{e:?}");
    assert!(e.is_transient());
    assert!(text.contains("postgres://rkms@127.0.0.1:1/rkms"), "{text}");
    assert!(!text.contains("s3cret-pw"), "{text}");
    assert!(!format!("{e:?}").contains("s3cret-pw"));

    // open_store dispatches both schemes to PostgreSQL.
    for scheme in ["postgres", "postgresql"] {
        let Err(e) = open_store(&format!(
            "{scheme}://u:s3cret-pw@127.0.0.1:1/d?connect_timeout=2"
        )) else {
            panic!("opened");
        };
        assert!(
            matches!(e, StoreError::Unavailable { .. }),
            "{scheme}: {e:?}"
        );
        let Err(e) = open_store_read_only(&format!("{scheme}://u@127.0.0.1:1/d?connect_timeout=2"))
        else {
            panic!("opened");
        };
        assert!(
            matches!(e, StoreError::Unavailable { .. }),
            "{scheme}: {e:?}"
        );
    }
}

#[test]
fn bad_connection_string_is_refused_without_the_password() {
    let e = PgStore::open("postgres://rkms:s3cret-pw@db:notaport/rkms").unwrap_err();
    assert!(matches!(e, StoreError::Open { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("invalid PostgreSQL connection string"),
        "{text}"
    );
    assert!(!text.contains("s3cret-pw"), "{text}");
}

#[test]
fn bad_tls_settings_are_refused_up_front() {
    // (Connections over TLS are tested in postgres_tls.rs.)
    let e = PgStore::open("postgres://u:s3cret-pw@db.example/d?sslmode=verify").unwrap_err();
    assert!(matches!(e, StoreError::Open { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("invalid sslmode") && !text.contains("s3cret-pw"),
        "{text}"
    );
    let e = PgStore::open(
        "postgres://u:s3cret-pw@db.example/d?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
    )
    .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("cannot read sslrootcert /nonexistent/ca.pem")
            && text.contains("postgres://u@db.example:5432/d?sslmode=verify-full")
            && !text.contains("s3cret-pw"),
        "{text}"
    );
}

#[test]
fn calls_from_inside_an_async_runtime_do_not_panic() {
    // (A plain `postgres::Client`, as the test helpers use, would panic in there.)
    let schema = PgSchema::new("async");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let e = PgStore::open("postgres://u:p@127.0.0.1:1/d?connect_timeout=2").unwrap_err();
        assert!(matches!(e, StoreError::Unavailable { .. }));
        let Some(schema) = &schema else {
            return;
        };
        // Open, write, read and drop (closing the connections) on a runtime thread.
        let store = PgStore::open(schema.url()).unwrap();
        store.record(&activation(id(1), id(0xa), 100)).unwrap();
        assert_eq!(store.count().unwrap(), 1);
        drop(store);
    });
}

// ---------------------------------------------------------------------------------------------
// With a server

/// Every schema version, 1 to [`SCHEMA_VERSION`].
fn all_versions() -> Vec<i32> {
    (1..=SCHEMA_VERSION as i32).collect()
}

fn versions(schema: &PgSchema) -> Vec<i32> {
    schema
        .client()
        .query(
            &format!("SELECT version FROM {VERSION_TABLE} ORDER BY version"),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[cfg_attr(
    not(rkms_test_postgres),
    ignore = "needs PostgreSQL: set RKMS_TEST_POSTGRES (scripts/with-postgres.sh does)"
)]
#[test]
fn new_database_is_migrated_to_the_latest_version() {
    let Some(schema) = PgSchema::new("fresh") else {
        return;
    };
    let store = PgStore::open(schema.url()).unwrap();
    assert_eq!(store.schema_version(), SCHEMA_VERSION);
    assert_eq!(store.migrated_from(), 0);
    assert_eq!(versions(&schema), all_versions());
    assert!(!store.target().contains(':') || !store.target().contains("rkms_test:"));
    drop(store);
    let again = PgStore::open(schema.url()).unwrap();
    assert_eq!(again.migrated_from(), SCHEMA_VERSION);
    assert_eq!(versions(&schema), all_versions());
    // The tables are in the test's schema, not in public.
    let n: i64 = schema
        .client()
        .query_one(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = $1",
            &[&schema.name()],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        n, 6,
        "clients, activations, activation_days, client_search, client_totals, {VERSION_TABLE}"
    );
}

#[cfg_attr(
    not(rkms_test_postgres),
    ignore = "needs PostgreSQL: set RKMS_TEST_POSTGRES (scripts/with-postgres.sh does)"
)]
#[test]
fn concurrent_startups_migrate_exactly_once() {
    let Some(schema) = PgSchema::new("concurrent") else {
        return;
    };
    let barrier = Barrier::new(8);
    let from: Vec<u32> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let store = PgStore::open(schema.url()).unwrap();
                    assert_eq!(store.schema_version(), SCHEMA_VERSION);
                    store.migrated_from()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(from.iter().filter(|&&v| v == 0).count(), 1, "{from:?}");
    assert_eq!(
        from.iter().filter(|&&v| v == SCHEMA_VERSION).count(),
        7,
        "{from:?}"
    );
    assert_eq!(versions(&schema), all_versions());
    // And the schema works.
    let store = PgStore::open(schema.url()).unwrap();
    store.record(&activation(id(1), id(0xa), 100)).unwrap();
    assert_eq!(store.count().unwrap(), 1);
}

#[cfg_attr(
    not(rkms_test_postgres),
    ignore = "needs PostgreSQL: set RKMS_TEST_POSTGRES (scripts/with-postgres.sh does)"
)]
#[test]
fn migrates_an_older_schema_keeping_rows() {
    let Some(schema) = PgSchema::new("v1") else {
        return;
    };
    let mut c = schema.client();
    c.batch_execute(&format!(
        "CREATE TABLE {VERSION_TABLE} (version integer PRIMARY KEY, description text NOT NULL,
                                       applied_at timestamptz NOT NULL DEFAULT now());
         INSERT INTO {VERSION_TABLE} (version, description) VALUES (1, 'v1');"
    ))
    .unwrap();
    c.batch_execute(PG_MIGRATIONS[0].sql).unwrap();
    c.execute(
        "INSERT INTO clients VALUES ($1, $2, $3, $4, 'OLD-PC', 1, '6.0', 10, 20, 3, \
         '192.0.2.1:5000', 'epid')",
        &[&id(1), &common::windows_app(), &id(0x5c), &id(0xa)],
    )
    .unwrap();
    let store = PgStore::open(schema.url()).unwrap();
    assert_eq!(store.migrated_from(), 1);
    assert_eq!(versions(&schema), all_versions());
    let r = &store.list(&ClientFilter::default()).unwrap()[0];
    assert_eq!(
        (
            r.workstation.as_str(),
            r.requests,
            r.first_seen,
            r.last_seen
        ),
        ("OLD-PC", 3, 10, 20)
    );
    assert_eq!((r.is_vm, r.grace_minutes, r.last_hresult), (false, 0, 0));
    assert_eq!(store.distinct_clients_since(&id(0xa), 0).unwrap(), 1);
    assert_eq!(store.activations_since(i64::MIN).unwrap(), 0);
}

#[cfg_attr(
    not(rkms_test_postgres),
    ignore = "needs PostgreSQL: set RKMS_TEST_POSTGRES (scripts/with-postgres.sh does)"
)]
#[test]
fn migrates_a_v3_database_with_data_keeping_every_record_and_event() {
    let Some(schema) = PgSchema::new("v3") else {
        return;
    };
    let dir = TempDir::new("pg-v3");
    let reference = SqliteStore::open(&dir.join("reference.db")).unwrap();
    common::fill(&reference);
    let mut c = schema.client();
    c.batch_execute(&format!(
        "CREATE TABLE {VERSION_TABLE} (version integer PRIMARY KEY, description text NOT NULL,
                                       applied_at timestamptz NOT NULL DEFAULT now());
         INSERT INTO {VERSION_TABLE} (version, description) VALUES (1, 'v1'), (2, 'v2'), (3, 'v3');"
    ))
    .unwrap();
    for m in &PG_MIGRATIONS[..3] {
        c.batch_execute(m.sql).unwrap();
    }
    for r in &reference.list(&ClientFilter::default()).unwrap() {
        common::insert_v3_client(&mut c, r);
    }
    for e in reference.events_page(0, u64::MAX).unwrap() {
        c.execute(
            "INSERT INTO activations (time, cmid, application_id, sku_id, kms_id, workstation, \
             license_status, protocol, address, hresult) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                &e.time,
                &e.cmid,
                &e.application_id,
                &e.sku_id,
                &e.kms_id,
                &e.workstation,
                &i64::from(e.license_status),
                &e.protocol,
                &e.address,
                &i64::from(e.hresult),
            ],
        )
        .unwrap();
    }
    let store = PgStore::open(schema.url()).unwrap();
    assert_eq!(store.migrated_from(), 3);
    assert_eq!(versions(&schema), all_versions());
    assert_eq!(store.count().unwrap(), reference.count().unwrap());
    assert_eq!(
        store.events_page(0, u64::MAX).unwrap(),
        reference.events_page(0, u64::MAX).unwrap()
    );
    common::assert_same(&reference, &store);
    // New requests add to the migrated per-day counts.
    let later = activation(id(7), id(0xa), 1_900_000_000);
    store.record(&later).unwrap();
    reference.record(&later).unwrap();
    assert_eq!(
        store.daily_counts(i64::MIN).unwrap(),
        reference.daily_counts(i64::MIN).unwrap()
    );
}

#[cfg_attr(
    not(rkms_test_postgres),
    ignore = "needs PostgreSQL: set RKMS_TEST_POSTGRES (scripts/with-postgres.sh does)"
)]
#[test]
fn refuses_a_newer_schema_and_a_foreign_one() {
    let Some(schema) = PgSchema::new("refused") else {
        return;
    };
    drop(PgStore::open(schema.url()).unwrap());
    schema
        .client()
        .execute(
            &format!("INSERT INTO {VERSION_TABLE} (version, description) VALUES (99, 'future')"),
            &[],
        )
        .unwrap();
    for e in [
        PgStore::open(schema.url()).unwrap_err(),
        PgStore::open_read_only(schema.url()).unwrap_err(),
    ] {
        assert!(
            matches!(e, StoreError::TooNew { found: 99, supported } if supported == SCHEMA_VERSION),
            "{e:?}"
        );
    }
    // Nothing was changed.
    let mut expected = all_versions();
    expected.push(99);
    assert_eq!(versions(&schema), expected);

    let Some(foreign) = PgSchema::new("foreign") else {
        return;
    };
    foreign
        .client()
        .batch_execute("CREATE TABLE invoices (n integer)")
        .unwrap();
    let e = PgStore::open(foreign.url()).unwrap_err();
    assert!(matches!(e, StoreError::Open { .. }), "{e:?}");
    assert!(e.to_string().contains("invoices"), "{e}");
}

#[cfg_attr(
    not(rkms_test_postgres),
    ignore = "needs PostgreSQL: set RKMS_TEST_POSTGRES (scripts/with-postgres.sh does)"
)]
#[test]
fn read_only_open() {
    let Some(schema) = PgSchema::new("read_only") else {
        return;
    };
    let e = PgStore::open_read_only(schema.url()).unwrap_err();
    assert!(
        matches!(e, StoreError::NeedsMigration { found: 0, .. }),
        "{e:?}"
    );
    let store = PgStore::open(schema.url()).unwrap();
    store.record(&activation(id(1), id(0xa), 100)).unwrap();
    let reader = PgStore::open_read_only(schema.url()).unwrap();
    assert_eq!(reader.list(&ClientFilter::default()).unwrap().len(), 1);
    assert_eq!(reader.history(&id(1), 10).unwrap().len(), 1);
    let e = reader.record(&activation(id(2), id(0xa), 100)).unwrap_err();
    assert!(matches!(e, StoreError::Postgres { .. }), "{e:?}");
    assert!(reader.probe_writable().is_err());
    store.probe_writable().unwrap();
    assert_eq!(store.count().unwrap(), 1);
}

#[cfg_attr(
    not(rkms_test_postgres),
    ignore = "needs PostgreSQL: set RKMS_TEST_POSTGRES (scripts/with-postgres.sh does)"
)]
#[test]
fn two_hosts_on_one_database_count_each_others_clients() {
    let Some(schema) = PgSchema::new("two_hosts") else {
        return;
    };
    let (host_a, host_b) = (
        PgStore::open(schema.url()).unwrap(),
        PgStore::open(schema.url()).unwrap(),
    );
    let kms = id(0xa);
    let now = 1_800_000_000;
    // Clients 1..=10 activate on A, 11..=20 on B, 5..=15 on both (alternately).
    for n in 1..=20u128 {
        let host = if n <= 10 { &host_a } else { &host_b };
        host.record(&activation(id(n), kms, now - n as i64))
            .unwrap();
    }
    for n in 5..=15u128 {
        let host = if n % 2 == 0 { &host_a } else { &host_b };
        host.record(&activation(id(n), kms, now)).unwrap();
    }
    for host in [&host_a, &host_b] {
        assert_eq!(host.distinct_clients_since(&kms, now - 1_000).unwrap(), 20);
        assert_eq!(host.client_counts_since(now - 1_000).unwrap(), [(kms, 20)]);
        assert_eq!(host.count().unwrap(), 20);
        assert_eq!(host.activations_since(i64::MIN).unwrap(), 31);
    }
    let r = &host_b
        .list(&ClientFilter {
            cmid: Some(id(5)),
            ..Default::default()
        })
        .unwrap()[0];
    assert_eq!((r.requests, r.first_seen, r.last_seen), (2, now - 5, now));
    assert_eq!(host_a.history(&id(5), 10).unwrap().len(), 2);
}

#[cfg_attr(
    not(rkms_test_postgres),
    ignore = "needs PostgreSQL: set RKMS_TEST_POSTGRES (scripts/with-postgres.sh does)"
)]
#[test]
fn text_with_nul_is_stored() {
    let Some(schema) = PgSchema::new("nul") else {
        return;
    };
    let store = PgStore::open(schema.url()).unwrap();
    let a = Activation {
        workstation: "PC\0X".into(),
        ..activation(id(1), id(0xa), 100)
    };
    store.record(&a).unwrap();
    assert_eq!(
        store.list(&ClientFilter::default()).unwrap()[0].workstation,
        "PC\u{FFFD}X"
    );
}

/// The backends of the connections whose `application_name` is `name` are terminated.
fn terminate(schema: &PgSchema, name: &str) -> i64 {
    let mut admin = postgres::Client::connect(schema.base_url(), postgres::NoTls).unwrap();
    admin
        .query_one(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = $1 AND pid <> pg_backend_pid()",
            &[&name],
        )
        .unwrap()
        .get(0)
}

fn with_application_name(url: &str, name: &str) -> String {
    format!("{url}&application_name={name}")
}

#[cfg_attr(
    not(rkms_test_postgres),
    ignore = "needs PostgreSQL: set RKMS_TEST_POSTGRES (scripts/with-postgres.sh does)"
)]
#[test]
fn reconnects_after_the_connection_is_killed() {
    let Some(schema) = PgSchema::new("reconnect") else {
        return;
    };
    let name = format!("rkms_{}", schema.name());
    let store = PgStore::open(&with_application_name(schema.url(), &name)).unwrap();
    store.record(&activation(id(1), id(0xa), 100)).unwrap();
    assert_eq!(store.count().unwrap(), 1);
    assert!(terminate(&schema, &name) >= 1);
    // Both connections (write and read) were lost: each call reconnects by itself.
    assert_eq!(store.count().unwrap(), 1);
    store.record(&activation(id(2), id(0xa), 100)).unwrap();
    assert_eq!(store.count().unwrap(), 2);
    assert!(terminate(&schema, &name) >= 1);
    store.record(&activation(id(3), id(0xa), 100)).unwrap();
    assert_eq!(store.count().unwrap(), 3);
}

/// A TCP proxy in front of the database that can be cut (every connection closed, new ones
/// refused) and restored: a database outage for one client only.
struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        {
            let (up, stop, conns) = (up.clone(), stop.clone(), conns.clone());
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    if !up.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let Ok(server) = TcpStream::connect(upstream) else {
                        continue;
                    };
                    let mut registry = conns.lock().unwrap();
                    registry.push(client.try_clone().unwrap());
                    registry.push(server.try_clone().unwrap());
                    for (mut from, mut to) in [
                        (client.try_clone().unwrap(), server.try_clone().unwrap()),
                        (server, client),
                    ] {
                        std::thread::spawn(move || {
                            let mut buf = [0u8; 16 * 1024];
                            loop {
                                match from.read(&mut buf) {
                                    Ok(0) | Err(_) => break,
                                    Ok(n) => {
                                        if to.write_all(&buf[..n]).is_err() {
                                            break;
                                        }
                                    }
                                }
                            }
                            let _ = to.shutdown(Shutdown::Both);
                            let _ = from.shutdown(Shutdown::Both);
                        });
                    }
                }
            });
        }
        Self {
            addr,
            up,
            stop,
            conns,
        }
    }

    /// Closes every proxied connection and refuses new ones until [`Proxy::restore`].
    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for s in self.conns.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        self.cut();
    }
}

/// The database server's TCP address, from `url`.
fn upstream(url: &str) -> SocketAddr {
    use std::net::ToSocketAddrs;
    let config: postgres::Config = url.parse().unwrap();
    let host = match &config.get_hosts()[0] {
        postgres::config::Host::Tcp(h) => h.clone(),
        other => panic!("RKMS_TEST_POSTGRES must use TCP for this test, not {other:?}"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    (host.as_str(), port)
        .to_socket_addrs()
        .unwrap()
        .next()
        .unwrap()
}

/// `url` with its `host:port` replaced by `addr`.
fn through(url: &str, addr: SocketAddr) -> String {
    let start = url.find("://").unwrap() + 3;
    let end = start + url[start..].find('/').unwrap();
    let at = url[start..end].rfind('@').map_or(start, |i| start + i + 1);
    format!("{}{addr}{}", &url[..at], &url[end..])
}

#[cfg_attr(
    not(rkms_test_postgres),
    ignore = "needs PostgreSQL: set RKMS_TEST_POSTGRES (scripts/with-postgres.sh does)"
)]
#[test]
fn database_outages_under_load_lose_no_record() {
    let Some(schema) = PgSchema::new("outage") else {
        return;
    };
    let proxy = Proxy::start(upstream(schema.url()));
    let name = format!("rkms_{}", schema.name());
    let url = with_application_name(&through(schema.url(), proxy.addr), &name);
    let store: Arc<dyn ClientStore> = Arc::new(PgStore::open(&url).unwrap());
    let (errors, resumes) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let writer = Writer::with_options(
        store.clone(),
        WriterOptions {
            retry_initial: Duration::from_millis(20),
            retry_max: Duration::from_millis(200),
            on_error: {
                let errors = errors.clone();
                Box::new(move |e| {
                    assert!(e.is_transient(), "{e}");
                    errors.fetch_add(1, Ordering::SeqCst);
                })
            },
            on_resume: Some({
                let resumes = resumes.clone();
                Box::new(move |_| {
                    resumes.fetch_add(1, Ordering::SeqCst);
                })
            }),
            ..WriterOptions::default()
        },
    );
    const N: u128 = 3_000;
    let acked = Arc::new(AtomicU64::new(0));
    std::thread::scope(|s| {
        s.spawn(|| {
            // Two outages of 0.6 s, and a terminated backend between them.
            std::thread::sleep(Duration::from_millis(400));
            proxy.cut();
            std::thread::sleep(Duration::from_millis(600));
            proxy.restore();
            std::thread::sleep(Duration::from_millis(400));
            terminate(&schema, &name);
            std::thread::sleep(Duration::from_millis(300));
            proxy.cut();
            std::thread::sleep(Duration::from_millis(600));
            proxy.restore();
        });
        let start = Instant::now();
        for n in 0..N {
            let acked = acked.clone();
            let a = activation(id(n + 1), id(0xa), 1_800_000_000 + n as i64);
            assert!(writer.submit_with_ack(
                a,
                Box::new(move |ok| {
                    if ok {
                        acked.fetch_add(1, Ordering::SeqCst);
                    }
                })
            ));
            // Spread over about 2.5 s.
            let due = Duration::from_micros(830 * n as u64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    });
    eprintln!(
        "after the load: {writer:?}, {} outages, {} acknowledged",
        errors.load(Ordering::SeqCst),
        acked.load(Ordering::SeqCst)
    );
    assert!(errors.load(Ordering::SeqCst) >= 1, "no outage was seen");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        writer.flush();
        if writer.buffered() == 0 && !writer.failing() {
            break;
        }
        assert!(Instant::now() < deadline, "still buffered: {writer:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        (writer.dropped(), writer.overflow(), writer.errors()),
        (0, 0, 0),
        "{writer:?}"
    );
    assert!(writer.written() >= N as u64);
    assert!(
        acked.load(Ordering::SeqCst) < N as u64,
        "some acks were negative"
    );
    assert_eq!(
        errors.load(Ordering::SeqCst),
        resumes.load(Ordering::SeqCst),
        "one resume per outage"
    );
    // Read directly, not through the proxy.
    let check = PgStore::open(schema.url()).unwrap();
    assert_eq!(check.count().unwrap(), N as u64, "every client recorded");
    assert!(check.activations_since(i64::MIN).unwrap() >= N as u64);
    assert_eq!(check.distinct_clients_since(&id(0xa), 0).unwrap(), N as u64);
    writer.shutdown();
}

#[cfg_attr(
    not(rkms_test_postgres),
    ignore = "needs PostgreSQL: set RKMS_TEST_POSTGRES (scripts/with-postgres.sh does)"
)]
#[test]
fn sqlite_to_postgres_copy_keeps_every_record_and_event() {
    let Some(schema) = PgSchema::new("copy") else {
        return;
    };
    let dir = TempDir::new("pg-copy");
    let sqlite = SqliteStore::open(&dir.join("clients.db")).unwrap();
    common::fill(&sqlite);
    let pg = PgStore::open(schema.url()).unwrap();
    let report = copy_all(&sqlite, &pg).unwrap();
    assert_eq!(report.records, 400);
    assert_eq!(report.events, 500);
    common::assert_same(&sqlite, &pg);
    let r = pg
        .list(&ClientFilter {
            cmid: Some(id(3)),
            application_id: Some(common::windows_app()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!((r[0].requests, r[0].first_seen), (2, 1_799_971_200 - 100));

    // And back, into a new SQLite file.
    let back = SqliteStore::open(&dir.join("back.db")).unwrap();
    assert_eq!(copy_all(&pg, &back).unwrap(), report);
    common::assert_same(&sqlite, &back);

    // Never into a store that holds data.
    let e = copy_all(&sqlite, &pg).unwrap_err();
    assert!(matches!(e, StoreError::Copy(_)), "{e:?}");
    assert_eq!(pg.count().unwrap(), 400);
}

/// Filters, searches, sorts, pages, counts and capped pool counts are answered by PostgreSQL
/// as by SQLite.
#[cfg_attr(
    not(rkms_test_postgres),
    ignore = "needs PostgreSQL: set RKMS_TEST_POSTGRES (scripts/with-postgres.sh does)"
)]
#[test]
fn queries_match_sqlite() {
    use rkms_store::{ClientSort, IdSet, Search};
    let Some(schema) = PgSchema::new("queries") else {
        return;
    };
    let dir = TempDir::new("pg-queries");
    let sqlite = SqliteStore::open(&dir.join("clients.db")).unwrap();
    let pg = PgStore::open(schema.url()).unwrap();
    common::fill(&sqlite);
    common::fill(&pg);
    let filters = [
        ClientFilter::default(),
        ClientFilter {
            activated: Some(false),
            ..ClientFilter::default()
        },
        ClientFilter {
            applications: IdSet::In(vec![common::office_app()]),
            kms_ids: IdSet::NotIn(vec![id(0xa)]),
            ..ClientFilter::default()
        },
        ClientFilter {
            search: Some(Search {
                text: "Pc-1111000".into(),
                kms_ids: vec![id(0xb)],
                ..Search::default()
            }),
            since: Some(1_799_971_200 + 60),
            ..ClientFilter::default()
        },
        ClientFilter {
            search: Some(Search {
                text: "0000-0000000000".into(),
                ..Search::default()
            }),
            ..ClientFilter::default()
        },
    ];
    for filter in &filters {
        assert_eq!(
            pg.count_matching(filter).unwrap(),
            sqlite.count_matching(filter).unwrap(),
            "{filter:?}"
        );
        for sort in [
            ClientSort::LastSeen,
            ClientSort::Requests,
            ClientSort::Status,
            ClientSort::Cmid,
            ClientSort::Sku(vec![id(0x5c)]),
        ] {
            for ascending in [false, true] {
                let f = ClientFilter {
                    sort: sort.clone(),
                    ascending,
                    offset: Some(2),
                    limit: Some(9),
                    ..filter.clone()
                };
                assert_eq!(pg.list(&f).unwrap(), sqlite.list(&f).unwrap(), "{f:?}");
            }
        }
    }
    for cap in [3, u64::MAX] {
        assert_eq!(
            pg.client_counts_capped(i64::MIN, cap).unwrap(),
            sqlite.client_counts_capped(i64::MIN, cap).unwrap()
        );
    }
    let mut a = pg.active_clients(i64::MIN, 4).unwrap();
    let mut b = sqlite.active_clients(i64::MIN, 4).unwrap();
    a.sort();
    b.sort();
    assert_eq!(a.len(), b.len());
    assert_eq!(pg.prune_history(1_799_971_200 + 86_400, 50).unwrap(), 50);
    assert_eq!(pg.prune_clients(1_799_971_200 + 86_400, 10).unwrap(), 10);
    assert_eq!(
        sqlite.prune_clients(1_799_971_200 + 86_400, 10).unwrap(),
        10
    );
    // Every Windows record of `fill` has this name.
    let (records, _) = pg.prune_workstation("pc-11110000").unwrap();
    assert_eq!(records, 290);
    assert_eq!(sqlite.prune_workstation("pc-11110000").unwrap().0, records);
    assert_eq!(pg.count().unwrap(), 100);
}

#[cfg_attr(
    not(rkms_test_postgres),
    ignore = "needs PostgreSQL: set RKMS_TEST_POSTGRES (scripts/with-postgres.sh does)"
)]
#[test]
fn migrates_a_v4_database_deriving_the_last_activation() {
    use rkms_store::schema::LAST_ACTIVATED_VERSION;
    let Some(schema) = PgSchema::new("v4") else {
        return;
    };
    let dir = TempDir::new("pg-v4");
    let reference = SqliteStore::open(&dir.join("reference.db")).unwrap();
    let store = PgStore::open(schema.url()).unwrap();
    let refused = |a: Activation| Activation {
        hresult: 0xC004_F038,
        ..a
    };
    for s in [&reference as &dyn ClientStore, &store] {
        common::fill(s);
        // Activated, then refused: the history knows the activation.
        s.record(&activation(id(500), id(0xa), 1_800_000_000))
            .unwrap();
        s.record(&refused(activation(id(500), id(0xa), 1_800_000_100)))
            .unwrap();
    }
    drop(store);
    // Back to the schema before the migration (assumed the latest one).
    schema
        .client()
        .batch_execute(&format!(
            "ALTER TABLE clients DROP COLUMN last_activated;
             DELETE FROM {VERSION_TABLE} WHERE version >= {LAST_ACTIVATED_VERSION};"
        ))
        .unwrap();
    let store = PgStore::open(schema.url()).unwrap();
    assert_eq!(store.migrated_from(), LAST_ACTIVATED_VERSION - 1);
    assert_eq!(versions(&schema), all_versions());
    common::assert_same(&reference, &store);
    let r = &store
        .list(&ClientFilter {
            cmid: Some(id(500)),
            ..ClientFilter::default()
        })
        .unwrap()[0];
    assert_eq!(
        (r.last_hresult, r.last_activated),
        (0xC004_F038, Some(1_800_000_000))
    );
}

/// `record_all` writes each batch while the source is still reading the next, instead of
/// collecting them all first (a million-row import held the whole file in memory): before the
/// source hands over its third batch, the import's transaction already holds its write lock on
/// the history table (seen from another connection).
#[cfg_attr(
    not(rkms_test_postgres),
    ignore = "needs PostgreSQL: set RKMS_TEST_POSTGRES (scripts/with-postgres.sh does)"
)]
#[test]
fn record_all_writes_each_batch_as_it_comes() {
    let Some(schema) = PgSchema::new("record_all_stream") else {
        return;
    };
    let store = PgStore::open(schema.url()).unwrap();
    let mut observer = schema.client();
    let table = format!("{}.activations", schema.name());
    let mut writing_seen = false;
    let n = store
        .record_all(
            &mut |sink| {
                for n in 0..4u128 {
                    if n == 2 {
                        let deadline = Instant::now() + Duration::from_secs(10);
                        while !writing_seen && Instant::now() < deadline {
                            let locks: i64 = observer
                                .query_one(
                                    "SELECT COUNT(*) FROM pg_locks WHERE granted \
                                     AND mode = 'RowExclusiveLock' \
                                     AND relation = $1::text::regclass",
                                    &[&table],
                                )
                                .unwrap()
                                .get(0);
                            writing_seen = locks > 0;
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                    sink(vec![activation(id(n), id(0xa), 1_800_000_000)])?;
                }
                Ok(())
            },
            4,
        )
        .unwrap();
    assert!(
        writing_seen,
        "no batch was written while the source was still reading"
    );
    assert_eq!((n, store.count().unwrap()), (4, 4));
}

//! `rkms serve`: build the policy from the options, bind (or take systemd's sockets), drop
//! privileges, open the client store and run the server until a signal; SIGHUP reloads.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rand::rngs::OsRng;
use tracing::{debug, error, info, warn};

use super::{identity_config, load_catalog, now_unix, usage};
use crate::cli::{ClientCount, ServeArgs};
use crate::platform;
use crate::policy::{CountMode, Policy, PolicyConfig, POOL_LIMIT, WINDOW_SECS};
use crate::server::{bind_listeners_with, Metrics, ServerConfig, Services, StoreHandle};
#[cfg(feature = "web")]
use crate::web::{self, WebListen};
use rkms_store::{describe_spec, ClientStore, StoreKind, Writer, NO_DATABASE};

/// Re-reads the options (configuration file and environment) for a reload.
pub type Reload = Box<dyn Fn() -> Result<(ServeArgs, Option<PathBuf>), String> + Send + Sync>;

/// Turns the options into the server settings and the policy, checking everything that can be
/// checked before binding.
pub fn prepare(
    args: &ServeArgs,
    products: Option<&Path>,
) -> Result<(ServerConfig, Arc<Policy>), String> {
    check_listen(&args.listen)?;
    // A store this build cannot open is refused before anything is bound.
    if let Some(db) = &args.db {
        StoreKind::parse(db)
            .check_built()
            .map_err(|e| format!("--db {}: {e}", describe_spec(db)))?;
    }
    let catalog = load_catalog(products)?;
    let identity = identity_config(&args.identity, &mut OsRng)?;
    let config = PolicyConfig {
        identity,
        count: match args.client_count {
            None => CountMode::Auto,
            Some(ClientCount::Fixed(n)) => CountMode::Fixed(n),
            Some(ClientCount::Auto) => CountMode::Genuine {
                start_empty: args.start == "empty",
            },
        },
        activation_interval: args.activation_interval,
        renewal_interval: args.renewal_interval,
        allow: args.allow,
        check_client_time: args.check_client_time,
    };
    let policy = Arc::new(Policy::new(catalog, config, now_unix(), &mut OsRng)?);
    // DNS publishing options (zones, key file) are checked here; the port is set once bound.
    crate::dns::Publisher::new(&args.dns, crate::addr::DEFAULT_PORT)?;
    let server = ServerConfig {
        listen: args.listen.clone(),
        ndr64: !args.identity.no_ndr64,
        btfn: !args.no_btfn,
        idle_timeout: Duration::from_secs(args.idle_timeout),
        handshake_timeout: Duration::from_secs(args.handshake_timeout),
        max_connections: args.max_connections as usize,
        max_connections_per_address: args.max_connections_per_address as usize,
        max_calls_per_connection: args.max_calls_per_connection,
        disconnect_after_request: args.disconnect_after_request,
        private_only: args.private_only,
        rate_limit: args.rate_limit,
        max_pdu: args.max_pdu_size as usize,
        max_call_size: args.max_call_size as usize,
        store_wait: Duration::from_millis(args.store_wait),
        backlog: args.backlog,
        ipv6_only: args.ipv6_only,
        ..ServerConfig::default()
    };
    Ok((server, policy))
}

/// The store the dashboard and API read. For an SQLite file, a connection of their own (read
/// only, WAL lets it read while the writer writes), so that a slow page never holds up the
/// writer and with it the activations waiting for their records; otherwise the writer's store.
#[cfg(feature = "web")]
fn web_store(args: &ServeArgs, store: &StoreHandle) -> Arc<dyn ClientStore> {
    let Ok((spec, _)) = db_spec(args) else {
        return store.writer.store().clone();
    };
    if !matches!(StoreKind::parse(&spec), StoreKind::Sqlite(_)) {
        return store.writer.store().clone();
    }
    match rkms_store::open_store_read_only(&spec) {
        Ok(reader) => Arc::from(reader),
        Err(e) => {
            warn!(
                "the dashboard reads through the writer's connection: cannot open a reading one ({e})"
            );
            store.writer.store().clone()
        }
    }
}

/// The `--db` value in force, and whether it is the default path.
fn db_spec(args: &ServeArgs) -> Result<(String, bool), String> {
    Ok(match &args.db {
        Some(s) => (s.clone(), false),
        // Without SQLite the default store is memory.
        None if !cfg!(feature = "sqlite") => (NO_DATABASE.to_string(), true),
        None => (default_db_path()?.to_string_lossy().into_owned(), true),
    })
}

/// Refuses listen addresses that cannot all be bound: 0.0.0.0:P next to [::]:P (the IPv6
/// wildcard already accepts IPv4 clients) and the same address twice.
fn check_listen(listen: &[std::net::SocketAddr]) -> Result<(), String> {
    for (i, a) in listen.iter().enumerate() {
        if listen[..i].contains(a) {
            return Err(format!("--listen {a} is given twice"));
        }
        if a.is_ipv4() && a.ip().is_unspecified() {
            let v6 = std::net::SocketAddr::new(std::net::Ipv6Addr::UNSPECIFIED.into(), a.port());
            if listen.contains(&v6) {
                return Err(format!(
                    "--listen {a} and --listen {v6}: {v6} already accepts IPv4 clients too \
                     (dual-stack), so {a} cannot be bound beside it; keep only --listen {v6}"
                ));
            }
        }
    }
    Ok(())
}

/// How often a host still opening its database (migrating it) says so.
const OPEN_PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Runs `work` on a thread of its own and returns what it returns; meanwhile calls `report`
/// every `every` until it is done (never when it is done within `every`).
fn wait_reporting<T: Send>(
    work: impl FnOnce() -> T + Send,
    every: Duration,
    mut report: impl FnMut(),
) -> T {
    std::thread::scope(|scope| {
        let (done, finished) = std::sync::mpsc::channel();
        let worker = scope.spawn(move || {
            let value = work();
            let _ = done.send(());
            value
        });
        // Ends when the work is done, or when it panicked (the sender dropped).
        while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(every) {
            report();
        }
        worker
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// The default `--db-cache` (KiB): 16 MiB, or 256 KiB in the builds for small devices (those
/// without the dashboard). The command line itself is the same in every build.
pub const DEFAULT_DB_CACHE_KIB: u64 = if cfg!(feature = "web") { 16_384 } else { 256 };

/// Opens the client store named by `--db` and seeds the policy's pools from it.
pub fn open_store(args: &ServeArgs, policy: &Policy) -> Result<(StoreHandle, String), String> {
    let (spec, default) = db_spec(args)?;
    // Never show a database password in logs, errors or the dashboard.
    let shown = describe_spec(&spec);
    // A new database file is for this user only, and its group with --group.
    let mode = if args.group.is_some() {
        0o640
    } else {
        rkms_store::DB_MODE
    };
    // Opening migrates an older schema first, which can take a minute or more with tens of
    // millions of history events (or waits for a slow database server): say so, and keep the
    // service manager from giving up.
    let started = std::time::Instant::now();
    let mut told = false;
    let opened = wait_reporting(
        || {
            rkms_store::open_store_with(
                &spec,
                mode,
                Some(args.db_cache.unwrap_or(DEFAULT_DB_CACHE_KIB)),
            )
        },
        OPEN_PROGRESS_EVERY,
        || {
            if !told {
                info!(
                    database = %shown,
                    "still opening the client database (bringing an older schema up to date \
                     takes about a minute per 20 million history events); the host listens \
                     once it is open"
                );
                told = true;
            }
            platform::notify_starting("opening the client database");
        },
    );
    let store: Arc<dyn ClientStore> = Arc::from(opened.map_err(|e| format!("--db {shown}: {e}"))?);
    if told {
        info!(database = %shown, seconds = started.elapsed().as_secs(), "client database open");
    }
    let durable = spec != NO_DATABASE;
    if durable {
        info!(database = %shown, default, "client database");
    } else {
        info!("client records are kept in memory only (--db none)");
    }
    for notice in store.notices() {
        warn!(database = %shown, "{notice}");
    }
    seed_pools(store.as_ref(), policy, &shown)?;
    let on_error: rkms_store::ErrorCallback = Box::new(|e| {
        error!("CLIENT STORE WRITE FAILED: {e}; activations continue, records are buffered and retried")
    });
    // A file or database is written on its own thread; memory is written in place.
    let writer = if durable {
        Writer::with_options(
            store,
            rkms_store::WriterOptions {
                on_error,
                on_resume: Some(Box::new(|r| {
                    warn!(
                        outage = ?r.outage,
                        failed_attempts = r.failed_attempts,
                        buffered = r.buffered,
                        lost = r.overflow,
                        "client store writable again; buffered records are being written"
                    )
                })),
                ..Default::default()
            },
        )
    } else {
        Writer::inline(store, on_error)
    };
    Ok((
        StoreHandle {
            writer: Arc::new(writer),
            durable,
        },
        shown,
    ))
}

/// With a store shared by several hosts, the count also includes the other hosts' clients:
/// refreshed every `period` off the request path (the last value stays when it fails).
async fn refresh_shared_counts(
    store: Arc<dyn ClientStore>,
    policy: Arc<ArcSwap<Policy>>,
    period: Duration,
) {
    let mut tick = tokio::time::interval(period);
    let mut failing = false;
    loop {
        tick.tick().await;
        let s = store.clone();
        let since = now_unix() - WINDOW_SECS;
        let counted =
            tokio::task::spawn_blocking(move || s.client_counts_capped(since, POOL_LIMIT as u64));
        match counted.await {
            Ok(Ok(counts)) => {
                let p = policy.load();
                let mut per_pool: std::collections::HashMap<uuid::Uuid, u64> = Default::default();
                for (kms, n) in counts {
                    *per_pool.entry(p.pool_of(&kms)).or_default() += n;
                }
                p.pools().set_shared(per_pool);
                if failing {
                    info!("shared client counts refreshed again");
                    failing = false;
                }
            }
            Ok(Err(e)) => {
                if !failing {
                    warn!(
                        "cannot refresh the shared client counts ({e}); using the last known ones"
                    );
                    failing = true;
                }
            }
            Err(_) => {}
        }
    }
}

/// How long the history and the client records are kept (`--keep-history`,
/// `--keep-clients`; days, 0: forever).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Days of history events kept.
    pub keep_history: u32,
    /// Days a client record is kept after its latest request.
    pub keep_clients: u32,
}

/// Events or records deleted per transaction by the background pruning.
pub const PRUNE_BATCH: u64 = 2_000;

/// Pause between two batches, so the writer gets the database in between.
pub const PRUNE_PAUSE: Duration = Duration::from_millis(50);

/// How often the background pruning looks for expired events and records.
pub const PRUNE_PERIOD: Duration = Duration::from_secs(3600);

impl Retention {
    /// Whether anything is ever pruned.
    pub fn enabled(&self) -> bool {
        self.keep_history > 0 || self.keep_clients > 0
    }

    /// Deletes what has expired at `now`, [`PRUNE_BATCH`] rows per transaction, pausing
    /// `pause` between batches; returns (events, records) deleted. Blocking.
    pub fn prune(
        &self,
        store: &dyn ClientStore,
        now: i64,
        pause: Duration,
    ) -> Result<(u64, u64), rkms_store::StoreError> {
        type Step<'a> = &'a dyn Fn(i64, u64) -> Result<u64, rkms_store::StoreError>;
        let run = |days: u32, step: Step<'_>| -> Result<u64, rkms_store::StoreError> {
            let mut total = 0;
            if days == 0 {
                return Ok(0);
            }
            let cutoff = now.saturating_sub(i64::from(days) * 86_400);
            loop {
                let n = step(cutoff, PRUNE_BATCH)?;
                total += n;
                if n < PRUNE_BATCH {
                    return Ok(total);
                }
                std::thread::sleep(pause);
            }
        };
        let events = run(self.keep_history, &|c, b| store.prune_history(c, b))?;
        let records = run(self.keep_clients, &|c, b| store.prune_clients(c, b))?;
        Ok((events, records))
    }
}

/// Prunes expired history events and client records now and then every [`PRUNE_PERIOD`],
/// off the async threads, in small batches.
async fn prune_loop(store: Arc<dyn ClientStore>, retention: Retention) {
    let mut tick = tokio::time::interval(PRUNE_PERIOD);
    loop {
        tick.tick().await;
        let s = store.clone();
        let done = tokio::task::spawn_blocking(move || {
            retention.prune(s.as_ref(), now_unix(), PRUNE_PAUSE)
        })
        .await;
        match done {
            Ok(Ok((0, 0))) => {}
            Ok(Ok((events, records))) => info!(
                events,
                records,
                keep_history_days = retention.keep_history,
                keep_clients_days = retention.keep_clients,
                "expired history events and client records pruned"
            ),
            Ok(Err(e)) => warn!("cannot prune expired history and client records: {e}"),
            Err(_) => {}
        }
    }
}

/// The genuine count survives restarts: seed it with the clients of the last 30 days.
fn seed_pools(store: &dyn ClientStore, policy: &Policy, spec: &str) -> Result<(), String> {
    let since = now_unix() - WINDOW_SECS;
    // The newest clients of each KMS ID decide its count: no need to read every record.
    let clients = store
        .active_clients(since, crate::policy::POOL_LIMIT as u64)
        .map_err(|e| format!("--db {spec}: {e}"))?;
    let mut seeded = 0;
    for (kms_id, cmid, last_seen) in clients {
        policy
            .pools()
            .seed(policy.pool_of(&kms_id), cmid, last_seen);
        seeded += 1;
    }
    if seeded > 0 {
        info!(
            clients = seeded,
            "active clients of the last 30 days loaded"
        );
    }
    Ok(())
}

/// clients.db in $STATE_DIRECTORY, $XDG_STATE_HOME/rkms, %LOCALAPPDATA%\rkms (Windows) or
/// ~/.local/state/rkms (created).
pub fn default_db_path() -> Result<PathBuf, String> {
    let dir = default_db_dir()?;
    std::fs::create_dir_all(&dir).map_err(|e| {
        format!(
            "cannot create the state directory {} for the default client database: {e}; \
             choose one with --db PATH (a file this user can write, e.g. under \
             /var/lib/rkms), or --db none to keep records in memory only",
            dir.display()
        )
    })?;
    Ok(dir.join("clients.db"))
}

/// The directory of the default client database (not created).
pub fn default_db_dir() -> Result<PathBuf, String> {
    Ok(
        if let Some(d) = std::env::var_os("STATE_DIRECTORY").filter(|d| !d.is_empty()) {
            // systemd may list several directories separated by ':'; the first is ours.
            PathBuf::from(d.to_string_lossy().split(':').next().unwrap_or_default())
        } else if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
            PathBuf::from(d).join("rkms")
        } else if let Some(d) = std::env::var_os("LOCALAPPDATA").filter(|d| !d.is_empty()) {
            // Windows (where HOME, if set at all, is a Unix-like shell's).
            PathBuf::from(d).join("rkms")
        } else if let Some(h) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
            PathBuf::from(h).join(".local/state/rkms")
        } else {
            return Err(
            "no state directory for the default client database: set --db PATH, or --db none to keep records in memory only (or set STATE_DIRECTORY, XDG_STATE_HOME, LOCALAPPDATA or HOME)".into(),
        );
        },
    )
}

fn log_identity(policy: &Policy) {
    for w in policy.warnings() {
        warn!("{w}");
    }
    let id = policy.identity();
    info!(
        host_build = id.host_build(),
        lcid = id.lcid(),
        "host identity"
    );
    for (profile, epid, hwid) in id.slots() {
        info!(profile, epid, hwid = %hex::encode_upper(hwid), "ePID");
    }
}

/// Runs the server; returns the exit code. `settings` are the effective options with their
/// origins, shown on the dashboard.
pub async fn run(
    args: ServeArgs,
    products: Option<PathBuf>,
    reload: Reload,
    settings: Vec<(String, String, String)>,
) -> u8 {
    info!("rkms {} starting", env!("CARGO_PKG_VERSION"));
    // Stop signals that arrive while the host is still starting are kept.
    let signals = crate::server::shutdown::Signals::install();
    let (server, policy) = match prepare(&args, products.as_deref()) {
        Ok(p) => p,
        Err(e) => return usage(&e),
    };
    if let Err(e) = args.check_platform_options() {
        return usage(&e);
    }
    #[cfg(feature = "web")]
    if let Err(e) = check_web(&args) {
        return usage(&e);
    }
    log_identity(&policy);
    if args.inetd {
        return serve_inetd(server, policy, &args).await;
    }
    // Each connection is a file descriptor: let --max-connections of them be open. The web
    // side keeps to a share of the limit (see web_limits), so the KMS port keeps accepting.
    let fd_limit = match platform::raise_fd_limit() {
        Ok(limit) if limit < args.max_connections + 64 => {
            warn!(
                limit,
                max_connections = args.max_connections,
                "the open-file limit is below --max-connections; connections beyond it fail to be accepted"
            );
            Some(limit)
        }
        Ok(u64::MAX) => None,
        Ok(limit) => {
            debug!(limit, "open-file limit");
            Some(limit)
        }
        Err(e) => {
            warn!("cannot raise the open-file limit: {e}");
            rlimit_now()
        }
    };
    // systemd socket activation replaces --listen.
    let listeners = match platform::activated_listeners() {
        Ok(Some(l)) => {
            info!(
                sockets = l.len(),
                "using the sockets passed by systemd (socket activation)"
            );
            l
        }
        Ok(None) => match bind_listeners_with(&server.listen, server.backlog, server.ipv6_only) {
            Ok(l) => l,
            Err(e) => {
                error!("{e:#}");
                return 1;
            }
        },
        Err(e) => {
            error!("{e}");
            return 1;
        }
    };
    let kms_addrs: Vec<std::net::SocketAddr> = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .collect();
    // The dashboard binds before privileges are dropped; a taken port only turns it off.
    #[cfg(feature = "web")]
    let web_listener = match args.web {
        WebListen::On(addr) => match web::bind(addr).await {
            Ok(l) => {
                // The port bound (not 0 when --web asked for any free port).
                let bound = l.local_addr().unwrap_or(addr);
                Some((l, bound))
            }
            Err(msg) => {
                warn!("{msg}");
                None
            }
        },
        WebListen::Off => None,
    };
    if let Err(e) = platform::drop_privileges(args.user.as_deref(), args.group.as_deref()) {
        error!("{e}");
        return 1;
    }
    let _pidfile = match args
        .pidfile
        .as_deref()
        .map(platform::PidFile::create)
        .transpose()
    {
        Ok(p) => p,
        Err(e) => {
            error!("{e}");
            return 1;
        }
    };
    let (store, db) = match open_store(&args, &policy) {
        Ok(s) => s,
        Err(e) => {
            error!("{e}");
            return 1;
        }
    };
    let policy = Arc::new(ArcSwap::new(policy));
    let metrics = Arc::new(Metrics::new());
    let services = Services {
        policy: policy.clone(),
        store: Some(store.clone()),
        metrics: metrics.clone(),
    };
    let publisher = match crate::dns::Publisher::new(
        &args.dns,
        kms_addrs
            .first()
            .map_or(crate::addr::DEFAULT_PORT, |a| a.port()),
    ) {
        Ok(p) => p,
        Err(e) => {
            error!("{e}");
            return 1;
        }
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // The dashboard is announced once nothing can stop the start any more.
    #[cfg(feature = "web")]
    if let Some((listener, bound)) = web_listener {
        info!(
            "{}",
            web::access_notice(bound, args.web_public, args.web_token.as_deref())
        );
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let health = Arc::new(web::Health::new(web::SELF_CHECK_INTERVAL));
        health.set_listeners_bound(true);
        if let Some(p) = &publisher {
            health.set_dns_publish(p.status());
        }
        let state = Arc::new(web::WebState {
            policy: policy.clone(),
            store: Some(web_store(&args, &store)),
            writer: Some(store.writer.clone()),
            metrics,
            started_unix: now_unix(),
            listeners: kms_addrs.clone(),
            settings,
            db,
            health,
            web_token: args.web_token.clone(),
            fleet_cache: web::FleetCache::default(),
        });
        tokio::spawn(web::serve_with(
            listener,
            state.clone(),
            web::WebOptions {
                limits: web_limits(&args, fd_limit),
                hosts: args.web_host.clone(),
            },
            stopped(stop_rx.clone()),
        ));
        if let Some(first) = kms_addrs.first() {
            let target = web::loopback_target(*first);
            tokio::spawn(web::self_check_loop(
                target,
                state,
                web::SELF_CHECK_INTERVAL,
                stopped(stop_rx.clone()),
            ));
        }
    }
    #[cfg(not(feature = "web"))]
    let _ = (stop_rx, fd_limit, settings, db, metrics);
    // Ready: every setting is checked, the store is open, the sockets are bound.
    for line in client_notice(&crate::web::client_addresses(&kms_addrs)) {
        info!("{line}");
    }
    for a in &kms_addrs {
        info!(address = %a, "listening");
    }
    platform::notify_ready();
    if args
        .db
        .as_deref()
        .is_some_and(|d| StoreKind::parse(d).is_shared())
    {
        let period = Duration::from_secs(args.count_refresh);
        info!(
            ?period,
            "client counts include the other hosts sharing the database"
        );
        tokio::spawn(refresh_shared_counts(
            store.writer.store().clone(),
            policy.clone(),
            period,
        ));
    }
    // The host publishes itself in DNS in the background; failures never stop activations.
    let dns_task = publisher.clone().map(|p| tokio::spawn(p.run()));
    let unpublish = args.dns.unpublish_on_exit;
    let retention = Retention {
        keep_history: args.keep_history,
        keep_clients: args.keep_clients,
    };
    let pruner = retention
        .enabled()
        .then(|| tokio::spawn(prune_loop(store.writer.store().clone(), retention)));
    let reloader = tokio::spawn(reload_on_sighup(reload, policy, store, args));
    let result = crate::server::serve_listeners(listeners, server, services, async move {
        signals.wait().await;
        platform::notify_stopping();
        let _ = stop_tx.send(true);
    })
    .await;
    reloader.abort();
    if let Some(task) = dns_task {
        task.abort();
    }
    if let (Some(p), true) = (&publisher, unpublish) {
        p.unpublish_all().await;
    }
    if let Some(p) = pruner {
        p.abort();
    }
    match result {
        Ok(()) => 0,
        Err(e) => {
            error!("{e:#}");
            1
        }
    }
}

/// What to tell the administrator once the host listens: the addresses clients can use and
/// the commands to type on a client.
fn client_notice(addrs: &[std::net::SocketAddr]) -> Vec<String> {
    let Some(first) = addrs.first() else {
        return vec![
            "no network address found for this machine: clients use its address and the \
             port above; see `rkms guide PRODUCT` for the client commands"
                .into(),
        ];
    };
    let list: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    let host = match first.ip() {
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    vec![
        format!("clients can use {}", list.join(", ")),
        format!(
            "on a Windows client (as administrator): slmgr /skms {first} then slmgr /ato; \
             Office: cscript ospp.vbs /sethst:{host} /setprt:{} then /act; or see `rkms \
             guide PRODUCT`",
            first.port()
        ),
    ]
}

/// Checks the dashboard's token: well formed, and given when the dashboard is reachable from
/// the network (unless `--web-public`).
#[cfg(feature = "web")]
fn check_web(args: &ServeArgs) -> Result<(), String> {
    if let Some(token) = args.web_token.as_deref() {
        web::check_token(token)?;
    }
    if let WebListen::On(addr) = args.web {
        web::needs_token(addr, args.web_public, args.web_token.as_deref())?;
    }
    Ok(())
}

/// The web connection limits: `--web-max-connections`, lowered to the share of the open file
/// limit the web side may use ([`web::connection_budget`]) so the KMS listener keeps
/// accepting whatever web clients do.
#[cfg(feature = "web")]
fn web_limits(args: &ServeArgs, fd_limit: Option<u64>) -> web::WebLimits {
    let wanted = usize::try_from(args.web_max_connections).unwrap_or(usize::MAX);
    let max_connections = match web::connection_budget(fd_limit) {
        Some(budget) if budget < wanted => {
            warn!(
                open_file_limit = fd_limit,
                "web connections limited to {budget} (not {wanted}): a quarter of the open \
                 file limit, the rest is kept for KMS clients (raise it with ulimit -n or \
                 LimitNOFILE=)"
            );
            budget
        }
        _ => wanted,
    };
    web::WebLimits {
        max_connections,
        header_timeout: Duration::from_secs(args.web_header_timeout),
        ..web::WebLimits::default()
    }
}

/// On SIGHUP: re-read the configuration and catalog, build a new policy (new per-start ePIDs,
/// as vlmcsd does) and swap it in; listeners and open connections stay.
async fn reload_on_sighup(
    reload: Reload,
    policy: Arc<ArcSwap<Policy>>,
    store: StoreHandle,
    first: ServeArgs,
) {
    let mut hup = platform::Hangups::new();
    let restart_only = |a: &ServeArgs| {
        (
            a.listen.clone(),
            a.db.clone(),
            a.max_connections,
            a.max_connections_per_address,
            a.idle_timeout,
            a.handshake_timeout,
            a.max_pdu_size,
            a.private_only,
            a.rate_limit,
        )
    };
    let before = restart_only(&first);
    while hup.recv().await {
        info!("SIGHUP: reloading the configuration");
        let (args, products) = match reload() {
            Ok(a) => a,
            Err(e) => {
                error!("reload failed, keeping the running configuration: {e}");
                continue;
            }
        };
        let new = match prepare(&args, products.as_deref()) {
            Ok((_, p)) => p,
            Err(e) => {
                error!("reload failed, keeping the running configuration: {e}");
                continue;
            }
        };
        if restart_only(&args) != before {
            warn!("listen addresses, database and connection limits change only at restart");
        }
        if let Err(e) = seed_pools(store.writer.store().as_ref(), &new, "the client database") {
            warn!("{e}");
        }
        log_identity(&new);
        policy.store(new);
        info!("configuration reloaded");
    }
}

/// Serves one connection on standard input and output (inetd mode), then returns.
async fn serve_inetd(server: ServerConfig, policy: Arc<Policy>, args: &ServeArgs) -> u8 {
    let store = match open_store(args, &policy) {
        Ok((s, _)) => s,
        Err(e) => {
            error!("{e}");
            return 1;
        }
    };
    let (peer, local_port) = platform::stdin_socket_addrs();
    let services = Services {
        policy: Arc::new(ArcSwap::new(policy)),
        store: Some(store),
        metrics: Arc::new(Metrics::new()),
    };
    crate::server::serve_stdio(server, services, peer, local_port).await;
    0
}

/// The open-file limit in force, when it cannot be raised.
fn rlimit_now() -> Option<u64> {
    #[cfg(unix)]
    {
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .ok()
            .map(|(soft, _)| soft)
    }
    #[cfg(not(unix))]
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use rkms_store::{Activation, MemoryStore};

    #[test]
    fn slow_work_is_reported_until_done_and_quick_work_never() {
        let mut reports = 0;
        let value = wait_reporting(
            || {
                std::thread::sleep(Duration::from_millis(260));
                7
            },
            Duration::from_millis(50),
            || reports += 1,
        );
        assert_eq!(value, 7);
        assert!((3..=6).contains(&reports), "{reports} reports");
        let mut reports = 0;
        assert_eq!(
            wait_reporting(|| "quick", Duration::from_secs(5), || reports += 1),
            "quick"
        );
        assert_eq!(reports, 0);
    }

    #[test]
    #[should_panic(expected = "the work's own panic")]
    fn a_panic_of_the_work_is_passed_on() {
        wait_reporting(
            || -> u8 { panic!("the work's own panic") },
            Duration::from_millis(10),
            || {},
        );
    }

    #[cfg(all(feature = "web", feature = "sqlite"))]
    fn serve_args(argv: &[&str]) -> ServeArgs {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from(["rkms", "serve"].iter().chain(argv)).unwrap();
        match cli.command {
            crate::cli::Command::Serve(args) => args,
            _ => unreachable!("serve"),
        }
    }

    /// The dashboard reads an SQLite file through a read-only connection of its own (a slow
    /// page never holds the writer's); other stores are shared with the writer.
    #[cfg(all(feature = "web", feature = "sqlite"))]
    #[test]
    fn dashboard_reads_sqlite_through_its_own_connection() {
        let dir = std::env::temp_dir().join(format!("rkms-web-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("clients.db");
        let args = serve_args(&["--db", db.to_str().unwrap()]);
        let policy = prepare(&args, None).unwrap().1;
        let (store, _) = open_store(&args, &policy).unwrap();
        let reader = web_store(&args, &store);
        assert!(!Arc::ptr_eq(&reader, store.writer.store()));
        reader.count().unwrap();
        assert!(
            reader.probe_writable().is_err(),
            "the dashboard's connection is read-only"
        );
        store.writer.store().probe_writable().unwrap();
        let args = serve_args(&["--db", "none"]);
        let (memory, _) = open_store(&args, &policy).unwrap();
        assert!(Arc::ptr_eq(
            &web_store(&args, &memory),
            memory.writer.store()
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn at(n: u128, time: i64) -> Activation {
        Activation {
            cmid: uuid::Uuid::from_u128(n),
            application_id: uuid::Uuid::from_u128(1),
            sku_id: uuid::Uuid::from_u128(2),
            kms_id: uuid::Uuid::from_u128(3),
            workstation: format!("PC-{n}"),
            license_status: 1,
            grace_minutes: 0,
            is_vm: false,
            protocol: "6.0".into(),
            time,
            address: String::new(),
            epid: String::new(),
            hresult: 0,
        }
    }

    /// Expired events and records go, in batches; the rest stays; 0 keeps everything.
    #[test]
    fn retention_prunes_what_expired() {
        let now = 400 * 86_400;
        let store = MemoryStore::new();
        // Events 100 days old (history kept 90) from clients seen again later, and clients
        // last seen 500 days ago (kept 400).
        let old: Vec<Activation> = (0..300).map(|n| at(n, now - 100 * 86_400)).collect();
        let recent: Vec<Activation> = (0..300).map(|n| at(n, now - 86_400)).collect();
        let stale: Vec<Activation> = (1000..1010).map(|n| at(n, now - 500 * 86_400)).collect();
        for batch in [&stale, &old, &recent] {
            store.record_batch(batch).unwrap();
        }
        let keep_all = Retention {
            keep_history: 0,
            keep_clients: 0,
        };
        assert!(!keep_all.enabled());
        assert_eq!(keep_all.prune(&store, now, Duration::ZERO).unwrap(), (0, 0));
        let retention = Retention {
            keep_history: 90,
            keep_clients: 400,
        };
        assert!(retention.enabled());
        assert_eq!(
            retention.prune(&store, now, Duration::ZERO).unwrap(),
            (310, 10)
        );
        assert_eq!(store.count().unwrap(), 300);
        assert_eq!(store.activations_since(i64::MIN).unwrap(), 300);
        assert_eq!(
            retention.prune(&store, now, Duration::ZERO).unwrap(),
            (0, 0)
        );
    }

    #[test]
    fn both_wildcards_on_one_port_are_explained() {
        let a = |s: &str| s.parse::<std::net::SocketAddr>().unwrap();
        let err = super::check_listen(&[a("0.0.0.0:1688"), a("[::]:1688")]).unwrap_err();
        assert!(err.contains("already accepts IPv4"), "{err}");
        assert!(super::check_listen(&[a("0.0.0.0:1688"), a("[::]:1689")]).is_ok());
        assert!(super::check_listen(&[a("127.0.0.1:1688"), a("127.0.0.1:1688")]).is_err());
    }

    #[test]
    fn client_notice_names_addresses_and_commands() {
        let a = |s: &str| s.parse::<std::net::SocketAddr>().unwrap();
        let lines = super::client_notice(&[a("192.168.1.5:1688"), a("[2001:db8::5]:1688")]);
        assert_eq!(
            lines[0],
            "clients can use 192.168.1.5:1688, [2001:db8::5]:1688"
        );
        assert!(
            lines[1].contains("slmgr /skms 192.168.1.5:1688"),
            "{}",
            lines[1]
        );
        assert!(lines[1].contains("/sethst:192.168.1.5 /setprt:1688"));
        assert!(lines[1].contains("rkms guide PRODUCT"));
        let none = super::client_notice(&[]);
        assert!(none[0].contains("rkms guide PRODUCT"));
    }
}

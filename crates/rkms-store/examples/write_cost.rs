//! What one client record costs to write to SQLite, by transaction size: the figure behind
//! the writer's group commit. Writes `N` activations of new random clients (as `rkms bench`
//! sends) into a fresh database in transactions of 1, 4, 16, 64 and 256, and prints the CPU
//! time (user + system, this thread) per record.
//!
//! `cargo run --release -p rkms-store --example write_cost [N] [CACHE_KIB] [BATCHES] [SCHEMA]`
//! (default 20,000 per size, the page cache of `SqliteStore::open` (a host's `--db-cache` is
//! CACHE_KIB; `-` for the default), and the sizes 1,4,16,64,256). SCHEMA measures what the
//! schema costs: `full` (default) as a host writes; `no-indexes`, every secondary index
//! dropped (only the keys the writes look records up by are left); `bare`, the triggers that
//! list records for the search index dropped too: the least SQLite can do per record with
//! these tables; `without:INDEX,…`, the indexes named dropped (what each one costs).

use std::time::Instant;

use rkms_store::{Activation, ClientStore, SqliteStore};
use uuid::Uuid;

/// This thread's CPU time in nanoseconds (Linux: `/proc/thread-self/schedstat`), if known.
fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn activation(n: u64) -> Activation {
    Activation {
        cmid: Uuid::new_v4(),
        application_id: Uuid::from_u128(0x55c9_2734_d682_4d71_983e_d6ec_3f16_059f),
        sku_id: Uuid::from_u128(0x2de6_7392_b7a7_462a_b1ca_108d_d189_f588),
        kms_id: Uuid::from_u128(0x969f_a7c1_6c6a_4bbb_9c0c_e14d_3d0b_ec40),
        workstation: format!("rkms-bench-{n}"),
        license_status: 2,
        grace_minutes: 43200,
        is_vm: false,
        protocol: "6.0".into(),
        time: 1_700_000_000 + n as i64,
        address: "127.0.0.1".into(),
        epid: "06401-00206-551-000000-03-1033-9200.0000-3652017".into(),
        hresult: 0,
    }
}

/// Drops the secondary indexes (all but the unique keys the upserts need; only those named in
/// `only` if given) and, with `triggers`, the triggers of `path`'s schema.
fn strip(path: &std::path::Path, indexes: bool, triggers: bool, only: Option<&[&str]>) {
    let conn = rusqlite::Connection::open(path).expect("open the database");
    let mut drops = Vec::new();
    let mut stmt = conn
        .prepare("SELECT type, name, sql FROM sqlite_master WHERE type IN ('index', 'trigger')")
        .expect("read the schema");
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })
        .expect("read the schema");
    for row in rows {
        let (kind, name, sql) = row.expect("read the schema");
        let sql = sql.unwrap_or_default().to_uppercase();
        let unique = sql.starts_with("CREATE UNIQUE INDEX");
        let chosen = only.is_none_or(|names| names.contains(&name.as_str()));
        if (kind == "index" && indexes && !sql.is_empty() && !unique && chosen)
            || (kind == "trigger" && triggers && name.starts_with("clients_search"))
        {
            drops.push(format!("DROP {kind} {name}"));
        }
    }
    drop(stmt);
    if let Some(names) = only {
        for name in names {
            if !drops.iter().any(|d| d == &format!("DROP index {name}")) {
                usage(&format!("without:{name}: no such secondary index"));
            }
        }
    }
    for sql in &drops {
        conn.execute_batch(sql).expect("drop");
    }
    eprintln!("dropped: {}", drops.join(", "));
}

/// Says what is wrong with the command line, and how it goes, then exits with status 2.
fn usage(problem: &str) -> ! {
    eprintln!(
        "write_cost: {problem}\nusage: write_cost [N] [CACHE_KIB|-] [BATCHES] \
         [full|no-indexes|bare|without:INDEX,...]"
    );
    std::process::exit(2)
}

fn main() {
    let arg = |i: usize| std::env::args().nth(i);
    let n: u64 = arg(1).map_or(20_000, |a| {
        a.parse()
            .unwrap_or_else(|_| usage(&format!("N: a number of records, not {a:?}")))
    });
    let cache_kib: u64 =
        arg(2)
            .filter(|a| a != "-")
            .map_or(rkms_store::DEFAULT_PAGE_CACHE_KIB, |a| {
                a.parse().unwrap_or_else(|_| {
                    usage(&format!("CACHE_KIB: a number of KiB or -, not {a:?}"))
                })
            });
    let batches: Vec<usize> = match arg(3) {
        Some(list) => list
            .split(',')
            .map(|b| match b.parse() {
                Ok(size) if size > 0 => size,
                _ => usage(&format!(
                    "BATCHES: sizes above 0 separated by commas, not {b:?}"
                )),
            })
            .collect(),
        None => vec![1, 4, 16, 64, 256],
    };
    let schema = arg(4).unwrap_or_else(|| "full".into());
    let (drop_indexes, drop_triggers, only) = match schema.as_str() {
        "full" => (false, false, None),
        "no-indexes" => (true, false, None),
        "bare" => (true, true, None),
        other => match other.strip_prefix("without:") {
            Some(names) => (true, false, Some(names.split(',').collect::<Vec<_>>())),
            None => usage(&format!(
                "SCHEMA: full, no-indexes, bare or without:INDEX,..., not {other:?}"
            )),
        },
    };
    let dir = std::env::temp_dir().join(format!("rkms-write-cost-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    println!("| records per transaction | CPU µs per record | wall µs per record |");
    println!("|---:|---:|---:|");
    for batch in batches {
        let path = dir.join(format!("batch{batch}.db"));
        let store = SqliteStore::open_with_cache(&path, cache_kib).expect("open the database");
        if drop_indexes || drop_triggers {
            strip(&path, drop_indexes, drop_triggers, only.as_deref());
        }
        let records: Vec<Activation> = (0..n).map(activation).collect();
        let (cpu0, wall0) = (cpu_ns(), Instant::now());
        for chunk in records.chunks(batch) {
            store.record_batch(chunk).expect("write");
        }
        let wall = wall0.elapsed().as_secs_f64() * 1e6 / n as f64;
        let cpu = match (cpu0, cpu_ns()) {
            (Some(a), Some(b)) => format!("{:.1}", (b - a) as f64 / 1e3 / n as f64),
            _ => "?".into(),
        };
        println!("| {batch} | {cpu} | {wall:.1} |");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

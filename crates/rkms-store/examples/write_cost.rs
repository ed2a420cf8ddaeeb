//! What one client record costs to write to SQLite, by transaction size: the figure behind
//! the writer's group commit. Writes `N` activations of new random clients (as `rkms bench`
//! sends) into a fresh database in transactions of 1, 4, 16, 64 and 256, and prints the CPU
//! time (user + system, this thread) per record.
//!
//! `cargo run --release -p rkms-store --example write_cost [N] [CACHE_KIB] [BATCHES]` (default
//! 20,000 per size, the page cache of `SqliteStore::open` (a host's `--db-cache` is
//! CACHE_KIB), and the sizes 1,4,16,64,256).

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

fn main() {
    let cache_kib: u64 = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(rkms_store::DEFAULT_PAGE_CACHE_KIB);
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let dir = std::env::temp_dir().join(format!("rkms-write-cost-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    println!("| records per transaction | CPU µs per record | wall µs per record |");
    println!("|---:|---:|---:|");
    let batches: Vec<usize> = match std::env::args().nth(3) {
        Some(list) => list
            .split(',')
            .map(|b| b.parse().expect("BATCHES: sizes separated by commas"))
            .collect(),
        None => vec![1, 4, 16, 64, 256],
    };
    for batch in batches {
        let path = dir.join(format!("batch{batch}.db"));
        let store = SqliteStore::open_with_cache(&path, cache_kib).expect("open the database");
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

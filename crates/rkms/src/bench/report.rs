//! The benchmark summary: throughput, latency percentiles and errors by kind.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::cpu::CpuTime;
use super::load::{BenchOptions, Mode};

/// What a benchmark run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Target address.
    pub target: String,
    /// new-connection or keep-alive.
    pub mode: String,
    /// Concurrent clients.
    pub connections: usize,
    /// KMS protocol.
    pub protocol: u16,
    /// Successful, verified activations.
    pub ok: u64,
    /// Failed requests.
    pub errors: u64,
    /// Errors by kind.
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Successful activations per second.
    pub per_second: f64,
    /// Latency percentiles of successful requests, milliseconds.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Maximum.
    pub max_ms: f64,
    /// Threads the load generator ran its clients on.
    pub load_threads: usize,
    /// The load generator's own CPU time in user mode, seconds (null where not measurable).
    pub load_cpu_user_s: Option<f64>,
    /// The load generator's own CPU time in the kernel (its network stack work), seconds.
    pub load_cpu_system_s: Option<f64>,
    /// The load generator's CPU use in cores (CPU seconds per wall second): when it nears
    /// `load_threads` (or the cores it may use), the generator, not the host, was the limit.
    pub load_cpu_cores: Option<f64>,
    /// The load generator's CPU time per request, microseconds.
    pub load_cpu_us_per_request: Option<f64>,
    /// Whether the load generator was busy at least 90% of the time on each of its threads:
    /// then the figures may show its limit rather than the host's.
    pub load_saturated: Option<bool>,
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    f64::from(sorted[i]) / 1000.0
}

impl Summary {
    pub(super) fn new(
        opts: &BenchOptions,
        threads: usize,
        elapsed: Duration,
        cpu: Option<CpuTime>,
        mut lat: Vec<u32>,
        errors: BTreeMap<String, u64>,
    ) -> Self {
        lat.sort_unstable();
        let seconds = elapsed.as_secs_f64().max(1e-9);
        let errors_total: u64 = errors.values().sum();
        let requests = lat.len() as u64 + errors_total;
        let cores = cpu.map(|c| c.total().as_secs_f64() / seconds);
        Summary {
            target: opts.addr.to_string(),
            mode: match opts.mode {
                Mode::NewConnection => "new-connection",
                Mode::KeepAlive => "keep-alive",
            }
            .into(),
            connections: opts.connections,
            protocol: opts.protocol,
            ok: lat.len() as u64,
            errors: errors_total,
            errors_by_kind: errors,
            seconds,
            per_second: lat.len() as f64 / seconds,
            p50_ms: percentile(&lat, 0.50),
            p90_ms: percentile(&lat, 0.90),
            p99_ms: percentile(&lat, 0.99),
            max_ms: lat.last().map_or(0.0, |m| f64::from(*m) / 1000.0),
            load_threads: threads,
            load_cpu_user_s: cpu.map(|c| c.user.as_secs_f64()),
            load_cpu_system_s: cpu.map(|c| c.system.as_secs_f64()),
            load_cpu_cores: cores,
            load_cpu_us_per_request: cpu
                .filter(|_| requests > 0)
                .map(|c| c.total().as_secs_f64() * 1e6 / requests as f64),
            load_saturated: cores.map(|c| saturated(c, threads)),
        }
    }

    /// The human-readable report.
    pub fn text(&self) -> String {
        let mut s = format!(
            "{} requests to {} ({}, {} connections, V{}) in {:.2}s\n\
             activations/s: {:.0}\n\
             latency ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}\n\
             errors: {}\n",
            self.ok + self.errors,
            self.target,
            self.mode,
            self.connections,
            self.protocol,
            self.seconds,
            self.per_second,
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            self.max_ms,
            self.errors
        );
        for (k, v) in &self.errors_by_kind {
            s.push_str(&format!("  {v:>8}  {k}\n"));
        }
        if let (Some(user), Some(system), Some(cores)) = (
            self.load_cpu_user_s,
            self.load_cpu_system_s,
            self.load_cpu_cores,
        ) {
            s.push_str(&format!(
                "load generator CPU: {user:.2}s user + {system:.2}s system = {:.0}% of {} thread{}{}\n",
                cores * 100.0 / self.load_threads.max(1) as f64,
                self.load_threads,
                if self.load_threads == 1 { "" } else { "s" },
                self.load_cpu_us_per_request
                    .map_or(String::new(), |us| format!(", {us:.1} µs per request")),
            ));
            if self.load_saturated == Some(true) {
                s.push_str(
                    "  the load generator was saturated: these figures may be its limit, not the host's \
                     (give it more cores and --threads)\n",
                );
            }
        }
        s
    }
}

/// Whether `cores` of CPU used by `threads` threads means each was busy ≥ 90% of the time
/// (on a machine with fewer cores than threads, all the cores it could use).
fn saturated(cores: f64, threads: usize) -> bool {
    let usable = threads.min(super::load::default_threads()).max(1) as f64;
    cores >= 0.9 * usable
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::load::BenchOptions;
    use crate::client::Target;
    use uuid::Uuid;

    fn opts() -> BenchOptions {
        BenchOptions {
            addr: "127.0.0.1:1688".parse().unwrap(),
            connections: 16,
            threads: 1,
            duration: None,
            requests: Some(100),
            mode: Mode::KeepAlive,
            protocol: 6,
            ndr64: false,
            verify: true,
            reset_close: false,
            target: Target {
                name: "x".into(),
                app_id: Uuid::nil(),
                kms_id: Uuid::nil(),
                sku_id: Uuid::nil(),
                required_count: 25,
                protocol: 6,
            },
            timeout: Duration::from_secs(1),
            progress: false,
        }
    }

    #[test]
    fn cpu_report_fields() {
        let cpu = CpuTime {
            user: Duration::from_millis(500),
            system: Duration::from_millis(1500),
        };
        let mut errors = BTreeMap::new();
        errors.insert("timeout".to_string(), 10);
        let s = Summary::new(
            &opts(),
            1,
            Duration::from_secs(4),
            Some(cpu),
            vec![100; 90],
            errors,
        );
        assert_eq!(s.load_threads, 1);
        assert_eq!(s.load_cpu_user_s, Some(0.5));
        assert_eq!(s.load_cpu_system_s, Some(1.5));
        assert_eq!(s.load_cpu_cores, Some(0.5));
        // 2 s of CPU for 100 requests (90 answered, 10 failed).
        assert_eq!(s.load_cpu_us_per_request, Some(20_000.0));
        assert_eq!(s.load_saturated, Some(false));
        let text = s.text();
        assert!(
            text.contains("load generator CPU: 0.50s user + 1.50s system = 50% of 1 thread"),
            "{text}"
        );
        assert!(!text.contains("saturated"), "{text}");
        let json: serde_json::Value = serde_json::to_value(&s).unwrap();
        assert_eq!(json["load_cpu_cores"], 0.5);
        assert_eq!(json["load_threads"], 1);

        // 3.8 s of CPU in 4 s on one thread: the generator was the limit, and says so.
        let busy = CpuTime {
            user: Duration::from_millis(1800),
            system: Duration::from_millis(2000),
        };
        let s = Summary::new(
            &opts(),
            1,
            Duration::from_secs(4),
            Some(busy),
            vec![100; 10],
            BTreeMap::new(),
        );
        assert_eq!(s.load_saturated, Some(true));
        assert!(s.text().contains("the load generator was saturated"));

        // Not measurable: fields are null, the text says nothing of CPU.
        let s = Summary::new(
            &opts(),
            2,
            Duration::from_secs(1),
            None,
            vec![],
            BTreeMap::new(),
        );
        assert_eq!(s.load_cpu_cores, None);
        assert_eq!(s.load_cpu_us_per_request, None);
        assert!(!s.text().contains("CPU"));
        let json: serde_json::Value = serde_json::to_value(&s).unwrap();
        assert!(json["load_cpu_user_s"].is_null());
    }

    #[test]
    fn percentiles() {
        let v: Vec<u32> = (1..=100).map(|x| x * 1000).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}

//! The benchmark summary: throughput, latency percentiles and errors by kind.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

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
        elapsed: Duration,
        mut lat: Vec<u32>,
        errors: BTreeMap<String, u64>,
    ) -> Self {
        lat.sort_unstable();
        let seconds = elapsed.as_secs_f64().max(1e-9);
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
            errors: errors.values().sum(),
            errors_by_kind: errors,
            seconds,
            per_second: lat.len() as f64 / seconds,
            p50_ms: percentile(&lat, 0.50),
            p90_ms: percentile(&lat, 0.90),
            p99_ms: percentile(&lat, 0.99),
            max_ms: lat.last().map_or(0.0, |m| f64::from(*m) / 1000.0),
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
        s
    }
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles() {
        let v: Vec<u32> = (1..=100).map(|x| x * 1000).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}

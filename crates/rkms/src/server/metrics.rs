//! Prometheus metrics of the host: activations, refusals, faults and malformed input,
//! connections, request latency, client-store health and build information.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of an activation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActivationLabels {
    /// KMS protocol version, 4, 5 or 6.
    pub protocol: u16,
    /// windows-client, windows-server, office or unknown.
    pub family: &'static str,
    /// activated or refused.
    pub result: &'static str,
}

/// A reason or kind label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    /// Short machine-readable reason.
    pub reason: std::borrow::Cow<'static, str>,
}

/// The activation counter of one set of labels (protocol, family, activated), kept by a
/// connection for [`Metrics::activation`].
#[derive(Debug, Clone)]
pub struct ActivationCounter {
    labels: (u16, &'static str, bool),
    counter: Counter,
}

/// The host's metrics.
pub struct Metrics {
    registry: Registry,
    activations: Family<ActivationLabels, Counter>,
    refusals: Family<Reason, Counter>,
    faults: Family<Reason, Counter>,
    malformed: Family<Reason, Counter>,
    connections_open: Gauge,
    connections: Counter,
    idle_timeouts: Counter,
    rate_limited: Counter,
    limit_closes: Family<Reason, Counter>,
    duration: Histogram,
    store_errors: Gauge<u64, AtomicU64>,
    store_dropped: Gauge<u64, AtomicU64>,
    store_written: Gauge<u64, AtomicU64>,
    store_transactions: Gauge<u64, AtomicU64>,
    store_buffered: Gauge<u64, AtomicU64>,
    store_overflow: Gauge<u64, AtomicU64>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("rkms");
        let activations = Family::<ActivationLabels, Counter>::default();
        registry.register(
            "activations",
            "KMS activation requests answered",
            activations.clone(),
        );
        let refusals = Family::<Reason, Counter>::default();
        registry.register(
            "refusals",
            "KMS requests refused, by reason",
            refusals.clone(),
        );
        let faults = Family::<Reason, Counter>::default();
        registry.register(
            "rpc_faults",
            "RPC fault PDUs sent, by status",
            faults.clone(),
        );
        let malformed = Family::<Reason, Counter>::default();
        registry.register(
            "malformed_inputs",
            "Connections closed or binds refused for malformed input, by kind",
            malformed.clone(),
        );
        let connections_open = Gauge::default();
        registry.register(
            "connections_open",
            "Client connections open now",
            connections_open.clone(),
        );
        let connections = Counter::default();
        registry.register(
            "connections",
            "Client connections accepted",
            connections.clone(),
        );
        let idle_timeouts = Counter::default();
        registry.register(
            "idle_timeouts",
            "Connections closed by the idle timeout",
            idle_timeouts.clone(),
        );
        let rate_limited = Counter::default();
        registry.register(
            "rate_limited",
            "Requests refused by the per-address rate limit",
            rate_limited.clone(),
        );
        let limit_closes = Family::<Reason, Counter>::default();
        registry.register(
            "connections_closed_by_limit",
            "Connections closed by a connection limit: per_address (over \
             --max-connections-per-address), evicted (the oldest connection without a complete \
             PDU, at --max-connections), handshake_timeout (no complete PDU within \
             --handshake-timeout)",
            limit_closes.clone(),
        );
        let duration = Histogram::new([
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.25, 1.0,
        ]);
        registry.register(
            "request_duration_seconds",
            "Time from a complete request PDU to its reply written",
            duration.clone(),
        );
        let store_errors = Gauge::default();
        registry.register(
            "store_write_errors",
            "Client records that could not be written",
            store_errors.clone(),
        );
        let store_dropped = Gauge::default();
        registry.register(
            "store_dropped",
            "Client records dropped because the write queue was full",
            store_dropped.clone(),
        );
        let store_written = Gauge::default();
        registry.register(
            "store_written",
            "Client records written",
            store_written.clone(),
        );
        let store_transactions = Gauge::default();
        registry.register(
            "store_transactions",
            "Transactions that wrote client records (store_written / store_transactions: records per transaction)",
            store_transactions.clone(),
        );
        let store_buffered = Gauge::default();
        registry.register(
            "store_buffered",
            "Client records waiting for the database to come back",
            store_buffered.clone(),
        );
        let store_overflow = Gauge::default();
        registry.register(
            "store_overflow",
            "Client records lost because the outage buffer was full",
            store_overflow.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        registry.register("build_info", "Version of this rkms", build.clone());
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").into(),
            })
            .set(1);
        Metrics {
            registry,
            activations,
            refusals,
            faults,
            malformed,
            connections_open,
            connections,
            idle_timeouts,
            rate_limited,
            limit_closes,
            duration,
            store_errors,
            store_dropped,
            store_written,
            store_transactions,
            store_buffered,
            store_overflow,
        }
    }

    /// An activation request answered (`activated`) or refused, counted by protocol and
    /// product family through a connection's `cache` (`&mut None` without one): the counter
    /// of the labels last counted is kept, so that the connection's next activations of the
    /// same kind are counted without a look-up in the family (a lock and a hash of the labels).
    pub fn activation(
        &self,
        cache: &mut Option<ActivationCounter>,
        protocol: u16,
        family: &'static str,
        activated: bool,
    ) {
        let labels = (protocol, family, activated);
        match cache {
            Some(c) if c.labels == labels => {
                c.counter.inc();
            }
            _ => {
                let counter = self
                    .activations
                    .get_or_create(&ActivationLabels {
                        protocol,
                        family,
                        result: if activated { "activated" } else { "refused" },
                    })
                    .clone();
                counter.inc();
                *cache = Some(ActivationCounter { labels, counter });
            }
        }
    }

    /// A refused request.
    pub fn refusal(&self, reason: &'static str) {
        self.refusals
            .get_or_create(&Reason {
                reason: reason.into(),
            })
            .inc();
    }

    /// A fault PDU sent.
    pub fn fault(&self, status: u32) {
        self.faults
            .get_or_create(&Reason {
                reason: format!("0x{status:08X}").into(),
            })
            .inc();
    }

    /// Malformed input.
    pub fn malformed(&self, kind: &'static str) {
        self.malformed
            .get_or_create(&Reason {
                reason: kind.into(),
            })
            .inc();
    }

    /// A connection opened.
    pub fn connection_opened(&self) {
        self.connections.inc();
        self.connections_open.inc();
    }

    /// A connection closed.
    pub fn connection_closed(&self) {
        self.connections_open.dec();
    }

    /// An idle connection closed.
    pub fn idle_timeout(&self) {
        self.idle_timeouts.inc();
    }

    /// A request refused by the rate limit.
    pub fn rate_limited(&self) {
        self.rate_limited.inc();
    }

    /// A connection closed by a connection limit (`per_address`, `evicted`,
    /// `handshake_timeout`).
    pub fn limit_close(&self, reason: &'static str) {
        self.limit_closes
            .get_or_create(&Reason {
                reason: reason.into(),
            })
            .inc();
    }

    /// Time taken by one request.
    pub fn observe_duration(&self, seconds: f64) {
        self.duration.observe(seconds);
    }

    /// Connections open now.
    pub fn open_connections(&self) -> i64 {
        self.connections_open.get()
    }

    /// The Prometheus text exposition, with the client store's counters as of now.
    pub fn encode(&self, store: Option<&rkms_store::Writer>) -> String {
        if let Some(w) = store {
            self.store_errors.set(w.errors());
            self.store_dropped.set(w.dropped());
            self.store_written.set(w.written());
            self.store_transactions.set(w.transactions());
            self.store_buffered.set(w.buffered());
            self.store_overflow.set(w.overflow());
        }
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_and_labels() {
        let m = Metrics::new();
        m.activation(&mut None, 6, "windows-client", true);
        m.activation(&mut None, 6, "windows-client", true);
        m.refusal("kms_id_mismatch");
        m.fault(0x1C01_0003);
        m.malformed("frame_too_long");
        m.connection_opened();
        m.observe_duration(0.0003);
        m.limit_close("evicted");
        let text = m.encode(None);
        assert!(text.contains(r#"rkms_connections_closed_by_limit_total{reason="evicted"} 1"#));
        assert!(text.contains(r#"rkms_activations_total{protocol="6",family="windows-client",result="activated"} 2"#), "{text}");
        assert!(text.contains(r#"rkms_refusals_total{reason="kms_id_mismatch"} 1"#));
        assert!(text.contains(r#"rkms_rpc_faults_total{reason="0x1C010003"} 1"#));
        assert!(text.contains(r#"rkms_malformed_inputs_total{reason="frame_too_long"} 1"#));
        assert!(text.contains("rkms_connections_open 1"));
        assert!(text.contains("rkms_request_duration_seconds_bucket{le=\"0.0005\"} 1"));
        assert!(text.contains(&format!(
            "rkms_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )));
        assert!(text.trim_end().ends_with("# EOF"));
    }

    /// A connection's cached counter counts under the labels of each activation, also when
    /// they change from one activation to the next.
    #[test]
    fn cached_activation_counters_count_under_their_labels() {
        let m = Metrics::new();
        let mut cache = None;
        m.activation(&mut cache, 6, "windows-client", true);
        m.activation(&mut cache, 6, "windows-client", true);
        m.activation(&mut cache, 6, "windows-client", false);
        m.activation(&mut cache, 5, "office", true);
        m.activation(&mut cache, 6, "windows-client", true);
        // Another connection's cache counts into the same counters.
        m.activation(&mut None, 6, "windows-client", true);
        m.activation(&mut None, 6, "windows-client", false);
        let text = m.encode(None);
        for line in [
            r#"rkms_activations_total{protocol="6",family="windows-client",result="activated"} 4"#,
            r#"rkms_activations_total{protocol="6",family="windows-client",result="refused"} 2"#,
            r#"rkms_activations_total{protocol="5",family="office",result="activated"} 1"#,
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}

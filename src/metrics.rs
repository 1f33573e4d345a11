//! Prometheus metrics, served at `GET /metrics` (OpenMetrics text, no token): calls by
//! protocol, service, method and code with their latencies, background operations by kind
//! and ending with their durations, the executor's running work, imports in flight and
//! the bytes they fetched, store calls by name with their latencies, the creates per
//! PostgreSQL statement, open connections, request-body bytes held, and injected faults.
//!
//! One set per process ([`global`]): every layer counts into it where the thing happens,
//! and gauges that mirror a count kept elsewhere are sampled when the page is rendered
//! ([`Metrics::sample_with`]). Labels name kinds, never ids: a method's label is one the
//! server knows, else `unknown`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

/// The labels of a call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// `grpc` or `rest`.
    pub protocol: &'static str,
    pub service: &'static str,
    pub method: &'static str,
    /// The google.rpc.Code name it ended with (REST too).
    pub code: &'static str,
}

/// The labels of a call's latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LatencyLabels {
    pub protocol: &'static str,
    pub service: &'static str,
    pub method: &'static str,
}

/// The labels of an ended operation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    /// The kind of work (`create-disk`, `import-image`, ...).
    pub kind: &'static str,
    /// The google.rpc.Code name it ended with: `OK` when done.
    pub code: &'static str,
}

/// A label of one name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

/// A store call's label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabel {
    pub call: &'static str,
}

/// A fault's label: what it targets (a method's path or a kind of work).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabel {
    pub target: String,
}

/// Sets gauges from counts kept elsewhere; false once what it reads is gone (then dropped).
type Sampler = Box<dyn Fn(&Metrics) -> bool + Send + Sync>;

/// Every metric (see the module documentation).
pub struct Metrics {
    registry: Registry,
    pub calls: Family<CallLabels, Counter>,
    pub call_seconds: Family<LatencyLabels, Histogram, fn() -> Histogram>,
    pub operations: Family<OperationLabels, Counter>,
    pub operation_seconds: Family<KindLabel, Histogram, fn() -> Histogram>,
    pub running_operations: Gauge,
    pub imports_in_flight: Gauge,
    pub import_bytes: Counter,
    pub store_seconds: Family<CallLabel, Histogram, fn() -> Histogram>,
    pub create_batch_rows: Histogram,
    pub open_connections: Gauge,
    pub request_body_bytes: Gauge,
    pub faults_injected: Family<TargetLabel, Counter>,
    samplers: Mutex<Vec<Sampler>>,
}

/// Latency buckets from 50 us to about 6.5 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 18))
}

/// Operation-duration buckets from 1 ms to about 18 h.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 4.0, 13))
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("imageplane");
        let calls = Family::default();
        registry.register(
            "calls",
            "Calls answered, gRPC and REST, by service, method and code",
            Family::clone(&calls),
        );
        let call_seconds = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "call_duration_seconds",
            "How long calls took to answer, by service and method",
            Family::clone(&call_seconds),
        );
        let operations = Family::default();
        registry.register(
            "operations_finished",
            "Operations of background work that ended, by kind and code",
            Family::clone(&operations),
        );
        let operation_seconds =
            Family::new_with_constructor(duration_histogram as fn() -> Histogram);
        registry.register(
            "operation_duration_seconds",
            "From an operation's creation to its end, by kind of work",
            Family::clone(&operation_seconds),
        );
        let running_operations = Gauge::default();
        registry.register(
            "executor_running_operations",
            "Operations this server runs or holds now (copies, deletes, imports)",
            running_operations.clone(),
        );
        let imports_in_flight = Gauge::default();
        registry.register(
            "imports_in_flight",
            "Imports transferring now",
            imports_in_flight.clone(),
        );
        let import_bytes = Counter::default();
        registry.register(
            "import_fetched_bytes",
            "Bytes imports fetched from their URIs",
            import_bytes.clone(),
        );
        let store_seconds = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "store_call_duration_seconds",
            "How long store calls took, by call",
            Family::clone(&store_seconds),
        );
        let create_batch_rows = Histogram::new(exponential_buckets(1.0, 2.0, 7));
        registry.register(
            "store_create_batch_rows",
            "Creates written per statement on PostgreSQL (unkeyed creates go in batches)",
            create_batch_rows.clone(),
        );
        let open_connections = Gauge::default();
        registry.register(
            "open_connections",
            "Client connections open now",
            open_connections.clone(),
        );
        let request_body_bytes = Gauge::default();
        registry.register(
            "request_body_bytes",
            "Bytes of unfinished request bodies held now (the request budget in use)",
            request_body_bytes.clone(),
        );
        let faults_injected = Family::default();
        registry.register(
            "faults_injected",
            "Faults the admin API's rules injected, by target",
            Family::clone(&faults_injected),
        );
        Metrics {
            registry,
            calls,
            call_seconds,
            operations,
            operation_seconds,
            running_operations,
            imports_in_flight,
            import_bytes,
            store_seconds,
            create_batch_rows,
            open_connections,
            request_body_bytes,
            faults_injected,
            samplers: Mutex::new(Vec::new()),
        }
    }

    /// Runs `sampler` before every rendering: it sets a gauge from a count kept elsewhere,
    /// and answers false once that count is gone (a stopped server's), to be dropped.
    pub fn sample_with(&self, sampler: impl Fn(&Metrics) -> bool + Send + Sync + 'static) {
        self.samplers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(Box::new(sampler));
    }

    /// The page `GET /metrics` answers, in OpenMetrics text.
    pub fn render(&self) -> String {
        self.samplers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .retain(|sampler| sampler(self));
        let mut page = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut page, &self.registry);
        page
    }

    /// Counts an ended operation of background work and its duration.
    pub fn operation_ended(&self, kind: &'static str, code: &'static str, took: Duration) {
        self.operations
            .get_or_create(&OperationLabels { kind, code })
            .inc();
        self.operation_seconds
            .get_or_create(&KindLabel { kind })
            .observe(took.as_secs_f64());
    }
}

/// The metrics of this process.
pub fn global() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

/// The service and method labels of a gRPC path: the method's names if the server knows
/// it (the API's descriptors, health and reflection), else `unknown` for both, so that
/// no caller can grow the label set. A lookup in a table built once.
pub fn method_labels(path: &str) -> (&'static str, &'static str) {
    static KNOWN: LazyLock<HashMap<String, (String, String)>> = LazyLock::new(|| {
        let own = [
            ("grpc.health.v1.Health", "Check"),
            ("grpc.health.v1.Health", "Watch"),
            (
                "grpc.reflection.v1.ServerReflection",
                "ServerReflectionInfo",
            ),
            (
                "grpc.reflection.v1alpha.ServerReflection",
                "ServerReflectionInfo",
            ),
        ]
        .map(|(service, method)| (service.to_string(), method.to_string()));
        let api = crate::pb::descriptor_pool().services().flat_map(|service| {
            service
                .methods()
                .map(|method| (service.full_name().to_string(), method.name().to_string()))
                .collect::<Vec<_>>()
        });
        own.into_iter()
            .chain(api)
            .map(|(service, method)| (format!("/{service}/{method}"), (service, method)))
            .collect()
    });
    match KNOWN.get(path) {
        Some((service, method)) => (service, method),
        None => ("unknown", "unknown"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_methods_become_labels() {
        assert_eq!(
            method_labels("/yandex.cloud.compute.v1.ImageService/Get"),
            ("yandex.cloud.compute.v1.ImageService", "Get")
        );
        assert_eq!(
            method_labels("/grpc.health.v1.Health/Check"),
            ("grpc.health.v1.Health", "Check")
        );
        for made_up in [
            "/x.Y/Z",
            "/yandex.cloud.compute.v1.ImageService/Nope",
            "-",
            "",
        ] {
            assert_eq!(method_labels(made_up), ("unknown", "unknown"));
        }
    }
}

//! The process's metrics recorder: the `metrics` facade with a Prometheus text renderer. Each
//! binary serves `render()` at its own `/metrics`; there is one recorder per process, installed
//! by the first caller (so producer and consumer can share a test process).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Seconds: from a fraction of a millisecond (an in-memory answer) to the produce timeout.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Events per produce call: one event up to a full batch.
const SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0];

fn install() -> Option<PrometheusHandle> {
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_events".into()), SIZE_BUCKETS));
    match builder.and_then(|b| b.install_recorder()) {
        Ok(handle) => Some(handle),
        Err(e) => {
            // Another recorder is installed (a host program's): its exporter has our metrics.
            tracing::warn!(error = %e, "no Prometheus recorder of ours; /metrics stays empty");
            None
        }
    }
}

/// Everything recorded so far, in Prometheus text format.
pub fn render() -> String {
    HANDLE
        .get_or_init(install)
        .as_ref()
        .map(PrometheusHandle::render)
        .unwrap_or_default()
}

/// Installs the recorder now, so that metrics recorded before the first `render` are kept.
pub fn init() {
    HANDLE.get_or_init(install);
}

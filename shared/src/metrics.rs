//! Prometheus metrics common to both binaries: the registry setup, build
//! information and the text encoding.
//!
//! Names follow Prometheus conventions: a `passlink_` prefix, base units
//! (seconds, bytes), `_total` on counters (added by the encoder).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::exponential_buckets;
use prometheus_client::registry::Registry;

/// Content type of [`render`]'s output (OpenMetrics text, which Prometheus
/// reads natively).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A registry with `passlink_build_info{component, version}` set to 1.
pub fn registry(component: &str) -> Registry {
    let mut registry = Registry::default();
    let info = Family::<Vec<(String, String)>, Gauge>::default();
    info.get_or_create(&vec![
        ("component".to_owned(), component.to_owned()),
        ("version".to_owned(), env!("CARGO_PKG_VERSION").to_owned()),
    ])
    .set(1);
    registry.register("passlink_build_info", "Build information; always 1", info);
    registry
}

/// Buckets for latencies from half a millisecond to about half a minute.
pub fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0005, 2.0, 17)
}

/// The registry in text format.
pub fn render(registry: &Registry) -> String {
    let mut out = String::with_capacity(8 * 1024);
    // Writing into a String cannot fail.
    let _ = encode(&mut out, registry);
    out
}

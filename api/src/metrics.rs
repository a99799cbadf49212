//! The API's metrics. See the README's operator section for what each one
//! means and which alerts to set.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use passlink_shared::metrics::latency_buckets;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: &'static str,
    /// One of the standard methods, or `other`: a label never takes a
    /// value a client chose, so nobody can grow the series without bound.
    pub method: &'static str,
    pub status: u16,
}

/// The label for an HTTP method.
fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MediumLabel {
    pub medium: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CeremonyLabels {
    pub step: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone)]
pub struct ApiMetrics {
    pub registry: Arc<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabel, Histogram>,
    pub links_send: Counter,
    pub links_return: Counter,
    ceremonies: Family<CeremonyLabels, Counter>,
    pub outbox_backlog: Gauge,
    pub outbox_oldest_age: Gauge<f64, AtomicU64>,
    pub relay_published: Counter,
    pub relay_failures: Counter,
    pub relay_confirm_latency: Histogram,
    pub relay_connected: Gauge,
}

impl ApiMetrics {
    pub fn new() -> Self {
        let mut registry = passlink_shared::metrics::registry("api");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabel, Histogram>::new_with_constructor(
            (|| Histogram::new(latency_buckets())) as fn() -> Histogram,
        );
        let links = Family::<MediumLabel, Counter>::default();
        let ceremonies = Family::<CeremonyLabels, Counter>::default();
        let outbox_backlog = Gauge::default();
        let outbox_oldest_age = Gauge::<f64, AtomicU64>::default();
        let relay_published = Counter::default();
        let relay_failures = Counter::default();
        let relay_confirm_latency = Histogram::new(latency_buckets());
        let relay_connected = Gauge::default();

        registry.register(
            "passlink_http_requests",
            "HTTP requests answered, by route, method and status",
            requests.clone(),
        );
        registry.register(
            "passlink_http_request_duration_seconds",
            "Time to answer an HTTP request, by route",
            latency.clone(),
        );
        registry.register(
            "passlink_links_created",
            "Registration links created, by medium (send_link emails it, return_code does not)",
            links.clone(),
        );
        registry.register(
            "passlink_passkey_ceremonies",
            "Passkey registration steps, by step (start, verify) and outcome (started, \
             code_invalid, code_not_live, rejected, duplicate, registered)",
            ceremonies.clone(),
        );
        registry.register(
            "passlink_outbox_backlog",
            "Send-link jobs waiting in the Redis outbox for the relay (all shards)",
            outbox_backlog.clone(),
        );
        registry.register(
            "passlink_outbox_oldest_age_seconds",
            "Age of the oldest job waiting in the outbox; 0 when it is empty",
            outbox_oldest_age.clone(),
        );
        registry.register(
            "passlink_relay_published",
            "Jobs the relay published and the broker confirmed",
            relay_published.clone(),
        );
        registry.register(
            "passlink_relay_publish_failures",
            "Jobs the broker did not confirm (nacked, returned, timed out or cut off)",
            relay_failures.clone(),
        );
        registry.register(
            "passlink_relay_confirm_duration_seconds",
            "Time from publishing a batch to the broker's last confirm",
            relay_confirm_latency.clone(),
        );
        registry.register(
            "passlink_relay_connected",
            "1 while every relay task holds a broker connection",
            relay_connected.clone(),
        );

        Self {
            registry: Arc::new(registry),
            requests,
            latency,
            links_send: links.get_or_create_owned(&MediumLabel {
                medium: "send_link",
            }),
            links_return: links.get_or_create_owned(&MediumLabel {
                medium: "return_code",
            }),
            ceremonies,
            outbox_backlog,
            outbox_oldest_age,
            relay_published,
            relay_failures,
            relay_confirm_latency,
            relay_connected,
        }
    }

    /// Counts one outcome of a registration step.
    pub fn ceremony(&self, step: &'static str, outcome: &'static str) {
        self.ceremonies
            .get_or_create(&CeremonyLabels { step, outcome })
            .inc();
    }

    pub fn request(&self, route: &'static str, method: &str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                route,
                method: method_label(method),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabel { route })
            .observe(elapsed.as_secs_f64());
    }
}

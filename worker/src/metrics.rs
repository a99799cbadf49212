//! The worker's metrics. See the README's operator section for what each
//! one means and which alerts to set.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use passlink_shared::metrics::latency_buckets;

use crate::process::Outcome;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub queue: String,
    /// main, retry or dead_letter
    pub kind: &'static str,
}

#[derive(Clone)]
pub struct WorkerMetrics {
    pub registry: Arc<Registry>,
    jobs: Family<OutcomeLabel, Counter>,
    pub smtp_duration: Histogram,
    pub delivery_latency: Histogram,
    pub in_flight: Gauge,
    pub consuming: Gauge,
    pub queue_messages: Family<QueueLabels, Gauge>,
    pub queue_consumers: Family<QueueLabels, Gauge>,
}

impl WorkerMetrics {
    pub fn new() -> Self {
        let mut registry = passlink_shared::metrics::registry("worker");
        let jobs = Family::<OutcomeLabel, Counter>::default();
        let smtp_duration = Histogram::new(latency_buckets());
        let delivery_latency = Histogram::new(latency_buckets());
        let in_flight = Gauge::default();
        let consuming = Gauge::default();
        let queue_messages = Family::<QueueLabels, Gauge>::default();
        let queue_consumers = Family::<QueueLabels, Gauge>::default();

        registry.register(
            "passlink_jobs",
            "Send-link jobs handled, by outcome: sent, retried, dead_lettered, expired, \
             revoked, duplicate (already sent, skipped), busy (another worker holds it), \
             requeued (a dependency failed)",
            jobs.clone(),
        );
        registry.register(
            "passlink_smtp_send_duration_seconds",
            "Time for the SMTP server to accept or refuse one message",
            smtp_duration.clone(),
        );
        registry.register(
            "passlink_delivery_latency_seconds",
            "Time from the API's answer to the SMTP server's acceptance",
            delivery_latency.clone(),
        );
        registry.register(
            "passlink_jobs_in_flight",
            "Jobs this worker is handling right now",
            in_flight.clone(),
        );
        registry.register(
            "passlink_worker_consuming",
            "1 while this worker holds a consumer on the send queue",
            consuming.clone(),
        );
        registry.register(
            "passlink_queue_messages",
            "Messages ready in a queue, refreshed every few seconds",
            queue_messages.clone(),
        );
        registry.register(
            "passlink_queue_consumers",
            "Consumers of a queue, refreshed every few seconds",
            queue_consumers.clone(),
        );

        // Every outcome appears from the start, so rate() works at once.
        for outcome in Outcome::ALL {
            let _ = jobs.get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            });
        }

        Self {
            registry: Arc::new(registry),
            jobs,
            smtp_duration,
            delivery_latency,
            in_flight,
            consuming,
            queue_messages,
            queue_consumers,
        }
    }

    pub fn job(&self, outcome: Outcome) {
        self.jobs
            .get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            })
            .inc();
    }
}

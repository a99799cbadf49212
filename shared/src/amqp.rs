//! RabbitMQ topology shared by the relay and the workers.
//!
//! ```text
//! relay ──> exchange ──send_link──> main queue ──> workers
//! worker ──> retry.N (per-message TTL) ──dead-letters back──> exchange
//! worker ──> exchange ──send_link.dead──> dead-letter queue
//! ```
//!
//! Everything is durable and messages are persistent. A retry waits in the
//! retry queue of its attempt number; all messages there have about the same
//! delay, so the per-message TTL never leaves one message stuck behind a
//! longer one for more than the jitter.

use std::time::Duration;

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};

/// Routing key of send-link jobs.
pub const SEND_LINK_KEY: &str = "send_link";
/// Routing key of dead-lettered jobs.
pub const DEAD_LETTER_KEY: &str = "send_link.dead";

/// Header: the attempt a message is for, counting from 1.
pub const ATTEMPT_HEADER: &str = "x-passlink-attempt";
/// Header: how many jobs a message holds (a batch from the relay, or 1).
pub const JOBS_HEADER: &str = "x-passlink-jobs";
/// Header on dead-lettered messages: why the job ended there.
pub const REASON_HEADER: &str = "x-passlink-reason";
/// Header on dead-lettered messages: when (Unix milliseconds).
pub const FAILED_AT_HEADER: &str = "x-passlink-failed-at";

/// How to reach RabbitMQ and which names to use.
#[derive(Clone, Debug)]
pub struct AmqpSettings {
    pub url: String,
    pub exchange: String,
    /// The main queue; the dead-letter and retry queues are named after it.
    pub queue: String,
    /// Quorum queues (replicated, for clustered brokers) instead of classic.
    pub quorum: bool,
    /// Number of attempts per job; there is one retry queue per retry (and
    /// always at least one, which also holds jobs waiting for another
    /// worker's claim to end).
    pub max_attempts: u32,
}

impl AmqpSettings {
    pub fn dead_letter_queue(&self) -> String {
        format!("{}.dead", self.queue)
    }

    /// The queue a job waits in after its `retry`-th failure (from 1).
    pub fn retry_queue(&self, retry: u32) -> String {
        format!("{}.retry.{retry}", self.queue)
    }

    /// Retry numbers that have a queue.
    pub fn retries(&self) -> std::ops::RangeInclusive<u32> {
        1..=self.max_attempts.saturating_sub(1).max(1)
    }

    /// Main, retry and dead-letter queue names.
    pub fn all_queues(&self) -> Vec<String> {
        let mut names = vec![self.queue.clone(), self.dead_letter_queue()];
        names.extend(self.retries().map(|r| self.retry_queue(r)));
        names
    }
}

/// Connects with a name the management UI shows.
pub async fn connect(settings: &AmqpSettings, name: &str) -> lapin::Result<Connection> {
    let props = ConnectionProperties::default().with_connection_name(name.into());
    // A connection attempt to an unreachable broker must not hang forever.
    match tokio::time::timeout(
        Duration::from_secs(10),
        Connection::connect(&settings.url, props),
    )
    .await
    {
        Ok(result) => result,
        Err(_) => Err(lapin::Error::from(lapin::ErrorKind::IOError(
            std::sync::Arc::new(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connecting to RabbitMQ timed out",
            )),
        ))),
    }
}

/// Declares the exchange, queues and bindings; safe to call from every
/// process, any number of times.
pub async fn declare_topology(channel: &Channel, settings: &AmqpSettings) -> lapin::Result<()> {
    let durable = QueueDeclareOptions::durable();
    channel
        .exchange_declare(
            settings.exchange.as_str().into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;

    for (queue, key) in [
        (settings.queue.clone(), SEND_LINK_KEY),
        (settings.dead_letter_queue(), DEAD_LETTER_KEY),
    ] {
        channel
            .queue_declare(queue.as_str().into(), durable, queue_args(settings, None))
            .await?;
        channel
            .queue_bind(
                queue.as_str().into(),
                settings.exchange.as_str().into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }

    for retry in settings.retries() {
        let queue = settings.retry_queue(retry);
        channel
            .queue_declare(
                queue.as_str().into(),
                durable,
                queue_args(settings, Some(&settings.exchange)),
            )
            .await?;
    }
    Ok(())
}

/// Arguments of a queue; retry queues dead-letter back to the exchange.
fn queue_args(settings: &AmqpSettings, dead_letter_to: Option<&str>) -> FieldTable {
    let mut args = FieldTable::default();
    if settings.quorum {
        args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
    }
    if let Some(exchange) = dead_letter_to {
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(exchange.into()),
        );
        args.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(SEND_LINK_KEY.into()),
        );
        if settings.quorum {
            // Quorum queues dead-letter at most once unless told otherwise;
            // a retry must not vanish on its way back.
            args.insert(
                "x-dead-letter-strategy".into(),
                AMQPValue::LongString("at-least-once".into()),
            );
            args.insert(
                "x-overflow".into(),
                AMQPValue::LongString("reject-publish".into()),
            );
        }
    }
    args
}

/// Reads a text header of a message.
pub fn header_text(headers: Option<&FieldTable>, name: &str) -> Option<String> {
    headers?.inner().iter().find_map(|(key, value)| {
        if key.as_str() != name {
            return None;
        }
        match value {
            AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
            AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
            _ => None,
        }
    })
}

/// Reads a numeric header of a message.
pub fn header_u32(headers: Option<&FieldTable>, name: &str) -> Option<u32> {
    headers?.inner().iter().find_map(|(key, value)| {
        if key.as_str() != name {
            return None;
        }
        match value {
            AMQPValue::LongUInt(n) => Some(*n),
            AMQPValue::LongInt(n) => u32::try_from(*n).ok(),
            AMQPValue::LongLongInt(n) => u32::try_from(*n).ok(),
            AMQPValue::ShortUInt(n) => Some(u32::from(*n)),
            AMQPValue::ShortShortUInt(n) => Some(u32::from(*n)),
            _ => None,
        }
    })
}

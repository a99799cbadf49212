//! Queue depths and consumer counts for operators, read every few seconds
//! with passive declares on a connection of its own.

use std::time::Duration;

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use passlink_shared::amqp::{self, AmqpSettings};

use crate::metrics::{QueueLabels, WorkerMetrics};

pub async fn run(settings: AmqpSettings, metrics: WorkerMetrics, every: Duration) {
    let queues: Vec<QueueLabels> = settings
        .all_queues()
        .into_iter()
        .map(|queue| {
            let kind = if queue == settings.queue {
                "main"
            } else if queue == settings.dead_letter_queue() {
                "dead_letter"
            } else {
                "retry"
            };
            QueueLabels { queue, kind }
        })
        .collect();

    loop {
        if let Err(err) = sample(&settings, &metrics, &queues, every).await {
            tracing::debug!(error = %err, "queue metrics unavailable; trying again");
        }
        tokio::time::sleep(every).await;
    }
}

/// Samples until the connection fails.
async fn sample(
    settings: &AmqpSettings,
    metrics: &WorkerMetrics,
    queues: &[QueueLabels],
    every: Duration,
) -> Result<(), lapin::Error> {
    let connection = amqp::connect(settings, "passlink-worker monitor").await?;
    let channel = connection.create_channel().await?;
    loop {
        for labels in queues {
            let queue = channel
                .queue_declare(
                    labels.queue.as_str().into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await?;
            metrics
                .queue_messages
                .get_or_create(labels)
                .set(i64::from(queue.message_count()));
            metrics
                .queue_consumers
                .get_or_create(labels)
                .set(i64::from(queue.consumer_count()));
        }
        tokio::time::sleep(every).await;
    }
}

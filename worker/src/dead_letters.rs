//! `passlink-worker dead-letters list|replay|purge`: the operator's view of
//! jobs that could not be sent, and the way to send them again once the
//! cause (an SMTP setup, a refused mailbox) is fixed.

use std::time::Duration;

use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueDeclareOptions, QueuePurgeOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Confirmation};
use passlink_shared::amqp::{
    self, ATTEMPT_HEADER, FAILED_AT_HEADER, REASON_HEADER, SEND_LINK_KEY, header_text,
};
use passlink_shared::job::SendLinkJob;
use passlink_shared::store::{DeliveryState, Store};
use passlink_shared::time::{now_ms, rfc3339_ms};

use crate::config::WorkerConfig;

/// `text` with control characters written as `\u{..}` escapes.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Prints up to `limit` dead letters; they stay in the queue.
pub async fn list(config: &WorkerConfig, limit: usize) -> anyhow::Result<usize> {
    let settings = &config.common.amqp;
    let connection = amqp::connect(settings, "passlink-worker dead-letters").await?;
    let channel = connection.create_channel().await?;
    amqp::declare_topology(&channel, settings).await?;
    let queue = settings.dead_letter_queue();

    let mut shown = 0;
    while shown < limit {
        let Some(message) = channel
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false })
            .await?
        else {
            break;
        };
        let headers = message.delivery.properties.headers().as_ref();
        let reason = header_text(headers, REASON_HEADER).unwrap_or_else(|| "unknown".into());
        let failed_at = headers
            .and_then(|h| h.inner().get(FAILED_AT_HEADER))
            .and_then(|v| match v {
                AMQPValue::LongLongInt(ms) => Some(rfc3339_ms(*ms)),
                _ => None,
            })
            .unwrap_or_else(|| "-".into());
        // User ids and reasons are shown escaped: a message put on the
        // broker by hand could otherwise drive the operator's terminal.
        let reason = printable(&reason);
        match SendLinkJob::from_bytes(&message.delivery.data) {
            Ok(job) => println!(
                "job {} code {} user {} failed {failed_at}: {reason}",
                job.job_id,
                job.code_id,
                printable(&job.user_id)
            ),
            Err(_) => println!("undecodable message failed {failed_at}: {reason}"),
        }
        shown += 1;
    }
    // Closing without acknowledging puts every message back.
    connection.close(200, "listed".into()).await?;
    Ok(shown)
}

/// Moves up to `limit` dead letters back to the send queue as first
/// attempts. Undecodable messages stay where they are.
///
/// Only the messages waiting when the replay starts are taken, each once: a
/// job that fails again while the replay runs (its mailbox still refuses)
/// joins the end of the queue, and reading on would send it round and round.
pub async fn replay(config: &WorkerConfig, store: &Store, limit: usize) -> anyhow::Result<usize> {
    let settings = &config.common.amqp;
    let connection = amqp::connect(settings, "passlink-worker dead-letters").await?;
    let channel = connection.create_channel().await?;
    amqp::declare_topology(&channel, settings).await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let queue = settings.dead_letter_queue();
    let waiting = channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?
        .message_count() as usize;
    let limit = limit.min(waiting);

    let mut replayed = 0;
    let mut kept = 0;
    while replayed + kept < limit {
        let Some(message) = channel
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false })
            .await?
        else {
            break;
        };
        let Ok(job) = SendLinkJob::from_bytes(&message.delivery.data) else {
            kept += 1;
            continue;
        };

        // Queued first: a worker that saw the job before this record would
        // take it for one that failed for good and drop it.
        let retention = config.common.status_retention;
        store
            .record_delivery(
                &job,
                DeliveryState::Queued,
                0,
                None,
                None,
                now_ms(),
                retention,
            )
            .await
            .map_err(|err| anyhow::anyhow!("job {}: cannot reset its status: {err}", job.job_id))?;

        let mut headers = FieldTable::default();
        headers.insert(ATTEMPT_HEADER.into(), AMQPValue::LongUInt(1));
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_headers(headers);
        let confirm = channel
            .basic_publish(
                settings.exchange.as_str().into(),
                SEND_LINK_KEY.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                &message.delivery.data,
                properties,
            )
            .await?
            .await?;
        if !matches!(confirm, Confirmation::Ack(None)) {
            anyhow::bail!("the broker did not take a replayed job; stopping");
        }
        message.delivery.ack(BasicAckOptions::default()).await?;
        println!(
            "replayed job {} (code {}, user {})",
            job.job_id,
            job.code_id,
            printable(&job.user_id)
        );
        replayed += 1;
    }
    if kept > 0 {
        eprintln!("{kept} undecodable messages stay in {queue}; inspect or purge them");
    }
    connection.close(200, "replayed".into()).await?;
    Ok(replayed)
}

/// Deletes every dead letter.
pub async fn purge(config: &WorkerConfig) -> anyhow::Result<u32> {
    let settings = &config.common.amqp;
    let connection = amqp::connect(settings, "passlink-worker dead-letters").await?;
    let channel = connection.create_channel().await?;
    amqp::declare_topology(&channel, settings).await?;
    let purged = tokio::time::timeout(
        Duration::from_secs(30),
        channel.queue_purge(
            settings.dead_letter_queue().as_str().into(),
            QueuePurgeOptions::default(),
        ),
    )
    .await??;
    connection.close(200, "purged".into()).await?;
    Ok(purged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("u1\u{1b}[31mRED"), "u1\\u{1b}[31mRED");
        assert_eq!(
            printable("no seal key with id \"k1\""),
            "no seal key with id \"k1\""
        );
        assert_eq!(printable("Jörg"), "Jörg");
    }
}

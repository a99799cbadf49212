//! The consume loop: takes deliveries with manual acks under a prefetch
//! limit, runs up to `concurrency` jobs at once (a message may hold a batch
//! of jobs), and carries out each job's disposition. A message is
//! acknowledged only after each of its emails was accepted or its retry or
//! dead letter was confirmed by the broker.
//!
//! On shutdown the consumer is cancelled first, so no new job starts; jobs in
//! flight get the grace period; whatever was prefetched but not started goes
//! back to the queue when the connection closes.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::join_all;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use passlink_shared::amqp::{
    self, ATTEMPT_HEADER, DEAD_LETTER_KEY, FAILED_AT_HEADER, REASON_HEADER, header_u32,
};
use passlink_shared::job::split_message;
use passlink_shared::time::now_ms;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::process::{Disposition, Processor};

/// Pause before a message whose dependencies failed is given back, so that
/// an outage does not turn into a redelivery storm.
const REQUEUE_PAUSE: Duration = Duration::from_secs(1);

struct Link {
    connection: Connection,
    consume: Channel,
    publish: Channel,
}

/// Runs until `shutdown` turns true; reconnects whenever the broker goes.
pub async fn run(processor: Arc<Processor>, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(200);
    let mut warned = false;

    loop {
        if *shutdown.borrow() {
            return;
        }
        let link = match connect(&processor).await {
            Ok(link) => link,
            Err(err) => {
                if !warned {
                    tracing::warn!(error = %err, "cannot reach rabbitmq; trying again");
                    warned = true;
                }
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        tracing::info!(queue = %processor.config.common.amqp.queue,
            prefetch = processor.config.prefetch, concurrency = processor.config.concurrency,
            "consuming");
        backoff = Duration::from_millis(200);
        warned = false;

        processor.metrics.consuming.set(1);
        let stopping = consume(&processor, &link, &mut shutdown).await;
        processor.metrics.consuming.set(0);
        let _ = link.connection.close(200, "bye".into()).await;
        if stopping {
            return;
        }
        tracing::warn!("lost rabbitmq; reconnecting");
    }
}

async fn connect(processor: &Processor) -> Result<Link, lapin::Error> {
    let settings = &processor.config.common.amqp;
    let connection = amqp::connect(settings, "passlink-worker").await?;
    let consume = connection.create_channel().await?;
    let publish = connection.create_channel().await?;
    amqp::declare_topology(&publish, settings).await?;
    publish
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    consume
        .basic_qos(processor.config.prefetch, BasicQosOptions::default())
        .await?;
    Ok(Link {
        connection,
        consume,
        publish,
    })
}

/// Consumes until the connection fails (false) or shutdown (true).
async fn consume(
    processor: &Arc<Processor>,
    link: &Link,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let queue = processor.config.common.amqp.queue.as_str();
    let tag = format!("passlink-worker-{}", std::process::id());
    let mut consumer = match link
        .consume
        .basic_consume(
            queue.into(),
            tag.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
    {
        Ok(consumer) => consumer,
        Err(err) => {
            tracing::warn!(error = %err, "cannot start consuming");
            return false;
        }
    };

    let slots = Arc::new(Semaphore::new(processor.config.concurrency));
    let mut tasks = JoinSet::new();
    let mut stopping = false;

    // The prefetch limit bounds the messages held; `slots` bounds the jobs
    // being sent, across all messages (a message may hold a batch).
    loop {
        let delivery = tokio::select! {
            next = consumer.next() => next,
            _ = shutdown.changed() => { stopping = true; break; }
        };
        let delivery = match delivery {
            Some(Ok(delivery)) => delivery,
            Some(Err(err)) => {
                tracing::warn!(error = %err, "the consumer failed");
                break;
            }
            None => break,
        };

        let processor = processor.clone();
        let publish = link.publish.clone();
        let slots = slots.clone();
        tasks.spawn(async move {
            process(&processor, &publish, &slots, delivery).await;
        });
        // Reap finished tasks so the set does not grow.
        while tasks.try_join_next().is_some() {}
    }

    // Jobs of held messages that have not started sending do not start
    // now: their messages go back to the queue once the jobs that did start
    // are finished (those are dropped as duplicates next time).
    slots.close();
    if stopping {
        let _ = link
            .consume
            .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
            .await;
        let grace = processor.config.shutdown_grace;
        // Finished tasks stay in the set until joined; count only the rest.
        while tasks.try_join_next().is_some() {}
        tracing::info!(
            in_flight = tasks.len(),
            grace_secs = grace.as_secs(),
            "stopped taking jobs; finishing the ones in flight"
        );
        let drained =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::warn!(
                in_flight = tasks.len(),
                "grace period over; unfinished jobs go back to the queue"
            );
            tasks.abort_all();
        }
    } else {
        // The channel is gone, so these jobs can no longer be acknowledged
        // and the broker will hand them out again. Let the sends in flight
        // finish anyway: a send cut off after the SMTP server accepted it
        // but before it was recorded would go out twice; recorded, its
        // redelivered copy is dropped as a duplicate.
        let grace = processor.config.shutdown_grace;
        let finished =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        if finished.is_err() {
            tasks.abort_all();
        }
    }
    stopping
}

/// Handles every job of a message, then settles the message: acknowledged
/// when each job is done, sent on for a retry or dead-lettered; given back to
/// the queue when any job could not be handled (its sent siblings are then
/// dropped as duplicates on the next delivery).
async fn process(processor: &Processor, publish: &Channel, slots: &Semaphore, delivery: Delivery) {
    let headers = delivery.properties.headers().as_ref();
    let attempt = header_u32(headers, ATTEMPT_HEADER).unwrap_or(1).max(1);
    let jobs = split_message(&delivery.data);

    let handled = jobs.into_iter().map(|body| async move {
        // The semaphore lives as long as the consumer; closed, it means stop.
        let Ok(_permit) = slots.acquire().await else {
            return Err("the worker is stopping".to_owned());
        };
        // Boxed, so that a job waiting for its slot holds a few bytes rather
        // than the whole sending state machine: a worker may hold thousands
        // of prefetched jobs.
        let (disposition, outcome) = Box::pin(processor.handle(body, attempt)).await;
        tracing::trace!(outcome = outcome.as_str(), "handled");
        Box::pin(carry_out(processor, publish, body, disposition)).await
    });
    let results = join_all(handled).await;

    let settled = match results.into_iter().find_map(Result::err) {
        None => delivery.ack(BasicAckOptions::default()).await,
        Some(why) => {
            tracing::debug!(reason = %why, "giving the message back to the queue");
            delivery
                .nack(BasicNackOptions {
                    requeue: true,
                    ..Default::default()
                })
                .await
        }
    };
    if let Err(err) = settled {
        // The channel closed; the broker redelivers the message.
        tracing::warn!(error = %err, "cannot settle the message");
    }
}

/// Publishes a job's retry or dead letter (and waits for the confirm), or
/// says why the job must go back to the queue.
async fn carry_out(
    processor: &Processor,
    publish: &Channel,
    body: &[u8],
    disposition: Disposition,
) -> Result<(), String> {
    let settings = &processor.config.common.amqp;
    match disposition {
        Disposition::Ack => Ok(()),
        Disposition::Retry {
            retry,
            attempt,
            delay,
        } => {
            let retry = retry.min(*settings.retries().end());
            let mut headers = FieldTable::default();
            headers.insert(ATTEMPT_HEADER.into(), AMQPValue::LongUInt(attempt));
            let properties = base_properties(headers)
                .with_expiration(delay.as_millis().max(1).to_string().into());
            forward(publish, "", &settings.retry_queue(retry), body, properties).await
        }
        Disposition::DeadLetter { reason, attempt } => {
            let mut headers = FieldTable::default();
            headers.insert(ATTEMPT_HEADER.into(), AMQPValue::LongUInt(attempt));
            headers.insert(
                REASON_HEADER.into(),
                AMQPValue::LongString(reason.as_str().into()),
            );
            headers.insert(FAILED_AT_HEADER.into(), AMQPValue::LongLongInt(now_ms()));
            let exchange = settings.exchange.as_str();
            forward(
                publish,
                exchange,
                DEAD_LETTER_KEY,
                body,
                base_properties(headers),
            )
            .await
        }
        Disposition::Requeue => {
            tokio::time::sleep(REQUEUE_PAUSE).await;
            Err("dependencies unavailable".to_owned())
        }
    }
}

fn base_properties(headers: FieldTable) -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_headers(headers)
}

/// Publishes and waits for the broker's confirm.
async fn forward(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    properties: BasicProperties,
) -> Result<(), String> {
    let confirm = channel
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            body,
            properties,
        )
        .await
        .map_err(|err| err.to_string())?;
    match tokio::time::timeout(Duration::from_secs(15), confirm).await {
        Ok(Ok(Confirmation::Ack(None))) => Ok(()),
        Ok(Ok(Confirmation::Ack(Some(_)))) => Err("the broker could not route it".to_owned()),
        Ok(Ok(_)) => Err("the broker refused it".to_owned()),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err("no confirm from the broker".to_owned()),
    }
}

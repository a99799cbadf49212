//! The outbox relay: moves send-link jobs from Redis to RabbitMQ without
//! losing one.
//!
//! A job is removed from the outbox only after the broker confirmed it. When
//! RabbitMQ is away, jobs stay in Redis and the relay reconnects with
//! backoff; the API keeps answering meanwhile. A job may be published twice
//! (a crash after the confirm and before the removal, or a slow relay whose
//! jobs another process took over); workers drop such duplicates.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use passlink_shared::amqp::{self, ATTEMPT_HEADER, AmqpSettings, JOBS_HEADER, SEND_LINK_KEY};
use passlink_shared::store::{OutboxEntry, Store, StoreError};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::app::{App, RelaySignal};
use crate::config::RelaySettings;
use crate::metrics::ApiMetrics;

/// How often a relay looks for jobs other processes left behind.
const CLAIM_EVERY: Duration = Duration::from_secs(5);
/// How often a relay removes consumers of stopped processes that hold no
/// jobs, and how long such a consumer must have been idle.
const FORGET_EVERY: Duration = Duration::from_secs(600);
const FORGET_IDLE: Duration = Duration::from_secs(3600);

/// Starts one relay loop per configured task. They stop when `stop` turns
/// true and the outbox of their shards is empty (or the caller gives up
/// waiting).
pub fn spawn(app: &Arc<App>, stop: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    let tasks = app.config.relay.tasks;
    let consumer = consumer_name();
    (0..tasks)
        .map(|task| {
            let relay = Relay {
                store: app.store.clone(),
                amqp: app.config.common.amqp.clone(),
                settings: app.config.relay.clone(),
                signal: app.relay.clone(),
                metrics: app.metrics.clone(),
                consumer: format!("{consumer}-{task}"),
                task,
                shards: (0..app.store.keys().shards())
                    .filter(|s| app.relay.task_of(*s) == task)
                    .collect(),
            };
            tokio::spawn(relay.run(stop.clone()))
        })
        .collect()
}

/// Unique per process, so that each process's unfinished jobs can be told
/// apart from another's in the consumer group.
fn consumer_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "api".to_owned());
    format!(
        "{host}-{}-{}",
        std::process::id(),
        passlink_shared::code::new_id().simple()
    )
}

struct Relay {
    store: Store,
    amqp: AmqpSettings,
    settings: RelaySettings,
    signal: RelaySignal,
    metrics: ApiMetrics,
    consumer: String,
    task: usize,
    shards: Vec<u16>,
}

/// A connection with a confirming channel.
struct Link {
    connection: Connection,
    channel: Channel,
}

#[derive(Debug, thiserror::Error)]
enum RoundError {
    #[error("broker: {0}")]
    Broker(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Relay {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut link: Option<Link> = None;
        // Shards whose entries this consumer took but has not finished.
        let mut own_pending = vec![false; self.shards.len()];
        // Claim at start: a crashed predecessor may have left jobs behind.
        let mut next_claim = Instant::now();
        let mut backoff = Backoff::default();
        let mut prepared = false;
        let mut next_forget = Instant::now() + CLAIM_EVERY;

        loop {
            let stopping = *stop.borrow();

            if !prepared {
                match self.store.outbox_prepare().await {
                    Ok(()) => prepared = true,
                    Err(err) => {
                        tracing::warn!(error = %err, "relay cannot prepare the outbox");
                        if stopping || !backoff.wait(&mut stop).await {
                            return;
                        }
                        continue;
                    }
                }
            }

            if link
                .as_ref()
                .is_some_and(|l| !l.connection.status().connected())
            {
                self.lost(&mut link, "connection closed");
            }
            if link.is_none() {
                match self.connect().await {
                    Ok(new_link) => {
                        tracing::info!(relay.task = self.task, "relay connected to rabbitmq");
                        link = Some(new_link);
                        self.signal.set_connected(self.task, true);
                        backoff.reset();
                        // Jobs published on the old connection may be unconfirmed.
                        own_pending.iter_mut().for_each(|p| *p = true);
                    }
                    Err(err) => {
                        if backoff.first() {
                            tracing::warn!(relay.task = self.task, error = %err,
                                "relay cannot reach rabbitmq; jobs wait in the outbox");
                        }
                        if stopping || !backoff.wait(&mut stop).await {
                            return;
                        }
                        continue;
                    }
                }
            }
            let Some(current) = link.as_ref() else {
                continue;
            };

            let claim = Instant::now() >= next_claim;
            if claim {
                next_claim = Instant::now() + CLAIM_EVERY;
            }
            if Instant::now() >= next_forget {
                next_forget = Instant::now() + FORGET_EVERY;
                self.forget_stale_consumers().await;
            }
            match self.round(&current.channel, &mut own_pending, claim).await {
                Ok(0) if stopping => {
                    self.leave().await;
                    return;
                }
                Ok(0) => {
                    tokio::select! {
                        () = self.signal.woken(self.task) => {}
                        () = tokio::time::sleep(self.settings.poll_interval) => {}
                        _ = stop.changed() => {}
                    }
                }
                Ok(_) => {}
                Err(RoundError::Broker(err)) => self.lost(&mut link, &err),
                Err(RoundError::Store(err)) => {
                    tracing::warn!(error = %err, "relay cannot read the outbox");
                    if stopping || !backoff.wait(&mut stop).await {
                        return;
                    }
                }
            }
        }
    }

    async fn forget_stale_consumers(&self) {
        for &shard in &self.shards {
            match self
                .store
                .outbox_forget_consumers(shard, &self.consumer, FORGET_IDLE)
                .await
            {
                Ok(0) => {}
                Ok(forgotten) => {
                    tracing::info!(
                        shard,
                        forgotten,
                        "removed relay consumers of stopped processes"
                    )
                }
                Err(err) => tracing::debug!(error = %err, "cannot list relay consumers"),
            }
        }
    }

    /// Leaves the consumer groups on a clean stop, where nothing is pending.
    async fn leave(&self) {
        if let Err(err) = self.store.outbox_leave(&self.shards, &self.consumer).await {
            tracing::debug!(error = %err, "cannot leave the relay consumer groups");
        }
    }

    fn lost(&self, link: &mut Option<Link>, why: &str) {
        if link.take().is_some() {
            tracing::warn!(
                relay.task = self.task,
                error = why,
                "relay lost rabbitmq; reconnecting"
            );
        }
        self.signal.set_connected(self.task, false);
    }

    async fn connect(&self) -> Result<Link, lapin::Error> {
        let connection = amqp::connect(&self.amqp, "passlink-api relay").await?;
        let channel = connection.create_channel().await?;
        amqp::declare_topology(&channel, &self.amqp).await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Link {
            connection,
            channel,
        })
    }

    /// Reads every shard once and publishes what it found; returns how many
    /// jobs left the outbox.
    async fn round(
        &self,
        channel: &Channel,
        own_pending: &mut [bool],
        claim: bool,
    ) -> Result<usize, RoundError> {
        let reads = self
            .shards
            .iter()
            .zip(own_pending.iter())
            .map(|(&shard, &pending)| self.take(shard, pending, claim));
        let mut batches = Vec::with_capacity(self.shards.len());
        for (index, read) in join_all(reads).await.into_iter().enumerate() {
            let (entries, pending_drained) = read?;
            if pending_drained {
                own_pending[index] = false;
            }
            batches.push(entries);
        }
        let total: usize = batches.iter().map(Vec::len).sum();
        if total == 0 {
            return Ok(0);
        }

        // Pack the round's jobs, across shards, into messages of up to
        // `jobs_per_message` (the broker's cost is per message, and at
        // saturation each shard holds only a few jobs a round), publish
        // everything, then wait for the confirms together: one broker round
        // trip per round. Each message remembers the shard of every job, so
        // that a confirmed job leaves its own shard's outbox.
        let mut confirms = Vec::new();
        let mut publish_error = None;
        let (empty, jobs): (Vec<Origin<'_>>, Vec<Origin<'_>>) = batches
            .iter()
            .enumerate()
            .flat_map(|(index, entries)| entries.iter().map(move |entry| (index, entry)))
            .partition(|(_, entry)| entry.job.is_empty());
        if !empty.is_empty() {
            confirms.push((origins(&empty), None));
        }
        for chunk in jobs.chunks(self.settings.jobs_per_message) {
            let entries: Vec<&OutboxEntry> = chunk.iter().map(|(_, entry)| *entry).collect();
            match self.publish(channel, &entries).await {
                Ok(confirm) => confirms.push((origins(chunk), Some(confirm))),
                Err(err) => {
                    publish_error = Some(err.to_string());
                    break;
                }
            }
        }

        let mut done: Vec<Vec<String>> = vec![Vec::new(); self.shards.len()];
        let mut failed = 0usize;
        let confirm_started = std::time::Instant::now();
        let waits = confirms.into_iter().map(|(origins, confirm)| async move {
            let ok = match confirm {
                None => true,
                Some(confirm) => matches!(confirm.await, Ok(Confirmation::Ack(None))),
            };
            (origins, ok)
        });
        let confirmed = tokio::time::timeout(self.settings.confirm_timeout, join_all(waits)).await;
        self.metrics
            .relay_confirm_latency
            .observe(confirm_started.elapsed().as_secs_f64());
        match confirmed {
            Ok(results) => {
                for (origins, ok) in results {
                    for (index, id) in origins {
                        if ok {
                            done[index].push(id);
                        } else {
                            failed += 1;
                            own_pending[index] = true;
                        }
                    }
                }
            }
            Err(_) => {
                own_pending.iter_mut().for_each(|p| *p = true);
                self.metrics.relay_failures.inc_by(total as u64);
                return Err(RoundError::Broker("publisher confirms timed out".into()));
            }
        }

        let removals = done
            .iter()
            .enumerate()
            .map(|(index, ids)| self.store.outbox_done(self.shards[index], ids));
        for removal in join_all(removals).await {
            removal?;
        }
        let published: usize = done.iter().map(Vec::len).sum();
        self.metrics.relay_published.inc_by(published as u64);
        self.metrics.relay_failures.inc_by(failed as u64);
        tracing::debug!(relay.task = self.task, published, failed, "relay round");

        if let Some(err) = publish_error {
            let unpublished = total.saturating_sub(published + failed);
            self.metrics.relay_failures.inc_by(unpublished as u64);
            own_pending.iter_mut().for_each(|p| *p = true);
            return Err(RoundError::Broker(err));
        }
        if failed > 0 {
            // Nacked or returned: the broker cannot take them as set up now;
            // reconnecting declares the topology again.
            return Err(RoundError::Broker(format!(
                "{failed} jobs were not confirmed"
            )));
        }
        Ok(published)
    }

    /// Reads a shard's jobs: first those this consumer left unfinished,
    /// then new ones, and when due, those other consumers abandoned.
    /// Returns the entries and whether the unfinished ones are all done.
    async fn take(
        &self,
        shard: u16,
        own_pending: bool,
        claim: bool,
    ) -> Result<(Vec<OutboxEntry>, bool), StoreError> {
        let batch = self.settings.batch;
        let mut drained = false;
        let mut entries = Vec::new();
        if own_pending {
            entries = self
                .store
                .outbox_read(shard, &self.consumer, batch, true)
                .await?;
            drained = entries.is_empty();
        }
        if entries.is_empty() && claim {
            entries = self
                .store
                .outbox_claim_stale(shard, &self.consumer, self.settings.claim_idle, batch)
                .await?;
            if !entries.is_empty() {
                tracing::info!(
                    shard,
                    jobs = entries.len(),
                    "relay took over jobs another process left behind"
                );
            }
        }
        if entries.is_empty() {
            entries = self
                .store
                .outbox_read(shard, &self.consumer, batch, false)
                .await?;
        }
        Ok((entries, drained))
    }

    /// Publishes `entries` as one message: the job itself when alone, a
    /// batch otherwise.
    async fn publish(
        &self,
        channel: &Channel,
        entries: &[&OutboxEntry],
    ) -> Result<lapin::PublisherConfirm, lapin::Error> {
        let body = match entries {
            [single] => single.job.clone(),
            many => passlink_shared::job::encode_batch(many.iter().map(|e| e.job.as_slice())),
        };
        let mut headers = FieldTable::default();
        headers.insert(ATTEMPT_HEADER.into(), AMQPValue::LongUInt(1));
        headers.insert(
            JOBS_HEADER.into(),
            AMQPValue::LongUInt(entries.len() as u32),
        );
        let mut properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_headers(headers);
        if let Some(added) = entries.first().and_then(|e| e.added_ms()) {
            properties = properties.with_timestamp((added / 1000).max(0) as u64);
        }
        channel
            .basic_publish(
                self.amqp.exchange.as_str().into(),
                SEND_LINK_KEY.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                &body,
                properties,
            )
            .await
    }
}

/// An outbox entry with the index of the shard it was read from.
type Origin<'a> = (usize, &'a OutboxEntry);

/// The shard index and outbox id of each job of a message.
fn origins(jobs: &[Origin<'_>]) -> Vec<(usize, String)> {
    jobs.iter()
        .map(|(index, entry)| (*index, entry.id.clone()))
        .collect()
}

/// Exponential backoff between reconnection attempts, up to 5 seconds.
#[derive(Default)]
struct Backoff {
    attempt: u32,
}

impl Backoff {
    fn first(&self) -> bool {
        self.attempt == 0
    }

    fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Sleeps; false when asked to stop meanwhile.
    async fn wait(&mut self, stop: &mut watch::Receiver<bool>) -> bool {
        let delay =
            Duration::from_millis(100 * 2u64.pow(self.attempt.min(6))).min(Duration::from_secs(5));
        self.attempt += 1;
        tokio::select! {
            () = tokio::time::sleep(delay) => true,
            _ = stop.changed() => !*stop.borrow(),
        }
    }
}

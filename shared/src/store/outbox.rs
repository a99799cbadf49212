//! The outbox: send-link jobs written with their codes, waiting for the relay
//! to hand them to RabbitMQ.
//!
//! Each shard's outbox is a Redis stream read through one consumer group, so
//! several API processes share the work and each entry goes to one of them.
//! An entry leaves the stream only after the broker confirmed it. Entries a
//! crashed process had taken stay pending in the group and are claimed by
//! another process once they have been idle long enough.

use std::time::Duration;

use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadOptions, StreamReadReply};
use redis::{AsyncCommands, Value};

use super::{Store, StoreError};
use crate::time::millis;

/// The consumer group every relay reads through.
pub const RELAY_GROUP: &str = "relay";

/// One job waiting in an outbox.
#[derive(Clone, Debug)]
pub struct OutboxEntry {
    pub shard: u16,
    /// Stream entry id; its first part is the Unix millisecond it was added.
    pub id: String,
    /// The encoded job; empty when the entry was deleted meanwhile.
    pub job: Vec<u8>,
}

impl OutboxEntry {
    /// When the job entered the outbox, from the stream id.
    pub fn added_ms(&self) -> Option<i64> {
        self.id.split('-').next()?.parse().ok()
    }
}

/// How much waits in the outboxes, for operators.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutboxStats {
    pub backlog: u64,
    /// Unix milliseconds of the oldest waiting job.
    pub oldest_ms: Option<i64>,
}

impl Store {
    /// Creates the consumer group of every shard's stream if missing.
    pub async fn outbox_prepare(&self) -> Result<(), StoreError> {
        for shard in 0..self.keys.shards() {
            self.create_group(shard).await?;
        }
        Ok(())
    }

    async fn create_group(&self, shard: u16) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let created: Result<(), _> = conn
            .xgroup_create_mkstream(self.keys.outbox(shard), RELAY_GROUP, "0")
            .await;
        match created {
            Err(err) if err.code() != Some("BUSYGROUP") => Err(err.into()),
            _ => Ok(()),
        }
    }

    /// Takes up to `count` entries of one shard for `consumer`: new ones, or
    /// with `own_pending` those it took before and has not finished.
    pub async fn outbox_read(
        &self,
        shard: u16,
        consumer: &str,
        count: usize,
        own_pending: bool,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let key = self.keys.outbox(shard);
        let from = if own_pending { "0" } else { ">" };
        let options = StreamReadOptions::default()
            .group(RELAY_GROUP, consumer)
            .count(count);
        let mut conn = self.conn.clone();
        let reply: Result<Option<StreamReadReply>, _> =
            conn.xread_options(&[&key], &[from], &options).await;
        let reply = match reply {
            // Redis lost the group (a restart without persistence): make it
            // again and let the next round read.
            Err(err) if err.code() == Some("NOGROUP") => {
                self.create_group(shard).await?;
                return Ok(Vec::new());
            }
            other => other?,
        };
        Ok(reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|k| k.ids)
            .map(|entry| to_entry(shard, entry))
            .collect())
    }

    /// Takes over entries other consumers left idle for `min_idle`, such as
    /// those of a crashed API process.
    pub async fn outbox_claim_stale(
        &self,
        shard: u16,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut conn = self.conn.clone();
        let reply: Result<StreamAutoClaimReply, _> = redis::cmd("XAUTOCLAIM")
            .arg(self.keys.outbox(shard))
            .arg(RELAY_GROUP)
            .arg(consumer)
            .arg(millis(min_idle))
            .arg("0-0")
            .arg("COUNT")
            .arg(count)
            .query_async(&mut conn)
            .await;
        match reply {
            Err(err) if err.code() == Some("NOGROUP") => {
                self.create_group(shard).await?;
                Ok(Vec::new())
            }
            other => Ok(other?
                .claimed
                .into_iter()
                .map(|entry| to_entry(shard, entry))
                .collect()),
        }
    }

    /// Removes entries the broker confirmed.
    pub async fn outbox_done(&self, shard: u16, ids: &[String]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let key = self.keys.outbox(shard);
        let mut conn = self.conn.clone();
        redis::pipe()
            .atomic()
            .xack(&key, RELAY_GROUP, ids)
            .ignore()
            .xdel(&key, ids)
            .ignore()
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// Removes relay consumers from a shard's group that hold no jobs and
    /// were idle for `idle` (every API start adds one; stopped processes
    /// would pile up). `keep` is never removed. Returns how many went.
    pub async fn outbox_forget_consumers(
        &self,
        shard: u16,
        keep: &str,
        idle: Duration,
    ) -> Result<usize, StoreError> {
        let key = self.keys.outbox(shard);
        let mut conn = self.conn.clone();
        let info: redis::streams::StreamInfoConsumersReply =
            match conn.xinfo_consumers(&key, RELAY_GROUP).await {
                Ok(info) => info,
                // No group (yet): nothing to forget.
                Err(err) if err.code() == Some("NOGROUP") => return Ok(0),
                Err(err) => return Err(err.into()),
            };
        let mut forgotten = 0;
        for consumer in info.consumers {
            let stale = consumer.pending == 0 && consumer.idle as u128 >= idle.as_millis();
            if consumer.name != keep && stale {
                let _: i64 = conn
                    .xgroup_delconsumer(&key, RELAY_GROUP, &consumer.name)
                    .await?;
                forgotten += 1;
            }
        }
        Ok(forgotten)
    }

    /// Removes `consumer` from every shard's group where it holds no jobs,
    /// when its process stops.
    pub async fn outbox_leave(&self, shards: &[u16], consumer: &str) -> Result<(), StoreError> {
        for &shard in shards {
            let key = self.keys.outbox(shard);
            let mut conn = self.conn.clone();
            let info: redis::streams::StreamInfoConsumersReply =
                match conn.xinfo_consumers(&key, RELAY_GROUP).await {
                    Ok(info) => info,
                    Err(err) if err.code() == Some("NOGROUP") => continue,
                    Err(err) => return Err(err.into()),
                };
            if info
                .consumers
                .iter()
                .any(|c| c.name == consumer && c.pending == 0)
            {
                let _: i64 = conn.xgroup_delconsumer(&key, RELAY_GROUP, consumer).await?;
            }
        }
        Ok(())
    }

    /// Backlog and the age of the oldest job over all shards.
    pub async fn outbox_stats(&self) -> Result<OutboxStats, StoreError> {
        let mut stats = OutboxStats::default();
        for key in self.keys.outboxes() {
            let mut conn = self.conn.clone();
            let len: u64 = conn.xlen(&key).await?;
            if len == 0 {
                continue;
            }
            stats.backlog += len;
            let first: redis::streams::StreamRangeReply =
                conn.xrange_count(&key, "-", "+", 1).await?;
            let oldest = first
                .ids
                .first()
                .and_then(|e| e.id.split('-').next()?.parse().ok());
            stats.oldest_ms = match (stats.oldest_ms, oldest) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(stats)
    }
}

fn to_entry(shard: u16, entry: StreamId) -> OutboxEntry {
    let job = match entry.map.get("job") {
        Some(Value::BulkString(bytes)) => bytes.clone(),
        _ => Vec::new(),
    };
    OutboxEntry {
        shard,
        id: entry.id,
        job,
    }
}

//! Requests per caller per minute, held across API processes.
//!
//! Each process counts locally and adds its counts to a per-window counter in
//! Redis every `sync_interval`, reading back the total of all processes. A
//! request is refused when the last known total plus the local unsynced
//! count reaches the limit. A caller's first request in a window on a process
//! reads the total first; every other request stays at one Redis round trip.
//! The price is that several processes together may let through up to one
//! sync interval's worth of extra requests each before they all see the
//! limit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use passlink_shared::error::{ApiError, Code};
use passlink_shared::store::Store;
use passlink_shared::time::now_ms;

const WINDOW_MS: i64 = 60_000;

#[derive(Default)]
struct Count {
    window: i64,
    /// The total of all processes as Redis last told it.
    synced: u64,
    /// Counted here and not yet added in Redis.
    pending: u64,
}

#[derive(Clone)]
pub struct CallerLimiter {
    per_minute: u64,
    counts: Arc<Mutex<HashMap<String, Count>>>,
}

impl CallerLimiter {
    /// `per_minute` 0 turns the limit off.
    pub fn new(per_minute: u64) -> Self {
        Self {
            per_minute,
            counts: Arc::default(),
        }
    }

    /// Counts one request of `subject`, or refuses it with 429.
    pub async fn check(&self, store: &Store, subject: &str) -> Result<(), ApiError> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let window = now_ms() / WINDOW_MS;
        let known = {
            let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
            counts.get(subject).is_some_and(|c| c.window == window)
        };
        if !known {
            // What the other processes counted so far; if Redis cannot say,
            // this process counts alone until the next sync.
            let total = store
                .add_caller_requests(subject, window, 0)
                .await
                .unwrap_or(0);
            let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
            let count = counts.entry(subject.to_owned()).or_default();
            if count.window != window {
                *count = Count {
                    window,
                    synced: total,
                    pending: 0,
                };
            }
        }
        self.count(subject)
    }

    fn count(&self, subject: &str) -> Result<(), ApiError> {
        let now = now_ms();
        let window = now / WINDOW_MS;
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(subject.to_owned()).or_default();
        if count.window != window {
            *count = Count {
                window,
                ..Count::default()
            };
        }
        if count.synced + count.pending >= self.per_minute {
            let retry_after = ((window + 1) * WINDOW_MS - now + 999) / 1000;
            return Err(ApiError::new(
                Code::ResourceExhausted,
                "RATE-CALLER",
                format!("Too many requests; at most {} per minute", self.per_minute),
            )
            .with_retry_after(retry_after.max(1) as u64));
        }
        count.pending += 1;
        Ok(())
    }

    /// Adds local counts to Redis every `every`, forever.
    pub async fn sync_forever(self, store: Store, every: Duration) {
        if self.per_minute == 0 {
            return;
        }
        loop {
            tokio::time::sleep(every).await;
            self.sync(&store).await;
        }
    }

    async fn sync(&self, store: &Store) {
        let window = now_ms() / WINDOW_MS;
        let batch: Vec<(String, i64, u64)> = {
            let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
            // Callers quiet for a whole window are forgotten.
            counts.retain(|_, c| c.window >= window - 1);
            counts
                .iter_mut()
                .filter(|(_, c)| c.window == window)
                .map(|(subject, c)| {
                    let pending = std::mem::take(&mut c.pending);
                    (subject.clone(), c.window, pending)
                })
                .collect()
        };

        let updates = batch.iter().map(|(subject, window, pending)| async move {
            let total = store.add_caller_requests(subject, *window, *pending).await;
            (subject, *window, *pending, total)
        });
        let results = join_all(updates).await;

        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        for (subject, window, pending, total) in results {
            let Some(count) = counts.get_mut(subject.as_str()) else {
                continue;
            };
            if count.window != window {
                continue;
            }
            match total {
                Ok(total) => count.synced = total,
                Err(err) => {
                    // Keep the counts for the next try.
                    count.pending += pending;
                    tracing::debug!(error = %err, "cannot sync the caller rate limit");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_locally_until_the_limit() {
        let limiter = CallerLimiter::new(3);
        for _ in 0..3 {
            limiter.count("a").unwrap();
        }
        let err = limiter.count("a").unwrap_err();
        assert_eq!(err.code, Code::ResourceExhausted);
        assert_eq!(err.status(), 429);
        assert!((1..=60).contains(&err.retry_after.unwrap()));
        limiter.count("b").unwrap();
    }
}

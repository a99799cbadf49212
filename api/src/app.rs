//! What every request handler shares.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use passlink_shared::code::{CodeGenerator, CodeHasher};
use passlink_shared::error::ApiError;
use passlink_shared::store::Store;
use tokio::sync::Notify;

use crate::auth::{Authenticator, Caller};
use crate::config::ApiConfig;
use crate::metrics::ApiMetrics;
use crate::rate_limit::CallerLimiter;

pub struct App {
    pub config: ApiConfig,
    pub store: Store,
    pub auth: Authenticator,
    pub codes: CodeGenerator,
    pub hasher: CodeHasher,
    pub relay: RelaySignal,
    pub metrics: ApiMetrics,
    pub limiter: CallerLimiter,
}

impl App {
    pub fn new(config: ApiConfig, store: Store, auth: Authenticator) -> Arc<Self> {
        Arc::new(Self {
            codes: CodeGenerator::new(config.common.code_length),
            hasher: CodeHasher::new(&config.common.code_hmac_key),
            relay: RelaySignal::new(config.relay.tasks),
            metrics: ApiMetrics::new(),
            limiter: CallerLimiter::new(config.limits.caller_per_minute),
            config,
            store,
            auth,
        })
    }
}

impl App {
    /// The caller behind the request's token, counted against its rate
    /// limit.
    pub async fn caller(&self, headers: &http::HeaderMap) -> Result<Arc<Caller>, ApiError> {
        let caller = self.auth.authenticate(headers).await?;
        self.limiter.check(&self.store, &caller.subject).await?;
        Ok(caller)
    }

    /// The caller, when the request carries a token, for the endpoints a
    /// registration code alone opens: a token that is given must still be
    /// valid, and counts against its rate limit.
    pub async fn optional_caller(
        &self,
        headers: &http::HeaderMap,
    ) -> Result<Option<Arc<Caller>>, ApiError> {
        if headers.contains_key(http::header::AUTHORIZATION) {
            self.caller(headers).await.map(Some)
        } else {
            Ok(None)
        }
    }
}

/// How handlers and the relay talk: a wake-up after a job was written, and
/// whether the relay currently has a broker connection.
///
/// Each relay task owns the shards `s` with `s % tasks == task`, and has its
/// own wake-up, so a job wakes the task that will publish it.
#[derive(Clone)]
pub struct RelaySignal {
    wake: Arc<[Notify]>,
    /// One bit per task that has a broker connection.
    connected: Arc<AtomicU64>,
}

impl RelaySignal {
    pub fn new(tasks: usize) -> Self {
        Self {
            wake: (0..tasks.max(1)).map(|_| Notify::new()).collect(),
            connected: Arc::default(),
        }
    }

    /// The task that publishes jobs of `shard`.
    pub fn task_of(&self, shard: u16) -> usize {
        usize::from(shard) % self.wake.len()
    }

    /// A job of `shard` is waiting; its relay task need not wait for the
    /// next poll. The permit is kept if the task is busy right now.
    pub fn wake(&self, shard: u16) {
        self.wake[self.task_of(shard)].notify_one();
    }

    pub async fn woken(&self, task: usize) {
        self.wake[task].notified().await;
    }

    pub fn set_connected(&self, task: usize, connected: bool) {
        let bit = 1u64 << task;
        if connected {
            self.connected.fetch_or(bit, Ordering::Relaxed);
        } else {
            self.connected.fetch_and(!bit, Ordering::Relaxed);
        }
    }

    /// Every relay task has a broker connection.
    pub fn is_connected(&self) -> bool {
        let all = u64::MAX >> (64 - self.wake.len());
        self.connected.load(Ordering::Relaxed) == all
    }
}

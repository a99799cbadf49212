//! Counters for the per-caller rate limit.

use redis::AsyncCommands;

use super::{Store, StoreError};

impl Store {
    /// Adds `count` requests of `subject` in minute `window` and returns the
    /// total of all processes. The counter outlives its window briefly.
    pub async fn add_caller_requests(
        &self,
        subject: &str,
        window: i64,
        count: u64,
    ) -> Result<u64, StoreError> {
        let key = format!("{}:caller_rate:{subject}:{window}", self.keys.prefix());
        let mut conn = self.conn.clone();
        let total: u64 = conn.incr(&key, count).await?;
        let _: bool = conn.pexpire(&key, 120_000).await?;
        Ok(total)
    }
}

//! Everything Passlink keeps in Redis, behind typed operations.
//!
//! Each request-path operation is one Lua script, so it costs one round trip
//! and is atomic. Connections reconnect on their own; an operation that fails
//! while Redis is away returns [`StoreError::Unavailable`].

mod delivery;
mod directory;
mod keys;
mod links;
mod outbox;
mod rates;
mod registration;

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

pub use delivery::{Claim, DeliveryState, DeliveryStatus};
pub use directory::{StoredUser, UserChange};
pub use keys::{DEFAULT_SHARDS, Keys};
pub use links::{CreateLink, CreatedLink, LinkOutcome};
pub use outbox::{OutboxEntry, OutboxStats, RELAY_GROUP};
pub use registration::{
    Ceremony, CodeFailure, CodeState, FinishOutcome, FinishRegistration, RegistrationContext,
    StartCeremony, StartOutcome,
};

/// How to reach Redis.
#[derive(Clone, Debug)]
pub struct RedisSettings {
    /// `redis://host:port/db`; ignored when `cluster_nodes` is set.
    pub url: String,
    /// Seed nodes of a Redis Cluster; empty for a single server.
    pub cluster_nodes: Vec<String>,
    /// Prefix of every key, so that several deployments or tests can share
    /// one server.
    pub prefix: String,
    pub shards: u16,
    /// Upper bound for one command, so that a hung server fails a request
    /// instead of holding it forever.
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis is unavailable: {0}")]
    Unavailable(#[source] redis::RedisError),
    #[error("redis answered unexpectedly: {0}")]
    Protocol(String),
}

impl From<redis::RedisError> for StoreError {
    fn from(err: redis::RedisError) -> Self {
        StoreError::Unavailable(err)
    }
}

/// A connection to a single server or to a cluster; both multiplex many
/// concurrent requests over few sockets and reconnect by themselves.
#[derive(Clone)]
pub enum RedisConn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Single(c) => c.req_packed_command(cmd),
            RedisConn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            RedisConn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Single(c) => c.get_db(),
            RedisConn::Cluster(c) => c.get_db(),
        }
    }
}

impl RedisConn {
    /// Connects once; callers decide whether to wait and try again.
    pub async fn connect(settings: &RedisSettings) -> Result<Self, StoreError> {
        if settings.cluster_nodes.is_empty() {
            let client = redis::Client::open(settings.url.as_str())?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(settings.timeout))
                .set_response_timeout(Some(settings.timeout))
                .set_number_of_retries(2)
                .set_max_delay(Duration::from_secs(1));
            let manager = client.get_connection_manager_with_config(config).await?;
            Ok(RedisConn::Single(manager))
        } else {
            let client = redis::cluster::ClusterClientBuilder::new(settings.cluster_nodes.clone())
                .connection_timeout(settings.timeout)
                .response_timeout(settings.timeout)
                .build()?;
            Ok(RedisConn::Cluster(client.get_async_connection().await?))
        }
    }
}

/// Typed access to Passlink's data.
#[derive(Clone)]
pub struct Store {
    conn: RedisConn,
    keys: Keys,
}

impl Store {
    pub fn new(conn: RedisConn, keys: Keys) -> Self {
        Self { conn, keys }
    }

    /// Connects, trying again until `patience` is used up, so that a process
    /// started together with Redis does not fail because it was first.
    pub async fn connect(settings: &RedisSettings, patience: Duration) -> Result<Self, StoreError> {
        let deadline = tokio::time::Instant::now() + patience;
        let mut delay = Duration::from_millis(100);
        loop {
            match RedisConn::connect(settings).await {
                Ok(conn) => {
                    let keys = Keys::new(&settings.prefix, settings.shards);
                    return Ok(Self::new(conn, keys));
                }
                Err(err) if tokio::time::Instant::now() + delay < deadline => {
                    tracing::warn!(error = %err, "waiting for redis");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                Err(err) => return Err(err),
            }
        }
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// A handle for commands this crate does not wrap (tests, tools).
    pub fn conn(&self) -> RedisConn {
        self.conn.clone()
    }

    /// Round trip to check that Redis answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }
}

/// Joins organization ids for a script argument: `*` for all, else one per
/// line. Ids never contain control characters (the directory refuses them).
pub(crate) fn org_scope_arg(all: bool, orgs: &[String]) -> String {
    if all { "*".to_owned() } else { orgs.join("\n") }
}

/// Reads element `index` of a script's array reply as text.
pub(crate) fn text_at(reply: &[Value], index: usize) -> Result<String, StoreError> {
    match reply.get(index) {
        Some(Value::BulkString(bytes)) => Ok(String::from_utf8_lossy(bytes).into_owned()),
        Some(Value::SimpleString(s)) => Ok(s.clone()),
        Some(Value::Int(n)) => Ok(n.to_string()),
        other => Err(StoreError::Protocol(format!(
            "element {index} is {other:?}"
        ))),
    }
}

/// Reads element `index` of a script's array reply as a number.
pub(crate) fn int_at(reply: &[Value], index: usize) -> Result<i64, StoreError> {
    match reply.get(index) {
        Some(Value::Int(n)) => Ok(*n),
        Some(Value::BulkString(bytes)) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| StoreError::Protocol(format!("element {index} is not a number"))),
        other => Err(StoreError::Protocol(format!(
            "element {index} is {other:?}"
        ))),
    }
}

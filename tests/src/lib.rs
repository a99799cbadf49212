//! Harness for Passlink's end-to-end tests.
//!
//! Every test starts its own API and worker processes (the real binaries)
//! against the machine's Redis and RabbitMQ, under its own key prefix, queue
//! and exchange names, tokens and secrets, with its own SMTP catcher
//! (maildev) on its own ports. Tests therefore run in parallel and never see
//! each other's data; a stack removes its keys and queues when dropped.

pub mod broker;
pub mod grpc;
pub mod maildev;
pub mod passkeys;
pub mod process;
pub mod proxy;
pub mod redis_server;
pub mod sink;
pub mod stack;

pub use broker::PrivateBroker;
pub use maildev::{Email, Maildev};
pub use process::Service;
pub use proxy::Proxy;
pub use redis_server::{PrivateCluster, PrivateRedis};
pub use sink::{SinkEmail, SmtpSink};
pub use stack::{Stack, StackOptions, Tokens};

/// A local TCP port that is free right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("the OS hands out a free port")
}

/// Polls `check` every 100 ms until it returns `Some` or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: std::time::Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

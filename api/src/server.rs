//! The HTTP listener: accepts connections up to a cap, serves HTTP/1.1 and
//! HTTP/2 (h2c) on one port (JSON, gRPC and gRPC-web alike, see `front`),
//! and drains open requests on shutdown.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::app::App;
use crate::front;
use crate::grpc::GrpcApi;

/// Serves until `shutdown` turns true, then waits up to `grace` for open
/// requests.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
) {
    let limits = app.config.http.clone();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(limits.max_header_bytes as u32)
        .max_concurrent_streams(256)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));

    let grpc = Arc::new(GrpcApi::new(app.clone()));
    let slots = Arc::new(Semaphore::new(limits.max_connections));

    loop {
        // Wait for a free slot first: past the cap, new connections wait in
        // the kernel's backlog instead of being accepted and starved.
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Running out of file descriptors and similar: back off
                    // briefly rather than spin.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = stream.set_nodelay(true);

        let app = app.clone();
        let grpc = grpc.clone();
        let activity = Arc::new(Activity::new());
        let tracked = activity.clone();
        let service = service_fn(move |req| {
            let app = app.clone();
            let grpc = grpc.clone();
            let activity = tracked.clone();
            async move {
                activity.started();
                let response = front::handle(app, grpc, req).await;
                activity.finished();
                Ok::<_, Infallible>(response)
            }
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let mut stop = shutdown.clone();
        let idle_timeout = limits.idle_timeout;
        // Runs the connection until it ends; closes it gracefully when the
        // server stops or when it has had no request for `idle_timeout`. The
        // idle check also covers what hyper's own timers do not: a
        // connection that never sends a byte (hyper-util's protocol
        // detection has no timer) and an HTTP/2 one kept up only by pings.
        tokio::spawn(async move {
            let _permit = permit;
            tokio::pin!(conn);
            let mut closing = false;
            let period = (idle_timeout / 4).max(Duration::from_millis(100));
            let mut check = tokio::time::interval(period);
            // An idle connection asked to close gets this long to do so; a
            // peer that ignores HTTP/2's GOAWAY handshake is then cut off.
            let cut_off = tokio::time::sleep(Duration::MAX / 4);
            tokio::pin!(cut_off);
            let result = loop {
                tokio::select! {
                    result = conn.as_mut() => break result,
                    _ = stop.changed(), if !closing => {
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                    _ = check.tick(), if !closing => {
                        if activity.idle() >= idle_timeout {
                            closing = true;
                            conn.as_mut().graceful_shutdown();
                            let deadline = tokio::time::Instant::now() + idle_timeout;
                            cut_off.as_mut().reset(deadline);
                        }
                    }
                    () = &mut cut_off => break Ok(()),
                }
            };
            if let Err(err) = result {
                tracing::debug!(%peer, error = %err, "connection ended with an error");
            }
        });
    }

    drop(listener);
    tracing::info!("no longer accepting connections; finishing open requests");
    // Every connection holds a slot until it ends: all slots back means all
    // connections are closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    tokio::select! {
        _ = slots.acquire_many(all) => tracing::info!("all connections closed"),
        () = tokio::time::sleep(grace) => {
            tracing::warn!(grace_secs = grace.as_secs(), "grace period over; closing the rest");
        }
    }
}

/// When a connection last started or finished a request, and how many it
/// has open.
struct Activity {
    born: Instant,
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Self {
            born: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let ms = self.born.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.touch();
    }

    fn finished(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.touch();
    }

    /// How long the connection has had no request open.
    fn idle(&self) -> Duration {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return Duration::ZERO;
        }
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.born.elapsed().saturating_sub(last)
    }
}

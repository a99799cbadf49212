//! The worker's small HTTP listener for operators: `/metrics`, `/healthz`
//! (the process runs) and `/readyz` (it is consuming).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;

use crate::metrics::WorkerMetrics;

pub async fn serve(listener: TcpListener, metrics: WorkerMetrics) {
    let metrics = Arc::new(metrics);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(std::time::Duration::from_secs(10));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let metrics = metrics.clone();
        let service = service_fn(move |req| {
            let metrics = metrics.clone();
            async move { Ok::<_, Infallible>(answer(&metrics, &req)) }
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}

fn answer(metrics: &WorkerMetrics, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let readable = matches!(*req.method(), http::Method::GET | http::Method::HEAD);
    let (status, content_type, body) = match req.uri().path() {
        _ if !readable => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "only GET and HEAD\n".to_owned(),
        ),
        "/metrics" => (
            StatusCode::OK,
            passlink_shared::metrics::CONTENT_TYPE,
            passlink_shared::metrics::render(&metrics.registry),
        ),
        "/healthz" => (
            StatusCode::OK,
            "application/json",
            r#"{"status":"ok"}"#.to_owned(),
        ),
        "/readyz" if metrics.consuming.get() == 1 => (
            StatusCode::OK,
            "application/json",
            r#"{"status":"ok"}"#.to_owned(),
        ),
        "/readyz" => (
            StatusCode::SERVICE_UNAVAILABLE,
            "application/json",
            r#"{"status":"not consuming"}"#.to_owned(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found\n".to_owned(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

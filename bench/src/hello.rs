//! The baseline: hyper on tokio with the API's listener settings, answering
//! every request with a JSON body of the size the API answers with.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, header};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;

const BODY: &[u8] = concat!(
    r#"{"details":{"sequence":"2","changeDate":"2024-03-27T10:05:49.794Z","#,
    r#""resourceOwner":"69629023906488334"}}"#
)
.as_bytes();

pub async fn serve(listen: &str) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("hello listening on {}", listener.local_addr()?);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10));
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let service = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
            // Read the body as the API does.
            let _ = req.into_body().collect().await;
            let mut response = Response::new(Full::new(Bytes::from_static(BODY)));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                "application/json".parse().expect("static"),
            );
            Ok::<_, Infallible>(response)
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}

//! The entry of every request: JSON goes to the route table, gRPC and
//! gRPC-web to the tonic service, by content type, on the one listener.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use passlink_shared::error::ApiError;

use crate::app::App;
use crate::grpc::{GrpcApi, Protocol, unsupported_content_type, version_refusal};
use crate::http::{HttpResponse, error};
use crate::routes;

/// A response of either side. JSON responses stay an unboxed `Full`; only
/// the enum's tag is added.
pub type ResponseBody = Either<Full<Bytes>, tonic::body::Body>;

/// Answers one request.
pub async fn handle(
    app: Arc<App>,
    grpc: Arc<GrpcApi>,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    match Protocol::of(req.headers()) {
        Protocol::Json if GrpcApi::is_preflight(&req) => {
            let started = Instant::now();
            let response = grpc.preflight(req.headers());
            count(&app, "grpc_preflight", &req, &response, started.elapsed());
            response.map(Either::Left)
        }
        Protocol::Json => routes::handle(app, req).await.map(Either::Left),
        Protocol::UnsupportedGrpc => refuse(&app, &req, unsupported_content_type()),
        Protocol::Grpc(flavor) => match version_refusal(flavor, req.version()) {
            Some(err) => refuse(&app, &req, err),
            None => grpc.call(flavor, req).await.map(Either::Right),
        },
    }
}

fn refuse<B>(app: &App, req: &Request<B>, err: ApiError) -> Response<ResponseBody> {
    let response = error(&err);
    count(app, "grpc_refused", req, &response, Duration::ZERO);
    response.map(Either::Left)
}

fn count<B>(app: &App, route: &'static str, req: &Request<B>, res: &HttpResponse, took: Duration) {
    app.metrics
        .request(route, req.method().as_str(), res.status().as_u16(), took);
}

//! The contract's endpoint over gRPC (`application/grpc`, HTTP/2) and
//! gRPC-web (`application/grpc-web+proto`, HTTP/1.1 or HTTP/2), served by
//! tonic's generated server on the JSON API's own listener.
//!
//! The server does no work of its own: `service` turns the message into the
//! JSON handler's `LinkRequest`, `status` turns errors into statuses, and
//! tonic-web translates gRPC-web to gRPC and back.

mod cors;
mod service;
mod status;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use http::header::{CONTENT_TYPE, ORIGIN};
use http::{HeaderMap, Request, Response, Version};
use hyper::body::Incoming;
use passlink_proto::UserServiceServer;
use passlink_shared::error::ApiError;
use tonic::body::Body;
use tonic::codegen::Service;
use tonic_web::{GrpcWebLayer, GrpcWebService};
use tower_layer::Layer;

pub use cors::CorsPolicy;

use crate::app::App;
use crate::http::HttpResponse;
use crate::metrics::ApiMetrics;

/// The request path of the one method.
const METHOD_PATH: &str = "/zitadel.user.v3alpha.UserService/CreateWebAuthNRegistrationLink";

/// The two ways of speaking gRPC that the service understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// `application/grpc` or `application/grpc+proto`, over HTTP/2.
    Plain,
    /// One of the four content types tonic-web translates.
    Web,
}

/// How a request wants to be answered, by its content type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Everything that is not gRPC: the JSON route table.
    Json,
    /// gRPC or gRPC-web.
    Grpc(Flavor),
    /// Another `application/grpc…` type, such as `+json`: not served.
    UnsupportedGrpc,
}

impl Protocol {
    pub fn of(headers: &HeaderMap) -> Self {
        let Some(value) = headers.get(CONTENT_TYPE).map(|v| v.as_bytes()) else {
            return Self::Json;
        };
        // Cheap test first: JSON requests leave after one comparison.
        if !value.starts_with(b"application/grpc") {
            return Self::Json;
        }
        match value {
            b"application/grpc" | b"application/grpc+proto" => Self::Grpc(Flavor::Plain),
            b"application/grpc-web"
            | b"application/grpc-web+proto"
            | b"application/grpc-web-text"
            | b"application/grpc-web-text+proto" => Self::Grpc(Flavor::Web),
            _ => Self::UnsupportedGrpc,
        }
    }
}

type Server = UserServiceServer<service::LinkService>;

/// The gRPC and gRPC-web front of the service; cheap to clone.
#[derive(Clone)]
pub struct GrpcApi {
    grpc: Server,
    web: GrpcWebService<Server>,
    cors: Arc<CorsPolicy>,
    max_message_bytes: usize,
    metrics: ApiMetrics,
}

impl GrpcApi {
    pub fn new(app: Arc<App>) -> Self {
        // The JSON body limit holds for a gRPC message too.
        let max_message_bytes = app.config.http.max_body_bytes;
        let cors = Arc::new(app.config.grpc_web_cors.clone());
        let metrics = app.metrics.clone();
        let grpc = UserServiceServer::new(service::LinkService::new(app))
            .max_decoding_message_size(max_message_bytes);
        Self {
            web: GrpcWebLayer::new().layer(grpc.clone()),
            grpc,
            cors,
            max_message_bytes,
            metrics,
        }
    }

    /// Whether a request is a browser's CORS preflight for this service.
    pub fn is_preflight<B>(req: &Request<B>) -> bool {
        CorsPolicy::is_preflight(req)
            && req
                .uri()
                .path()
                .strip_prefix('/')
                .and_then(|p| p.strip_prefix(passlink_proto::SERVICE_NAME))
                .is_some_and(|rest| rest.starts_with('/'))
    }

    pub fn preflight(&self, headers: &HeaderMap) -> HttpResponse {
        self.cors.preflight(headers)
    }

    /// Answers a gRPC or gRPC-web request.
    pub async fn call(&self, flavor: Flavor, req: Request<Incoming>) -> Response<Body> {
        let started = Instant::now();
        let route = if req.uri().path() == METHOD_PATH {
            service::ROUTE
        } else {
            "grpc_unknown_method"
        };
        let mut response = match flavor {
            Flavor::Plain => self.grpc.clone().call(req).await,
            Flavor::Web => {
                let origin = req.headers().get(ORIGIN).cloned();
                let mut response = self.web.clone().call(req).await;
                if let Ok(response) = &mut response {
                    self.cors.decorate(origin.as_ref(), response.headers_mut());
                }
                response
            }
        }
        .unwrap_or_else(|never: Infallible| match never {});
        status::rewrite_transport_status(response.headers_mut(), self.max_message_bytes);

        // A unary call's answer is complete when its headers are: the
        // handler has run. The status label is the contract's HTTP status
        // of the outcome, so that dashboards read all protocols alike.
        let status = status::http_equivalent(response.headers());
        self.metrics
            .request(route, "POST", status, started.elapsed());
        response
    }
}

/// Refuses another `application/grpc…` content type. Answered as JSON,
/// since the client speaks nothing the service can answer in.
pub fn unsupported_content_type() -> ApiError {
    ApiError::invalid(
        "GRPC-CONTENT-TYPE",
        "The service speaks application/grpc(+proto) and \
         application/grpc-web(-text)(+proto)",
    )
    .with_http_status(415)
}

/// Plain gRPC needs HTTP/2 for its trailers; a client that sends it over
/// HTTP/1.1 gets a clear answer instead of a broken stream.
pub fn version_refusal(flavor: Flavor, version: Version) -> Option<ApiError> {
    (flavor == Flavor::Plain && version != Version::HTTP_2).then(|| {
        ApiError::invalid(
            "GRPC-HTTP2-REQUIRED",
            "gRPC needs HTTP/2; over HTTP/1.1 use gRPC-web",
        )
        .with_http_status(505)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn protocol(content_type: Option<&str>) -> Protocol {
        let mut headers = HeaderMap::new();
        if let Some(ct) = content_type {
            headers.insert(CONTENT_TYPE, ct.parse().unwrap());
        }
        Protocol::of(&headers)
    }

    #[test]
    fn routes_by_content_type() {
        assert_eq!(protocol(None), Protocol::Json);
        assert_eq!(protocol(Some("application/json")), Protocol::Json);
        assert_eq!(protocol(Some("text/plain")), Protocol::Json);
        let (plain, web) = (Protocol::Grpc(Flavor::Plain), Protocol::Grpc(Flavor::Web));
        assert_eq!(protocol(Some("application/grpc")), plain);
        assert_eq!(protocol(Some("application/grpc+proto")), plain);
        assert_eq!(protocol(Some("application/grpc-web+proto")), web);
        assert_eq!(protocol(Some("application/grpc-web")), web);
        assert_eq!(protocol(Some("application/grpc-web-text")), web);
        assert_eq!(
            protocol(Some("application/grpc+json")),
            Protocol::UnsupportedGrpc
        );
        assert_eq!(
            protocol(Some("application/grpc-web+json")),
            Protocol::UnsupportedGrpc
        );
    }

    #[test]
    fn refuses_what_cannot_be_served() {
        let err = version_refusal(Flavor::Plain, Version::HTTP_11).unwrap();
        assert_eq!(err.status(), 505);
        assert!(version_refusal(Flavor::Plain, Version::HTTP_2).is_none());
        assert!(version_refusal(Flavor::Web, Version::HTTP_11).is_none());
        assert_eq!(unsupported_content_type().status(), 415);
    }

    #[test]
    fn preflights_are_for_the_service_paths() {
        let preflight = |path: &str| {
            let req = Request::builder()
                .method("OPTIONS")
                .uri(path)
                .header(ORIGIN, "https://app.example.com")
                .header("access-control-request-method", "POST")
                .body(())
                .unwrap();
            GrpcApi::is_preflight(&req)
        };
        assert!(preflight(
            "/zitadel.user.v3alpha.UserService/CreateWebAuthNRegistrationLink"
        ));
        assert!(!preflight("/v3alpha/users/u/webauthn/registration_link"));
        assert!(!preflight("/zitadel.user.v3alpha.UserServiceX/Create"));
    }
}

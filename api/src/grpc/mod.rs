//! The contract's `UserService` over gRPC (`application/grpc`, HTTP/2) and
//! gRPC-web (`application/grpc-web+proto`, HTTP/1.1 or HTTP/2), served by
//! tonic's generated server on the JSON API's own listener: creating links,
//! and starting and verifying a passkey registration.
//!
//! The server does no work of its own: `service` and `registration` turn
//! the messages into the requests the JSON handlers build, `status` turns
//! errors into statuses, and tonic-web translates gRPC-web to gRPC and back.

mod cors;
mod registration;
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

/// Which message size limit a method's requests have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Limit {
    /// `PASSLINK_MAX_BODY_BYTES`, as for JSON bodies.
    General,
    /// As large as a verify's credential needs, as for the JSON verify.
    Verify,
}

/// The methods by request path, with their route names in metrics and logs.
const METHODS: [(&str, &str, Limit); 3] = [
    (
        "/zitadel.user.v3alpha.UserService/CreateWebAuthNRegistrationLink",
        service::CREATE_LINK_ROUTE,
        Limit::General,
    ),
    (
        "/zitadel.user.v3alpha.UserService/StartWebAuthNRegistration",
        service::START_ROUTE,
        Limit::General,
    ),
    (
        "/zitadel.user.v3alpha.UserService/VerifyWebAuthNRegistration",
        service::VERIFY_ROUTE,
        Limit::Verify,
    ),
];

/// The route name and limit of a request path; an unknown method gets the
/// general limit, and tonic's answer that it has no such method.
fn method_of(path: &str) -> (&'static str, Limit) {
    METHODS
        .iter()
        .find(|(method_path, ..)| *method_path == path)
        .map_or(
            ("grpc_unknown_method", Limit::General),
            |(_, route, limit)| (route, *limit),
        )
}

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

type Server = UserServiceServer<service::UserApi>;

/// The service behind one message size limit, plain and web. tonic sets
/// the limit per server, not per method, so each limit has its own server
/// over the one service.
#[derive(Clone)]
struct Endpoint {
    grpc: Server,
    web: GrpcWebService<Server>,
    max_message_bytes: usize,
}

impl Endpoint {
    fn new(service: Arc<service::UserApi>, max_message_bytes: usize) -> Self {
        let grpc =
            UserServiceServer::from_arc(service).max_decoding_message_size(max_message_bytes);
        Self {
            web: GrpcWebLayer::new().layer(grpc.clone()),
            grpc,
            max_message_bytes,
        }
    }
}

/// The gRPC and gRPC-web front of the service; cheap to clone.
#[derive(Clone)]
pub struct GrpcApi {
    general: Endpoint,
    verify: Endpoint,
    cors: Arc<CorsPolicy>,
    metrics: ApiMetrics,
}

impl GrpcApi {
    pub fn new(app: Arc<App>) -> Self {
        // The JSON body limits hold for gRPC messages too.
        let general = app.config.http.max_body_bytes;
        let verify = crate::registration::request::max_verify_bytes(general);
        let cors = Arc::new(app.config.grpc_web_cors.clone());
        let metrics = app.metrics.clone();
        let service = Arc::new(service::UserApi::new(app));
        Self {
            general: Endpoint::new(service.clone(), general),
            verify: Endpoint::new(service, verify),
            cors,
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
        let (route, limit) = method_of(req.uri().path());
        let endpoint = match limit {
            Limit::General => &self.general,
            Limit::Verify => &self.verify,
        };
        let mut response = match flavor {
            Flavor::Plain => endpoint.grpc.clone().call(req).await,
            Flavor::Web => {
                let origin = req.headers().get(ORIGIN).cloned();
                let mut response = endpoint.web.clone().call(req).await;
                if let Ok(response) = &mut response {
                    self.cors.decorate(origin.as_ref(), response.headers_mut());
                }
                response
            }
        }
        .unwrap_or_else(|never: Infallible| match never {});
        status::rewrite_transport_status(response.headers_mut(), endpoint.max_message_bytes);

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
    fn methods_have_their_routes_and_limits() {
        for (path, ..) in METHODS {
            let method = path
                .strip_prefix(&format!("/{}/", passlink_proto::SERVICE_NAME))
                .unwrap_or_else(|| panic!("{path} is not a method of the service"));
            assert!(!method.contains('/'), "{path}");
        }
        assert_eq!(
            method_of("/zitadel.user.v3alpha.UserService/VerifyWebAuthNRegistration"),
            ("grpc_verify_registration", Limit::Verify)
        );
        assert_eq!(
            method_of("/zitadel.user.v3alpha.UserService/StartWebAuthNRegistration"),
            ("grpc_start_registration", Limit::General)
        );
        assert_eq!(
            method_of("/zitadel.user.v3alpha.UserService/CreateWebAuthNRegistrationLink"),
            ("grpc_create_link", Limit::General)
        );
        assert_eq!(
            method_of("/zitadel.user.v3alpha.UserService/DeleteUser"),
            ("grpc_unknown_method", Limit::General)
        );
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
        for (path, ..) in METHODS {
            assert!(preflight(path), "{path}");
        }
        assert!(!preflight("/v3alpha/users/u/webauthn/registration_link"));
        assert!(!preflight("/zitadel.user.v3alpha.UserServiceX/Create"));
    }
}

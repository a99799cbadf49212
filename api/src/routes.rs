//! The route table: every endpoint of the API in one place.

use std::sync::Arc;
use std::time::Instant;

use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use passlink_shared::error::{ApiError, Code};

use crate::app::App;
use crate::handlers::{health, links, users};
use crate::http::{HttpResponse, error};

/// Answers one request. Errors become the contract's error body here, so
/// handlers just return them.
pub async fn handle(app: Arc<App>, req: Request<Incoming>) -> HttpResponse {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();

    let response = match route(&app, req).await {
        Ok(response) => response,
        Err(err) => {
            if err.code == Code::Internal || err.code == Code::Unavailable {
                tracing::warn!(error.id = err.id, %method, "request failed");
            }
            error(&err)
        }
    };

    tracing::debug!(%method, path = %redact(&path), status = response.status().as_u16(),
        elapsed_us = started.elapsed().as_micros() as u64, "request");
    response
}

async fn route(app: &App, req: Request<Incoming>) -> Result<HttpResponse, ApiError> {
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(&path).split('/').collect();
    let method = req.method().clone();

    match (segments.as_slice(), &method) {
        (["v3alpha", "users", user, "webauthn", "registration_link"], &Method::POST) => {
            links::create(app, req, user).await
        }
        (["v3alpha", "users", user, "webauthn", "registration_link", code], &Method::GET) => {
            links::status(app, req, user, code).await
        }
        (["admin", "v1", "users", user], &Method::PUT) => users::put(app, req, user).await,
        (["admin", "v1", "users", user], &Method::GET) => users::get(app, req, user).await,
        (["admin", "v1", "users", user], &Method::DELETE) => users::delete(app, req, user).await,
        (["healthz"], &Method::GET) => Ok(health::alive()),
        (["readyz"], &Method::GET) => Ok(health::ready(app).await),

        (["v3alpha", "users", _, "webauthn", "registration_link"], _)
        | (["v3alpha", "users", _, "webauthn", "registration_link", _], _)
        | (["admin", "v1", "users", _], _)
        | (["healthz" | "readyz"], _) => Err(ApiError::new(
            Code::Unimplemented,
            "REQ-METHOD",
            format!("Method {method} is not allowed here"),
        )
        .with_http_status(StatusCode::METHOD_NOT_ALLOWED.as_u16())),
        _ => Err(ApiError::not_found("REQ-ROUTE-404", "No such endpoint")),
    }
}

/// The path with user ids hidden, for debug logs.
fn redact(path: &str) -> String {
    let mut parts: Vec<&str> = path.split('/').collect();
    if parts.len() > 3 && parts.get(2) == Some(&"users") {
        parts[3] = "{userId}";
    }
    if parts.len() > 4 && parts.get(3) == Some(&"users") {
        parts[4] = "{userId}";
    }
    parts.join("/")
}

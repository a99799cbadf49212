//! The route table: every endpoint of the API in one place.

use std::sync::Arc;
use std::time::Instant;

use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use passlink_shared::error::{ApiError, Code};

use crate::app::App;
use crate::handlers::page::Asset;
use crate::handlers::{self, health, links, page, passkeys, users};
use crate::http::{HttpResponse, error, with_body};

/// An endpoint, with the raw (still percent-encoded) path parameters.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    CreateLink {
        user: &'a str,
    },
    LinkStatus {
        user: &'a str,
        code: &'a str,
    },
    StartRegistration {
        user: &'a str,
    },
    VerifyRegistration {
        user: &'a str,
        webauthn_id: &'a str,
    },
    /// The registration page and its files (GET and HEAD).
    Page(Asset),
    PutUser {
        user: &'a str,
    },
    GetUser {
        user: &'a str,
    },
    DeleteUser {
        user: &'a str,
    },
    Healthz,
    Readyz,
    Metrics,
    /// A known path with a method it does not take: the route's name and
    /// the methods it takes (for the `Allow` header).
    WrongMethod(&'static str, &'static str),
    NotFound,
}

impl Route<'_> {
    /// A low-cardinality name for metrics and logs.
    fn name(&self) -> &'static str {
        match self {
            Route::CreateLink { .. } => "create_link",
            Route::LinkStatus { .. } => "link_status",
            Route::StartRegistration { .. } => "start_registration",
            Route::VerifyRegistration { .. } => "verify_registration",
            Route::Page(_) => "page",
            Route::PutUser { .. } => "put_user",
            Route::GetUser { .. } => "get_user",
            Route::DeleteUser { .. } => "delete_user",
            Route::Healthz => "healthz",
            Route::Readyz => "readyz",
            Route::Metrics => "metrics",
            Route::WrongMethod(name, _) => name,
            Route::NotFound => "not_found",
        }
    }
}

fn resolve<'a>(method: &Method, path: &'a str) -> Route<'a> {
    // No endpoint ends in a slash; a client that adds one has a typo, and
    // an empty last segment would otherwise look like an empty path value.
    if path.len() > 1 && path.ends_with('/') {
        return Route::NotFound;
    }
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    match (segments.as_slice(), method) {
        (["v3alpha", "users", user, "webauthn", "registration_link"], &Method::POST) => {
            Route::CreateLink { user }
        }
        (
            [
                "v3alpha",
                "users",
                user,
                "webauthn",
                "registration_link",
                code,
            ],
            &Method::GET | &Method::HEAD,
        ) => Route::LinkStatus { user, code },
        (["v3alpha", "users", user, "webauthn"], &Method::POST) => {
            Route::StartRegistration { user }
        }
        (["v3alpha", "users", user, "webauthn", webauthn_id], &Method::POST)
            if is_ceremony_id(webauthn_id) =>
        {
            Route::VerifyRegistration { user, webauthn_id }
        }
        (["passkey", file], &Method::GET | &Method::HEAD) => match *file {
            "register" => Route::Page(Asset::Page),
            "register.js" => Route::Page(Asset::Script),
            "register.css" => Route::Page(Asset::Style),
            _ => Route::NotFound,
        },
        (["admin", "v1", "users", user], &Method::PUT) => Route::PutUser { user },
        (["admin", "v1", "users", user], &Method::GET | &Method::HEAD) => Route::GetUser { user },
        (["admin", "v1", "users", user], &Method::DELETE) => Route::DeleteUser { user },
        (["healthz"], &Method::GET | &Method::HEAD) => Route::Healthz,
        (["readyz"], &Method::GET | &Method::HEAD) => Route::Readyz,
        (["metrics"], &Method::GET | &Method::HEAD) => Route::Metrics,

        (["v3alpha", "users", _, "webauthn", "registration_link"], _) => {
            Route::WrongMethod("create_link", "POST")
        }
        (["v3alpha", "users", _, "webauthn", "registration_link", _], _) => {
            Route::WrongMethod("link_status", "GET, HEAD")
        }
        (["v3alpha", "users", _, "webauthn"], _) => {
            Route::WrongMethod("start_registration", "POST")
        }
        (["v3alpha", "users", _, "webauthn", webauthn_id], _) if is_ceremony_id(webauthn_id) => {
            Route::WrongMethod("verify_registration", "POST")
        }
        (["passkey", "register" | "register.js" | "register.css"], _) => {
            Route::WrongMethod("page", "GET, HEAD")
        }
        (["admin", "v1", "users", _], _) => Route::WrongMethod("user", "GET, HEAD, PUT, DELETE"),
        (["healthz" | "readyz" | "metrics"], _) => Route::WrongMethod("operations", "GET, HEAD"),
        _ => Route::NotFound,
    }
}

/// A ceremony's id is a UUID Passlink issued. Anything else in that place
/// is a mistyped path (`registration-link`, say), which deserves a 404 rather
/// than a complaint about the body of a request the caller never meant.
fn is_ceremony_id(segment: &str) -> bool {
    uuid::Uuid::try_parse(segment).is_ok()
}

/// Answers one request. Errors become the contract's error body here, so
/// handlers just return them.
pub async fn handle(app: Arc<App>, req: Request<Incoming>) -> HttpResponse {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let route = resolve(&method, &path);
    let name = route.name();
    let allow = match route {
        Route::WrongMethod(_, allow) => Some(allow),
        _ => None,
    };

    let mut response = match dispatch(&app, route, req).await {
        Ok(response) => response,
        Err(err) => {
            handlers::log_failure(&err, name);
            error(&err)
        }
    };
    if let Some(allow) = allow {
        response
            .headers_mut()
            .insert(http::header::ALLOW, http::HeaderValue::from_static(allow));
    }

    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    app.metrics.request(name, method.as_str(), status, elapsed);
    tracing::debug!(%method, route = name, status, elapsed_us = elapsed.as_micros() as u64,
        "request");
    response
}

async fn dispatch(
    app: &App,
    route: Route<'_>,
    req: Request<Incoming>,
) -> Result<HttpResponse, ApiError> {
    match route {
        Route::CreateLink { user } => links::create(app, req, user).await,
        Route::LinkStatus { user, code } => links::status(app, req, user, code).await,
        Route::StartRegistration { user } => passkeys::start(app, req, user).await,
        Route::VerifyRegistration { user, webauthn_id } => {
            passkeys::verify(app, req, user, webauthn_id).await
        }
        Route::Page(asset) => Ok(page::serve(asset, req.method())),
        Route::PutUser { user } => users::put(app, req, user).await,
        Route::GetUser { user } => users::get(app, req, user).await,
        Route::DeleteUser { user } => users::delete(app, req, user).await,
        Route::Healthz => Ok(health::alive()),
        Route::Readyz => Ok(health::ready(app).await),
        Route::Metrics => Ok(metrics(app).await),
        Route::WrongMethod(..) => Err(ApiError::new(
            Code::Unimplemented,
            "REQ-METHOD",
            format!("Method {} is not allowed here", req.method()),
        )
        .with_http_status(StatusCode::METHOD_NOT_ALLOWED.as_u16())),
        Route::NotFound => Err(ApiError::not_found("REQ-ROUTE-404", "No such endpoint")),
    }
}

/// Prometheus text; the outbox gauges are read from Redis on each scrape.
async fn metrics(app: &App) -> HttpResponse {
    let stats =
        tokio::time::timeout(std::time::Duration::from_secs(2), app.store.outbox_stats()).await;
    if let Ok(Ok(stats)) = stats {
        app.metrics.outbox_backlog.set(stats.backlog as i64);
        let age = stats
            .oldest_ms
            .map(|ms| (passlink_shared::time::now_ms() - ms).max(0) as f64 / 1000.0)
            .unwrap_or(0.0);
        app.metrics.outbox_oldest_age.set(age);
    }
    app.metrics
        .relay_connected
        .set(i64::from(app.relay.is_connected()));
    let body = passlink_shared::metrics::render(&app.metrics.registry);
    with_body(
        StatusCode::OK,
        passlink_shared::metrics::CONTENT_TYPE,
        body.into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_the_table() {
        let post = Method::POST;
        assert_eq!(
            resolve(&post, "/v3alpha/users/u%2F1/webauthn/registration_link"),
            Route::CreateLink { user: "u%2F1" }
        );
        assert_eq!(
            resolve(&post, "/v3alpha/users//webauthn/registration_link"),
            Route::CreateLink { user: "" }
        );
        assert_eq!(
            resolve(
                &Method::GET,
                "/v3alpha/users/u/webauthn/registration_link/c"
            ),
            Route::LinkStatus {
                user: "u",
                code: "c"
            }
        );
        assert_eq!(
            resolve(&Method::PATCH, "/admin/v1/users/u"),
            Route::WrongMethod("user", "GET, HEAD, PUT, DELETE")
        );
        assert_eq!(
            resolve(&Method::POST, "/v3alpha/users/u/webauthn"),
            Route::StartRegistration { user: "u" }
        );
        assert_eq!(
            resolve(&Method::GET, "/v3alpha/users/u/webauthn"),
            Route::WrongMethod("start_registration", "POST")
        );
        let ceremony = "/v3alpha/users/u/webauthn/1d5e8f9c-2b1a-4c3d-9e8f-7a6b5c4d3e2f";
        assert_eq!(
            resolve(&Method::POST, ceremony),
            Route::VerifyRegistration {
                user: "u",
                webauthn_id: "1d5e8f9c-2b1a-4c3d-9e8f-7a6b5c4d3e2f"
            }
        );
        assert_eq!(
            resolve(&Method::GET, ceremony),
            Route::WrongMethod("verify_registration", "POST")
        );
        for typo in [
            "/v3alpha/users/u/webauthn/registration-link",
            "/v3alpha/users/u/webauthn/Registration_Link",
            "/v3alpha/users/u/webauthn/registration_link;x",
            "/v3alpha/users/u/webauthn/registration_link/",
            "/v3alpha/users/u/webauthn/",
            "/admin/v1/users/u/",
        ] {
            assert_eq!(resolve(&post, typo), Route::NotFound, "{typo}");
            assert_eq!(resolve(&Method::GET, typo), Route::NotFound, "{typo}");
        }
        assert_eq!(
            resolve(&Method::GET, "/v3alpha/users/u/webauthn/registration_link"),
            Route::WrongMethod("create_link", "POST")
        );
        assert_eq!(
            resolve(&Method::HEAD, "/passkey/register"),
            Route::Page(Asset::Page)
        );
        assert_eq!(
            resolve(&Method::GET, "/passkey/register.js"),
            Route::Page(Asset::Script)
        );
        assert_eq!(
            resolve(&Method::POST, "/passkey/register"),
            Route::WrongMethod("page", "GET, HEAD")
        );
        assert_eq!(resolve(&Method::GET, "/passkey/other"), Route::NotFound);
        assert_eq!(resolve(&Method::GET, "/metrics"), Route::Metrics);
    }
}

//! CORS for gRPC-web, so that browser apps on configured origins may call
//! the service directly.
//!
//! A gRPC-web request is never a "simple" request (its content type and
//! headers rule that out), so a browser first sends a preflight `OPTIONS`.
//! Allowed origins get the answer they need and, on the call itself, the
//! `grpc-status` and `grpc-message` headers exposed to the page. Other
//! origins get no CORS headers, so the browser keeps the page from reading
//! the answer. Tokens travel in the `authorization` header, never in
//! cookies, so credentials are not allowed.

use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN,
    VARY,
};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use http_body_util::Full;
use passlink_shared::error::{ApiError, Code};

use crate::http::{HttpResponse, error};

/// Request headers a gRPC-web client sends (grpc-web's and Connect's).
const ALLOW_HEADERS: &str =
    "authorization, content-type, grpc-timeout, x-grpc-web, x-user-agent, grpc-accept-encoding";
/// Response headers a page may read.
const EXPOSE_HEADERS: &str = "grpc-status, grpc-message, grpc-status-details-bin";
/// Browsers cache a preflight answer this long (seconds).
const MAX_AGE: &str = "7200";

/// Which origins may call the gRPC-web API from a browser.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CorsPolicy {
    /// No CORS headers at all: browsers on other origins cannot call.
    #[default]
    Off,
    /// Every origin (`*`).
    Any,
    /// These origins, serialized as browsers send them.
    Origins(Vec<HeaderValue>),
}

impl CorsPolicy {
    /// The policy of the comma-separated setting: origins such as
    /// `https://app.example.com` or `http://localhost:3000`, or `*`.
    pub fn from_list(entries: &[String]) -> Result<Self, String> {
        if entries.is_empty() {
            return Ok(Self::Off);
        }
        if entries.iter().any(|e| e == "*") {
            return if entries.len() == 1 {
                Ok(Self::Any)
            } else {
                Err("\"*\" allows every origin; give it alone".to_owned())
            };
        }
        entries
            .iter()
            .map(|entry| origin_of(entry))
            .collect::<Result<Vec<_>, _>>()
            .map(Self::Origins)
    }

    /// A browser's preflight for a gRPC-web call.
    pub fn is_preflight<B>(req: &Request<B>) -> bool {
        req.method() == Method::OPTIONS
            && req.headers().contains_key(ORIGIN)
            && req.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD)
    }

    /// Answers a preflight: 204 with the CORS headers for an allowed origin
    /// asking for `POST`, the contract's 403 otherwise.
    pub fn preflight(&self, headers: &HeaderMap) -> HttpResponse {
        let wants_post = headers
            .get(ACCESS_CONTROL_REQUEST_METHOD)
            .is_some_and(|m| m.as_bytes() == b"POST");
        let Some(allow_origin) = headers.get(ORIGIN).and_then(|o| self.allow_origin(o)) else {
            return error(&ApiError::new(
                Code::PermissionDenied,
                "CORS-ORIGIN-DENIED",
                "This origin may not call the gRPC-web API \
                 (see PASSLINK_GRPC_WEB_CORS_ORIGINS)",
            ));
        };
        if !wants_post {
            return error(&ApiError::new(
                Code::PermissionDenied,
                "CORS-METHOD-DENIED",
                "gRPC-web calls use POST",
            ));
        }

        let mut response = HttpResponse::new(Full::default());
        *response.status_mut() = StatusCode::NO_CONTENT;
        let out = response.headers_mut();
        out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
        out.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST"),
        );
        out.insert(
            ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOW_HEADERS),
        );
        out.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE));
        self.vary(out);
        response
    }

    /// Adds the CORS headers of an actual call from `origin`.
    pub fn decorate(&self, origin: Option<&HeaderValue>, out: &mut HeaderMap) {
        if let Some(allow_origin) = origin.and_then(|o| self.allow_origin(o)) {
            out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
            out.insert(
                ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSE_HEADERS),
            );
        }
        self.vary(out);
    }

    /// The `access-control-allow-origin` value for `origin`, when allowed.
    fn allow_origin(&self, origin: &HeaderValue) -> Option<HeaderValue> {
        match self {
            Self::Off => None,
            Self::Any => Some(HeaderValue::from_static("*")),
            Self::Origins(allowed) => allowed
                .iter()
                .find(|a| a.as_bytes().eq_ignore_ascii_case(origin.as_bytes()))
                .cloned(),
        }
    }

    /// The answer depends on the origin when origins are listed, so caches
    /// must keep one copy per origin.
    fn vary(&self, out: &mut HeaderMap) {
        if matches!(self, Self::Origins(_)) {
            out.append(VARY, HeaderValue::from_static("origin"));
        }
    }
}

/// An origin as browsers serialize it: scheme, host and a non-default
/// port, nothing else.
fn origin_of(entry: &str) -> Result<HeaderValue, String> {
    let bad =
        |why: &str| format!("{entry:?} is not an origin such as https://app.example.com: {why}");
    let url = url::Url::parse(entry).map_err(|err| bad(&err.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it must not have a path, query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("it must not have credentials"));
    }
    HeaderValue::from_str(&url.origin().ascii_serialization()).map_err(|err| bad(&err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(list: &[&str]) -> Result<CorsPolicy, String> {
        CorsPolicy::from_list(&list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    fn preflight_headers(origin: &str, method: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(ORIGIN, origin.parse().unwrap());
        headers.insert(ACCESS_CONTROL_REQUEST_METHOD, method.parse().unwrap());
        headers
    }

    #[test]
    fn parses_origins_as_browsers_send_them() {
        let p = policy(&["https://App.Example.com:443", "http://localhost:3000/"]).unwrap();
        assert_eq!(
            p,
            CorsPolicy::Origins(vec![
                HeaderValue::from_static("https://app.example.com"),
                HeaderValue::from_static("http://localhost:3000"),
            ])
        );
        assert_eq!(policy(&[]).unwrap(), CorsPolicy::Off);
        assert_eq!(policy(&["*"]).unwrap(), CorsPolicy::Any);
        for bad in [
            &["ftp://x.test"][..],
            &["https://x.test/app"],
            &["https://x.test?a=1"],
            &["https://u:p@x.test"],
            &["null"],
            &["x.test"],
            &["*", "https://x.test"],
        ] {
            assert!(policy(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn preflight_answers_allowed_origins_only() {
        let p = policy(&["https://app.example.com"]).unwrap();
        let ok = p.preflight(&preflight_headers("https://app.example.com", "POST"));
        assert_eq!(ok.status(), StatusCode::NO_CONTENT);
        let h = ok.headers();
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example.com");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_METHODS], "POST");
        assert!(
            h[ACCESS_CONTROL_ALLOW_HEADERS]
                .to_str()
                .unwrap()
                .contains("x-grpc-web")
        );
        assert_eq!(h[VARY], "origin");

        let denied = p.preflight(&preflight_headers("https://evil.example", "POST"));
        assert_eq!(denied.status(), StatusCode::FORBIDDEN);
        assert!(!denied.headers().contains_key(ACCESS_CONTROL_ALLOW_ORIGIN));
        let get = p.preflight(&preflight_headers("https://app.example.com", "GET"));
        assert_eq!(get.status(), StatusCode::FORBIDDEN);
        let off = CorsPolicy::Off.preflight(&preflight_headers("https://app.example.com", "POST"));
        assert_eq!(off.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn calls_expose_the_grpc_status_to_allowed_origins() {
        let p = policy(&["https://app.example.com"]).unwrap();
        let mut out = HeaderMap::new();
        p.decorate(
            Some(&HeaderValue::from_static("https://app.example.com")),
            &mut out,
        );
        assert_eq!(out[ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example.com");
        assert!(
            out[ACCESS_CONTROL_EXPOSE_HEADERS]
                .to_str()
                .unwrap()
                .contains("grpc-status")
        );

        let mut out = HeaderMap::new();
        p.decorate(
            Some(&HeaderValue::from_static("https://evil.example")),
            &mut out,
        );
        assert!(!out.contains_key(ACCESS_CONTROL_ALLOW_ORIGIN));
        let mut out = HeaderMap::new();
        CorsPolicy::Any.decorate(
            Some(&HeaderValue::from_static("https://any.example")),
            &mut out,
        );
        assert_eq!(out[ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    }
}

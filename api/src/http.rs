//! Reading requests and writing responses the way the contract wants them.

use bytes::Bytes;
use bytes::BytesMut;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use passlink_shared::error::ApiError;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub type HttpResponse = Response<Full<Bytes>>;

/// A JSON response with `status`.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> HttpResponse {
    // Response types are plain structs of strings and numbers.
    let body = serde_json::to_vec(value).unwrap_or_default();
    with_body(status, "application/json", body.into())
}

pub fn with_body(status: StatusCode, content_type: &'static str, body: Bytes) -> HttpResponse {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The contract's error body with the matching status.
pub fn error(err: &ApiError) -> HttpResponse {
    let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = with_body(status, "application/json", err.to_json().into());
    if let Some(seconds) = err.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// Reads and decodes a JSON request body of at most `limit` bytes.
pub async fn read_json<T: DeserializeOwned>(
    req: Request<Incoming>,
    limit: usize,
) -> Result<T, ApiError> {
    decode(&read_body(req, limit).await?)
}

/// Reads a request body of at most `limit` bytes.
///
/// An empty body counts as `{}` (all fields default), as gRPC-gateway does;
/// a non-empty body must be declared `application/json`.
pub async fn read_body(req: Request<Incoming>, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            passlink_shared::error::Code::ResourceExhausted,
            "REQ-BODY-TOO-LARGE",
            format!("The request body is larger than {limit} bytes"),
        )
        .with_http_status(413)
    };

    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let content_type = req.headers().get(header::CONTENT_TYPE).cloned();
    // A client that asked "Expect: 100-continue" has not sent the body yet
    // and waits for the verdict; any other is sending it now.
    let waits_to_send = req
        .headers()
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let mut body = req.into_body();
    if declared.is_some_and(|n| n > limit as u64) {
        if !waits_to_send {
            drain(&mut body).await;
        }
        return Err(too_large());
    }

    // A body that trickles in is cut off like a slow request head.
    let collect = async {
        let mut collected = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| {
                ApiError::invalid("REQ-BODY-UNREADABLE", "The request body could not be read")
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if collected.len() + data.len() > limit {
                drain(&mut body).await;
                return Err(too_large());
            }
            collected.extend_from_slice(&data);
        }
        Ok(collected.freeze())
    };
    let body = tokio::time::timeout(BODY_READ_TIMEOUT, collect)
        .await
        .map_err(|_| {
            ApiError::invalid(
                "REQ-BODY-TIMEOUT",
                "The request body did not arrive in time",
            )
            .with_http_status(408)
        })??;

    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Bytes::from_static(b"{}"));
    }
    if !is_json(content_type.as_ref()) {
        return Err(ApiError::invalid(
            "REQ-CONTENT-TYPE",
            "The request body must be sent with Content-Type: application/json",
        )
        .with_http_status(415));
    }
    Ok(body)
}

pub use passlink_shared::link_request::decode_json as decode;

/// How much of an oversized body is read and thrown away before the 413 goes
/// out. A server that answers and closes while the client is still sending
/// makes the kernel reset the connection, and the client sees the reset
/// instead of the answer; reading the rest first avoids that for bodies up
/// to this size (larger ones are cut off).
const DRAIN_LIMIT: usize = 4 << 20;

/// Upper bound for reading a request body (and for draining one).
const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

async fn drain(body: &mut Incoming) {
    let _ = tokio::time::timeout(BODY_READ_TIMEOUT, async {
        let mut seen = 0usize;
        while seen < DRAIN_LIMIT {
            match body.frame().await {
                Some(Ok(frame)) => seen += frame.data_ref().map_or(0, |d| d.len()),
                _ => return,
            }
        }
    })
    .await;
}

fn is_json(content_type: Option<&HeaderValue>) -> bool {
    let Some(value) = content_type.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// Decodes one percent-encoded path segment.
pub fn path_segment(raw: &str) -> Result<String, ApiError> {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ApiError::invalid("REQ-PATH-INVALID", "A path segment is not valid UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        let v = |s: &str| HeaderValue::from_str(s).unwrap();
        assert!(is_json(Some(&v("application/json"))));
        assert!(is_json(Some(&v("Application/JSON; charset=utf-8"))));
        assert!(!is_json(Some(&v("application/x-www-form-urlencoded"))));
        assert!(!is_json(Some(&v("text/plain"))));
        assert!(!is_json(None));
    }

    #[test]
    fn path_segments() {
        assert_eq!(path_segment("a%2Fb%20c").unwrap(), "a/b c");
        assert_eq!(path_segment("J%C3%B6rg").unwrap(), "Jörg");
        assert!(path_segment("%FF").is_err());
    }
}

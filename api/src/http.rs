//! Reading requests and writing responses the way the contract wants them.

use bytes::Bytes;
use bytes::BytesMut;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
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
/// a non-empty body must be declared `application/json` (in UTF-8, the only
/// encoding JSON between systems may use) and sent uncompressed.
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
    let declared_fault = media_fault(req.headers());
    let coding_fault = coding_fault(req.headers());
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

    if let Some(err) = coding_fault {
        return Err(err);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Bytes::from_static(b"{}"));
    }
    match declared_fault {
        Some(err) => Err(err),
        None => Ok(body),
    }
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

/// Refuses a body not declared as exactly one `application/json` in UTF-8.
fn media_fault(headers: &HeaderMap) -> Option<ApiError> {
    let refuse = |id: &'static str, message: &'static str| {
        Some(ApiError::invalid(id, message).with_http_status(415))
    };
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return refuse(
            "REQ-CONTENT-TYPE",
            "The request body must be sent with one Content-Type: application/json",
        );
    };
    let mut parts = value.to_str().unwrap_or_default().split(';');
    let essence = parts.next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return refuse(
            "REQ-CONTENT-TYPE",
            "The request body must be sent with Content-Type: application/json",
        );
    }
    let charset = parts
        .filter_map(|param| param.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("charset"))
        .map(|(_, value)| value.trim().trim_matches('"'));
    match charset {
        Some(charset) if !charset.eq_ignore_ascii_case("utf-8") => refuse(
            "REQ-CHARSET",
            "The request body must be JSON in UTF-8 (charset=utf-8 or no charset)",
        ),
        _ => None,
    }
}

/// Refuses a compressed body: requests are small, and decompressing what a
/// client sends would let a small body expand past the size limit.
fn coding_fault(headers: &HeaderMap) -> Option<ApiError> {
    let compressed = headers
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("?").split(','))
        .any(|coding| !coding.trim().eq_ignore_ascii_case("identity"));
    compressed.then(|| {
        ApiError::invalid(
            "REQ-CONTENT-ENCODING",
            "The request body must not be compressed; send it without Content-Encoding",
        )
        .with_http_status(415)
    })
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
        let fault = |values: &[&str]| {
            let mut headers = HeaderMap::new();
            for v in values {
                headers.append(header::CONTENT_TYPE, HeaderValue::from_str(v).unwrap());
            }
            media_fault(&headers).map(|err| String::from_utf8(err.to_json()).unwrap())
        };
        assert_eq!(fault(&["application/json"]), None);
        assert_eq!(fault(&["Application/JSON; charset=utf-8"]), None);
        assert_eq!(fault(&["application/json;charset=\"UTF-8\""]), None);
        assert_eq!(fault(&["application/json; foo=bar"]), None);
        for refused in [
            &["application/x-www-form-urlencoded"][..],
            &["text/plain"],
            &[],
            &["application/json", "text/plain"],
            &["application/json", "application/json"],
        ] {
            let body = fault(refused).expect("refused");
            assert!(body.contains("REQ-CONTENT-TYPE"), "{refused:?}: {body}");
        }
        for charset in ["utf-16", "latin1", "\"iso-8859-1\""] {
            let body = fault(&[&format!("application/json; charset={charset}")]).unwrap();
            assert!(body.contains("REQ-CHARSET"), "{charset}: {body}");
        }
    }

    #[test]
    fn content_encodings() {
        let fault = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::CONTENT_ENCODING,
                HeaderValue::from_str(value).unwrap(),
            );
            coding_fault(&headers).is_some()
        };
        assert!(coding_fault(&HeaderMap::new()).is_none());
        assert!(!fault("identity"));
        assert!(fault("gzip"));
        assert!(fault("identity, br"));
        assert!(fault("deflate"));
    }

    #[test]
    fn path_segments() {
        assert_eq!(path_segment("a%2Fb%20c").unwrap(), "a/b c");
        assert_eq!(path_segment("J%C3%B6rg").unwrap(), "Jörg");
        assert!(path_segment("%FF").is_err());
    }
}

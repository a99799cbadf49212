//! The registration page at `/passkey/register`, where the default link
//! lands: static HTML, a script and a style sheet, built into the binary.
//!
//! Serving the page never touches Redis or the code: mail scanners and link
//! previews may open it (GET or HEAD) as often as they like. Only the
//! person's click, in the page's script, starts the ceremony.

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};

use crate::http::{HttpResponse, with_body};

const HTML: &str = include_str!("../../static/register.html");
const SCRIPT: &str = include_str!("../../static/register.js");
const STYLE: &str = include_str!("../../static/register.css");

/// Only the page's own script and style run; it talks only to this origin
/// and cannot be framed.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

/// One of the page's files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Asset {
    Page,
    Script,
    Style,
}

/// The asset with headers that keep the link's code out of caches and
/// Referer headers. HEAD gets the headers, with the length GET would have.
pub fn serve(asset: Asset, method: &Method) -> HttpResponse {
    let (content_type, text) = match asset {
        Asset::Page => ("text/html; charset=utf-8", HTML),
        Asset::Script => ("text/javascript; charset=utf-8", SCRIPT),
        Asset::Style => ("text/css; charset=utf-8", STYLE),
    };
    let body = if method == Method::HEAD {
        Bytes::new()
    } else {
        Bytes::from_static(text.as_bytes())
    };
    let mut response = with_body(StatusCode::OK, content_type, body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(text.len()));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_files() {
        // Relative, so that the page also works under a path prefix.
        assert!(HTML.contains(r#"src="register.js""#));
        assert!(HTML.contains(r#"href="register.css""#));
        assert!(
            !HTML.contains("<script>"),
            "no inline script: the CSP would block it"
        );
        assert!(
            !HTML.contains("style="),
            "no inline style: the CSP would block it"
        );
        assert!(
            SCRIPT.contains("window.location.hash"),
            "the code comes from the fragment"
        );
    }

    #[test]
    fn headers_keep_the_code_private() {
        let response = serve(Asset::Page, &Method::GET);
        let header = |name| response.headers()[name].to_str().unwrap().to_owned();
        assert_eq!(header(header::CACHE_CONTROL), "no-store");
        assert_eq!(header(header::REFERRER_POLICY), "no-referrer");
        assert!(header(header::CONTENT_SECURITY_POLICY).starts_with("default-src 'none'"));
        assert_eq!(header(header::CONTENT_TYPE), "text/html; charset=utf-8");
        assert_eq!(header(header::CONTENT_LENGTH), HTML.len().to_string());

        let head = serve(Asset::Script, &Method::HEAD);
        assert_eq!(
            head.headers()[header::CONTENT_LENGTH],
            SCRIPT.len().to_string().as_str()
        );
        assert_eq!(hyper::body::Body::size_hint(head.body()).exact(), Some(0));
    }
}

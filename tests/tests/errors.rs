//! Every refusal answers 4xx with the contract's error body, never a panic
//! or a hang, and the process keeps serving afterwards.

use passlink_tests::{Stack, StackOptions};
use reqwest::Method;
use serde_json::{Value, json};

/// Asserts the contract's error body: `code`, `message` ending in the id,
/// one detail of the Zitadel type with the same id.
fn assert_error(body: &Value, grpc_code: i64, case: &str) -> String {
    assert_eq!(body["code"], grpc_code, "{case}: {body}");
    let detail = &body["details"][0];
    assert_eq!(
        detail["@type"], "type.googleapis.com/zitadel.v1.ErrorDetail",
        "{case}: {body}"
    );
    let id = detail["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{case}: no id in {body}"));
    let message = body["message"].as_str().unwrap();
    assert_eq!(
        message,
        format!("{} ({id})", detail["message"].as_str().unwrap()),
        "{case}"
    );
    id.to_owned()
}

/// Sends a raw request, for bodies and headers `Stack::request` would not.
async fn raw(
    stack: &Stack,
    user: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value) {
    let path = format!("/v3alpha/users/{user}/webauthn/registration_link");
    let mut request = stack.http.post(stack.url(&path)).body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = request.send().await.expect("the API answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A request built by hand and the error it must get.
struct RawCase<'a> {
    name: &'a str,
    user: &'a str,
    content_type: Option<&'a str>,
    body: &'a [u8],
    status: u16,
    code: i64,
    id: &'a str,
}

impl<'a> RawCase<'a> {
    fn json(name: &'a str, body: &'a [u8], status: u16, code: i64, id: &'a str) -> Self {
        Self {
            name,
            user: "u1",
            content_type: Some("application/json"),
            body,
            status,
            code,
            id,
        }
    }
}

#[tokio::test]
async fn bad_requests_get_the_contract_error_body() {
    let stack = Stack::start(StackOptions {
        workers: 0,
        ..Default::default()
    })
    .await;
    stack
        .put_user("u1", &stack.org_a, &stack.email_of("u1"), "U One")
        .await;
    let token = stack.tokens.admin.as_str();
    let long_user = "x".repeat(201);
    let long_template = format!("https://example.com/{}", "a".repeat(181));

    let json_cases: Vec<(&str, &str, Value, &str)> = vec![
        (
            "both media",
            "u1",
            json!({"sendLink": {}, "returnCode": {}}),
            "LINK-MEDIUM-BOTH",
        ),
        (
            "unknown field",
            "u1",
            json!({"sendLink": {}, "foo": 1}),
            "REQ-JSON-INVALID",
        ),
        (
            "unknown nested field",
            "u1",
            json!({"sendLink": {"url": "x"}}),
            "REQ-JSON-INVALID",
        ),
        (
            "returnCode with a field",
            "u1",
            json!({"returnCode": {"a": 1}}),
            "REQ-JSON-INVALID",
        ),
        (
            "wrong type",
            "u1",
            json!({"sendLink": []}),
            "REQ-JSON-INVALID",
        ),
        (
            "empty template",
            "u1",
            json!({"sendLink": {"urlTemplate": ""}}),
            "LINK-TEMPLATE-LENGTH",
        ),
        (
            "201-character template",
            "u1",
            json!({"sendLink": {"urlTemplate": long_template}}),
            "LINK-TEMPLATE-LENGTH",
        ),
        (
            "unclosed braces",
            "u1",
            json!({"sendLink": {"urlTemplate": "https://x.test/{{.Code"}}),
            "LINK-TEMPLATE-SYNTAX",
        ),
        (
            "stray braces",
            "u1",
            json!({"sendLink": {"urlTemplate": "https://x.test/{.Code}}"}}),
            "LINK-TEMPLATE-SYNTAX",
        ),
        (
            "unknown placeholder",
            "u1",
            json!({"sendLink": {"urlTemplate": "https://x.test/{{.Password}}"}}),
            "LINK-TEMPLATE-PLACEHOLDER",
        ),
        (
            "script link",
            "u1",
            json!({"sendLink": {"urlTemplate": "javascript:alert('{{.Code}}')"}}),
            "LINK-TEMPLATE-URL",
        ),
        (
            "line break in the link",
            "u1",
            json!({"sendLink": {"urlTemplate": "https://x.test/\n{{.Code}}"}}),
            "LINK-TEMPLATE-URL",
        ),
        (
            "space in the link",
            "u1",
            json!({"sendLink": {"urlTemplate": "https://x.test/ {{.Code}}"}}),
            "LINK-TEMPLATE-URL",
        ),
        (
            "link without a host",
            "u1",
            json!({"sendLink": {"urlTemplate": "https:///{{.Code}}"}}),
            "LINK-TEMPLATE-URL",
        ),
        (
            "broken escape in the link",
            "u1",
            json!({"sendLink": {"urlTemplate": "https://x.test/%zz{{.Code}}"}}),
            "LINK-TEMPLATE-URL",
        ),
        (
            "201-character user id",
            &long_user,
            json!({}),
            "USER-ID-INVALID",
        ),
    ];
    for (case, user, body, expected) in json_cases {
        let (status, response) = stack.create_link(token, user, body).await;
        assert_eq!(status, 400, "{case}: {response}");
        assert_eq!(assert_error(&response, 3, case), expected, "{case}");
    }

    let raw_cases = [
        RawCase::json("bad JSON", b"{\"sendLink\":", 400, 3, "REQ-JSON-INVALID"),
        RawCase::json("not UTF-8", &[0xff, 0xfe], 400, 3, "REQ-JSON-INVALID"),
        RawCase::json(
            "body over the limit",
            &[b' '; 70 * 1024],
            413,
            8,
            "REQ-BODY-TOO-LARGE",
        ),
        RawCase {
            content_type: Some("application/x-www-form-urlencoded"),
            ..RawCase::json("form body", b"a=b", 415, 3, "REQ-CONTENT-TYPE")
        },
        RawCase {
            content_type: None,
            ..RawCase::json("no content type", b"{}", 415, 3, "REQ-CONTENT-TYPE")
        },
        RawCase {
            content_type: Some("application/json; charset=utf-16"),
            ..RawCase::json("UTF-16 body", b"{}", 415, 3, "REQ-CHARSET")
        },
        RawCase {
            user: "",
            ..RawCase::json("empty user id", b"{}", 400, 3, "USER-ID-INVALID")
        },
        RawCase {
            user: "%FF",
            ..RawCase::json("broken escape in path", b"{}", 400, 3, "REQ-PATH-INVALID")
        },
    ];
    for case in raw_cases {
        let body = case.body.to_vec();
        let (got, response) = raw(&stack, case.user, Some(token), case.content_type, body).await;
        assert_eq!(got, case.status, "{}: {response}", case.name);
        assert_eq!(
            assert_error(&response, case.code, case.name),
            case.id,
            "{}",
            case.name
        );
    }

    // Headers `raw` cannot send: two content types, a compressed body.
    let path = "/v3alpha/users/u1/webauthn/registration_link";
    let header_cases = [
        (
            "two content types",
            vec![
                ("content-type", "application/json"),
                ("content-type", "text/plain"),
            ],
            "REQ-CONTENT-TYPE",
        ),
        (
            "gzip body",
            vec![
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
            "REQ-CONTENT-ENCODING",
        ),
    ];
    for (case, headers, expected) in header_cases {
        let mut request = stack
            .http
            .post(stack.url(path))
            .bearer_auth(token)
            .body("{}");
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().await.expect("the API answers");
        assert_eq!(response.status().as_u16(), 415, "{case}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(assert_error(&body, 3, case), expected, "{case}");
    }

    // Still serving after all of that.
    let (status, _) = stack
        .create_link(token, "u1", json!({"returnCode": {}}))
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn callers_are_checked() {
    let stack = Stack::start(StackOptions {
        workers: 0,
        ..Default::default()
    })
    .await;
    stack
        .put_user("in-a", &stack.org_a, &stack.email_of("a"), "In A")
        .await;

    let (status, body) = raw(
        &stack,
        "in-a",
        None,
        Some("application/json"),
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(assert_error(&body, 16, "no token"), "AUTH-TOKEN-MISSING");

    let (status, body) = raw(
        &stack,
        "in-a",
        Some("pl_not_a_token"),
        Some("application/json"),
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        assert_error(&body, 16, "unknown token"),
        "AUTH-TOKEN-INVALID"
    );
    assert!(
        !body.to_string().contains("pl_not_a_token"),
        "tokens are never echoed"
    );

    let response = stack
        .http
        .post(stack.url("/v3alpha/users/in-a/webauthn/registration_link"))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);

    let (status, body) = stack
        .create_link(&stack.tokens.org_b, "in-a", json!({}))
        .await;
    assert_eq!(status, 403, "a token of another organization");
    assert_eq!(
        assert_error(&body, 7, "other org"),
        "AUTH-PERMISSION-DENIED"
    );

    let (status, body) = stack
        .create_link(&stack.tokens.no_permission, "in-a", json!({}))
        .await;
    assert_eq!(status, 403, "a token without the permission");
    assert_error(&body, 7, "no permission");

    let (status, body) = stack
        .create_link(&stack.tokens.org_a, "nobody", json!({}))
        .await;
    assert_eq!(status, 404);
    assert_eq!(assert_error(&body, 5, "unknown user"), "USER-404");
    assert_eq!(body["message"], "User could not be found (USER-404)");

    let (status, body) = stack
        .request(Method::GET, "/v3alpha/nothing", Some("x"), None)
        .await;
    assert_eq!(status, 404);
    assert_error(&body, 5, "unknown route");

    // Mistyped paths are unknown endpoints, not another endpoint's request.
    for typo in [
        "/v3alpha/users/in-a/webauthn/registration_link/",
        "/v3alpha/users/in-a/webauthn/registration-link",
        "/v3alpha/users/in-a/webauthn/Registration_Link",
    ] {
        let (status, body) = stack
            .request(
                Method::POST,
                typo,
                Some(&stack.tokens.org_a),
                Some(json!({})),
            )
            .await;
        assert_eq!(status, 404, "{typo}: {body}");
        assert_eq!(assert_error(&body, 5, typo), "REQ-ROUTE-404", "{typo}");
    }

    let (status, body) = stack
        .request(
            Method::DELETE,
            "/v3alpha/users/in-a/webauthn/registration_link",
            None,
            None,
        )
        .await;
    assert_eq!(status, 405);
    assert_error(&body, 12, "wrong method");
}

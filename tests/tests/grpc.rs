//! The endpoint over gRPC (tonic's generated client, HTTP/2) and gRPC-web
//! (Connect's gRPC-web transport, HTTP/1.1 and HTTP/2): the same links, the
//! same refusals with the same codes and ids, and the same answers as JSON.

use std::time::Duration;

use passlink_proto::{
    CreateWebAuthNRegistrationLinkRequest, Medium, ReturnWebAuthNRegistrationCode,
    SendWebAuthNRegistrationLink,
};
use passlink_tests::grpc::{Outcome, proto_request};
use passlink_tests::{Stack, StackOptions};
use serde_json::{Value, json};
use tonic::Code;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(30);
const ORIGIN: &str = "https://app.example.test";
const TEMPLATE: &str =
    "https://example.com/passkey/register?userID={{.UserID}}&codeID={{.CodeID}}&code={{.Code}}";

/// Reads a query parameter from a link.
fn param(link: &str, name: &str) -> Option<String> {
    link.split(['?', '&', '#'])
        .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
        .map(str::to_owned)
}

fn request(user: &str, medium: Option<Medium>) -> CreateWebAuthNRegistrationLinkRequest {
    CreateWebAuthNRegistrationLinkRequest {
        user_id: user.to_owned(),
        medium,
    }
}

fn send_link(template: Option<&str>) -> Option<Medium> {
    Some(Medium::SendLink(SendWebAuthNRegistrationLink {
        url_template: template.map(str::to_owned),
    }))
}

fn return_code() -> Option<Medium> {
    Some(Medium::ReturnCode(ReturnWebAuthNRegistrationCode {}))
}

async fn stack_with_user(user: &str) -> Stack {
    // These tests send many links for one user on purpose; the per-user
    // limit has tests of its own (limits.rs).
    let stack = Stack::start(
        StackOptions::default()
            .with_env("PASSLINK_GRPC_WEB_CORS_ORIGINS", ORIGIN)
            .with_env("PASSLINK_RATE_USER_LINKS", "0"),
    )
    .await;
    stack
        .put_user(user, &stack.org_a, &stack.email_of("grpc"), "Greta Rpc")
        .await;
    stack
}

/// The emailed links' code ids and codes match what Redis keeps.
async fn assert_emailed_codes_are_stored(stack: &Stack, user: &str, count: usize) {
    let emails = stack.maildev.wait_for(count, WAIT).await;
    assert_eq!(emails.len(), count);
    for email in &emails {
        let link = email.link().expect("the email has a link");
        let code_id: Uuid = param(&link, "codeID")
            .expect("codeID in the link")
            .parse()
            .expect("code id is a UUID");
        let code = param(&link, "code").expect("code in the link");
        let stored = stack
            .stored_code_hash(user, &code_id.to_string())
            .await
            .expect("the code is recorded");
        assert_eq!(stored, stack.hasher.hash(&code_id, &code));
    }
}

async fn assert_returned_code_is_stored(stack: &Stack, user: &str, id: &str, code: &str) {
    let code_id: Uuid = id.parse().expect("code id is a UUID");
    assert_eq!(code.len(), 12);
    let stored = stack
        .stored_code_hash(user, id)
        .await
        .expect("the code is recorded");
    assert_eq!(
        stored,
        stack.hasher.hash(&code_id, code),
        "Redis keeps the keyed hash"
    );
}

#[tokio::test]
async fn grpc_creates_links_for_both_media() {
    let user = "grpc-user";
    let stack = stack_with_user(user).await;

    let sent = stack
        .grpc_create_link(
            Some(&stack.tokens.org_a),
            request(user, send_link(Some(TEMPLATE))),
        )
        .await
        .expect("sendLink succeeds");
    let details = sent.details.expect("details");
    assert_eq!(details.resource_owner, stack.org_a);
    assert!(sent.code.is_none(), "sendLink returns no code");
    let date = details.change_date.expect("change date");
    assert_eq!(date.nanos % 1_000_000, 0, "millisecond precision");
    let age = age_ms(date.seconds, date.nanos);
    assert!(
        (0..60_000).contains(&age),
        "the change date is now: {age} ms"
    );

    let defaulted = stack
        .grpc_create_link(Some(&stack.tokens.org_a), request(user, None))
        .await
        .expect("no medium means sendLink with the default link");
    assert!(defaulted.details.expect("details").sequence > details.sequence);

    let returned = stack
        .grpc_create_link(Some(&stack.tokens.admin), request(user, return_code()))
        .await
        .expect("returnCode succeeds");
    let code = returned.code.expect("returnCode returns the code");
    assert_returned_code_is_stored(&stack, user, &code.id, &code.code).await;

    assert_emailed_codes_are_stored(&stack, user, 2).await;
    let emails = stack.maildev.emails().await;
    let links: Vec<String> = emails.iter().filter_map(|e| e.link()).collect();
    assert!(
        links.iter().any(|l| l.starts_with("https://example.com/")),
        "{links:?}"
    );
    assert!(
        links
            .iter()
            .any(|l| l.starts_with("https://passlink.example.test/passkey/register?")),
        "{links:?}"
    );
}

/// Milliseconds since a protobuf timestamp, by the system clock.
fn age_ms(seconds: i64, nanos: i32) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is past 1970")
        .as_millis() as i64;
    now - (seconds * 1000 + i64::from(nanos) / 1_000_000)
}

#[tokio::test]
async fn grpc_refusals_carry_the_contract_codes_and_ids() {
    let user = "grpc-refused";
    let stack = stack_with_user(user).await;
    let t = &stack.tokens;
    let long_user = "x".repeat(201);
    let huge_user = "x".repeat(70 * 1024);

    let cases: Vec<(
        &str,
        Option<&str>,
        CreateWebAuthNRegistrationLinkRequest,
        Code,
        &str,
    )> = vec![
        (
            "no token",
            None,
            request(user, return_code()),
            Code::Unauthenticated,
            "AUTH-TOKEN-MISSING",
        ),
        (
            "unknown token",
            Some("pl_not_a_token"),
            request(user, return_code()),
            Code::Unauthenticated,
            "AUTH-TOKEN-INVALID",
        ),
        (
            "other organization",
            Some(&t.org_b),
            request(user, return_code()),
            Code::PermissionDenied,
            "AUTH-PERMISSION-DENIED",
        ),
        (
            "no permission",
            Some(&t.no_permission),
            request(user, send_link(None)),
            Code::PermissionDenied,
            "AUTH-PERMISSION-DENIED",
        ),
        (
            "unknown user",
            Some(&t.admin),
            request("nobody", return_code()),
            Code::NotFound,
            "USER-404",
        ),
        (
            "empty user id",
            Some(&t.admin),
            request("", return_code()),
            Code::InvalidArgument,
            "USER-ID-INVALID",
        ),
        (
            "long user id",
            Some(&t.admin),
            request(&long_user, return_code()),
            Code::InvalidArgument,
            "USER-ID-INVALID",
        ),
        (
            "empty template",
            Some(&t.admin),
            request(user, send_link(Some(""))),
            Code::InvalidArgument,
            "LINK-TEMPLATE-LENGTH",
        ),
        (
            "unknown placeholder",
            Some(&t.admin),
            request(user, send_link(Some("https://x.test/{{.Nope}}"))),
            Code::InvalidArgument,
            "LINK-TEMPLATE-PLACEHOLDER",
        ),
        (
            "script link",
            Some(&t.admin),
            request(user, send_link(Some("javascript:alert({{.Code}})"))),
            Code::InvalidArgument,
            "LINK-TEMPLATE-URL",
        ),
        (
            "message over the size limit",
            Some(&t.admin),
            request(&huge_user, return_code()),
            Code::ResourceExhausted,
            "REQ-BODY-TOO-LARGE",
        ),
    ];
    for (name, token, req, code, id) in cases {
        let status = stack.grpc_create_link(token, req).await.expect_err(name);
        assert_eq!(status.code(), code, "{name}: {status:?}");
        let detail = passlink_proto::error_detail(&status)
            .unwrap_or_else(|| panic!("{name}: no detail in {status:?}"));
        assert_eq!(detail.id, id, "{name}");
        assert_eq!(
            status.message(),
            format!("{} ({id})", detail.message),
            "{name}"
        );
        for secret in [&t.admin, &t.org_b, &t.no_permission] {
            assert!(!status.message().contains(secret.as_str()), "{name}");
        }
    }

    // Still serving, and nothing was created by the refusals.
    let ok = stack
        .grpc_create_link(Some(&t.org_a), request(user, return_code()))
        .await
        .expect("the service still answers");
    assert_eq!(
        ok.details.expect("details").sequence,
        2,
        "only the user write and this link"
    );

    // Every call is counted, refusals by the contract's HTTP status.
    let count = |status: &'static str| {
        let labels = [r#"route="grpc_create_link""#, status];
        let stack = &stack;
        async move {
            stack
                .metric(&stack.api_url, "passlink_http_requests_total", &labels)
                .await
        }
    };
    assert_eq!(count(r#"status="200""#).await, 1.0);
    assert_eq!(count(r#"status="401""#).await, 2.0);
    assert_eq!(count(r#"status="403""#).await, 2.0);
    assert_eq!(count(r#"status="404""#).await, 1.0);
    assert_eq!(count(r#"status="400""#).await, 5.0);
    assert_eq!(
        count(r#"status="429""#).await,
        1.0,
        "the message over the limit"
    );
}

#[tokio::test]
async fn grpc_web_creates_links_and_refuses_like_grpc() {
    let user = "web-user";
    let stack = stack_with_user(user).await;
    let t = &stack.tokens;

    let call = |token: Option<&str>, request: Value| {
        let mut call = json!({ "request": request, "origin": ORIGIN });
        if let Some(token) = token {
            call["token"] = token.into();
        }
        call
    };
    let calls = vec![
        call(
            Some(&t.org_a),
            json!({"userId": user, "sendLink": {"urlTemplate": TEMPLATE}}),
        ),
        call(Some(&t.org_a), json!({"userId": user, "returnCode": {}})),
        call(None, json!({"userId": user, "returnCode": {}})),
        call(Some("pl_not_a_token"), json!({"userId": user})),
        call(Some(&t.org_b), json!({"userId": user, "returnCode": {}})),
        call(
            Some(&t.admin),
            json!({"userId": "nobody", "returnCode": {}}),
        ),
        call(Some(&t.admin), json!({"userId": "", "returnCode": {}})),
        call(
            Some(&t.admin),
            json!({"userId": user, "sendLink": {"urlTemplate": "https://x.test/{{.Code}"}}),
        ),
    ];
    let expected: [Option<(i32, &str)>; 8] = [
        None,
        None,
        Some((16, "AUTH-TOKEN-MISSING")),
        Some((16, "AUTH-TOKEN-INVALID")),
        Some((7, "AUTH-PERMISSION-DENIED")),
        Some((5, "USER-404")),
        Some((3, "USER-ID-INVALID")),
        Some((3, "LINK-TEMPLATE-SYNTAX")),
    ];

    for http2 in [false, true] {
        let results = stack.grpc_web(&calls, http2).await;
        for (result, expected) in results.iter().zip(expected) {
            let case = format!("http2={http2}: {result}");
            match (Outcome::from_grpc_web(result), expected) {
                (Outcome::Created { resource_owner, .. }, None) => {
                    assert_eq!(resource_owner, stack.org_a, "{case}")
                }
                (Outcome::Refused { code, id }, Some((want_code, want_id))) => {
                    assert_eq!((code, id.as_str()), (want_code, want_id), "{case}");
                    assert!(
                        result["message"]
                            .as_str()
                            .is_some_and(|m| m.ends_with(&format!("({want_id})"))),
                        "{case}"
                    );
                }
                (outcome, _) => panic!("unexpected {outcome:?} for {case}"),
            }
            // The browser may read the answer and its status from ORIGIN.
            assert_eq!(
                result["headers"]["access-control-allow-origin"], ORIGIN,
                "{case}"
            );
            assert!(
                result["headers"]["access-control-expose-headers"]
                    .as_str()
                    .is_some_and(|h| h.contains("grpc-status") && h.contains("grpc-message")),
                "{case}"
            );
        }
        let (id, code) = match Outcome::from_grpc_web(&results[1]) {
            Outcome::Created {
                code: Some(code), ..
            } => code,
            other => panic!("returnCode gave {other:?}"),
        };
        assert_returned_code_is_stored(&stack, user, &id, &code).await;
    }
    assert_emailed_codes_are_stored(&stack, user, 2).await;

    // Another origin gets no CORS headers, so a browser hides the answer.
    let mut foreign = call(Some(&t.org_a), json!({"userId": user, "returnCode": {}}));
    foreign["origin"] = "https://evil.example.test".into();
    let result = stack.grpc_web(&[foreign], false).await.remove(0);
    assert_eq!(result["ok"], true, "{result}");
    assert!(
        result["headers"]
            .get("access-control-allow-origin")
            .is_none(),
        "{result}"
    );
}

#[tokio::test]
async fn grpc_web_preflight_answers_configured_origins_only() {
    let stack = Stack::start(StackOptions {
        workers: 0,
        ..StackOptions::default().with_env("PASSLINK_GRPC_WEB_CORS_ORIGINS", ORIGIN)
    })
    .await;
    let path = "/zitadel.user.v3alpha.UserService/CreateWebAuthNRegistrationLink";
    let preflight = |origin: &str| {
        stack
            .http
            .request(reqwest::Method::OPTIONS, stack.url(path))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type,x-grpc-web,x-user-agent",
            )
            .send()
    };

    let allowed = preflight(ORIGIN).await.expect("the API answers");
    assert_eq!(allowed.status(), 204);
    let headers = allowed.headers();
    assert_eq!(headers["access-control-allow-origin"], ORIGIN);
    assert_eq!(headers["access-control-allow-methods"], "POST");
    let allow_headers = headers["access-control-allow-headers"].to_str().unwrap();
    for needed in [
        "authorization",
        "content-type",
        "x-grpc-web",
        "x-user-agent",
    ] {
        assert!(allow_headers.contains(needed), "{allow_headers}");
    }

    let denied = preflight("https://evil.example.test")
        .await
        .expect("the API answers");
    assert_eq!(denied.status(), 403);
    assert!(!denied.headers().contains_key("access-control-allow-origin"));
    let body: Value = denied.json().await.expect("the contract's error body");
    assert_eq!(body["details"][0]["id"], "CORS-ORIGIN-DENIED");
}

#[tokio::test]
async fn grpc_content_types_that_cannot_be_served_get_a_clear_answer() {
    let stack = Stack::start(StackOptions {
        workers: 0,
        ..Default::default()
    })
    .await;
    let path = "/zitadel.user.v3alpha.UserService/CreateWebAuthNRegistrationLink";
    let post = |content_type: &'static str| {
        stack
            .http
            .post(stack.url(path))
            .header("content-type", content_type)
            .send()
    };

    // reqwest speaks HTTP/1.1 here: plain gRPC needs HTTP/2.
    let response = post("application/grpc").await.expect("the API answers");
    assert_eq!(response.status(), 505);
    let body: Value = response.json().await.expect("the contract's error body");
    assert_eq!(body["details"][0]["id"], "GRPC-HTTP2-REQUIRED");

    let response = post("application/grpc+json")
        .await
        .expect("the API answers");
    assert_eq!(response.status(), 415);
    let body: Value = response.json().await.expect("the contract's error body");
    assert_eq!(body["details"][0]["id"], "GRPC-CONTENT-TYPE");
}

#[tokio::test]
async fn json_grpc_and_grpc_web_give_the_same_answers() {
    let user = "same-user";
    let stack = stack_with_user(user).await;
    let self_user = stack.self_user.clone();
    stack
        .put_user(
            &self_user,
            &stack.org_b,
            &stack.email_of("self"),
            "Self Service",
        )
        .await;
    let t = stack.tokens.clone();
    let long_user = "é".repeat(201);

    let cases: Vec<(Option<&str>, Value)> = vec![
        (Some(&t.admin), json!({"userId": user, "returnCode": {}})),
        (Some(&t.org_a), json!({"userId": user, "sendLink": {}})),
        (
            Some(&t.org_a),
            json!({"userId": user, "sendLink": {"urlTemplate": TEMPLATE}}),
        ),
        (Some(&t.org_a), json!({"userId": user})),
        (
            Some(&t.self_service),
            json!({"userId": self_user, "returnCode": {}}),
        ),
        (None, json!({"userId": user, "returnCode": {}})),
        (
            Some("pl_not_a_token"),
            json!({"userId": user, "returnCode": {}}),
        ),
        (Some(&t.org_b), json!({"userId": user, "returnCode": {}})),
        (Some(&t.no_permission), json!({"userId": user})),
        (
            Some(&t.self_service),
            json!({"userId": user, "returnCode": {}}),
        ),
        (Some(&t.admin), json!({"userId": "nobody", "sendLink": {}})),
        (Some(&t.admin), json!({"userId": "", "returnCode": {}})),
        (
            Some(&t.admin),
            json!({"userId": long_user, "returnCode": {}}),
        ),
        (
            Some(&t.admin),
            json!({"userId": user, "sendLink": {"urlTemplate": ""}}),
        ),
        (
            Some(&t.admin),
            json!({"userId": user, "sendLink": {"urlTemplate": "https://x.test/{{.Nope}}"}}),
        ),
        (
            Some(&t.admin),
            json!({"userId": user, "sendLink": {"urlTemplate": "ftp://x.test/{{.Code}}"}}),
        ),
    ];

    let mut sequences: Vec<(String, u64)> = Vec::new();
    for (token, request) in &cases {
        let target = request["userId"].as_str().unwrap_or_default();
        let mut body = request.clone();
        if let Some(fields) = body.as_object_mut() {
            fields.remove("userId");
        }
        let (status, json_body) = match token {
            Some(token) => stack.create_link(token, target, body).await,
            None => {
                let path = format!(
                    "/v3alpha/users/{}/webauthn/registration_link",
                    passlink_tests::stack::encode(target)
                );
                stack
                    .request(reqwest::Method::POST, &path, None, Some(body))
                    .await
            }
        };
        let outcomes = [
            ("json", Outcome::from_json(status, &json_body)),
            (
                "grpc",
                Outcome::from_grpc(&stack.grpc_create_link(*token, proto_request(request)).await),
            ),
            (
                "grpc-web",
                Outcome::from_grpc_web(&stack.grpc_web_create_link(*token, request.clone()).await),
            ),
        ];

        let case = format!("{request} with {}", token.map_or("no token", |_| "a token"));
        let shape = outcomes[0].1.shape();
        for (protocol, outcome) in &outcomes {
            assert_eq!(
                outcome.shape(),
                shape,
                "{protocol} differs from json for {case}"
            );
            if let Outcome::Created { sequence, code, .. } = outcome {
                sequences.push((target.to_owned(), *sequence));
                if let Some((id, code)) = code {
                    assert_returned_code_is_stored(&stack, target, id, code).await;
                }
            }
        }
    }

    // Links for one user, in any protocol, take the next sequence each.
    for owner in [user, self_user.as_str()] {
        let own: Vec<u64> = sequences
            .iter()
            .filter(|(u, _)| u == owner)
            .map(|(_, s)| *s)
            .collect();
        assert!(!own.is_empty());
        assert!(own.windows(2).all(|w| w[1] == w[0] + 1), "{owner}: {own:?}");
    }
    // Three protocols times three successful sendLink cases.
    assert_emailed_codes_are_stored(&stack, user, 9).await;
}

#[tokio::test]
async fn grpc_answers_name_the_code_id_in_metadata() {
    let user = "grpc-code-id";
    let stack = stack_with_user(user).await;
    let mut request = tonic::Request::new(CreateWebAuthNRegistrationLinkRequest {
        user_id: user.to_owned(),
        medium: Some(Medium::ReturnCode(ReturnWebAuthNRegistrationCode {})),
    });
    let bearer = format!("Bearer {}", stack.tokens.org_a);
    request
        .metadata_mut()
        .insert("authorization", bearer.parse().unwrap());
    let response = stack
        .grpc_client()
        .await
        .create_web_auth_n_registration_link(request)
        .await
        .expect("created");
    let header = response
        .metadata()
        .get("passlink-code-id")
        .expect("the code id")
        .clone();
    let code = response
        .into_inner()
        .code
        .expect("returnCode carries the code");
    assert_eq!(header.to_str().unwrap(), code.id);
}

#[tokio::test]
async fn undecodable_grpc_web_frames_are_the_clients_fault() {
    let stack = stack_with_user("grpc-frames").await;
    let path = "/zitadel.user.v3alpha.UserService/CreateWebAuthNRegistrationLink";
    let cases: [(&str, Vec<u8>); 2] = [
        ("truncated", vec![0, 0, 0, 0, 100, 10, 3, b'a', b'b']),
        ("compressed without an encoding", vec![1, 0, 0, 0, 2, 10, 0]),
    ];
    for (case, body) in cases {
        let response = stack
            .http
            .post(stack.url(path))
            .header("content-type", "application/grpc-web+proto")
            .bearer_auth(&stack.tokens.org_a)
            .body(body)
            .send()
            .await
            .unwrap();
        let headers = response.headers().clone();
        let trailers = response.bytes().await.unwrap();
        let status = headers
            .get("grpc-status")
            .map(|v| v.to_str().unwrap().to_owned())
            .or_else(|| {
                let text = String::from_utf8_lossy(&trailers);
                text.split("grpc-status:")
                    .nth(1)
                    .map(|r| r.trim()[..1].to_owned())
            })
            .unwrap_or_else(|| panic!("{case}: no grpc-status"));
        assert_eq!(status, "3", "{case}: InvalidArgument, not Internal");
    }
    let errors_500 = stack
        .metric(
            &stack.api_url,
            "passlink_http_requests_total",
            &["status=\"500\""],
        )
        .await;
    assert_eq!(
        errors_500, 0.0,
        "client mistakes are not counted as server errors"
    );
}

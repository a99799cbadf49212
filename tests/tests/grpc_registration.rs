//! Passkey registration over gRPC (tonic's generated client, HTTP/2) and
//! gRPC-web (Connect's gRPC-web transport): the whole ceremony with a
//! software authenticator, the refusals with the contract's codes and ids,
//! the verify size limit, and the same outcomes as JSON for the same
//! start requests.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use passlink_proto::json::struct_to_json;
use passlink_proto::{
    CreateWebAuthNRegistrationLinkRequest, Medium, ReturnWebAuthNRegistrationCode,
    StartWebAuthNRegistrationResponse,
};
use passlink_tests::grpc::{StartOutcome, proto_start_request, proto_verify_request};
use passlink_tests::passkeys::{Authenticator, ORIGIN, RP_ID, wrong_code};
use passlink_tests::stack::encode;
use passlink_tests::{Stack, StackOptions};
use prost_types::value::Kind;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic::Code;
use uuid::Uuid;

/// The browser origin allowed to call gRPC-web.
const WEB_ORIGIN: &str = "https://app.example.test";
const START: &str = "StartWebAuthNRegistration";
const VERIFY: &str = "VerifyWebAuthNRegistration";

async fn stack_with(users: &[&str], env: &[(&str, &str)]) -> Stack {
    // Tests take many codes for one user; the per-user link limit has its
    // own tests (limits.rs).
    let mut options = StackOptions {
        workers: 0,
        ..Default::default()
    }
    .with_env("PASSLINK_GRPC_WEB_CORS_ORIGINS", WEB_ORIGIN)
    .with_env("PASSLINK_RATE_USER_LINKS", "0");
    for (key, value) in env {
        options = options.with_env(key, value);
    }
    let stack = Stack::start(options).await;
    for user in users {
        stack
            .put_user(user, &stack.org_a, &stack.email_of(user), "Ada Lovelace")
            .await;
    }
    stack
}

/// A code from a `returnCode` link made over gRPC: `(code id, code)`.
async fn grpc_code(stack: &Stack, user: &str) -> (String, String) {
    let created = stack
        .grpc_create_link(
            Some(&stack.tokens.admin),
            CreateWebAuthNRegistrationLinkRequest {
                user_id: user.to_owned(),
                medium: Some(Medium::ReturnCode(ReturnWebAuthNRegistrationCode {})),
            },
        )
        .await
        .expect("returnCode succeeds");
    let code = created.code.expect("returnCode returns the code");
    (code.id, code.code)
}

fn start_body(user: &str, code: Option<&(String, String)>) -> Value {
    let mut body = json!({"userId": user, "domain": RP_ID});
    if let Some((id, code)) = code {
        body["code"] = json!({"id": id, "code": code});
    }
    body
}

fn verify_body(user: &str, webauthn_id: &str, credential: &Value, name: &str) -> Value {
    json!({"userId": user, "webAuthNId": webauthn_id,
           "publicKeyCredential": credential, "webAuthNName": name})
}

/// The options of a gRPC start, as JSON.
fn grpc_options(started: &StartWebAuthNRegistrationResponse) -> Value {
    let options = started
        .public_key_credential_creation_options
        .as_ref()
        .expect("the options are set");
    Value::Object(struct_to_json(options).expect("the options are JSON"))
}

/// One gRPC-web call from the allowed browser origin, over HTTP/1.1 or
/// HTTP/2; the browser may read every answer.
async fn web(stack: &Stack, method: &str, token: Option<&str>, request: Value, h2: bool) -> Value {
    let mut call = json!({"method": method, "request": request, "origin": WEB_ORIGIN});
    if let Some(token) = token {
        call["token"] = token.into();
    }
    let result = stack.grpc_web(&[call], h2).await.remove(0);
    assert_eq!(
        result["headers"]["access-control-allow-origin"], WEB_ORIGIN,
        "{result}"
    );
    result
}

/// Asserts a tonic refusal's code and error id; the status for more checks.
fn refused<T: std::fmt::Debug>(
    result: Result<T, tonic::Status>,
    code: Code,
    id: &str,
    case: &str,
) -> tonic::Status {
    let status = result.expect_err(case);
    assert_eq!(status.code(), code, "{case}: {status:?}");
    let detail = passlink_proto::error_detail(&status)
        .unwrap_or_else(|| panic!("{case}: no detail in {status:?}"));
    assert_eq!(detail.id, id, "{case}");
    assert_eq!(status.message(), format!("{} ({id})", detail.message));
    status
}

/// Asserts a gRPC-web refusal's code and error id.
fn web_refused(result: &Value, code: i64, id: &str, case: &str) {
    assert_eq!(result["ok"], false, "{case}: {result}");
    assert_eq!(
        (result["code"].as_i64(), result["id"].as_str()),
        (Some(code), Some(id)),
        "{case}: {result}"
    );
    let message = result["message"].as_str().unwrap_or_default();
    assert!(message.ends_with(&format!("({id})")), "{case}: {message}");
}

#[tokio::test]
async fn grpc_registers_a_passkey_with_a_code() {
    let user = "grpc-passkey";
    let stack = stack_with(&[user], &[]).await;
    let (code_id, code) = grpc_code(&stack, user).await;

    let mut start = proto_start_request(&start_body(user, Some(&(code_id.clone(), code.clone()))));
    // The software authenticator is a roaming one.
    start.authenticator_type = passlink_proto::WebAuthNAuthenticatorType::CrossPlatform as i32;
    let started = stack
        .grpc_start_registration(None, start.clone())
        .await
        .expect("a code alone starts a registration");
    let details = started.details.clone().expect("details");
    assert_eq!(details.resource_owner, stack.org_a);
    let webauthn_id: Uuid = started.web_auth_n_id.parse().expect("a UUID");

    let options = grpc_options(&started);
    let public_key = &options["publicKey"];
    assert_eq!(public_key["rp"]["id"], RP_ID);
    assert_eq!(public_key["user"]["name"], stack.email_of(user).as_str());
    assert_eq!(public_key["user"]["displayName"], "Ada Lovelace");
    assert_eq!(
        public_key["authenticatorSelection"]["authenticatorAttachment"],
        "cross-platform"
    );
    // WebAuthn's integers stay integers, its binary fields base64url.
    let algorithms: Vec<Option<i64>> = public_key["pubKeyCredParams"]
        .as_array()
        .expect("pubKeyCredParams")
        .iter()
        .map(|p| p["alg"].as_i64())
        .collect();
    assert!(algorithms.contains(&Some(-7)), "{algorithms:?}");
    assert!(public_key["timeout"].as_u64().is_some(), "{public_key}");
    let challenge = public_key["challenge"].as_str().expect("challenge");
    assert!(URL_SAFE_NO_PAD.decode(challenge).expect("base64url").len() >= 16);
    let handle = public_key["user"]["id"].as_str().expect("user id");
    assert!(URL_SAFE_NO_PAD.decode(handle).is_ok(), "{handle}");

    let credential = Authenticator::new().register(ORIGIN, &options);
    let verify = proto_verify_request(&verify_body(
        user,
        &webauthn_id.to_string(),
        &credential,
        "Ada's phone",
    ));
    let verified = stack
        .grpc_verify_registration(None, verify.clone())
        .await
        .expect("the passkey verifies");
    let after = verified.details.expect("details");
    assert_eq!(
        after.sequence,
        details.sequence + 1,
        "a passkey is a change"
    );
    assert_eq!(after.resource_owner, stack.org_a);

    let passkeys = stack.passkeys_of(user).await;
    assert_eq!(passkeys.len(), 1, "{passkeys:?}");
    assert_eq!(passkeys[0]["id"], credential["rawId"]);
    assert_eq!(passkeys[0]["name"], "Ada's phone");
    assert_eq!(passkeys[0]["algorithm"], -7);

    // The code is spent, and the ceremony is over.
    let result = stack.grpc_start_registration(None, start).await;
    refused(result, Code::FailedPrecondition, "CODE-USED", "used code");
    let result = stack.grpc_verify_registration(None, verify).await;
    refused(result, Code::NotFound, "PASSKEY-CEREMONY-404", "again");

    // Counted like every gRPC route, refusals by their HTTP equivalent.
    for (route, status, count) in [
        ("grpc_start_registration", "200", 1.0),
        ("grpc_start_registration", "400", 1.0),
        ("grpc_verify_registration", "200", 1.0),
        ("grpc_verify_registration", "404", 1.0),
    ] {
        let (route_label, status_label) =
            (format!("route=\"{route}\""), format!("status=\"{status}\""));
        let labels = [route_label.as_str(), status_label.as_str()];
        let value = stack
            .metric(&stack.api_url, "passlink_http_requests_total", &labels)
            .await;
        assert_eq!(value, count, "{route} {status}");
    }
    let logs = stack.all_logs().join("\n");
    assert!(!logs.contains(&code), "the code never reaches the logs");
    assert!(logs.contains("passkey registered"));
}

#[tokio::test]
async fn grpc_web_registers_a_passkey_with_a_code() {
    let users = ["web-passkey-h1", "web-passkey-h2"];
    let stack = stack_with(&users, &[]).await;

    for (user, h2) in users.into_iter().zip([false, true]) {
        let case = format!("http2={h2}");
        let link = web(
            &stack,
            "CreateWebAuthNRegistrationLink",
            Some(&stack.tokens.admin),
            json!({"userId": user, "returnCode": {}}),
            h2,
        )
        .await;
        let code = &link["response"]["code"];
        let code = (
            code["id"].as_str().expect("code id").to_owned(),
            code["code"].as_str().expect("code").to_owned(),
        );

        let mut start = start_body(user, Some(&code));
        start["authenticatorType"] = "WEB_AUTH_N_AUTHENTICATOR_TYPE_CROSS_PLATFORM".into();
        let started = web(&stack, START, None, start.clone(), h2).await;
        let outcome = StartOutcome::from_grpc_web(&started);
        let StartOutcome::Started {
            resource_owner,
            sequence,
            webauthn_id,
            options,
        } = &outcome
        else {
            panic!("{case}: {started}");
        };
        assert_eq!(resource_owner, &stack.org_a, "{case}");
        let public_key = &options["publicKey"];
        assert_eq!(public_key["rp"]["id"], RP_ID, "{case}");
        assert_eq!(
            public_key["authenticatorSelection"]["authenticatorAttachment"],
            "cross-platform"
        );
        assert!(
            public_key["pubKeyCredParams"]
                .as_array()
                .is_some_and(|params| params.iter().any(|p| p["alg"] == -7)),
            "{case}: {public_key}"
        );

        let credential = Authenticator::new().register(ORIGIN, options);
        let verify = verify_body(user, webauthn_id, &credential, "Ada's key");
        let verified = web(&stack, VERIFY, None, verify.clone(), h2).await;
        assert_eq!(verified["ok"], true, "{case}: {verified}");
        let after: u64 = verified["response"]["details"]["sequence"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("a sequence");
        assert_eq!(after, sequence + 1, "{case}");

        let passkeys = stack.passkeys_of(user).await;
        assert_eq!(passkeys.len(), 1, "{case}: {passkeys:?}");
        assert_eq!(passkeys[0]["id"], credential["rawId"], "{case}");
        assert_eq!(passkeys[0]["name"], "Ada's key", "{case}");

        let again = web(&stack, START, None, start, h2).await;
        web_refused(&again, 9, "CODE-USED", &case);
        let again = web(&stack, VERIFY, None, verify, h2).await;
        web_refused(&again, 5, "PASSKEY-CEREMONY-404", &case);
    }
}

/// A case's name, method, token, request (protobuf JSON), code and error id.
type RefusalCase<'a> = (&'a str, &'a str, Option<&'a str>, Value, Code, &'a str);

#[tokio::test]
async fn grpc_and_grpc_web_refuse_with_the_contract_codes() {
    let user = "grpc-refused";
    let stack = stack_with(&[user], &[]).await;
    let t = stack.tokens.clone();

    // A ceremony started by a token, which only that caller may finish.
    let by_token = stack
        .grpc_start_registration(Some(&t.org_a), proto_start_request(&start_body(user, None)))
        .await
        .expect("the organization's token starts a registration");
    let credential = Authenticator::new().register(ORIGIN, &grpc_options(&by_token));
    let token_ceremony = by_token.web_auth_n_id.clone();
    let unknown = Uuid::new_v4().to_string();

    // A wrong code per protocol, so that each sees its first attempt.
    for (protocol, h2) in [
        ("grpc", None),
        ("grpc-web", Some(false)),
        ("grpc-web", Some(true)),
    ] {
        let (id, code) = grpc_code(&stack, user).await;
        let wrong = (id, wrong_code(&code));
        let request = start_body(user, Some(&wrong));
        let message = match h2 {
            None => {
                let result = stack
                    .grpc_start_registration(None, proto_start_request(&request))
                    .await;
                let status = refused(result, Code::InvalidArgument, "CODE-INVALID", protocol);
                status.message().to_owned()
            }
            Some(h2) => {
                let result = web(&stack, START, None, request, h2).await;
                web_refused(&result, 3, "CODE-INVALID", protocol);
                result["message"].as_str().unwrap_or_default().to_owned()
            }
        };
        assert!(message.contains("2 attempts left"), "{protocol}: {message}");
        assert!(!message.contains(&code) && !message.contains(&wrong.1));
    }

    let live = grpc_code(&stack, user).await;
    let mut bad_domain = start_body(user, Some(&live));
    bad_domain["domain"] = "evil.example.test".into();
    let mut bad_type = start_body(user, Some(&live));
    bad_type["authenticatorType"] = 9.into();
    let mut no_credential = verify_body(user, &unknown, &credential, "key");
    no_credential
        .as_object_mut()
        .unwrap()
        .remove("publicKeyCredential");

    let cases: Vec<RefusalCase> = vec![
        (
            "no code, no token",
            START,
            None,
            start_body(user, None),
            Code::Unauthenticated,
            "AUTH-TOKEN-MISSING",
        ),
        (
            "a code beside an invalid token",
            START,
            Some("pl_not_a_token"),
            start_body(user, Some(&live)),
            Code::Unauthenticated,
            "AUTH-TOKEN-INVALID",
        ),
        (
            "another organization's token",
            START,
            Some(&t.org_b),
            start_body(user, None),
            Code::PermissionDenied,
            "AUTH-PERMISSION-DENIED",
        ),
        (
            "unknown user",
            START,
            Some(&t.admin),
            start_body("nobody", None),
            Code::NotFound,
            "USER-404",
        ),
        (
            "unknown user with a code",
            START,
            None,
            start_body("nobody", Some(&live)),
            Code::NotFound,
            "CODE-404",
        ),
        (
            "unknown code id",
            START,
            None,
            start_body(user, Some(&(unknown.clone(), live.1.clone()))),
            Code::NotFound,
            "CODE-404",
        ),
        (
            "bad domain",
            START,
            None,
            bad_domain,
            Code::InvalidArgument,
            "PASSKEY-DOMAIN-INVALID",
        ),
        (
            "bad authenticator type",
            START,
            None,
            bad_type,
            Code::InvalidArgument,
            "PASSKEY-AUTHENTICATOR-TYPE-INVALID",
        ),
        (
            "ceremony id not a UUID",
            VERIFY,
            None,
            verify_body(user, "not-a-uuid", &credential, "key"),
            Code::InvalidArgument,
            "PASSKEY-ID-INVALID",
        ),
        (
            "no credential",
            VERIFY,
            None,
            no_credential,
            Code::InvalidArgument,
            "PASSKEY-CREDENTIAL-INVALID",
        ),
        (
            "no name",
            VERIFY,
            None,
            verify_body(user, &unknown, &credential, " "),
            Code::InvalidArgument,
            "PASSKEY-NAME-INVALID",
        ),
        (
            "unknown ceremony",
            VERIFY,
            None,
            verify_body(user, &unknown, &credential, "key"),
            Code::NotFound,
            "PASSKEY-CEREMONY-404",
        ),
        (
            "token ceremony without the token",
            VERIFY,
            None,
            verify_body(user, &token_ceremony, &credential, "key"),
            Code::Unauthenticated,
            "AUTH-TOKEN-MISSING",
        ),
        (
            "token ceremony with an invalid token",
            VERIFY,
            Some("pl_not_a_token"),
            verify_body(user, &token_ceremony, &credential, "key"),
            Code::Unauthenticated,
            "AUTH-TOKEN-INVALID",
        ),
        (
            "token ceremony with another caller",
            VERIFY,
            Some(&t.admin),
            verify_body(user, &token_ceremony, &credential, "key"),
            Code::PermissionDenied,
            "AUTH-PERMISSION-DENIED",
        ),
    ];

    for (name, method, token, request, code, id) in &cases {
        let result = if *method == START {
            stack
                .grpc_start_registration(*token, proto_start_request(request))
                .await
                .map(|_| ())
        } else {
            stack
                .grpc_verify_registration(*token, proto_verify_request(request))
                .await
                .map(|_| ())
        };
        let status = refused(result, *code, id, name);
        for secret in [&live.1, &t.admin, &t.org_b] {
            assert!(!status.message().contains(secret.as_str()), "{name}");
        }
    }
    let calls: Vec<Value> = cases
        .iter()
        .map(|(_, method, token, request, ..)| {
            let mut call = json!({"method": method, "request": request});
            if let Some(token) = token {
                call["token"] = (*token).into();
            }
            call
        })
        .collect();
    let results = stack.grpc_web(&calls, false).await;
    for ((name, _, _, _, code, id), result) in cases.iter().zip(&results) {
        web_refused(result, *code as i64, id, name);
    }

    // None of that used up the code, and the token's ceremony still works.
    let result = stack
        .grpc_verify_registration(
            Some(&t.org_a),
            proto_verify_request(&verify_body(user, &token_ceremony, &credential, "key")),
        )
        .await;
    assert!(result.is_ok(), "{result:?}");
    let result = stack
        .grpc_start_registration(None, proto_start_request(&start_body(user, Some(&live))))
        .await;
    assert!(result.is_ok(), "the code is live: {result:?}");
}

#[tokio::test]
async fn grpc_refuses_numbers_and_values_that_json_cannot_hold() {
    let user = "grpc-struct";
    let stack = stack_with(&[user], &[]).await;
    let credential = json!({"id": "AA", "rawId": "AA", "type": "public-key",
        "response": {"attestationObject": "AA", "clientDataJSON": "AA"}});
    let request = verify_body(user, &Uuid::new_v4().to_string(), &credential, "key");

    let mut not_finite = proto_verify_request(&request);
    let mut no_kind = not_finite.clone();
    let set = |message: &mut passlink_proto::VerifyWebAuthNRegistrationRequest, kind| {
        let fields = &mut message.public_key_credential.as_mut().unwrap().fields;
        fields.insert("timeout".into(), prost_types::Value { kind });
    };
    set(&mut not_finite, Some(Kind::NumberValue(f64::INFINITY)));
    set(&mut no_kind, None);

    let status = refused(
        stack.grpc_verify_registration(None, not_finite).await,
        Code::InvalidArgument,
        "PASSKEY-CREDENTIAL-INVALID",
        "infinity",
    );
    assert!(
        status
            .message()
            .contains("a number that is not finite (NaN or infinity) at $.timeout"),
        "{status:?}"
    );
    let status = refused(
        stack.grpc_verify_registration(None, no_kind).await,
        Code::InvalidArgument,
        "PASSKEY-CREDENTIAL-INVALID",
        "no kind",
    );
    assert!(
        status.message().contains("no kind set at $.timeout"),
        "{status:?}"
    );
}

/// A JSON POST that declares a body of `length` bytes with
/// `Expect: 100-continue` and sends only its head, as clients do for large
/// bodies: the server refuses an oversized body by its declared length
/// before the body is sent. The status and the parsed body of the answer.
async fn json_head_only(stack: &Stack, path: &str, length: usize) -> (u16, Value) {
    let mut stream = TcpStream::connect(stack.api_url.trim_start_matches("http://"))
        .await
        .expect("the API accepts a connection");
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: a\r\ncontent-type: application/json\r\n\
         content-length: {length}\r\nexpect: 100-continue\r\n\r\n"
    );
    stream
        .write_all(head.as_bytes())
        .await
        .expect("write the head");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer));
    // The server closes the connection after refusing; what came is the answer.
    let _ = read.await;
    let answer = String::from_utf8_lossy(&answer);
    let status = answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("an HTTP answer: {answer:.200}"));
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// The verify limit: what JSON takes, gRPC and gRPC-web take, and no more;
/// other methods keep the general limit.
#[tokio::test]
async fn verify_messages_may_be_as_large_as_json_bodies_and_no_larger() {
    let user = "grpc-large";
    let stack = stack_with(&[user], &[]).await;
    let credential = |id_bytes: usize| {
        json!({"id": "a".repeat(id_bytes), "rawId": "AA", "type": "public-key",
               "response": {"attestationObject": "AA", "clientDataJSON": "AA"}})
    };
    let unknown = Uuid::new_v4().to_string();
    let mib = 1 << 20;
    let cases = [
        // Over the general 64 KiB limit, within the credential's.
        (900 * 1024, 404, Code::NotFound, "PASSKEY-CEREMONY-404"),
        // A message within the verify limit, a credential over 1 MiB.
        (
            mib,
            400,
            Code::InvalidArgument,
            "PASSKEY-CREDENTIAL-INVALID",
        ),
        // Over the verify limit (1 MiB and 16 KiB).
        (
            mib + 20 * 1024,
            413,
            Code::ResourceExhausted,
            "REQ-BODY-TOO-LARGE",
        ),
    ];

    let mut calls = Vec::new();
    for (size, http_status, code, id) in cases {
        let request = verify_body(user, &unknown, &credential(size), "key");
        let path = format!("/v3alpha/users/{}/webauthn/{unknown}", encode(user));
        let mut body = request.clone();
        body.as_object_mut().unwrap().remove("userId");
        let (status, json_body) = if code == Code::ResourceExhausted {
            json_head_only(&stack, &path, body.to_string().len()).await
        } else {
            stack
                .request(reqwest::Method::POST, &path, None, Some(body))
                .await
        };
        let case = format!("{size} bytes");
        assert_eq!(status, http_status, "json, {case}: {json_body}");
        assert_eq!(json_body["details"][0]["id"], id, "json, {case}");

        let result = stack
            .grpc_verify_registration(None, proto_verify_request(&request))
            .await;
        let status = refused(result, code, id, &case);
        if code == Code::ResourceExhausted {
            assert!(
                status.message().contains("larger than 1064960 bytes"),
                "{status:?}"
            );
        }
        calls.push(json!({"method": VERIFY, "request": request}));
    }
    // Over HTTP/1.1 a client still writing a message the server refused
    // early sees the connection close (EPIPE) instead of the answer, so the
    // message over the limit goes over HTTP/2 only.
    for h2 in [false, true] {
        let calls = if h2 { &calls[..] } else { &calls[..2] };
        let results = stack.grpc_web(calls, h2).await;
        for ((size, _, code, id), result) in cases.iter().zip(&results) {
            let case = format!("grpc-web, http2={h2}, {size} bytes");
            web_refused(result, *code as i64, id, &case);
        }
    }

    // A start keeps the general limit.
    let mut start = proto_start_request(&start_body(user, None));
    start.domain = "d".repeat(70 * 1024);
    let result = stack
        .grpc_start_registration(Some(&stack.tokens.admin), start)
        .await;
    let status = refused(
        result,
        Code::ResourceExhausted,
        "REQ-BODY-TOO-LARGE",
        "start",
    );
    assert!(
        status.message().contains("larger than 65536 bytes"),
        "{status:?}"
    );
}

#[tokio::test]
async fn an_expired_code_is_its_own_error_over_grpc() {
    let user = "grpc-expiry";
    let stack = stack_with(&[user], &[("PASSLINK_CODE_TTL", "3s")]).await;
    let code = grpc_code(&stack, user).await;
    tokio::time::sleep(Duration::from_millis(3300)).await;

    let wrong = (code.0.clone(), "WrongCode123".to_owned());
    for attempt in [&code, &wrong] {
        let request = start_body(user, Some(attempt));
        let result = stack
            .grpc_start_registration(None, proto_start_request(&request))
            .await;
        refused(result, Code::FailedPrecondition, "CODE-EXPIRED", "grpc");
        for h2 in [false, true] {
            let result = web(&stack, START, None, request.clone(), h2).await;
            web_refused(&result, 9, "CODE-EXPIRED", "grpc-web");
        }
    }
}

#[tokio::test]
async fn a_token_on_a_grpc_start_counts_against_its_caller_limit() {
    let user = "grpc-busy";
    let stack = stack_with(&[user], &[("PASSLINK_RATE_CALLER_PER_MINUTE", "3")]).await;
    let org_a = stack.tokens.org_a.clone();
    for _ in 0..3 {
        let result = stack
            .grpc_start_registration(Some(&org_a), proto_start_request(&start_body(user, None)))
            .await;
        assert!(result.is_ok(), "{result:?}");
    }
    let result = stack
        .grpc_start_registration(Some(&org_a), proto_start_request(&start_body(user, None)))
        .await;
    refused(result, Code::ResourceExhausted, "RATE-CALLER", "grpc");
    let result = web(&stack, START, Some(&org_a), start_body(user, None), false).await;
    web_refused(&result, 8, "RATE-CALLER", "grpc-web");

    // A code alone involves no caller, so no caller limit.
    let code = grpc_code(&stack, user).await;
    let result = stack
        .grpc_start_registration(None, proto_start_request(&start_body(user, Some(&code))))
        .await;
    assert!(result.is_ok(), "{result:?}");
}

/// How a start case gets its code: none, a fresh live one, or a fresh one
/// changed so that it is wrong (fresh per protocol, so that attempts
/// counted by one protocol do not change what the next one sees).
#[derive(Clone, Copy, Debug)]
enum CodeUse {
    None,
    Right,
    Wrong,
}

#[tokio::test]
async fn json_grpc_and_grpc_web_start_alike() {
    let user = "same-start";
    let stack = stack_with(&[user], &[]).await;
    let t = stack.tokens.clone();

    let with = |fields: Value| {
        let mut body = json!({"userId": user, "domain": RP_ID});
        body.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        body
    };
    let cases: Vec<(Option<&str>, Value, CodeUse)> = vec![
        (None, with(json!({})), CodeUse::Right),
        (
            None,
            with(json!({"authenticatorType": "WEB_AUTH_N_AUTHENTICATOR_TYPE_PLATFORM"})),
            CodeUse::Right,
        ),
        (None, with(json!({"authenticatorType": 2})), CodeUse::Right),
        (Some(&t.org_a), with(json!({})), CodeUse::None),
        (Some(&t.admin), with(json!({})), CodeUse::Right),
        (None, with(json!({})), CodeUse::Wrong),
        (Some("pl_not_a_token"), with(json!({})), CodeUse::Right),
        (None, with(json!({})), CodeUse::None),
        (Some(&t.org_b), with(json!({})), CodeUse::None),
        (Some(&t.self_service), with(json!({})), CodeUse::None),
        (
            Some(&t.admin),
            with(json!({"userId": "nobody"})),
            CodeUse::None,
        ),
        (None, with(json!({"userId": "nobody"})), CodeUse::Right),
        (Some(&t.admin), with(json!({"userId": ""})), CodeUse::None),
        (
            None,
            with(json!({"domain": "evil.example.test"})),
            CodeUse::Right,
        ),
        (None, with(json!({"domain": ""})), CodeUse::Right),
        (None, with(json!({"authenticatorType": 7})), CodeUse::Right),
        (
            None,
            with(json!({"code": {"id": "nope", "code": "abc"}})),
            CodeUse::None,
        ),
        (
            None,
            with(json!({"code": {"id": Uuid::new_v4().to_string(), "code": ""}})),
            CodeUse::None,
        ),
        (
            None,
            with(json!({"code": {"id": Uuid::new_v4().to_string(), "code": "abcdefghijkl"}})),
            CodeUse::None,
        ),
    ];

    for (token, request, code_use) in &cases {
        let case = format!(
            "{request} with {code_use:?} code and {}",
            token.map_or("no token", |_| "a token")
        );
        let mut outcomes = Vec::new();
        for protocol in ["json", "grpc", "grpc-web"] {
            let mut request = request.clone();
            if !matches!(code_use, CodeUse::None) {
                let (id, code) = grpc_code(&stack, user).await;
                let code = match code_use {
                    CodeUse::Wrong => wrong_code(&code),
                    _ => code,
                };
                request["code"] = json!({"id": id, "code": code});
            }
            let outcome = match protocol {
                "json" => {
                    let target = request["userId"].as_str().unwrap_or_default().to_owned();
                    let mut body = request.clone();
                    body.as_object_mut().unwrap().remove("userId");
                    let (status, body) = stack.start_registration(&target, *token, body).await;
                    StartOutcome::from_json(status, &body)
                }
                "grpc" => StartOutcome::from_grpc(
                    &stack
                        .grpc_start_registration(*token, proto_start_request(&request))
                        .await,
                ),
                _ => StartOutcome::from_grpc_web(
                    &stack.grpc_web_call(START, *token, request, false).await,
                ),
            };
            outcomes.push((protocol, outcome));
        }
        let shape = outcomes[0].1.shape();
        for (protocol, outcome) in &outcomes {
            assert_eq!(
                outcome.shape(),
                shape,
                "{protocol} differs from json for {case}"
            );
        }
    }
}

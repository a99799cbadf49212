//! Redeeming a code: passkey registration with a software authenticator,
//! and the code rules (attempts, expiry, retry, single use).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use passlink_shared::passkey::PasskeyRecord;
use passlink_shared::store::{
    FinishOutcome, FinishRegistration, RedisSettings, StartCeremony, StartOutcome, Store,
};
use passlink_tests::passkeys::{Authenticator, ORIGIN, RP_ID, error_id, wrong_code};
use passlink_tests::stack::REDIS_URL;
use passlink_tests::{Stack, StackOptions};
use serde_json::{Value, json};
use uuid::Uuid;

async fn stack_with_user(user: &str) -> Stack {
    let stack = Stack::start(StackOptions {
        workers: 0,
        ..Default::default()
    })
    .await;
    stack
        .put_user(user, &stack.org_a, &stack.email_of("ada"), "Ada Lovelace")
        .await;
    stack
}

fn sequence(body: &Value) -> u64 {
    body["details"]["sequence"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no sequence in {body}"))
}

fn webauthn_id(body: &Value) -> String {
    body["webAuthNId"].as_str().expect("webAuthNId").to_owned()
}

fn options(body: &Value) -> &Value {
    &body["publicKeyCredentialCreationOptions"]
}

/// The error body's gRPC code and id, for one assertion.
fn failure(body: &Value) -> (i64, &str) {
    (body["code"].as_i64().unwrap_or_default(), error_id(body))
}

#[tokio::test]
async fn a_code_registers_a_passkey_once() {
    let user = "user-once";
    let stack = stack_with_user(user).await;
    let (code_id, code) = stack.return_code(user).await;
    let (status, started) = stack.start_with_code(user, &code_id, &code).await;
    assert_eq!(status, 200, "{started}");

    let id: Uuid = webauthn_id(&started).parse().expect("webAuthNId is a UUID");
    assert_eq!(started["details"]["resourceOwner"], stack.org_a.as_str());
    let public_key = &options(&started)["publicKey"];
    assert_eq!(public_key["rp"]["id"], RP_ID);
    assert_eq!(public_key["user"]["name"], stack.email_of("ada").as_str());
    assert_eq!(public_key["user"]["displayName"], "Ada Lovelace");
    assert_eq!(
        public_key["authenticatorSelection"]["userVerification"],
        "required"
    );
    let challenge = public_key["challenge"].as_str().expect("challenge");
    assert!(URL_SAFE_NO_PAD.decode(challenge).unwrap().len() >= 16);
    assert!(
        public_key.get("excludeCredentials").is_none(),
        "{public_key}"
    );
    let before = sequence(&started);

    let mut authenticator = Authenticator::new();
    let credential = authenticator.register(ORIGIN, options(&started));
    let (status, verified) = stack
        .verify_registration(user, &id.to_string(), None, &credential, "Ada's laptop")
        .await;
    assert_eq!(status, 200, "{verified}");
    assert_eq!(sequence(&verified), before + 1, "a passkey is a change");
    assert_eq!(verified["details"]["resourceOwner"], stack.org_a.as_str());

    let passkeys = stack.passkeys_of(user).await;
    assert_eq!(passkeys.len(), 1, "{passkeys:?}");
    let passkey = &passkeys[0];
    assert_eq!(passkey["id"], credential["rawId"]);
    assert_eq!(passkey["name"], "Ada's laptop");
    assert_eq!(passkey["algorithm"], -7, "ES256");
    assert_eq!(passkey["counter"], 0);
    assert!(passkey["creationDate"].as_str().unwrap().ends_with('Z'));
    let cose = URL_SAFE_NO_PAD
        .decode(passkey["publicKey"].as_str().unwrap())
        .expect("the public key is base64url");
    assert_eq!(
        &cose[..5],
        &[0xa5, 0x01, 0x02, 0x03, 0x26],
        "a COSE EC2 ES256 key"
    );

    // The code is spent: neither a new start nor the same answer again.
    let (status, body) = stack.start_with_code(user, &code_id, &code).await;
    assert_eq!((status, failure(&body)), (400, (9, "CODE-USED")), "{body}");
    let (status, body) = stack
        .verify_registration(user, &id.to_string(), None, &credential, "again")
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(error_id(&body), "PASSKEY-CEREMONY-404");

    // A later registration for the user excludes the passkey it has.
    let (status, started) = stack
        .start_registration(user, Some(&stack.tokens.org_a), json!({"domain": RP_ID}))
        .await;
    assert_eq!(status, 200, "{started}");
    let excluded = &options(&started)["publicKey"]["excludeCredentials"];
    assert_eq!(excluded[0]["id"], credential["rawId"], "{excluded}");

    let logs = stack.all_logs().join("\n");
    assert!(!logs.contains(&code), "the code never reaches the logs");
    assert!(logs.contains("passkey registered"));
}

#[tokio::test]
async fn wrong_codes_count_and_the_third_removes_the_code() {
    let user = "user-wrong";
    let stack = stack_with_user(user).await;
    let (code_id, code) = stack.return_code(user).await;
    let wrong = wrong_code(&code);

    for left in ["2 attempts left", "1 attempt left"] {
        let (status, body) = stack.start_with_code(user, &code_id, &wrong).await;
        assert_eq!(
            (status, failure(&body)),
            (400, (3, "CODE-INVALID")),
            "{body}"
        );
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(left), "{message}");
        assert!(!message.contains(&wrong) && !message.contains(&code));
    }
    let (status, body) = stack.start_with_code(user, &code_id, &wrong).await;
    assert_eq!(
        (status, failure(&body)),
        (400, (9, "CODE-BLOCKED")),
        "{body}"
    );

    // Removed: the right code no longer works either.
    let (status, body) = stack.start_with_code(user, &code_id, &code).await;
    assert_eq!(
        (status, failure(&body)),
        (400, (9, "CODE-BLOCKED")),
        "{body}"
    );
    assert_eq!(stack.stored_code_hash(user, &code_id).await, None);

    // A malformed code is refused without counting against a fresh one.
    let (code_id, code) = stack.return_code(user).await;
    for _ in 0..4 {
        let (status, body) = stack
            .start_registration(
                user,
                None,
                json!({"domain": RP_ID, "code": {"id": code_id, "code": ""}}),
            )
            .await;
        assert_eq!((status, error_id(&body)), (400, "CODE-FORMAT"), "{body}");
    }
    let (status, body) = stack.start_with_code(user, &code_id, &code).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn an_expired_code_is_its_own_error() {
    let stack = Stack::start(
        StackOptions {
            workers: 0,
            ..Default::default()
        }
        .with_env("PASSLINK_CODE_TTL", "3s"),
    )
    .await;
    let user = "user-expiry";
    stack
        .put_user(user, &stack.org_a, &stack.email_of("exp"), "Ex Piry")
        .await;
    let (code_id, code) = stack.return_code(user).await;
    let (status, started) = stack.start_with_code(user, &code_id, &code).await;
    assert_eq!(status, 200, "{started}");

    tokio::time::sleep(Duration::from_millis(3300)).await;
    let (status, body) = stack.start_with_code(user, &code_id, &code).await;
    assert_eq!(
        (status, failure(&body)),
        (400, (9, "CODE-EXPIRED")),
        "{body}"
    );
    let (status, body) = stack.start_with_code(user, &code_id, "WrongCode123").await;
    assert_eq!(
        failure(&body),
        (9, "CODE-EXPIRED"),
        "no attempt counted: {body}"
    );
    assert_eq!(status, 400);

    // Not to be confused with a code that never existed.
    let (status, body) = stack
        .start_with_code(user, &Uuid::new_v4().to_string(), &code)
        .await;
    assert_eq!((status, failure(&body)), (404, (5, "CODE-404")), "{body}");

    // A ceremony started while the code was valid may still finish.
    let credential = Authenticator::new().register(ORIGIN, options(&started));
    let (status, body) = stack
        .verify_registration(user, &webauthn_id(&started), None, &credential, "late")
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = stack.start_with_code(user, &code_id, &code).await;
    assert_eq!((status, error_id(&body)), (400, "CODE-USED"), "{body}");
}

#[tokio::test]
async fn a_failed_or_abandoned_ceremony_can_be_retried_with_the_same_link() {
    let user = "user-retry";
    let stack = stack_with_user(user).await;
    let (code_id, code) = stack.return_code(user).await;
    let mut authenticator = Authenticator::new();

    // A page on another origin: the authenticator signs, the server refuses.
    let (_, first) = stack.start_with_code(user, &code_id, &code).await;
    let phished = authenticator.register("https://evil.passlink.example.test", options(&first));
    let (status, body) = stack
        .verify_registration(user, &webauthn_id(&first), None, &phished, "phished")
        .await;
    assert_eq!(
        (status, failure(&body)),
        (400, (3, "PASSKEY-VERIFY-FAILED")),
        "{body}"
    );
    let (status, body) = stack
        .verify_registration(user, &webauthn_id(&first), None, &phished, "phished")
        .await;
    assert_eq!(
        (status, error_id(&body)),
        (404, "PASSKEY-CEREMONY-404"),
        "{body}"
    );

    // Abandoned: started, never answered.
    let (status, _abandoned) = stack.start_with_code(user, &code_id, &code).await;
    assert_eq!(status, 200);

    let (status, retry) = stack.start_with_code(user, &code_id, &code).await;
    assert_eq!(status, 200, "the same link works again: {retry}");
    let credential = authenticator.register(ORIGIN, options(&retry));
    let (status, body) = stack
        .verify_registration(user, &webauthn_id(&retry), None, &credential, "retried")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(stack.passkeys_of(user).await.len(), 1);
}

#[tokio::test]
async fn of_two_starts_with_one_code_only_the_first_verified_registers() {
    let user = "user-two";
    let stack = stack_with_user(user).await;
    let (code_id, code) = stack.return_code(user).await;
    let (_, first) = stack.start_with_code(user, &code_id, &code).await;
    let (_, second) = stack.start_with_code(user, &code_id, &code).await;
    assert_ne!(webauthn_id(&first), webauthn_id(&second));

    let answer_first = Authenticator::new().register(ORIGIN, options(&first));
    let answer_second = Authenticator::new().register(ORIGIN, options(&second));
    let (status, body) = stack
        .verify_registration(user, &webauthn_id(&second), None, &answer_second, "phone")
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = stack
        .verify_registration(user, &webauthn_id(&first), None, &answer_first, "laptop")
        .await;
    assert_eq!((status, failure(&body)), (400, (9, "CODE-USED")), "{body}");

    let passkeys = stack.passkeys_of(user).await;
    assert_eq!(passkeys.len(), 1);
    assert_eq!(passkeys[0]["name"], "phone");
}

#[tokio::test]
async fn a_flood_of_starts_keeps_only_the_newest_ceremonies() {
    let user = "user-flood";
    let stack = stack_with_user(user).await;
    let (code_id, code) = stack.return_code(user).await;
    let mut ids = Vec::new();
    for _ in 0..25 {
        let (status, body) = stack.start_with_code(user, &code_id, &code).await;
        assert_eq!(status, 200, "{body}");
        ids.push(webauthn_id(&body));
    }
    let mut conn = stack.redis().await;
    let mut live = Vec::new();
    for id in &ids {
        let exists: bool = redis::cmd("EXISTS")
            .arg(stack.keys.ceremony(user, id))
            .query_async(&mut conn)
            .await
            .unwrap();
        if exists {
            live.push(id.clone());
        }
    }
    assert_eq!(live, ids[15..], "the ten newest ceremonies live, no more");

    // A new one still completes; the oldest is gone.
    let (_, start) = stack.start_with_code(user, &code_id, &code).await;
    let answer = Authenticator::new().register(ORIGIN, options(&start));
    let (status, body) = stack
        .verify_registration(user, &webauthn_id(&start), None, &answer, "last")
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = stack
        .verify_registration(user, &ids[0], None, &answer, "first")
        .await;
    assert_eq!(status, 404, "the oldest ceremony was ended");
}

#[tokio::test]
async fn without_a_code_the_caller_needs_the_permission() {
    let stack = stack_with_user("user-auth").await;
    let own = stack.self_user.clone();
    stack
        .put_user(&own, &stack.org_b, &stack.email_of("own"), "Own")
        .await;
    let body = json!({"domain": RP_ID});
    let tokens = &stack.tokens;

    let cases = [
        ("user-auth", None, 401, "AUTH-TOKEN-MISSING"),
        (
            "user-auth",
            Some("pl_not_a_token"),
            401,
            "AUTH-TOKEN-INVALID",
        ),
        (
            "user-auth",
            Some(tokens.org_b.as_str()),
            403,
            "AUTH-PERMISSION-DENIED",
        ),
        (
            "user-auth",
            Some(tokens.directory_a.as_str()),
            403,
            "AUTH-PERMISSION-DENIED",
        ),
        (
            "user-auth",
            Some(tokens.self_service.as_str()),
            403,
            "AUTH-PERMISSION-DENIED",
        ),
        ("nobody", Some(tokens.admin.as_str()), 404, "USER-404"),
    ];
    for (user, token, status, id) in cases {
        let (got, response) = stack.start_registration(user, token, body.clone()).await;
        assert_eq!((got, error_id(&response)), (status, id), "{user} {token:?}");
    }
    let (status, response) = stack
        .start_registration(
            "user-auth",
            Some(&tokens.org_a),
            json!({"domain": "evil.test"}),
        )
        .await;
    assert_eq!(
        (status, error_id(&response)),
        (400, "PASSKEY-DOMAIN-INVALID")
    );

    // A code does not need a token, but a token that is given must be valid.
    let (code_id, code) = stack.return_code("user-auth").await;
    let code_body = json!({"domain": RP_ID, "code": {"id": code_id, "code": code}});
    let (status, response) = stack
        .start_registration("user-auth", Some("pl_not_a_token"), code_body)
        .await;
    assert_eq!((status, error_id(&response)), (401, "AUTH-TOKEN-INVALID"));
    // Holding a code says nothing about which users exist.
    let (status, response) = stack.start_with_code("nobody", &code_id, &code).await;
    assert_eq!((status, error_id(&response)), (404, "CODE-404"));

    // The user itself, and only the same caller finishes the ceremony.
    let (status, started) = stack
        .start_registration(&own, Some(&tokens.self_service), body.clone())
        .await;
    assert_eq!(status, 200, "{started}");
    let credential = Authenticator::new().register(ORIGIN, options(&started));
    let id = webauthn_id(&started);
    let (status, response) = stack
        .verify_registration(&own, &id, None, &credential, "mine")
        .await;
    assert_eq!((status, error_id(&response)), (401, "AUTH-TOKEN-MISSING"));
    let (status, response) = stack
        .verify_registration(&own, &id, Some(&tokens.admin), &credential, "mine")
        .await;
    assert_eq!(
        (status, error_id(&response)),
        (403, "AUTH-PERMISSION-DENIED")
    );
    let (status, response) = stack
        .verify_registration(&own, &id, Some(&tokens.self_service), &credential, "mine")
        .await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(stack.passkeys_of(&own).await.len(), 1);

    // The permission is checked again at the finish: a user moved to an
    // organization the caller may not act in is out of its reach mid-way.
    let (status, started) = stack
        .start_registration("user-auth", Some(&tokens.org_a), body.clone())
        .await;
    assert_eq!(status, 200, "{started}");
    let credential = Authenticator::new().register(ORIGIN, options(&started));
    stack
        .put_user(
            "user-auth",
            &stack.org_b,
            &stack.email_of("ada"),
            "Ada Lovelace",
        )
        .await;
    let (status, response) = stack
        .verify_registration(
            "user-auth",
            &webauthn_id(&started),
            Some(&tokens.org_a),
            &credential,
            "moved",
        )
        .await;
    assert_eq!(
        (status, error_id(&response)),
        (403, "AUTH-PERMISSION-DENIED")
    );
    assert!(stack.passkeys_of("user-auth").await.is_empty());
}

#[tokio::test]
async fn opening_the_page_never_touches_the_code() {
    let stack = Stack::start(StackOptions::default()).await;
    let user = "user-page";
    stack
        .put_user(user, &stack.org_a, &stack.email_of("page"), "Pa Ge")
        .await;
    let (status, _) = stack
        .create_link(&stack.tokens.org_a, user, json!({}))
        .await;
    assert_eq!(status, 200);
    let email = &stack.maildev.wait_for(1, Duration::from_secs(30)).await[0];
    let link = email.link().expect("the email has the default link");
    let (page_url, code) = link
        .split_once("#code=")
        .expect("the code is in the fragment");
    let path = page_url
        .strip_prefix("https://passlink.example.test")
        .expect("the link is on the public address");
    assert!(
        path.starts_with("/passkey/register?userID=user-page&"),
        "{path}"
    );
    let code_id = path
        .split("codeID=")
        .nth(1)
        .and_then(|rest| rest.split('&').next())
        .expect("codeID in the link")
        .to_owned();

    // Scanners and previews: GET and HEAD, again and again.
    for round in 0..6 {
        let method = if round % 2 == 0 {
            reqwest::Method::GET
        } else {
            reqwest::Method::HEAD
        };
        let response = stack
            .http
            .request(method.clone(), stack.url(path))
            .send()
            .await
            .expect("the page answers");
        assert_eq!(response.status(), 200, "{method}");
        let headers = response.headers();
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert!(
            headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("script-src 'self'")
        );
        let text = response.text().await.unwrap();
        if method == reqwest::Method::GET {
            assert!(text.contains("src=\"register.js\""), "{text}");
        } else {
            assert!(text.is_empty(), "HEAD has no body");
        }
    }
    for asset in ["/passkey/register.js", "/passkey/register.css"] {
        let response = stack.http.get(stack.url(asset)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{asset}");
    }

    let mut conn = stack.redis().await;
    let (fails, hash): (Option<String>, Option<String>) = redis::cmd("HMGET")
        .arg(stack.keys.code(user, &code_id))
        .arg(&["fails", "hash"])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(fails.as_deref(), Some("0"));
    assert!(hash.is_some());
    let ceremonies: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:*:ceremony:*", stack.id))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ceremonies.is_empty(), "opening the page starts nothing");

    let (status, body) = stack.start_with_code(user, &code_id, code).await;
    assert_eq!(status, 200, "the code is intact: {body}");
}

/// Two ceremonies may run for one user at once; the exclude list of each
/// was made before the other finished. The store itself refuses a second
/// passkey with a credential id the user already has.
#[tokio::test]
async fn the_store_refuses_a_credential_id_the_user_already_has() {
    let user = "user-dup";
    let stack = stack_with_user(user).await;
    let store = Store::connect(
        &RedisSettings {
            url: REDIS_URL.to_owned(),
            cluster_nodes: Vec::new(),
            prefix: stack.id.clone(),
            shards: stack.keys.shards(),
            timeout: Duration::from_secs(5),
        },
        Duration::from_secs(5),
    )
    .await
    .expect("redis");

    let record = PasskeyRecord {
        id: "Y3JlZGVudGlhbA".into(),
        name: "first".into(),
        public_key: "pQECAyYgASFYIA".into(),
        algorithm: -7,
        counter: 0,
        created_ms: 1,
        backup_eligible: false,
        backup_state: false,
    };
    let mut outcomes = Vec::new();
    let ceremonies = [Uuid::new_v4(), Uuid::new_v4()];
    for id in ceremonies {
        let started = store
            .start_ceremony(&StartCeremony {
                user_id: user,
                webauthn_id: id,
                state: "{}",
                code_id: None,
                caller_subject: Some("test-admin"),
                now_ms: 1,
                lifetime: Duration::from_secs(60),
            })
            .await
            .unwrap();
        assert!(
            matches!(started, StartOutcome::Started { .. }),
            "{started:?}"
        );
    }
    for id in ceremonies {
        let outcome = store
            .finish_registration(&FinishRegistration {
                user_id: user,
                webauthn_id: id,
                code_id: None,
                passkey: &record,
                now_ms: 2,
                retention: Duration::from_secs(60),
            })
            .await
            .unwrap();
        outcomes.push(outcome);
    }
    assert!(
        matches!(outcomes[0], FinishOutcome::Registered { .. }),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[1], FinishOutcome::Duplicate);
    assert_eq!(store.passkeys(user).await.unwrap(), vec![record]);
}

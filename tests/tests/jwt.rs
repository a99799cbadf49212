//! JWT access tokens from an OpenID Connect issuer, with keys made in the
//! test and a key set served by the test on loopback.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use passlink_tests::{Stack, StackOptions};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const AUDIENCE: &str = "passlink-test";

/// A signing key made with openssl, with its public JWK.
struct Key {
    alg: Algorithm,
    kid: String,
    encoding: EncodingKey,
    jwk: Jwk,
}

impl Key {
    fn generate(alg: Algorithm, kid: &str) -> Self {
        let args: &[&str] = match alg {
            Algorithm::RS256 => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            Algorithm::ES256 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            Algorithm::EdDSA => &["-algorithm", "ED25519"],
            other => panic!("no key for {other:?}"),
        };
        let output = Command::new("openssl")
            .arg("genpkey")
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "openssl genpkey");
        let pem = output.stdout;
        let encoding = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
            Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
            _ => EncodingKey::from_ed_pem(&pem),
        }
        .unwrap();
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).unwrap();
        jwk.common.key_id = Some(kid.to_owned());
        Self {
            alg,
            kid: kid.to_owned(),
            encoding,
            jwk,
        }
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        encode(&header, claims, &self.encoding).unwrap()
    }
}

/// The issuer's discovery document and key set, served on loopback; counts
/// key-set fetches.
struct Issuer {
    url: String,
    keys: Arc<Mutex<Vec<Jwk>>>,
    fetches: Arc<AtomicUsize>,
}

impl Issuer {
    async fn start(keys: Vec<Jwk>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let keys = Arc::new(Mutex::new(keys));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (shared_keys, counter, base) = (keys.clone(), fetches.clone(), url.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (keys, counter, base) = (shared_keys.clone(), counter.clone(), base.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let n = stream.read(&mut buf).await.unwrap_or(0);
                    let request = String::from_utf8_lossy(&buf[..n]);
                    let path = request.split_whitespace().nth(1).unwrap_or("");
                    let body = if path == "/.well-known/openid-configuration" {
                        json!({"issuer": base, "jwks_uri": format!("{base}/keys")}).to_string()
                    } else {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let set = JwkSet {
                            keys: keys.lock().unwrap().clone(),
                        };
                        serde_json::to_string(&set).unwrap()
                    };
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                });
            }
        });
        Self { url, keys, fetches }
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn stack_for(issuer: &Issuer) -> Stack {
    let stack = Stack::start(
        StackOptions {
            workers: 0,
            ..Default::default()
        }
        .with_env("PASSLINK_JWT_ISSUER", &issuer.url)
        .with_env("PASSLINK_JWT_AUDIENCE", AUDIENCE)
        .with_env("PASSLINK_JWT_LEEWAY", "5s")
        .with_env("PASSLINK_JWT_REFRESH_MIN_INTERVAL", "2s"),
    )
    .await;
    stack
        .put_user("jwt-a", &stack.org_a, &stack.email_of("a"), "A")
        .await;
    stack
        .put_user("jwt-b", &stack.org_b, &stack.email_of("b"), "B")
        .await;
    stack
}

fn claims(issuer: &Issuer, org: &str) -> Value {
    json!({
        "iss": issuer.url,
        "aud": AUDIENCE,
        "sub": "onboarding-service",
        "exp": now() + 300,
        "nbf": now() - 10,
        "org_id": org,
        "permissions": ["user.passkey.write"],
    })
}

async fn status(stack: &Stack, token: &str, user: &str) -> (u16, Value) {
    stack
        .create_link(token, user, json!({"returnCode": {}}))
        .await
}

#[tokio::test]
async fn tokens_signed_with_rs256_es256_and_eddsa_are_accepted() {
    let keys = [
        Key::generate(Algorithm::RS256, "rsa-1"),
        Key::generate(Algorithm::ES256, "ec-1"),
        Key::generate(Algorithm::EdDSA, "ed-1"),
    ];
    let issuer = Issuer::start(keys.iter().map(|k| k.jwk.clone()).collect()).await;
    let stack = stack_for(&issuer).await;

    for key in &keys {
        let token = key.sign(&claims(&issuer, &stack.org_a));
        let (code, body) = status(&stack, &token, "jwt-a").await;
        assert_eq!(code, 200, "{:?}: {body}", key.alg);
        let (code, body) = status(&stack, &token, "jwt-b").await;
        assert_eq!(code, 403, "the org claim scopes the caller: {body}");
    }

    // "*" in the org claim means every organization; a space-separated
    // permissions string works as well.
    let mut all = claims(&issuer, "*");
    all["permissions"] = json!("openid user.passkey.write");
    let (code, body) = status(&stack, &keys[0].sign(&all), "jwt-b").await;
    assert_eq!(code, 200, "{body}");
}

#[tokio::test]
async fn bad_tokens_are_refused() {
    let key = Key::generate(Algorithm::ES256, "ec-1");
    let stranger = Key::generate(Algorithm::ES256, "ec-1");
    let issuer = Issuer::start(vec![key.jwk.clone()]).await;
    let stack = stack_for(&issuer).await;
    let good = claims(&issuer, &stack.org_a);

    let with = |field: &str, value: Value| {
        let mut c = good.clone();
        c[field] = value;
        c
    };
    let mut no_sub = good.clone();
    no_sub.as_object_mut().unwrap().remove("sub");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            key.sign(&with("exp", json!(now() - 60))),
            "AUTH-JWT-EXPIRED",
        ),
        (
            "not yet valid",
            key.sign(&with("nbf", json!(now() + 120))),
            "AUTH-JWT-INVALID",
        ),
        (
            "other issuer",
            key.sign(&with("iss", json!("https://evil.test"))),
            "AUTH-JWT-INVALID",
        ),
        (
            "other audience",
            key.sign(&with("aud", json!("other"))),
            "AUTH-JWT-INVALID",
        ),
        ("no subject", key.sign(&no_sub), "AUTH-JWT-INVALID"),
        ("forged signature", stranger.sign(&good), "AUTH-JWT-INVALID"),
    ];
    for (case, token, id) in cases {
        let (code, body) = status(&stack, &token, "jwt-a").await;
        assert_eq!(code, 401, "{case}: {body}");
        assert_eq!(body["details"][0]["id"], id, "{case}");
        assert!(
            !body.to_string().contains(&token),
            "{case}: the token is not echoed"
        );
    }

    // An expiry within the leeway still passes.
    let (code, _) = status(&stack, &key.sign(&with("exp", json!(now() - 2))), "jwt-a").await;
    assert_eq!(code, 200);

    // Algorithms outside the list: none, and a shared secret.
    let payload = base64url(good.to_string().as_bytes());
    let none = format!("{}.{payload}.", base64url(br#"{"alg":"none","typ":"JWT"}"#));
    let hs = encode(
        &Header::new(Algorithm::HS256),
        &good,
        &EncodingKey::from_secret(b"the public key as a secret").unwrap(),
    )
    .unwrap();
    for token in [none, hs] {
        let (code, _) = status(&stack, &token, "jwt-a").await;
        assert_eq!(code, 401);
    }
}

#[tokio::test]
async fn unknown_key_ids_refresh_the_key_set_but_cannot_flood_the_issuer() {
    let first = Key::generate(Algorithm::RS256, "k1");
    let issuer = Issuer::start(vec![first.jwk.clone()]).await;
    let stack = stack_for(&issuer).await;
    let (code, _) = status(&stack, &first.sign(&claims(&issuer, &stack.org_a)), "jwt-a").await;
    assert_eq!(code, 200);
    let fetched = issuer.fetches.load(Ordering::SeqCst);

    // A flood of made-up key ids: at most one fetch per minimum interval.
    let forger = Key::generate(Algorithm::RS256, "unused");
    for i in 0..50 {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(format!("made-up-{i}"));
        let token = encode(&header, &claims(&issuer, &stack.org_a), &forger.encoding).unwrap();
        let (code, _) = status(&stack, &token, "jwt-a").await;
        assert_eq!(code, 401);
    }
    let during_flood = issuer.fetches.load(Ordering::SeqCst) - fetched;
    assert!(
        during_flood <= 2,
        "the issuer was asked {during_flood} times"
    );

    // The issuer rotates to a new key: after the interval, a token signed
    // with it refreshes the set and passes.
    let second = Key::generate(Algorithm::EdDSA, "k2");
    issuer.keys.lock().unwrap().push(second.jwk.clone());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (code, body) = status(
        &stack,
        &second.sign(&claims(&issuer, &stack.org_a)),
        "jwt-a",
    )
    .await;
    assert_eq!(code, 200, "{body}");

    // The tokens file still works beside the issuer.
    let (code, _) = status(&stack, &stack.tokens.org_a, "jwt-a").await;
    assert_eq!(code, 200);
}

fn base64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

//! Rate limits hold across API processes and answer 429 with the contract's
//! ResourceExhausted body and a Retry-After header.

use std::time::Duration;

use passlink_tests::{Stack, StackOptions};
use serde_json::{Value, json};

/// POSTs a returnCode link through the API at `base`; status, Retry-After
/// and body.
async fn link(stack: &Stack, base: &str, token: &str, user: &str) -> (u16, Option<u64>, Value) {
    let response = stack
        .http
        .post(format!(
            "{base}/v3alpha/users/{user}/webauthn/registration_link"
        ))
        .bearer_auth(token)
        .json(&json!({"returnCode": {}}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (
        status,
        retry_after,
        response.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn links_per_user_are_limited_across_replicas() {
    let mut stack = Stack::start(StackOptions {
        workers: 0,
        ..Default::default()
    })
    .await;
    let second = stack.start_extra_api().await;
    let first = stack.api_url.clone();
    stack
        .put_user("flood", &stack.org_a, &stack.email_of("flood"), "F")
        .await;
    stack
        .put_user("calm", &stack.org_a, &stack.email_of("calm"), "C")
        .await;

    // Five links an hour by default, whichever replica takes them.
    for i in 0..5 {
        let base = if i % 2 == 0 { &first } else { &second };
        let (status, _, body) = link(&stack, base, &stack.tokens.org_a, "flood").await;
        assert_eq!(status, 200, "link {i}: {body}");
    }
    for base in [&first, &second] {
        let (status, retry_after, body) = link(&stack, base, &stack.tokens.org_a, "flood").await;
        assert_eq!(status, 429, "{body}");
        assert_eq!(body["code"], 8, "ResourceExhausted: {body}");
        assert_eq!(body["details"][0]["id"], "RATE-USER-LINKS");
        let retry_after = retry_after.expect("a Retry-After header");
        assert!((3500..=3600).contains(&retry_after), "{retry_after}");
    }
    let (status, _, _) = link(&stack, &second, &stack.tokens.org_a, "calm").await;
    assert_eq!(status, 200, "other users are not affected");
}

#[tokio::test]
async fn requests_per_caller_are_limited_across_replicas() {
    let mut stack = Stack::start(
        StackOptions {
            workers: 0,
            ..Default::default()
        }
        .with_env("PASSLINK_RATE_CALLER_PER_MINUTE", "12")
        .with_env("PASSLINK_RATE_SYNC_INTERVAL", "50ms")
        .with_env("PASSLINK_RATE_USER_LINKS", "0"),
    )
    .await;
    let second = stack.start_extra_api().await;
    let first = stack.api_url.clone();
    stack
        .put_user("busy", &stack.org_a, &stack.email_of("busy"), "B")
        .await;

    // The org_a caller spends its minute on the first replica...
    let mut allowed = 0;
    for _ in 0..15 {
        let (status, _, _) = link(&stack, &first, &stack.tokens.org_a, "busy").await;
        if status == 200 {
            allowed += 1;
        } else {
            assert_eq!(status, 429);
        }
    }
    assert_eq!(allowed, 12, "the limit holds on one replica");

    // ...and the second replica learns it from Redis.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, retry_after, body) = link(&stack, &second, &stack.tokens.org_a, "busy").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["details"][0]["id"], "RATE-CALLER");
    assert!((1..=60).contains(&retry_after.unwrap()));

    // Another caller still gets through (the admin token wrote the user
    // above, so it has its own budget).
    let (status, _, _) = link(&stack, &second, &stack.tokens.admin, "busy").await;
    assert_eq!(status, 200);
}

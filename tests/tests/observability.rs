//! What operators see: metrics that count what happened, and logs without
//! secrets or personal data.

use std::time::Duration;

use passlink_tests::{Stack, StackOptions};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn metrics_count_links_jobs_and_queues() {
    let stack =
        Stack::start(StackOptions::default().with_env("PASSLINK_QUEUE_METRICS_INTERVAL", "200ms"))
            .await;
    let api = stack.api_url.clone();
    let worker = stack.worker_admin[0].clone();
    for i in 0..10 {
        let user = format!("m-{i}");
        stack
            .put_user(&user, &stack.org_a, &stack.email_of(&user), "Metric User")
            .await;
    }

    let api_before = |name: &'static str, labels: &'static [&'static str]| {
        let stack = &stack;
        let api = api.clone();
        async move { stack.metric(&api, name, labels).await }
    };
    let sent_before = api_before("passlink_links_created_total", &["medium=\"send_link\""]).await;
    let returned_before =
        api_before("passlink_links_created_total", &["medium=\"return_code\""]).await;
    let ok_before = api_before(
        "passlink_http_requests_total",
        &["route=\"create_link\"", "status=\"200\""],
    )
    .await;
    let jobs_before = stack
        .metric(&worker, "passlink_jobs_total", &["outcome=\"sent\""])
        .await;

    const SENT: usize = 20;
    const RETURNED: usize = 5;
    for i in 0..SENT {
        let (status, _) = stack
            .create_link(&stack.tokens.org_a, &format!("m-{}", i % 10), json!({}))
            .await;
        assert_eq!(status, 200);
    }
    for i in 0..RETURNED {
        let (status, _) = stack
            .create_link(
                &stack.tokens.org_a,
                &format!("m-{i}"),
                json!({"returnCode": {}}),
            )
            .await;
        assert_eq!(status, 200);
    }
    stack.maildev.wait_for(SENT, WAIT).await;
    stack.drained(WAIT).await;

    let delta = |after: f64, before: f64| (after - before).round() as usize;
    assert_eq!(
        delta(
            api_before("passlink_links_created_total", &["medium=\"send_link\""]).await,
            sent_before
        ),
        SENT
    );
    assert_eq!(
        delta(
            api_before("passlink_links_created_total", &["medium=\"return_code\""]).await,
            returned_before
        ),
        RETURNED
    );
    assert_eq!(
        delta(
            api_before(
                "passlink_http_requests_total",
                &["route=\"create_link\"", "status=\"200\""]
            )
            .await,
            ok_before
        ),
        SENT + RETURNED
    );
    assert!(api_before("passlink_relay_published_total", &[]).await >= SENT as f64);
    assert_eq!(api_before("passlink_outbox_backlog", &[]).await, 0.0);
    assert_eq!(api_before("passlink_relay_connected", &[]).await, 1.0);
    assert_eq!(
        api_before("passlink_build_info", &["component=\"api\""]).await,
        1.0,
        "build information"
    );

    let jobs_after = stack
        .metric(&worker, "passlink_jobs_total", &["outcome=\"sent\""])
        .await;
    assert_eq!(delta(jobs_after, jobs_before), SENT);
    assert_eq!(
        stack
            .metric(&worker, "passlink_smtp_send_duration_seconds_count", &[])
            .await as usize,
        SENT
    );
    assert_eq!(
        stack
            .metric(&worker, "passlink_delivery_latency_seconds_count", &[])
            .await as usize,
        SENT
    );
    let consumers = passlink_tests::eventually(WAIT, || async {
        let n = stack
            .metric(&worker, "passlink_queue_consumers", &["kind=\"main\""])
            .await;
        (n >= 1.0).then_some(n)
    })
    .await;
    assert_eq!(
        consumers,
        Some(1.0),
        "the worker sees itself consuming the main queue"
    );
    assert_eq!(
        stack.metric(&worker, "passlink_jobs_in_flight", &[]).await,
        0.0
    );
}

#[tokio::test]
async fn logs_hold_no_code_token_or_address() {
    let stack = Stack::start(
        StackOptions::default()
            .with_env(
                "PASSLINK_LOG",
                "debug,lapin=info,amq_protocol=info,h2=info,hyper=info",
            )
            .with_env("PASSLINK_LOG_FORMAT", "json"),
    )
    .await;
    let mut addresses = Vec::new();
    for i in 0..5 {
        let user = format!("log-{i}");
        let address = stack.email_of(&format!("secret.person.{i}"));
        stack
            .put_user(&user, &stack.org_a, &address, "Private Person")
            .await;
        addresses.push(address);
    }

    let mut codes = Vec::new();
    for i in 0..5 {
        let user = format!("log-{i}");
        let (status, body) = stack
            .create_link(&stack.tokens.org_a, &user, json!({"returnCode": {}}))
            .await;
        assert_eq!(status, 200);
        codes.push(body["code"]["code"].as_str().unwrap().to_owned());
        let (status, _) = stack
            .create_link(&stack.tokens.org_a, &user, json!({}))
            .await;
        assert_eq!(status, 200);
    }
    // A refused token, so that a failing check is logged too.
    let (status, _) = stack
        .create_link("pl_wrong_token_value", "log-0", json!({}))
        .await;
    assert_eq!(status, 401);

    let emails = stack.maildev.wait_for(5, WAIT).await;
    for email in &emails {
        let link = email.link().unwrap();
        codes.push(link.split("#code=").nth(1).unwrap().to_owned());
    }
    stack.drained(WAIT).await;

    let logs = stack.all_logs();
    assert!(
        logs.iter().any(|l| l.contains("email sent")),
        "the run was logged"
    );
    assert!(
        logs.iter().any(|l| l.contains("\"level\":\"DEBUG\"")),
        "at debug level"
    );
    let tokens = [
        stack.tokens.admin.as_str(),
        stack.tokens.org_a.as_str(),
        "pl_wrong_token_value",
    ];
    for line in &logs {
        for code in &codes {
            assert!(!line.contains(code.as_str()), "a code in the logs: {line}");
        }
        for token in tokens {
            assert!(!line.contains(token), "a token in the logs: {line}");
        }
        for address in &addresses {
            assert!(
                !line.contains(address.as_str()),
                "an address in the logs: {line}"
            );
        }
    }
}

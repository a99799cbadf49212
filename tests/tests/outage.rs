//! A link answered with 200 ends in an email even when RabbitMQ was away.

use std::time::Duration;

use passlink_tests::stack::AMQP_ADDR;
use passlink_tests::{Proxy, Stack, StackOptions};
use serde_json::json;

#[tokio::test]
async fn links_wait_in_the_outbox_while_rabbitmq_is_unreachable() {
    // The API reaches the broker through a line the test can cut; the
    // worker reaches it directly.
    let proxy = Proxy::start(AMQP_ADDR, false).await;
    let url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", proxy.port);
    let stack = Stack::start(StackOptions {
        api_amqp_url: Some(url),
        ..Default::default()
    })
    .await;
    for i in 0..5 {
        let user = format!("outage-{i}");
        stack
            .put_user(&user, &stack.org_a, &stack.email_of(&user), "Out Age")
            .await;
    }

    for i in 0..5 {
        let (status, body) = stack
            .create_link(&stack.tokens.org_a, &format!("outage-{i}"), json!({}))
            .await;
        assert_eq!(
            status, 200,
            "accepted while the broker is unreachable: {body}"
        );
    }
    let (status, ready) = stack
        .request(reqwest::Method::GET, "/readyz", None, None)
        .await;
    assert_eq!(status, 200, "links are still taken: {ready}");
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["rabbitmq"], "unavailable");

    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stack.outbox_backlog().await, 5, "the jobs wait in Redis");
    assert!(stack.maildev.emails().await.is_empty());

    proxy.open();
    let emails = stack.maildev.wait_for(5, Duration::from_secs(30)).await;
    let mut recipients: Vec<String> = emails
        .iter()
        .filter_map(|e| e.recipient().map(str::to_owned))
        .collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients.len(), 5, "each user once");
    stack.drained(Duration::from_secs(30)).await;
    assert_eq!(stack.maildev.emails().await.len(), 5, "no duplicates");

    let (status, ready) = stack
        .request(reqwest::Method::GET, "/readyz", None, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(ready["status"], "ok", "{ready}");
}

#[tokio::test]
async fn a_stopping_api_leaves_no_relay_consumer_behind() {
    let mut stack = Stack::start(StackOptions::default()).await;
    stack
        .put_user("leave", &stack.org_a, &stack.email_of("leave"), "L")
        .await;
    let (status, _) = stack
        .create_link(&stack.tokens.org_a, "leave", json!({}))
        .await;
    assert_eq!(status, 200);
    stack.maildev.wait_for(1, Duration::from_secs(30)).await;

    let outbox = stack.keys.outbox_for("leave");
    let consumers = |conn: &mut redis::aio::MultiplexedConnection| {
        let outbox = outbox.clone();
        let mut conn = conn.clone();
        async move {
            let info: redis::streams::StreamInfoConsumersReply = redis::cmd("XINFO")
                .arg("CONSUMERS")
                .arg(&outbox)
                .arg("relay")
                .query_async(&mut conn)
                .await
                .unwrap();
            info.consumers.len()
        }
    };
    let mut conn = stack.redis().await;
    assert_eq!(
        consumers(&mut conn).await,
        1,
        "the running relay reads as one consumer"
    );

    let api = stack.api.as_mut().unwrap();
    api.terminate();
    let exit = api.wait_exit(Duration::from_secs(20)).await;
    assert!(exit.is_some_and(|s| s.success()), "{exit:?}");
    assert_eq!(
        consumers(&mut conn).await,
        0,
        "it left the group on its way out"
    );
}

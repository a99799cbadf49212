//! Beyond one machine: Redis Cluster and RabbitMQ quorum queues.

use std::time::Duration;

use passlink_tests::{PrivateCluster, SmtpSink, Stack, StackOptions};
use reqwest::Method;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn the_whole_path_works_on_a_redis_cluster() {
    let cluster = PrivateCluster::start(&format!("scale{}", std::process::id())).await;
    let stack = Stack::start(
        StackOptions::default().with_env("PASSLINK_REDIS_CLUSTER_NODES", &cluster.nodes()),
    )
    .await;
    let users: Vec<String> = (0..40).map(|i| format!("cluster-{i}")).collect();
    for user in &users {
        stack
            .put_user(user, &stack.org_a, &stack.email_of(user), "Cluster User")
            .await;
    }

    // The users spread over the cluster's primaries.
    let mut per_node = Vec::new();
    for mut conn in stack.redis_node_conns().await {
        let keys: i64 = redis::cmd("DBSIZE").query_async(&mut conn).await.unwrap();
        per_node.push(keys);
    }
    assert_eq!(per_node.len(), 3);
    assert!(
        per_node.iter().filter(|n| **n > 0).count() >= 2,
        "{per_node:?}"
    );

    for user in &users {
        let (status, body) = stack
            .create_link(&stack.tokens.org_a, user, json!({}))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let emails = stack.maildev.wait_for(users.len(), WAIT).await;
    assert_eq!(emails.len(), users.len());

    let (status, body) = stack
        .create_link(&stack.tokens.org_a, &users[3], json!({"returnCode": {}}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["details"]["sequence"], "3", "create, link, link");
    let code_id = body["code"]["id"].as_str().unwrap();
    let code = body["code"]["code"].as_str().unwrap();
    let stored = stack
        .stored_code_hash(&users[3], code_id)
        .await
        .expect("stored on the cluster");
    assert_eq!(stored, stack.hasher.hash(&code_id.parse().unwrap(), code));

    let path = format!("/admin/v1/users/{}", users[3]);
    let (status, _) = stack
        .request(Method::DELETE, &path, Some(&stack.tokens.admin), None)
        .await;
    assert_eq!(status, 200);
    assert!(
        stack.stored_code_hash(&users[3], code_id).await.is_none(),
        "codes go with the user"
    );

    let file = std::env::temp_dir().join(format!("{}-cluster.ndjson", stack.id));
    let lines: String = (0..200)
        .map(|i| {
            format!(
                "{{\"userId\":\"imported-{i}\",\"organizationId\":\"{}\",\"email\":\"i{i}@x.test\"}}\n",
                stack.org_b
            )
        })
        .collect();
    std::fs::write(&file, lines).unwrap();
    let (code, stdout, stderr) = stack
        .run_command("passlink-api", &["import-users", file.to_str().unwrap()])
        .await;
    std::fs::remove_file(&file).unwrap();
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("imported 200 users"), "{stdout}");
    let (status, _) = stack
        .request(
            Method::GET,
            "/admin/v1/users/imported-199",
            Some(&stack.tokens.admin),
            None,
        )
        .await;
    assert_eq!(status, 200);
    stack.drained(WAIT).await;
}

#[tokio::test]
async fn quorum_queues_carry_jobs_and_retries() {
    let mut sink = SmtpSink::start(&format!("quorum-{}", std::process::id())).await;
    let stack = Stack::start(
        StackOptions::default()
            .with_env("PASSLINK_AMQP_QUORUM", "true")
            .with_env("PASSLINK_SMTP_PORT", &sink.smtp_port.to_string())
            .with_env("PASSLINK_RETRY_BASE_DELAY", "1s"),
    )
    .await;

    let listing = std::process::Command::new("rabbitmqctl")
        .args(["-q", "list_queues", "name", "type"])
        .output()
        .expect("rabbitmqctl runs");
    let listing = String::from_utf8_lossy(&listing.stdout);
    for queue in stack.amqp.all_queues() {
        let line = listing
            .lines()
            .find(|l| l.split_whitespace().next() == Some(queue.as_str()))
            .unwrap_or_else(|| panic!("{queue} is declared"));
        assert!(line.contains("quorum"), "{line}");
    }

    // The first attempts fail while the SMTP server is down, so the jobs
    // travel through the quorum retry queue and back.
    sink.stop().await;
    let users: Vec<String> = (0..20).map(|i| format!("q-{i}")).collect();
    for user in &users {
        stack
            .put_user(user, &stack.org_a, &stack.email_of(user), "Quorum")
            .await;
        let (status, _) = stack
            .create_link(&stack.tokens.org_a, user, json!({}))
            .await;
        assert_eq!(status, 200);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sink.resume().await;

    let emails = sink.wait_for(users.len(), WAIT).await;
    stack.drained(WAIT).await;
    let mut recipients: Vec<&str> = emails.iter().map(|e| e.recipient()).collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients.len(), users.len());
    assert_eq!(sink.emails().len(), users.len(), "each once");
    let worker = &stack.worker_admin[0];
    assert!(
        stack
            .metric(worker, "passlink_jobs_total", &["outcome=\"retried\""])
            .await
            > 0.0
    );
}

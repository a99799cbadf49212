//! Delivery under faults: every `sendLink` answered with 200 ends in exactly
//! one email (or a visible reason why not), whatever fails along the way.
//!
//! Each test sends 300 links to distinct users and counts, at the end, the
//! emails each user received at an SMTP sink that keeps what it accepted
//! across its own restarts. The counts are printed for the record.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use passlink_tests::stack::AMQP_ADDR;
use passlink_tests::{
    PrivateBroker, PrivateRedis, Proxy, SinkEmail, SmtpSink, Stack, StackOptions,
};
use serde_json::json;

const USERS: usize = 300;
const WAIT: Duration = Duration::from_secs(90);

/// A stack that mails to its own sink; `options.env` may add settings.
async fn stack_with_sink(tag: &str, options: StackOptions) -> (Stack, SmtpSink) {
    stack_with_slow_sink(tag, options, 0).await
}

/// The same with a sink that answers each message `delay_ms` late, so that
/// a fault hits a worker with sends in flight.
async fn stack_with_slow_sink(
    tag: &str,
    mut options: StackOptions,
    delay_ms: u64,
) -> (Stack, SmtpSink) {
    let delay = delay_ms.to_string();
    let flags: &[&str] = if delay_ms > 0 {
        &["--delay-ms", &delay]
    } else {
        &[]
    };
    let sink = SmtpSink::start_with(&format!("{tag}-{}", std::process::id()), flags).await;
    options = options
        .with_env("PASSLINK_SMTP_PORT", &sink.smtp_port.to_string())
        .with_env("PASSLINK_SMTP_TIMEOUT", "2s");
    (Stack::start(options).await, sink)
}

/// Creates `USERS` users; returns their ids and addresses.
async fn users(stack: &Stack) -> Vec<(String, String)> {
    let users: Vec<(String, String)> = (0..USERS)
        .map(|i| (format!("fault-{i}"), stack.email_of(&format!("person.{i}"))))
        .collect();
    futures_util::stream::iter(&users)
        .for_each_concurrent(32, |(id, email)| async move {
            stack
                .put_user(id, &stack.org_a, email, "Fault Tolerant")
                .await;
        })
        .await;
    users
}

/// Sends a default link to each user; every request must get a 200.
async fn send_links(stack: &Stack, users: &[(String, String)]) {
    futures_util::stream::iter(users)
        .for_each_concurrent(32, |(id, _)| async move {
            let (status, body) = stack.create_link(&stack.tokens.org_a, id, json!({})).await;
            assert_eq!(status, 200, "{body}");
        })
        .await;
}

/// Emails per recipient.
fn per_recipient(emails: &[SinkEmail]) -> HashMap<String, Vec<&SinkEmail>> {
    let mut counts: HashMap<String, Vec<&SinkEmail>> = HashMap::new();
    for email in emails {
        counts
            .entry(email.recipient().to_owned())
            .or_default()
            .push(email);
    }
    counts
}

/// Asserts one email for each user and nothing else; prints the counts.
fn assert_each_once(test: &str, users: &[(String, String)], emails: &[SinkEmail]) {
    let counts = per_recipient(emails);
    let missing: Vec<&str> = users
        .iter()
        .filter(|(_, email)| !counts.contains_key(email))
        .map(|(id, _)| id.as_str())
        .collect();
    let doubled: Vec<(&String, usize)> = counts
        .iter()
        .filter(|(_, e)| e.len() > 1)
        .map(|(k, e)| (k, e.len()))
        .collect();
    println!(
        "[{test}] users {}, emails {}, recipients {}, missing {}, duplicated {}",
        users.len(),
        emails.len(),
        counts.len(),
        missing.len(),
        doubled.len()
    );
    assert!(missing.is_empty(), "users without an email: {missing:?}");
    assert!(
        doubled.is_empty(),
        "users with more than one email: {doubled:?}"
    );
    assert_eq!(counts.len(), users.len(), "emails only to the users");
}

#[tokio::test]
async fn a_worker_killed_midway_loses_nothing() {
    let options = StackOptions::default()
        .with_env("PASSLINK_WORKER_CONCURRENCY", "4")
        .with_env("PASSLINK_WORKER_PREFETCH", "8");
    let (mut stack, sink) = stack_with_slow_sink("kill", options, 20).await;
    let users = users(&stack).await;
    send_links(&stack, &users).await;

    sink.wait_for(60, WAIT).await;
    stack.workers[0].kill().await;
    let at_kill = sink.emails().len();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stack.start_worker().await;

    sink.wait_for(USERS, WAIT).await;
    stack.drained(WAIT).await;
    let emails = sink.emails();
    println!("[kill] the worker died with {at_kill} of {USERS} emails sent");

    // The one window for a second email is a crash between the SMTP
    // server's acceptance and the "sent" record; a copy made there carries
    // the same Message-ID and can only be among the jobs in flight.
    let counts = per_recipient(&emails);
    let mut duplicates = 0;
    for (_, email) in &users {
        let got = counts.get(email).map_or(&[][..], Vec::as_slice);
        assert!(!got.is_empty(), "{email} got no email");
        if got.len() > 1 {
            duplicates += got.len() - 1;
            assert!(
                got.iter().all(|e| e.message_id == got[0].message_id),
                "a second email for {email} was not a copy of the same job"
            );
        }
    }
    println!(
        "[kill] users {USERS}, emails {}, crash-window copies {duplicates}",
        emails.len()
    );
    assert!(duplicates <= 4, "at most the jobs in flight: {duplicates}");
    assert_eq!(counts.len(), USERS);
}

#[tokio::test]
async fn two_workers_share_the_queue_and_send_each_email_once() {
    let options = StackOptions {
        workers: 2,
        ..Default::default()
    }
    .with_env("PASSLINK_WORKER_CONCURRENCY", "4")
    .with_env("PASSLINK_WORKER_PREFETCH", "4");
    let (stack, sink) = stack_with_sink("two", options).await;
    let users = users(&stack).await;
    send_links(&stack, &users).await;

    sink.wait_for(USERS, WAIT).await;
    stack.drained(WAIT).await;
    assert_each_once("two workers", &users, &sink.emails());

    let sent_by: Vec<usize> = stack
        .workers
        .iter()
        .map(|w| {
            w.logs()
                .iter()
                .filter(|l| l.contains("\"email sent\""))
                .count()
        })
        .collect();
    println!("[two workers] sent by each: {sent_by:?}");
    assert!(
        sent_by.iter().all(|n| *n > 0),
        "both workers did work: {sent_by:?}"
    );
    assert_eq!(sent_by.iter().sum::<usize>(), USERS);
}

#[tokio::test]
async fn rabbitmq_stopped_and_started_during_the_run() {
    let broker = PrivateBroker::start(&format!("restart{}", std::process::id())).await;
    // A slow worker, so that the broker goes away with jobs in flight.
    let options = StackOptions::default()
        .with_env("PASSLINK_AMQP_URL", &broker.url())
        .with_env("PASSLINK_WORKER_CONCURRENCY", "2")
        .with_env("PASSLINK_WORKER_PREFETCH", "4");
    let (stack, sink) = stack_with_slow_sink("rabbit", options, 20).await;
    let users = users(&stack).await;
    let (first, second) = users.split_at(USERS / 2);

    send_links(&stack, first).await;
    sink.wait_for(30, WAIT).await;
    broker.stop_app().await;
    let at_stop = sink.emails().len();
    // The API keeps answering: jobs wait in the outbox.
    send_links(&stack, second).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = sink.emails().len();
    broker.start_app().await;

    sink.wait_for(USERS, WAIT).await;
    stack.drained(WAIT).await;
    println!(
        "[rabbitmq restart] {at_stop} emails when the broker stopped, {during} when it came back"
    );
    assert!(
        at_stop < first.len(),
        "the broker stopped with jobs still to send"
    );
    assert_each_once("rabbitmq restart", &users, &sink.emails());
}

#[tokio::test]
async fn the_smtp_server_down_for_ten_seconds_delays_but_loses_nothing() {
    let options = StackOptions::default()
        .with_env("PASSLINK_WORKER_CONCURRENCY", "8")
        .with_env("PASSLINK_RETRY_BASE_DELAY", "1s")
        .with_env("PASSLINK_RETRY_MULTIPLIER", "2")
        .with_env("PASSLINK_MAX_ATTEMPTS", "6");
    let (stack, mut sink) = stack_with_sink("smtp", options).await;
    let users = users(&stack).await;
    send_links(&stack, &users).await;

    sink.wait_for(30, WAIT).await;
    sink.stop().await;
    let before = sink.emails().len();

    // While it is down, the status API shows jobs waiting for a retry.
    let retrying = passlink_tests::eventually(Duration::from_secs(8), || async {
        for (id, _) in &users {
            let Some(code_id) = delivery_code_id(&stack, id).await else {
                continue;
            };
            let path = format!("/v3alpha/users/{id}/webauthn/registration_link/{code_id}");
            let (_, body) = stack
                .request(reqwest::Method::GET, &path, Some(&stack.tokens.org_a), None)
                .await;
            if body["state"] == "retrying" {
                return Some(body);
            }
        }
        None
    })
    .await
    .expect("some job is retrying while the SMTP server is down");
    assert!(retrying["nextAttemptDate"].is_string(), "{retrying}");
    assert!(
        retrying["reason"].as_str().unwrap().contains("SMTP"),
        "{retrying}"
    );

    tokio::time::sleep(Duration::from_secs(10)).await;
    sink.resume().await;

    sink.wait_for(USERS, WAIT).await;
    stack.drained(WAIT).await;
    let emails = sink.emails();
    assert_each_once("smtp down", &users, &emails);

    let mut retried = 0;
    for (id, _) in &users {
        let code_id = delivery_code_id(&stack, id)
            .await
            .expect("a delivery status");
        let path = format!("/v3alpha/users/{id}/webauthn/registration_link/{code_id}");
        let (_, body) = stack
            .request(reqwest::Method::GET, &path, Some(&stack.tokens.org_a), None)
            .await;
        assert_eq!(body["state"], "sent", "{body}");
        if body["attempt"].as_u64().unwrap_or(0) > 1 {
            retried += 1;
        }
    }
    println!("[smtp down] {before} sent before the outage, {retried} needed more than one attempt");
    assert!(retried > 0, "the statuses show the retries");
}

#[tokio::test]
async fn a_restarted_smtp_server_costs_no_attempt() {
    let options = StackOptions::default()
        .with_env("PASSLINK_WORKER_CONCURRENCY", "1")
        .with_env("PASSLINK_RETRY_BASE_DELAY", "30s");
    let (stack, mut sink) = stack_with_sink("restart", options).await;
    for user in ["restart-1", "restart-2"] {
        stack
            .put_user(user, &stack.org_a, &stack.email_of(user), "Re Start")
            .await;
    }

    // One email leaves a session in the worker's pool; the server restarts
    // under it, so the pooled session is dead when the next email comes.
    let (status, _) = stack
        .create_link(&stack.tokens.org_a, "restart-1", json!({}))
        .await;
    assert_eq!(status, 200);
    sink.wait_for(1, WAIT).await;
    sink.stop().await;
    sink.resume().await;

    let (status, _) = stack
        .create_link(&stack.tokens.org_a, "restart-2", json!({}))
        .await;
    assert_eq!(status, 200);
    // Well before the 30 s retry delay: the dead session cost no attempt.
    sink.wait_for(2, Duration::from_secs(15)).await;
    let code_id = delivery_code_id(&stack, "restart-2").await.unwrap();
    let path = format!("/v3alpha/users/restart-2/webauthn/registration_link/{code_id}");
    let (_, body) = stack
        .request(reqwest::Method::GET, &path, Some(&stack.tokens.org_a), None)
        .await;
    assert_eq!(body["state"], "sent", "{body}");
    assert_eq!(body["attempt"], 1, "{body}");
}

#[tokio::test]
async fn a_refused_mailbox_is_dead_lettered_and_replayed_once_fixed() {
    let options = StackOptions::default()
        .with_env("PASSLINK_WORKER_CONCURRENCY", "8")
        .with_env("PASSLINK_MAX_ATTEMPTS", "3");
    let (stack, sink) = stack_with_sink("refuse", options).await;
    let users = users(&stack).await;
    let (victim_id, victim) = users[137].clone();
    sink.refuse(&[&victim]).await;
    send_links(&stack, &users).await;

    sink.wait_for(USERS - 1, WAIT).await;
    stack.drained(WAIT).await;
    let dead = passlink_tests::eventually(WAIT, || async {
        let depth = stack.queue_depth(&stack.amqp.dead_letter_queue()).await;
        (depth == 1).then_some(depth)
    })
    .await;
    assert_eq!(dead, Some(1), "exactly the refused job is dead-lettered");
    assert!(sink.emails().iter().all(|e| e.recipient() != victim));

    let code_id = delivery_code_id(&stack, &victim_id).await.unwrap();
    let path = format!("/v3alpha/users/{victim_id}/webauthn/registration_link/{code_id}");
    let (_, status) = stack
        .request(reqwest::Method::GET, &path, Some(&stack.tokens.org_a), None)
        .await;
    assert_eq!(status["state"], "failed", "{status}");
    assert_eq!(status["attempt"], 1, "a 5xx is not retried: {status}");
    let reason = status["reason"].as_str().unwrap();
    assert!(reason.contains("550"), "{reason}");
    assert!(
        !reason.contains(&victim),
        "no full address in the reason: {reason}"
    );

    let (code, listed, _) = stack
        .run_command("passlink-worker", &["dead-letters", "list"])
        .await;
    assert_eq!(code, 0);
    assert!(
        listed.contains(&code_id) && listed.contains("550"),
        "{listed}"
    );
    assert!(!listed.contains(&victim), "{listed}");

    // Replayed while the mailbox still refuses: the job is taken once and
    // dead-lettered again, not read back and sent round and round.
    let (code, replayed, stderr) = stack
        .run_command("passlink-worker", &["dead-letters", "replay"])
        .await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(replayed.matches("replayed job").count(), 1, "{replayed}");
    let dead = passlink_tests::eventually(WAIT, || async {
        let depth = stack.queue_depth(&stack.amqp.dead_letter_queue()).await;
        (depth == 1).then_some(depth)
    })
    .await;
    assert_eq!(dead, Some(1), "the refused job is dead-lettered again");

    sink.refuse(&[]).await;
    let (code, replayed, stderr) = stack
        .run_command("passlink-worker", &["dead-letters", "replay"])
        .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(replayed.contains(&code_id), "{replayed}");

    sink.wait_for(USERS, WAIT).await;
    stack.drained(WAIT).await;
    assert_each_once("refused then replayed", &users, &sink.emails());
    assert_eq!(stack.queue_depth(&stack.amqp.dead_letter_queue()).await, 0);

    let (code, _, stderr) = stack
        .run_command("passlink-worker", &["dead-letters", "purge"])
        .await;
    assert_eq!(code, 2, "purge wants --yes: {stderr}");
}

#[tokio::test]
async fn sigterm_under_load_finishes_in_flight_and_loses_nothing() {
    let options = StackOptions::default()
        .with_env("PASSLINK_WORKER_CONCURRENCY", "4")
        .with_env("PASSLINK_WORKER_PREFETCH", "16");
    let (mut stack, sink) = stack_with_slow_sink("term", options, 20).await;
    let users = users(&stack).await;
    send_links(&stack, &users).await;

    sink.wait_for(60, WAIT).await;
    stack.workers[0].terminate();
    let status = stack.workers[0].wait_exit(Duration::from_secs(15)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "a clean exit: {status:?}"
    );
    let logs = stack.workers[0].logs();
    assert!(
        logs.iter().any(|l| l.contains("stopped taking jobs")),
        "{logs:#?}"
    );
    let at_stop = sink.emails().len();
    assert!(at_stop < USERS, "the test stopped the worker under load");

    stack.start_worker().await;
    sink.wait_for(USERS, WAIT).await;
    stack.drained(WAIT).await;
    println!("[sigterm] {at_stop} emails when the worker stopped");
    assert_each_once("sigterm", &users, &sink.emails());
}

#[tokio::test]
async fn an_api_killed_after_answering_still_gets_its_jobs_out() {
    // The API's relay cannot reach the broker, so every job is still in the
    // outbox when the process dies.
    let proxy = Proxy::start(AMQP_ADDR, false).await;
    let options = StackOptions {
        api_amqp_url: Some(format!("amqp://guest:guest@127.0.0.1:{}/%2f", proxy.port)),
        ..Default::default()
    }
    .with_env("PASSLINK_RELAY_CLAIM_IDLE", "1s");
    let (mut stack, sink) = stack_with_sink("apikill", options).await;
    let users = users(&stack).await;
    send_links(&stack, &users).await;

    stack.api.as_mut().unwrap().kill().await;
    assert_eq!(
        stack.outbox_backlog().await,
        USERS as u64,
        "the jobs survive in Redis"
    );
    proxy.open();
    stack.restart_api().await;

    sink.wait_for(USERS, WAIT).await;
    stack.drained(WAIT).await;
    assert_each_once("api killed", &users, &sink.emails());
}

#[tokio::test]
async fn redis_restarted_during_the_run_loses_nothing() {
    let redis = PrivateRedis::start(&format!("faults{}", std::process::id())).await;
    let options = StackOptions::default()
        .with_env("PASSLINK_REDIS_URL", &redis.url())
        .with_env("PASSLINK_WORKER_CONCURRENCY", "8");
    let (stack, sink) = stack_with_sink("redis", options).await;
    let users = users(&stack).await;
    let (first, second) = users.split_at(USERS / 2);

    send_links(&stack, first).await;
    sink.wait_for(30, WAIT).await;
    redis.kill().await;

    let (status, body) = stack
        .create_link(&stack.tokens.org_a, &second[0].0, json!({}))
        .await;
    assert_eq!(status, 503, "no false promise while Redis is away: {body}");
    assert_eq!(body["code"], 14);
    tokio::time::sleep(Duration::from_secs(2)).await;
    redis.resume().await;

    // Connections come back by themselves; give them a moment.
    let back = passlink_tests::eventually(Duration::from_secs(20), || async {
        let (status, _) = stack
            .request(reqwest::Method::GET, "/readyz", None, None)
            .await;
        (status == 200).then_some(())
    })
    .await;
    assert!(back.is_some(), "the API is ready again");
    send_links(&stack, second).await;

    sink.wait_for(USERS, WAIT).await;
    stack.drained(WAIT).await;
    assert_each_once("redis restart", &users, &sink.emails());
}

/// The code id of a user's (only) link, from the user's code index.
async fn delivery_code_id(stack: &Stack, user: &str) -> Option<String> {
    stack.code_ids(user).await.into_iter().next()
}

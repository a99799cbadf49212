//! Sealed codes, harmless links and emails that cannot be injected.

use std::time::Duration;

use base64::Engine as _;
use lapin::options::{BasicGetOptions, BasicNackOptions};
use passlink_tests::stack::AMQP_URL;
use passlink_tests::{SmtpSink, Stack, StackOptions};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

fn key() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn neither_the_outbox_nor_rabbitmq_holds_a_readable_code() {
    // No worker: the job stays in the queue where the test can read it.
    let mut stack = Stack::start(StackOptions {
        workers: 0,
        ..Default::default()
    })
    .await;
    stack
        .put_user("sealed", &stack.org_a, &stack.email_of("sealed"), "Seal Ed")
        .await;
    let (status, _) = stack
        .create_link(&stack.tokens.org_a, "sealed", json!({}))
        .await;
    assert_eq!(status, 200);

    let connection = lapin::Connection::connect(AMQP_URL, Default::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let message = passlink_tests::eventually(WAIT, || async {
        channel
            .basic_get(stack.amqp.queue.as_str().into(), BasicGetOptions::default())
            .await
            .ok()
            .flatten()
    })
    .await
    .expect("the relay published the job");
    let body = String::from_utf8(message.delivery.data.clone()).unwrap();
    message
        .delivery
        .nack(BasicNackOptions {
            requeue: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let _ = connection.close(200, "done".into()).await;

    let job: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(job["code"]["kid"], "k1", "{body}");
    assert!(job["code"]["ct"].is_string());
    assert!(
        !body.contains(&stack.email_of("sealed")),
        "no address in the message"
    );

    stack.start_worker().await;
    let emails = stack.maildev.wait_for(1, WAIT).await;
    let code = emails[0]
        .link()
        .unwrap()
        .split("#code=")
        .nth(1)
        .unwrap()
        .to_owned();
    assert_eq!(code.len(), 12);
    assert!(
        !body.contains(&code),
        "the message in RabbitMQ did not hold the code"
    );
}

#[tokio::test]
async fn seal_keys_rotate_while_old_jobs_drain() {
    let (old, new) = (key(), key());
    let old_only = format!("k1:{old}");
    let both = format!("k2:{new},k1:{old}");
    let mut stack = Stack::start(
        StackOptions {
            workers: 0,
            ..Default::default()
        }
        .with_env("PASSLINK_SEAL_KEYS", &old_only),
    )
    .await;
    for user in ["before", "after"] {
        stack
            .put_user(user, &stack.org_a, &stack.email_of(user), "Rot Ation")
            .await;
    }
    let (status, _) = stack
        .create_link(&stack.tokens.org_a, "before", json!({}))
        .await;
    assert_eq!(status, 200);
    passlink_tests::eventually(WAIT, || async {
        (stack.queue_depth(&stack.amqp.queue).await == 1).then_some(())
    })
    .await
    .expect("the old job waits in the queue");

    // Rotate: the new key seals, the old one still opens.
    stack.env.retain(|(k, _)| k != "PASSLINK_SEAL_KEYS");
    stack.env.push(("PASSLINK_SEAL_KEYS".into(), both));
    stack.restart_api().await;
    let (status, _) = stack
        .create_link(&stack.tokens.org_a, "after", json!({}))
        .await;
    assert_eq!(status, 200);
    stack.start_worker().await;

    let emails = stack.maildev.wait_for(2, WAIT).await;
    let mut recipients: Vec<&str> = emails.iter().filter_map(|e| e.recipient()).collect();
    recipients.sort();
    assert_eq!(
        recipients,
        [stack.email_of("after"), stack.email_of("before")]
    );
}

#[tokio::test]
async fn a_job_sealed_with_a_retired_key_is_dead_lettered() {
    let (old, new) = (key(), key());
    let mut stack = Stack::start(
        StackOptions {
            workers: 0,
            ..Default::default()
        }
        .with_env("PASSLINK_SEAL_KEYS", &format!("k1:{old}")),
    )
    .await;
    stack
        .put_user("retired", &stack.org_a, &stack.email_of("retired"), "R")
        .await;
    let (status, _) = stack
        .create_link(&stack.tokens.org_a, "retired", json!({}))
        .await;
    assert_eq!(status, 200);

    stack.env.retain(|(k, _)| k != "PASSLINK_SEAL_KEYS");
    stack
        .env
        .push(("PASSLINK_SEAL_KEYS".into(), format!("k2:{new}")));
    stack.start_worker().await;
    let dead = passlink_tests::eventually(WAIT, || async {
        (stack.queue_depth(&stack.amqp.dead_letter_queue()).await == 1).then_some(())
    })
    .await;
    assert!(
        dead.is_some(),
        "the job is dead-lettered, not retried forever"
    );
    let (_, listed, _) = stack
        .run_command("passlink-worker", &["dead-letters", "list"])
        .await;
    assert!(listed.contains("no seal key with id \"k1\""), "{listed}");
}

#[tokio::test]
async fn only_harmless_links_are_accepted() {
    let stack = Stack::start(
        StackOptions {
            workers: 0,
            ..Default::default()
        }
        .with_env("PASSLINK_ALLOWED_LINK_SCHEMES", "myapp"),
    )
    .await;
    stack
        .put_user("l", &stack.org_a, &stack.email_of("l"), "L")
        .await;
    let cases = [
        ("javascript:alert({{.Code}})", 400),
        ("JavaScript:alert({{.Code}})", 400),
        ("data:text/html,<a>{{.Code}}</a>", 400),
        ("vbscript:{{.Code}}", 400),
        ("file:///etc/{{.Code}}", 400),
        ("//evil.example/{{.Code}}", 400),
        ("https://{{.Code}}", 200),
        ("myapp://register?code={{.Code}}", 200),
        ("https://example.com/r#{{.Code}}", 200),
    ];
    for (template, expected) in cases {
        let body = json!({"returnCode": null, "sendLink": {"urlTemplate": template}});
        let (status, response) = stack.create_link(&stack.tokens.admin, "l", body).await;
        assert_eq!(status, expected, "{template}: {response}");
        if expected == 400 {
            assert_eq!(
                response["details"][0]["id"], "LINK-TEMPLATE-URL",
                "{template}"
            );
        }
    }
}

#[tokio::test]
async fn names_and_addresses_cannot_inject_headers() {
    let stack = Stack::start(StackOptions::default()).await;
    let admin = stack.tokens.admin.as_str();

    // Line breaks in a name are refused at the door.
    let (status, body) = stack
        .request(
            reqwest::Method::PUT,
            "/admin/v1/users/inject",
            Some(admin),
            Some(json!({"organizationId": stack.org_a, "email": "a@b.test",
                        "displayName": "Eve\r\nBcc: victim@example.test"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");

    // Quotes, brackets and non-ASCII make a well-formed message.
    let address = format!("jörg.o'brien@{}.exämple.test", stack.id);
    let name = "Jörg \"Joe\" O'Brien <admin@example.test>; 王";
    stack
        .put_user("hostile", &stack.org_a, &address, name)
        .await;
    let (status, _) = stack.create_link(admin, "hostile", json!({})).await;
    assert_eq!(status, 200);
    let emails = stack.maildev.wait_for(1, WAIT).await;
    assert_eq!(
        emails[0].envelope_recipients(),
        vec![address.clone()],
        "one recipient"
    );
    assert_eq!(emails[0].to.len(), 1, "one recipient in the header");
    assert_eq!(emails[0].to[0].name, name);

    let source = stack.maildev.source(&emails[0]).await;
    assert!(source.contains(&address), "the address as UTF-8 (RFC 6532)");
    let headers = source.split("\r\n\r\n").next().unwrap();
    let names: Vec<&str> = headers
        .lines()
        .filter(|l| !l.starts_with([' ', '\t']))
        .filter_map(|l| l.split(':').next())
        .collect();
    for header in &names {
        assert!(
            [
                "From",
                "To",
                "Subject",
                "Message-ID",
                "MIME-Version",
                "Date",
                "Content-Type"
            ]
            .contains(header),
            "unexpected header {header:?} in\n{headers}"
        );
    }
    assert!(
        headers.contains("=?utf-8?"),
        "RFC 2047 words for the name:\n{headers}"
    );
}

#[tokio::test]
async fn a_non_ascii_address_without_smtputf8_fails_clearly() {
    let sink =
        SmtpSink::start_with(&format!("ascii-{}", std::process::id()), &["--no-smtputf8"]).await;
    let stack = Stack::start(
        StackOptions::default().with_env("PASSLINK_SMTP_PORT", &sink.smtp_port.to_string()),
    )
    .await;
    stack
        .put_user(
            "utf8",
            &stack.org_a,
            &format!("jörg@{}.test", stack.id),
            "J",
        )
        .await;
    stack
        .put_user("ascii", &stack.org_a, &stack.email_of("ascii"), "A")
        .await;
    for user in ["utf8", "ascii"] {
        let (status, _) = stack
            .create_link(&stack.tokens.admin, user, json!({}))
            .await;
        assert_eq!(status, 200);
    }

    sink.wait_for(1, WAIT).await;
    let dead = passlink_tests::eventually(WAIT, || async {
        (stack.queue_depth(&stack.amqp.dead_letter_queue()).await == 1).then_some(())
    })
    .await;
    assert!(dead.is_some(), "dead-lettered at once, not retried");
    let (_, listed, _) = stack
        .run_command("passlink-worker", &["dead-letters", "list"])
        .await;
    assert!(listed.contains("SMTPUTF8"), "{listed}");
    assert!(!listed.contains("jörg@"), "{listed}");
    assert_eq!(sink.emails().len(), 1);
}

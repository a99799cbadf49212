//! Start-up refuses bad settings with one clear line each.

use passlink_tests::{Stack, StackOptions};

#[tokio::test]
async fn bad_settings_stop_start_up_with_one_line_each() {
    let stack = Stack::start(StackOptions {
        api: false,
        workers: 0,
        ..Default::default()
    })
    .await;
    let mut env = stack.env.clone();
    let bad = [
        ("PASSLINK_CODE_TTL", "an hour"),
        ("PASSLINK_REDIS_SHARDS", "0"),
        ("PASSLINK_LISTEN", "localhost"),
        ("PASSLINK_WORKER_PREFETCH", "2"),
        ("PASSLINK_SMTP_TLS", "maybe"),
        ("PASSLINK_CODE_HMAC_KEY", "c2hvcnQ="),
        ("PASSLINK_SEAL_KEYS", "nokey"),
        ("PASSLINK_PUBLIC_BASE_URL", "not a url"),
    ];
    env.retain(|(k, _)| !bad.iter().any(|(b, _)| b == k));
    env.extend(bad.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));

    for (binary, expected) in [
        (
            "passlink-api",
            &[
                "PASSLINK_CODE_TTL",
                "PASSLINK_REDIS_SHARDS",
                "PASSLINK_LISTEN",
            ][..],
        ),
        (
            "passlink-worker",
            &["PASSLINK_WORKER_PREFETCH", "PASSLINK_SMTP_TLS"][..],
        ),
    ] {
        let output = tokio::process::Command::new(passlink_tests::process::binary(binary))
            .arg("check-config")
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .await
            .unwrap();
        assert!(!output.status.success(), "{binary} refuses the settings");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let common = [
            "PASSLINK_CODE_HMAC_KEY",
            "PASSLINK_SEAL_KEYS",
            "PASSLINK_PUBLIC_BASE_URL",
        ];
        for name in expected.iter().chain(common.iter()) {
            let lines = stderr
                .lines()
                .filter(|l| l.trim_start().starts_with(name))
                .count();
            assert_eq!(lines, 1, "{binary}: one line for {name}:\n{stderr}");
        }
        assert!(
            !stderr.contains("c2hvcnQ"),
            "secrets are not echoed: {stderr}"
        );
    }
}

#[tokio::test]
async fn settings_that_would_quietly_break_the_service_are_refused() {
    let stack = Stack::start(StackOptions {
        api: false,
        workers: 0,
        ..Default::default()
    })
    .await;
    let hmac = stack
        .env
        .iter()
        .find(|(k, _)| k == "PASSLINK_CODE_HMAC_KEY")
        .map(|(_, v)| v.clone())
        .unwrap();
    let cases: Vec<(&str, String)> = vec![
        ("PASSLINK_CODE_TTL", "0s".into()),
        ("PASSLINK_SMTP_TIMEOUT", "0s".into()),
        ("PASSLINK_RETRY_MAX_DELAY", "100ms".into()),
        ("PASSLINK_RELAY_POLL_INTERVAL", "0s".into()),
        ("PASSLINK_REDIS_URL", "http://127.0.0.1:6379".into()),
        (
            "PASSLINK_AMQP_URL",
            "http://guest:secret@127.0.0.1:5672".into(),
        ),
        ("PASSLINK_AMQP_QUEUE", format!("q{}", "x".repeat(250))),
        ("PASSLINK_AMQP_EXCHANGE", "amq.direct".into()),
        ("PASSLINK_LOG", "garbage[[".into()),
        (
            "PASSLINK_DEFAULT_LINK_TEMPLATE",
            "https://x.test/no-code".into(),
        ),
        ("PASSLINK_SEAL_KEYS", format!("k1:{hmac}")),
        ("PASSLINK_ALLOWED_LINK_SCHEMES", "myapp,JavaScript".into()),
        (
            "PASSLINK_CODE_HMAC_KEY",
            "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFh".into(),
        ),
    ];
    for (name, value) in cases {
        let binary = if name.contains("SMTP") || name.contains("RETRY") {
            "passlink-worker"
        } else {
            "passlink-api"
        };
        let mut env = stack.env.clone();
        env.retain(|(k, _)| k != name);
        env.push((name.to_owned(), value.clone()));
        let output = tokio::process::Command::new(passlink_tests::process::binary(binary))
            .arg("check-config")
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{name}={value:?} is refused");
        assert!(
            stderr.contains(name),
            "{name}: the line names it:\n{stderr}"
        );
        assert!(
            !stderr.contains("secret"),
            "{name}: no password echoed: {stderr}"
        );
    }

    // A misspelt setting keeps its default silently, so it is pointed out.
    let mut env = stack.env.clone();
    env.push(("PASSLINK_SMPT_HOST".into(), "mail.example.test".into()));
    let output = tokio::process::Command::new(passlink_tests::process::binary("passlink-worker"))
        .arg("check-config")
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .await
        .unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("warning: PASSLINK_SMPT_HOST"), "{stderr}");
}

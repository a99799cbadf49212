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

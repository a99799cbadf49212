//! From the email to a passkey in a real browser: headless Chromium with a
//! virtual authenticator opens the link the worker mailed, the person's
//! click registers a passkey, and the directory shows it.
//!
//! Needs Debian's `chromium` and the pinned playwright-core
//! (`scripts/test.sh` installs both).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use passlink_tests::passkeys::error_id;
use passlink_tests::{Stack, StackOptions, free_port};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// Runs `tests/browser/register.mjs` on `links`; returns its JSON report.
async fn open_in_browser(links: &[String]) -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing; scripts/test.sh installs it (apt-get install chromium)"
    );
    assert!(
        root.join("tools/node_modules/playwright-core").exists(),
        "playwright-core is missing; run `npm ci --prefix tools` (scripts/test.sh does)"
    );
    let screenshot = std::env::temp_dir().join(format!("passlink-browser-{}.png", free_port()));

    let child = tokio::process::Command::new("node")
        .arg(root.join("tests/browser/register.mjs"))
        .args(links)
        .env("CHROMIUM", &chromium)
        .env("PASSLINK_BROWSER_SCREENSHOT", &screenshot)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs the browser script");
    let output = tokio::time::timeout(Duration::from_secs(180), child.wait_with_output())
        .await
        .expect("the browser script finishes")
        .expect("the browser script runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser script failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let _ = std::fs::remove_file(screenshot);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|err| panic!("{err}: {stdout}"))
}

#[tokio::test]
async fn a_person_registers_a_passkey_from_the_email_in_a_browser() {
    // WebAuthn works over plain http only on localhost, so the public base
    // URL (and with it the default link and the RP id) is localhost here.
    let port = free_port();
    let stack = Stack::start(
        StackOptions::default()
            .with_env("PASSLINK_LISTEN", &format!("127.0.0.1:{port}"))
            .with_env(
                "PASSLINK_PUBLIC_BASE_URL",
                &format!("http://localhost:{port}"),
            ),
    )
    .await;
    let user = "user-browser";
    stack
        .put_user(user, &stack.org_a, &stack.email_of("grace"), "Grace Hopper")
        .await;

    // Two emailed links: the first registers; the second, opened with the
    // same authenticator, must be refused by the exclude list.
    for _ in 0..2 {
        let (status, body) = stack
            .create_link(&stack.tokens.org_a, user, json!({"sendLink": {}}))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let emails = stack.maildev.wait_for(2, WAIT).await;
    let links: Vec<String> = emails
        .iter()
        .map(|email| email.link().expect("the email has a link"))
        .collect();
    for link in &links {
        assert!(
            link.starts_with(&format!("http://localhost:{port}/passkey/register?")),
            "{link}"
        );
        assert!(
            link.contains("#code="),
            "the code is in the fragment: {link}"
        );
    }

    let report = open_in_browser(&links).await;
    let results = report["results"].as_array().expect("results");
    assert_eq!(results[0]["kind"], "success", "{report}");
    assert!(
        results[0]["status"]
            .as_str()
            .unwrap()
            .contains("Your passkey is set up"),
        "{report}"
    );
    assert_eq!(results[1]["kind"], "error", "{report}");
    assert!(
        results[1]["status"]
            .as_str()
            .unwrap()
            .contains("already holds a passkey"),
        "{report}"
    );
    assert_eq!(report["authenticatorCredentials"], 1, "{report}");

    let passkeys = stack.passkeys_of(user).await;
    assert_eq!(passkeys.len(), 1, "{passkeys:?}");
    assert!(
        passkeys[0]["name"]
            .as_str()
            .unwrap()
            .starts_with("Passkey on"),
        "the page's default name: {passkeys:?}"
    );

    // The first link is spent; the refused second one still works.
    let code_of = |link: &str| {
        let code_id = link
            .split("codeID=")
            .nth(1)
            .unwrap()
            .split(['&', '#'])
            .next();
        let code = link.split("#code=").nth(1);
        (code_id.unwrap().to_owned(), code.unwrap().to_owned())
    };
    let (first_id, first_code) = code_of(&links[0]);
    let body = json!({"domain": "localhost", "code": {"id": first_id, "code": first_code}});
    let (status, response) = stack.start_registration(user, None, body).await;
    assert_eq!(
        (status, error_id(&response)),
        (400, "CODE-USED"),
        "{response}"
    );
    let (second_id, second_code) = code_of(&links[1]);
    let body = json!({"domain": "localhost", "code": {"id": second_id, "code": second_code}});
    let (status, response) = stack.start_registration(user, None, body).await;
    assert_eq!(status, 200, "{response}");
}

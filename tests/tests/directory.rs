//! The user directory: admin endpoints and the bulk import.

use std::path::Path;

use passlink_tests::{Stack, StackOptions};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn users_are_created_read_replaced_and_deleted() {
    let stack = Stack::start(StackOptions {
        workers: 0,
        ..Default::default()
    })
    .await;
    let admin = stack.tokens.admin.as_str();
    let path = "/admin/v1/users/u%2F1";
    let user = json!({
        "organizationId": stack.org_a,
        "email": "jörg.7@exämple.test",
        "displayName": "Jörg 王",
        "preferredLanguage": "de-CH",
    });

    let (status, body) = stack
        .request(Method::PUT, path, Some(admin), Some(user.clone()))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["details"]["sequence"], "1");
    let (status, body) = stack
        .request(Method::PUT, path, Some(admin), Some(user))
        .await;
    assert_eq!(status, 200, "a replacement: {body}");
    assert_eq!(body["details"]["sequence"], "2");

    let (status, body) = stack.request(Method::GET, path, Some(admin), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["userId"], "u/1");
    assert_eq!(body["user"]["email"], "jörg.7@exämple.test");
    assert_eq!(body["user"]["preferredLanguage"], "de-CH");

    // A code made now dies with the user.
    let (status, link) = stack
        .create_link(admin, "u/1", json!({"returnCode": {}}))
        .await;
    assert_eq!(status, 200);
    let code_id = link["code"]["id"].as_str().unwrap();
    assert!(stack.stored_code_hash("u/1", code_id).await.is_some());

    let (status, body) = stack.request(Method::DELETE, path, Some(admin), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["details"]["sequence"], "4",
        "the link counted, then the delete"
    );
    assert!(stack.stored_code_hash("u/1", code_id).await.is_none());
    let (status, _) = stack.request(Method::GET, path, Some(admin), None).await;
    assert_eq!(status, 404);
    let (status, _) = stack.create_link(admin, "u/1", json!({})).await;
    assert_eq!(status, 404);
    let (status, _) = stack.request(Method::DELETE, path, Some(admin), None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_directory_checks_fields_and_permissions() {
    let stack = Stack::start(StackOptions {
        workers: 0,
        ..Default::default()
    })
    .await;
    let scoped = stack.tokens.directory_a.as_str();
    let put =
        |org: &str, email: &str| json!({"organizationId": org, "email": email, "displayName": "D"});

    let (status, body) = stack
        .request(
            Method::PUT,
            "/admin/v1/users/d1",
            Some(scoped),
            Some(put(&stack.org_a, "d@x.test")),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = stack
        .request(
            Method::PUT,
            "/admin/v1/users/d1",
            Some(scoped),
            Some(put(&stack.org_b, "d@x.test")),
        )
        .await;
    assert_eq!(
        status, 403,
        "moving a user to an organization the caller cannot write"
    );
    let (status, _) = stack
        .request(
            Method::PUT,
            "/admin/v1/users/d1",
            Some(&stack.tokens.org_a),
            Some(put(&stack.org_a, "d@x.test")),
        )
        .await;
    assert_eq!(status, 403, "user.passkey.write is not user.write");

    for (body, id) in [
        (put(&stack.org_a, "not-an-address"), "USER-EMAIL-INVALID"),
        (
            json!({"organizationId": stack.org_a, "email": "a@b.test", "displayName": "A\nB"}),
            "USER-NAME-INVALID",
        ),
        (
            json!({"organizationId": stack.org_a, "email": "a@b.test", "preferredLanguage": "?"}),
            "USER-LANGUAGE-INVALID",
        ),
        (
            json!({"organizationId": stack.org_a, "email": "a@b.test", "admin": true}),
            "REQ-JSON-INVALID",
        ),
        (json!({"email": "a@b.test"}), "REQ-JSON-INVALID"),
    ] {
        let (status, response) = stack
            .request(Method::PUT, "/admin/v1/users/d2", Some(scoped), Some(body))
            .await;
        assert_eq!(status, 400, "{response}");
        assert_eq!(response["details"][0]["id"], id, "{response}");
    }
}

#[tokio::test]
async fn the_bulk_import_takes_the_generated_users() {
    let stack = Stack::start(StackOptions {
        api: false,
        workers: 0,
        ..Default::default()
    })
    .await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/make-users.py");
    let output = std::process::Command::new("python3")
        .arg(&script)
        .args(["500", "3"])
        .output()
        .expect("python3 runs");
    assert!(output.status.success());
    let mut ndjson = String::from_utf8(output.stdout).unwrap();
    ndjson.push_str("{\"userId\": \"bad\", \"email\": \"secret@person.test\"}\n");
    ndjson.push_str("not json at all\n");
    ndjson.push_str("{\"userId\": \"d1\", \"userId\": \"d2\"}\n");
    // A byte-order mark before the first user, as spreadsheet exports
    // write, and a line that is not UTF-8 among good ones.
    let mut bytes = b"\xef\xbb\xbf".to_vec();
    bytes.extend_from_slice(ndjson.as_bytes());
    bytes.extend_from_slice(b"{\"userId\": \"latin\xe9\"}\n");
    let file = std::env::temp_dir().join(format!("{}-users.ndjson", stack.id));
    std::fs::write(&file, &bytes).unwrap();

    let (code, stdout, stderr) = stack
        .run_command("passlink-api", &["import-users", file.to_str().unwrap()])
        .await;
    assert_eq!(code, 2, "bad lines make the exit code 2: {stderr}");
    assert!(
        stdout.contains("imported 500 users (500 new, 0 replaced); 4 lines skipped"),
        "{stdout}"
    );
    assert!(stderr.contains("line 501: skipped"), "{stderr}");
    assert!(stderr.contains("line 502: skipped"), "{stderr}");
    assert!(
        stderr.contains("line 503: skipped: not a user object (duplicate field userId)"),
        "{stderr}"
    );
    assert!(stderr.contains("line 504: skipped: not UTF-8"), "{stderr}");
    assert!(
        !stderr.contains("line 1:"),
        "the byte-order mark is ignored: {stderr}"
    );
    assert!(
        stderr.contains("users/s") || stderr.contains("/s"),
        "a progress line: {stderr}"
    );
    assert!(
        !stderr.contains("secret@person.test"),
        "bad lines are not echoed: {stderr}"
    );

    let (code, stdout, _) = stack
        .run_command("passlink-api", &["import-users", file.to_str().unwrap()])
        .await;
    assert_eq!(code, 2);
    assert!(stdout.contains("(0 new, 500 replaced)"), "{stdout}");
    std::fs::remove_file(&file).unwrap();

    let mut conn = stack.redis().await;
    let first = ndjson.lines().next().unwrap();
    let user: serde_json::Value = serde_json::from_str(first).unwrap();
    let id = user["userId"].as_str().unwrap();
    let email: String = redis::cmd("HGET")
        .arg(stack.keys.user(id))
        .arg("email")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(email, user["email"].as_str().unwrap());
}

//! Registration links from the API to the inbox.

use std::time::Duration;

use passlink_tests::{Stack, StackOptions};
use serde_json::{Value, json};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(30);

/// Reads a query parameter or fragment value from a link.
fn param(link: &str, name: &str) -> Option<String> {
    link.split(['?', '&', '#'])
        .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
        .map(str::to_owned)
}

fn check_details(body: &Value, org: &str) -> u64 {
    let details = &body["details"];
    assert_eq!(details["resourceOwner"], org, "{body}");
    let date = details["changeDate"]
        .as_str()
        .expect("changeDate is a string");
    assert!(
        date.len() == 24 && date.ends_with('Z') && date.as_bytes()[19] == b'.',
        "changeDate is RFC 3339 UTC with milliseconds: {date}"
    );
    details["sequence"]
        .as_str()
        .expect("sequence is a string")
        .parse()
        .expect("sequence is a number")
}

#[tokio::test]
async fn send_link_with_a_custom_template_reaches_the_inbox() {
    let stack = Stack::start(StackOptions::default()).await;
    let user = format!("2000{}", &stack.id[1..8]);
    let address = stack.email_of("anna.muller");
    stack
        .put_user(&user, &stack.org_a, &address, "Anna Müller")
        .await;

    let template = "https://example.com/passkey/register?userID={{.UserID}}&orgID={{.OrgID}}\
                    &codeID={{ .CodeID }}&code={{.Code}}";
    let (status, body) = stack
        .create_link(
            &stack.tokens.org_a,
            &user,
            json!({"sendLink": {"urlTemplate": template}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    check_details(&body, &stack.org_a);
    assert!(
        body.get("code").is_none(),
        "sendLink returns no code: {body}"
    );

    let emails = stack.maildev.wait_for(1, WAIT).await;
    let email = &emails[0];
    assert_eq!(email.recipient(), Some(address.as_str()));
    assert_eq!(email.to[0].name, "Anna Müller");
    assert_eq!(email.subject, "Set up your passkey");

    let link = email.link().expect("the email has a link");
    assert!(
        link.starts_with("https://example.com/passkey/register?"),
        "{link}"
    );
    assert_eq!(param(&link, "userID").as_deref(), Some(user.as_str()));
    assert_eq!(param(&link, "orgID").as_deref(), Some(stack.org_a.as_str()));
    let code_id: Uuid = param(&link, "codeID")
        .unwrap()
        .parse()
        .expect("code id is a UUID");
    let code = param(&link, "code").unwrap();
    assert_eq!(code.len(), 12);
    assert!(code.chars().all(|c| c.is_ascii_alphanumeric()), "{code}");

    let stored = stack
        .stored_code_hash(&user, &code_id.to_string())
        .await
        .expect("the code is recorded");
    assert_eq!(
        stored,
        stack.hasher.hash(&code_id, &code),
        "Redis keeps the keyed hash"
    );
    assert!(!stored.contains(&code));

    let html = email.html.as_deref().unwrap_or_default();
    assert!(
        html.contains(&code_id.to_string()),
        "the HTML part carries the link too"
    );
}

#[tokio::test]
async fn send_link_without_a_template_uses_the_default_link() {
    let stack = Stack::start(StackOptions::default()).await;
    let user = "user-default";
    stack
        .put_user(user, &stack.org_a, &stack.email_of("default"), "Dee Fault")
        .await;

    for body in [json!({"sendLink": {}}), json!({})] {
        let (status, response) = stack.create_link(&stack.tokens.admin, user, body).await;
        assert_eq!(status, 200, "{response}");
    }

    let emails = stack.maildev.wait_for(2, WAIT).await;
    for email in &emails {
        let link = email.link().unwrap();
        assert!(
            link.starts_with("https://passlink.example.test/passkey/register?userID=user-default"),
            "the default link is on the configured public address: {link}"
        );
        let code = link
            .split("#code=")
            .nth(1)
            .expect("the code is in the fragment");
        let code_id: Uuid = param(&link, "codeID").unwrap().parse().unwrap();
        let stored = stack
            .stored_code_hash(user, &code_id.to_string())
            .await
            .unwrap();
        assert_eq!(stored, stack.hasher.hash(&code_id, code));
    }
}

#[tokio::test]
async fn the_email_speaks_the_users_language() {
    let stack = Stack::start(StackOptions::default()).await;
    let users = [
        ("lang-de", "de-CH", "Richten Sie Ihren Passkey ein"),
        ("lang-ja", "ja", "パスキーを設定してください"),
        ("lang-xx", "xx-YY", "Set up your passkey"),
    ];
    for (user, language, _) in users {
        let address = stack.email_of(user);
        stack
            .put_user_speaking(user, &stack.org_a, &address, "Zoë", language)
            .await;
        let (status, body) = stack
            .create_link(&stack.tokens.admin, user, json!({"sendLink": {}}))
            .await;
        assert_eq!(status, 200, "{body}");
    }

    let emails = stack.maildev.wait_for(users.len(), WAIT).await;
    for (user, language, subject) in users {
        let address = stack.email_of(user);
        let email = emails
            .iter()
            .find(|e| e.recipient() == Some(address.as_str()))
            .unwrap_or_else(|| panic!("no email for {user}"));
        assert_eq!(email.subject, subject, "{language}");
        assert!(email.link().is_some(), "{language}: the email has a link");
    }
}

#[tokio::test]
async fn return_code_answers_the_code_and_sends_nothing() {
    let stack = Stack::start(StackOptions::default()).await;
    let user = "user-return";
    stack
        .put_user(user, &stack.org_a, &stack.email_of("ret"), "Ret Urn")
        .await;

    for body in [json!({"returnCode": {}}), json!({"return_code": {}})] {
        let (status, response) = stack.create_link(&stack.tokens.org_a, user, body).await;
        assert_eq!(status, 200, "{response}");
        check_details(&response, &stack.org_a);
        let code_id: Uuid = response["code"]["id"].as_str().unwrap().parse().unwrap();
        let code = response["code"]["code"].as_str().unwrap();
        assert_eq!(code.len(), 12);
        let stored = stack
            .stored_code_hash(user, &code_id.to_string())
            .await
            .unwrap();
        assert_eq!(stored, stack.hasher.hash(&code_id, code));
    }

    // A sendLink afterwards proves the worker is live; once it is through,
    // the returnCode requests have had every chance to send mail.
    let (status, _) = stack
        .create_link(&stack.tokens.org_a, user, json!({"sendLink": {}}))
        .await;
    assert_eq!(status, 200);
    stack.maildev.wait_for(1, WAIT).await;
    stack.drained(WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        stack.maildev.emails().await.len(),
        1,
        "returnCode sent no email"
    );
}

#[tokio::test]
async fn two_links_for_one_user_have_growing_sequences_and_distinct_codes() {
    let stack = Stack::start(StackOptions::default()).await;
    let user = "user-twice";
    stack
        .put_user(user, &stack.org_b, &stack.email_of("twice"), "Two Times")
        .await;

    let mut sequences = Vec::new();
    let mut codes = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (status, body) = stack
            .create_link(&stack.tokens.org_b, user, json!({"returnCode": {}}))
            .await;
        assert_eq!(status, 200, "{body}");
        sequences.push(check_details(&body, &stack.org_b));
        codes.push(body["code"]["code"].as_str().unwrap().to_owned());
        ids.push(body["code"]["id"].as_str().unwrap().to_owned());
    }
    assert!(sequences.windows(2).all(|w| w[1] > w[0]), "{sequences:?}");
    codes.sort();
    codes.dedup();
    ids.sort();
    ids.dedup();
    assert_eq!((codes.len(), ids.len()), (3, 3));
}

#[tokio::test]
async fn a_user_may_create_a_link_for_itself() {
    let stack = Stack::start(StackOptions::default()).await;
    let own = stack.self_user.clone();
    stack
        .put_user(&own, &stack.org_b, &stack.email_of("self"), "Self Service")
        .await;
    stack
        .put_user(
            "someone-else",
            &stack.org_b,
            &stack.email_of("else"),
            "Else",
        )
        .await;

    let (status, body) = stack
        .create_link(&stack.tokens.self_service, &own, json!({"returnCode": {}}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = stack
        .create_link(
            &stack.tokens.self_service,
            "someone-else",
            json!({"returnCode": {}}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
}

#[tokio::test]
async fn the_delivery_status_follows_the_email() {
    let stack = Stack::start(StackOptions::default()).await;
    let user = "user-status";
    stack
        .put_user(user, &stack.org_a, &stack.email_of("status"), "Stat Us")
        .await;
    let response = stack
        .http
        .post(stack.url(&format!("/v3alpha/users/{user}/webauthn/registration_link")))
        .bearer_auth(&stack.tokens.org_a)
        .json(&json!({"sendLink": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let header = response.headers()["passlink-code-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let emails = stack.maildev.wait_for(1, WAIT).await;
    let code_id = param(&emails[0].link().unwrap(), "codeID").unwrap();
    assert_eq!(
        header, code_id,
        "a sendLink answer names its code id in a header"
    );

    let path = format!("/v3alpha/users/{user}/webauthn/registration_link/{code_id}");
    let sent = passlink_tests::eventually(WAIT, || async {
        let (status, body) = stack
            .request(reqwest::Method::GET, &path, Some(&stack.tokens.org_a), None)
            .await;
        (status == 200 && body["state"] == "sent").then_some(body)
    })
    .await
    .expect("the status reaches sent");
    assert_eq!(sent["codeId"], code_id);
    assert_eq!(sent["attempt"], 1);

    let (status, _) = stack
        .request(reqwest::Method::GET, &path, Some(&stack.tokens.org_b), None)
        .await;
    assert_eq!(status, 403, "another organization may not read it");
    let other = format!(
        "/v3alpha/users/{user}/webauthn/registration_link/{}",
        Uuid::new_v4()
    );
    let (status, body) = stack
        .request(
            reqwest::Method::GET,
            &other,
            Some(&stack.tokens.org_a),
            None,
        )
        .await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test]
async fn a_link_no_worker_took_yet_is_queued() {
    let stack = Stack::start(StackOptions {
        workers: 0,
        ..Default::default()
    })
    .await;
    let user = "user-queued";
    stack
        .put_user(user, &stack.org_a, &stack.email_of("queued"), "Q")
        .await;
    let (status, _) = stack
        .create_link(&stack.tokens.org_a, user, json!({}))
        .await;
    assert_eq!(status, 200);
    let (status, returned) = stack
        .create_link(&stack.tokens.org_a, user, json!({"returnCode": {}}))
        .await;
    assert_eq!(status, 200);

    let ids = stack.code_ids(user).await;
    let returned_id = returned["code"]["id"].as_str().unwrap();
    let sent_id = ids
        .iter()
        .find(|id| *id != returned_id)
        .expect("the emailed code");

    let path = format!("/v3alpha/users/{user}/webauthn/registration_link/{sent_id}");
    let (status, body) = stack
        .request(reqwest::Method::GET, &path, Some(&stack.tokens.org_a), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "queued");
    assert_eq!(body["attempt"], 0);
    assert!(body["jobId"].as_str().is_some_and(|j| !j.is_empty()));

    let path = format!("/v3alpha/users/{user}/webauthn/registration_link/{returned_id}");
    let (status, _) = stack
        .request(reqwest::Method::GET, &path, Some(&stack.tokens.org_a), None)
        .await;
    assert_eq!(status, 404, "a returned code has no email to report on");

    // Deleting the user revokes the queued email at once, before any worker
    // has seen the job; the job id stays the same.
    let job_id = body["jobId"].clone();
    let (status, _) = stack
        .request(
            reqwest::Method::DELETE,
            &format!("/admin/v1/users/{user}"),
            Some(&stack.tokens.admin),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let path = format!("/v3alpha/users/{user}/webauthn/registration_link/{sent_id}");
    let (status, body) = stack
        .request(reqwest::Method::GET, &path, Some(&stack.tokens.admin), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "revoked", "{body}");
    assert_eq!(body["jobId"], job_id, "{body}");
}

#[tokio::test]
async fn a_status_is_shown_only_under_its_own_user() {
    let stack = Stack::start(StackOptions::default()).await;
    let owner = "status-owner";
    // Another user in the same Redis shard, where the lookup would look.
    let neighbour = (0..1000)
        .map(|i| format!("status-neighbour-{i}"))
        .find(|id| stack.keys.shard_of(id) == stack.keys.shard_of(owner))
        .expect("a user in the same shard");
    stack
        .put_user(owner, &stack.org_b, &stack.email_of("owner"), "O")
        .await;
    stack
        .put_user(&neighbour, &stack.org_a, &stack.email_of("n"), "N")
        .await;
    let (status, _) = stack
        .create_link(&stack.tokens.org_b, owner, json!({}))
        .await;
    assert_eq!(status, 200);
    let emails = stack.maildev.wait_for(1, WAIT).await;
    let code_id = param(&emails[0].link().unwrap(), "codeID").unwrap();
    stack.drained(WAIT).await;

    let mine = format!("/v3alpha/users/{owner}/webauthn/registration_link/{code_id}");
    let (status, _) = stack
        .request(reqwest::Method::GET, &mine, Some(&stack.tokens.org_b), None)
        .await;
    assert_eq!(status, 200);
    let theirs = format!("/v3alpha/users/{neighbour}/webauthn/registration_link/{code_id}");
    let (status, body) = stack
        .request(
            reqwest::Method::GET,
            &theirs,
            Some(&stack.tokens.org_a),
            None,
        )
        .await;
    assert_eq!(
        status, 404,
        "org A may not read org B's status through its own user: {body}"
    );
}

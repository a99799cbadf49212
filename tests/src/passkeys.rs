//! A software authenticator and request helpers for passkey registration
//! tests.
//!
//! The authenticator is webauthn-authenticator-rs's `SoftPasskey` (only its
//! software token feature, no USB, NFC or Bluetooth): it makes real P-256
//! credentials and answers the ceremony the way a browser and an
//! authenticator together would, including the origin checks. It ignores
//! `excludeCredentials`, so it also shows what the server refuses on its own.

use serde_json::{Value, json};
use url::Url;
use webauthn_authenticator_rs::prelude::{CreationChallengeResponse, WebauthnAuthenticator};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use crate::Stack;
use crate::stack::encode;

/// The relying party the test stacks serve (their public base URL).
pub const ORIGIN: &str = "https://passlink.example.test";
pub const RP_ID: &str = "passlink.example.test";

/// One software authenticator with user verification.
pub struct Authenticator {
    inner: SoftPasskey,
}

impl Default for Authenticator {
    fn default() -> Self {
        Self::new()
    }
}

impl Authenticator {
    pub fn new() -> Self {
        // `true`: claim user verification, as passkeys must.
        Self {
            inner: SoftPasskey::new(true),
        }
    }

    /// Answers the `publicKeyCredentialCreationOptions` of a start response
    /// as a page on `origin` would, and returns the `PublicKeyCredential`
    /// JSON for the verify request.
    pub fn register(&mut self, origin: &str, options: &Value) -> Value {
        let options: CreationChallengeResponse =
            serde_json::from_value(options.clone()).expect("the options are W3C options");
        let origin = Url::parse(origin).expect("origin URL");
        let credential = self
            .inner
            .do_registration(origin, options)
            .expect("the authenticator registers");
        serde_json::to_value(credential).expect("the credential serialises")
    }
}

/// The code with its last character changed: always wrong, even for a code
/// that happens to end in the replacement.
pub fn wrong_code(code: &str) -> String {
    let mut chars: Vec<char> = code.chars().collect();
    let last = chars.last_mut().expect("a code is not empty");
    *last = if *last == 'x' { 'y' } else { 'x' };
    chars.into_iter().collect()
}

/// The `details[0].id` of an error body.
pub fn error_id(body: &Value) -> &str {
    body["details"][0]["id"].as_str().unwrap_or_default()
}

impl Stack {
    /// `POST /v3alpha/users/{user}/webauthn`.
    pub async fn start_registration(
        &self,
        user: &str,
        token: Option<&str>,
        body: Value,
    ) -> (u16, Value) {
        let path = format!("/v3alpha/users/{}/webauthn", encode(user));
        self.request(reqwest::Method::POST, &path, token, Some(body))
            .await
    }

    /// Starts with a code, as the registration page does.
    pub async fn start_with_code(&self, user: &str, code_id: &str, code: &str) -> (u16, Value) {
        self.start_registration(
            user,
            None,
            json!({"domain": RP_ID, "code": {"id": code_id, "code": code}}),
        )
        .await
    }

    /// `POST /v3alpha/users/{user}/webauthn/{webAuthNId}`.
    pub async fn verify_registration(
        &self,
        user: &str,
        webauthn_id: &str,
        token: Option<&str>,
        credential: &Value,
        name: &str,
    ) -> (u16, Value) {
        let path = format!(
            "/v3alpha/users/{}/webauthn/{}",
            encode(user),
            encode(webauthn_id)
        );
        let body = json!({"publicKeyCredential": credential, "webAuthNName": name});
        self.request(reqwest::Method::POST, &path, token, Some(body))
            .await
    }

    /// A fresh code for `user` through `returnCode`: `(code id, code)`.
    pub async fn return_code(&self, user: &str) -> (String, String) {
        let (status, body) = self
            .create_link(&self.tokens.admin, user, json!({"returnCode": {}}))
            .await;
        assert_eq!(status, 200, "{body}");
        (
            body["code"]["id"].as_str().expect("code id").to_owned(),
            body["code"]["code"].as_str().expect("code").to_owned(),
        )
    }

    /// The passkeys the directory shows for `user`.
    pub async fn passkeys_of(&self, user: &str) -> Vec<Value> {
        let (status, body) = self
            .request(
                reqwest::Method::GET,
                &format!("/admin/v1/users/{}", encode(user)),
                Some(&self.tokens.admin),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["passkeys"].as_array().cloned().unwrap_or_default()
    }
}

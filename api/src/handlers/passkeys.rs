//! StartWebAuthNRegistration and VerifyWebAuthNRegistration over JSON:
//! `POST /v3alpha/users/{userId}/webauthn` and
//! `POST /v3alpha/users/{userId}/webauthn/{webAuthNId}`. Decoding into the
//! requests every protocol shares ([`crate::registration::request`]) and
//! encoding only; the ceremony is in [`crate::registration`].

use http::{Request, StatusCode};
use hyper::body::Incoming;
use passlink_proto::WebAuthNAuthenticatorType;
use passlink_shared::code::PlainCode;
use passlink_shared::error::ApiError;
use passlink_shared::json::Object;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;
use webauthn_rs::prelude::CreationChallengeResponse;

use crate::app::App;
use crate::handlers::Details;
use crate::http::{HttpResponse, json, path_segment, read_json};
use crate::registration::request::{self, CodeRequest, StartRequest, VerifyRequest};
use crate::registration::{self, Change};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    #[serde(rename = "userId", alias = "user_id", default)]
    user_id: Option<String>,
    #[serde(default)]
    domain: Option<String>,
    #[serde(rename = "authenticatorType", alias = "authenticator_type", default)]
    authenticator_type: Option<serde_json::Value>,
    #[serde(default)]
    code: Option<Object<CodeBody>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeBody {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    code: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyBody {
    #[serde(rename = "userId", alias = "user_id", default)]
    user_id: Option<String>,
    #[serde(rename = "webAuthNId", alias = "web_auth_n_id", default)]
    webauthn_id: Option<String>,
    #[serde(
        rename = "publicKeyCredential",
        alias = "public_key_credential",
        default
    )]
    credential: Option<Box<RawValue>>,
    #[serde(rename = "webAuthNName", alias = "web_auth_n_name", default)]
    name: Option<String>,
}

#[derive(Serialize)]
struct StartResponse<'a> {
    details: Details,
    #[serde(rename = "webAuthNId")]
    webauthn_id: String,
    #[serde(rename = "publicKeyCredentialCreationOptions")]
    options: &'a CreationChallengeResponse,
}

#[derive(Serialize)]
struct VerifyResponse {
    details: Details,
}

fn details(change: &Change) -> Details {
    Details::new(change.sequence, change.change_ms, &change.organization_id)
}

pub async fn start(
    app: &App,
    req: Request<Incoming>,
    raw_user_id: &str,
) -> Result<HttpResponse, ApiError> {
    let user_id = path_segment(raw_user_id)?;
    let caller = app.optional_caller(req.headers()).await?;
    let Object(body): Object<StartBody> = read_json(req, app.config.http.max_body_bytes).await?;
    let input = start_request(body, user_id)?.validate()?;

    let started = registration::start(app, caller.as_deref(), input).await?;
    Ok(json(
        StatusCode::OK,
        &StartResponse {
            details: details(&started.details),
            webauthn_id: started.webauthn_id.to_string(),
            options: &started.options,
        },
    ))
}

pub async fn verify(
    app: &App,
    req: Request<Incoming>,
    raw_user_id: &str,
    raw_webauthn_id: &str,
) -> Result<HttpResponse, ApiError> {
    let user_id = path_segment(raw_user_id)?;
    let webauthn_id = path_segment(raw_webauthn_id)?;
    let caller = app.optional_caller(req.headers()).await?;
    let limit = request::max_verify_bytes(app.config.http.max_body_bytes);
    let Object(body): Object<VerifyBody> = read_json(req, limit).await?;
    let input = verify_request(body, user_id, webauthn_id)?.validate()?;

    let verified = registration::verify(app, caller.as_deref(), input).await?;
    Ok(json(
        StatusCode::OK,
        &VerifyResponse {
            details: details(&verified.details),
        },
    ))
}

/// The JSON body as the neutral request; a body `userId` must agree with
/// the path.
fn start_request(body: StartBody, user_id: String) -> Result<StartRequest, ApiError> {
    check_body_user(body.user_id.as_deref(), &user_id)?;
    Ok(StartRequest {
        user_id,
        domain: body.domain.unwrap_or_default(),
        authenticator_type: authenticator_type(body.authenticator_type.as_ref()),
        code: body.code.map(|Object(code)| CodeRequest {
            id: code.id.unwrap_or_default(),
            code: PlainCode::new(code.code.unwrap_or_default()),
        }),
    })
}

/// protojson writes an enum as its name and also reads its number; `None`
/// for anything that names no type, which validation refuses.
fn authenticator_type(value: Option<&serde_json::Value>) -> Option<i32> {
    use serde_json::Value;
    match value {
        None | Some(Value::Null) => Some(WebAuthNAuthenticatorType::Unspecified as i32),
        Some(Value::String(name)) => request::authenticator_type_number(name),
        Some(Value::Number(n)) => n.as_i64().and_then(|n| i32::try_from(n).ok()),
        Some(_) => None,
    }
}

/// The JSON body as the neutral request; a body `userId` or `webAuthNId`
/// must agree with the path.
fn verify_request(
    body: VerifyBody,
    user_id: String,
    webauthn_id: String,
) -> Result<VerifyRequest, ApiError> {
    check_body_user(body.user_id.as_deref(), &user_id)?;
    if let Some(body_id) = body.webauthn_id.as_deref()
        && body_id.parse::<Uuid>().ok() != webauthn_id.parse::<Uuid>().ok()
    {
        return Err(ApiError::invalid(
            "PASSKEY-ID-MISMATCH",
            "The webAuthNId in the body differs from the one in the path",
        ));
    }
    Ok(VerifyRequest {
        user_id,
        webauthn_id,
        credential: body.credential,
        name: body.name.unwrap_or_default(),
    })
}

fn check_body_user(body_user: Option<&str>, path_user: &str) -> Result<(), ApiError> {
    if body_user.is_some_and(|id| id != path_user) {
        return Err(ApiError::invalid(
            "PASSKEY-USER-MISMATCH",
            "The userId in the body differs from the one in the path",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registration::request::MAX_CREDENTIAL_BYTES;
    use crate::registration::{AuthenticatorType, StartInput, VerifyInput};

    fn start(json: &str) -> Result<StartInput, ApiError> {
        let Object(body): Object<StartBody> = crate::http::decode(json.as_bytes())?;
        start_request(body, "u1".into())?.validate()
    }

    fn verify(json: &str, id: &str) -> Result<VerifyInput, ApiError> {
        let Object(body): Object<VerifyBody> = crate::http::decode(json.as_bytes())?;
        verify_request(body, "u1".into(), id.into())?.validate()
    }

    const ID: &str = "e2a48d6a-362b-4db6-a1fb-34feab84dc62";

    #[test]
    fn start_bodies_of_the_contract() {
        let input = start(&format!(
            r#"{{"domain":"example.com","code":{{"id":"{ID}","code":"SKJd342kAbCd"}}}}"#
        ))
        .unwrap();
        assert_eq!(input.domain, "example.com");
        assert_eq!(input.authenticator, AuthenticatorType::Unspecified);
        let code = input.code.unwrap();
        assert_eq!(code.id.to_string(), ID);
        assert_eq!(code.code.expose(), "SKJd342kAbCd");

        let input = start(concat!(
            r#"{"domain":"example.com","#,
            r#""authenticator_type":"WEB_AUTH_N_AUTHENTICATOR_TYPE_PLATFORM"}"#
        ))
        .unwrap();
        assert_eq!(input.authenticator, AuthenticatorType::Platform);
        assert!(input.code.is_none());
        let input = start(r#"{"domain":"example.com","authenticatorType":2}"#).unwrap();
        assert_eq!(input.authenticator, AuthenticatorType::CrossPlatform);
    }

    #[test]
    fn start_refusals() {
        let cases = [
            (r#"{}"#.to_owned(), "PASSKEY-DOMAIN-INVALID"),
            (r#"{"domain":""}"#.to_owned(), "PASSKEY-DOMAIN-INVALID"),
            (
                format!(r#"{{"domain":"{}"}}"#, "a".repeat(201)),
                "PASSKEY-DOMAIN-INVALID",
            ),
            (
                r#"{"domain":"x","userId":"u2"}"#.to_owned(),
                "PASSKEY-USER-MISMATCH",
            ),
            (
                r#"{"domain":"x","code":{"id":"nope","code":"a"}}"#.to_owned(),
                "CODE-ID-INVALID",
            ),
            (
                format!(r#"{{"domain":"x","code":{{"id":"{ID}"}}}}"#),
                "CODE-FORMAT",
            ),
            (
                format!(
                    r#"{{"domain":"x","code":{{"id":"{ID}","code":"{}"}}}}"#,
                    "a".repeat(65)
                ),
                "CODE-FORMAT",
            ),
            (r#"{"domain":"x","code":[]}"#.to_owned(), "REQ-JSON-INVALID"),
            (r#"{"domain":"x","extra":1}"#.to_owned(), "REQ-JSON-INVALID"),
            (
                r#"{"domain":"x","authenticatorType":"PLATFORM"}"#.to_owned(),
                "PASSKEY-AUTHENTICATOR-TYPE-INVALID",
            ),
            (
                r#"{"domain":"x","authenticatorType":7}"#.to_owned(),
                "PASSKEY-AUTHENTICATOR-TYPE-INVALID",
            ),
        ];
        for (json, id) in cases {
            assert_eq!(start(&json).unwrap_err().id, id, "{json}");
        }
    }

    #[test]
    fn verify_refusals() {
        let credential = r#"{"id":"AA","rawId":"AA","type":"public-key",
            "response":{"attestationObject":"AA","clientDataJSON":"AA"}}"#;
        let ok = format!(r#"{{"publicKeyCredential":{credential},"webAuthNName":"Laptop"}}"#);
        let input = verify(&ok, ID).unwrap();
        assert_eq!(input.name, "Laptop");
        assert_eq!(input.credential.raw_id, vec![0]);

        let cases = [
            (ok.clone(), "not-a-uuid", "PASSKEY-ID-INVALID"),
            (
                format!(
                    r#"{{"publicKeyCredential":{credential},"webAuthNId":"{}"}}"#,
                    Uuid::nil()
                ),
                ID,
                "PASSKEY-ID-MISMATCH",
            ),
            (
                format!(r#"{{"publicKeyCredential":{credential}}}"#),
                ID,
                "PASSKEY-NAME-INVALID",
            ),
            (
                format!(r#"{{"publicKeyCredential":{credential},"webAuthNName":"a\nb"}}"#),
                ID,
                "PASSKEY-NAME-INVALID",
            ),
            (
                r#"{"webAuthNName":"x"}"#.to_owned(),
                ID,
                "PASSKEY-CREDENTIAL-INVALID",
            ),
            (
                r#"{"webAuthNName":"x","publicKeyCredential":[1]}"#.to_owned(),
                ID,
                "PASSKEY-CREDENTIAL-INVALID",
            ),
            (
                r#"{"webAuthNName":"x","publicKeyCredential":{"id":1}}"#.to_owned(),
                ID,
                "PASSKEY-CREDENTIAL-INVALID",
            ),
            (
                r#"{"webAuthNName":"x","publicKeyCredential":{},"more":1}"#.to_owned(),
                ID,
                "REQ-JSON-INVALID",
            ),
        ];
        for (json, id, error) in cases {
            assert_eq!(verify(&json, id).unwrap_err().id, error, "{json}");
        }

        let huge = format!(
            r#"{{"webAuthNName":"x","publicKeyCredential":{{"id":"{}"}}}}"#,
            "a".repeat(MAX_CREDENTIAL_BYTES)
        );
        let err = verify(&huge, ID).unwrap_err();
        assert_eq!(err.id, "PASSKEY-CREDENTIAL-INVALID");
        assert!(err.message.contains("larger than"));
    }
}

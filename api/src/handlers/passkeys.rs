//! StartWebAuthNRegistration and VerifyWebAuthNRegistration over JSON:
//! `POST /v3alpha/users/{userId}/webauthn` and
//! `POST /v3alpha/users/{userId}/webauthn/{webAuthNId}`. Decoding and
//! encoding only; the ceremony is in [`crate::registration`].

use http::{HeaderMap, Request, StatusCode};
use hyper::body::Incoming;
use passlink_shared::code::PlainCode;
use passlink_shared::error::ApiError;
use passlink_shared::json::Object;
use passlink_shared::user::validate_user_id;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;
use webauthn_rs::prelude::{CreationChallengeResponse, RegisterPublicKeyCredential};

use crate::app::App;
use crate::auth::Caller;
use crate::handlers::Details;
use crate::http::{HttpResponse, json, path_segment, read_json};
use crate::registration::{self, AuthenticatorType, Change, CodeInput, StartInput, VerifyInput};

/// The contract's limit on the browser's `PublicKeyCredential`.
pub const MAX_CREDENTIAL_BYTES: usize = 1 << 20;
/// The longest code accepted for comparison; longer is malformed, not wrong.
const MAX_CODE_CHARS: usize = 64;
const MAX_TEXT_CHARS: usize = 200;

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

/// The caller, when the request carries a token; a token that is given
/// must be valid even where a code alone would do.
async fn optional_caller(
    app: &App,
    headers: &HeaderMap,
) -> Result<Option<std::sync::Arc<Caller>>, ApiError> {
    if headers.contains_key(http::header::AUTHORIZATION) {
        app.caller(headers).await.map(Some)
    } else {
        Ok(None)
    }
}

pub async fn start(
    app: &App,
    req: Request<Incoming>,
    raw_user_id: &str,
) -> Result<HttpResponse, ApiError> {
    let user_id = path_segment(raw_user_id)?;
    let caller = optional_caller(app, req.headers()).await?;
    let Object(body): Object<StartBody> = read_json(req, app.config.http.max_body_bytes).await?;
    validate_user_id(&user_id)?;
    let input = start_input(body, user_id)?;

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
    let caller = optional_caller(app, req.headers()).await?;
    // Room for the credential and the few small fields around it.
    let limit = app
        .config
        .http
        .max_body_bytes
        .max(MAX_CREDENTIAL_BYTES + 16 * 1024);
    let Object(body): Object<VerifyBody> = read_json(req, limit).await?;
    validate_user_id(&user_id)?;
    let input = verify_input(body, user_id, raw_webauthn_id)?;

    let verified = registration::verify(app, caller.as_deref(), input).await?;
    Ok(json(
        StatusCode::OK,
        &VerifyResponse {
            details: details(&verified.details),
        },
    ))
}

fn start_input(body: StartBody, user_id: String) -> Result<StartInput, ApiError> {
    check_body_user(body.user_id.as_deref(), &user_id)?;
    let domain = body.domain.unwrap_or_default();
    if !text_ok(&domain) {
        return Err(ApiError::invalid(
            "PASSKEY-DOMAIN-INVALID",
            "domain is required: the relying party's domain, 1 to 200 characters",
        ));
    }
    let code = body.code.map(|Object(code)| code_input(code)).transpose()?;
    Ok(StartInput {
        user_id,
        domain,
        authenticator: authenticator_type(body.authenticator_type.as_ref())?,
        code,
    })
}

fn code_input(body: CodeBody) -> Result<CodeInput, ApiError> {
    let id = body
        .id
        .as_deref()
        .and_then(|id| id.parse::<Uuid>().ok())
        .ok_or_else(|| ApiError::invalid("CODE-ID-INVALID", "code.id must be a UUID"))?;
    let code = body.code.unwrap_or_default();
    let chars = code.chars().count();
    if chars == 0 || chars > MAX_CODE_CHARS {
        return Err(ApiError::invalid(
            "CODE-FORMAT",
            "code.code must be 1 to 64 characters",
        ));
    }
    Ok(CodeInput {
        id,
        code: PlainCode::new(code),
    })
}

/// protojson writes an enum as its name and also reads its number.
fn authenticator_type(value: Option<&serde_json::Value>) -> Result<AuthenticatorType, ApiError> {
    use serde_json::Value;
    let kind = match value {
        None | Some(Value::Null) => Some(AuthenticatorType::Unspecified),
        Some(Value::String(name)) => match name.as_str() {
            "WEB_AUTH_N_AUTHENTICATOR_TYPE_UNSPECIFIED" => Some(AuthenticatorType::Unspecified),
            "WEB_AUTH_N_AUTHENTICATOR_TYPE_PLATFORM" => Some(AuthenticatorType::Platform),
            "WEB_AUTH_N_AUTHENTICATOR_TYPE_CROSS_PLATFORM" => {
                Some(AuthenticatorType::CrossPlatform)
            }
            _ => None,
        },
        Some(Value::Number(n)) => match n.as_u64() {
            Some(0) => Some(AuthenticatorType::Unspecified),
            Some(1) => Some(AuthenticatorType::Platform),
            Some(2) => Some(AuthenticatorType::CrossPlatform),
            _ => None,
        },
        Some(_) => None,
    };
    kind.ok_or_else(|| {
        ApiError::invalid(
            "PASSKEY-AUTHENTICATOR-TYPE-INVALID",
            "authenticatorType must be WEB_AUTH_N_AUTHENTICATOR_TYPE_UNSPECIFIED, \
             WEB_AUTH_N_AUTHENTICATOR_TYPE_PLATFORM or \
             WEB_AUTH_N_AUTHENTICATOR_TYPE_CROSS_PLATFORM",
        )
    })
}

fn verify_input(
    body: VerifyBody,
    user_id: String,
    raw_webauthn_id: &str,
) -> Result<VerifyInput, ApiError> {
    check_body_user(body.user_id.as_deref(), &user_id)?;
    let id_error = || ApiError::invalid("PASSKEY-ID-INVALID", "webAuthNId must be a UUID");
    let webauthn_id: Uuid = path_segment(raw_webauthn_id)?
        .parse()
        .map_err(|_| id_error())?;
    if let Some(body_id) = body.webauthn_id.as_deref()
        && body_id.parse::<Uuid>().ok() != Some(webauthn_id)
    {
        return Err(ApiError::invalid(
            "PASSKEY-ID-MISMATCH",
            "The webAuthNId in the body differs from the one in the path",
        ));
    }

    let name = body.name.unwrap_or_default().trim().to_owned();
    if !text_ok(&name) {
        return Err(ApiError::invalid(
            "PASSKEY-NAME-INVALID",
            "webAuthNName is required: 1 to 200 characters without control characters",
        ));
    }

    let invalid = |why: String| ApiError::invalid("PASSKEY-CREDENTIAL-INVALID", why);
    let raw = body
        .credential
        .ok_or_else(|| invalid("publicKeyCredential is required".into()))?;
    if raw.get().len() > MAX_CREDENTIAL_BYTES {
        return Err(invalid(format!(
            "publicKeyCredential is larger than {MAX_CREDENTIAL_BYTES} bytes"
        )));
    }
    if !raw.get().trim_start().starts_with('{') {
        return Err(invalid("publicKeyCredential must be a JSON object".into()));
    }
    let credential: RegisterPublicKeyCredential =
        serde_json::from_str(raw.get()).map_err(|err| {
            invalid(format!(
                "publicKeyCredential is not a valid credential: {err}"
            ))
        })?;

    Ok(VerifyInput {
        user_id,
        webauthn_id,
        credential,
        name,
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

fn text_ok(text: &str) -> bool {
    (1..=MAX_TEXT_CHARS).contains(&text.chars().count()) && !text.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(json: &str) -> Result<StartInput, ApiError> {
        let Object(body): Object<StartBody> = crate::http::decode(json.as_bytes())?;
        start_input(body, "u1".into())
    }

    fn verify(json: &str, id: &str) -> Result<VerifyInput, ApiError> {
        let Object(body): Object<VerifyBody> = crate::http::decode(json.as_bytes())?;
        verify_input(body, "u1".into(), id)
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

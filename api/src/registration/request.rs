//! StartWebAuthNRegistration and VerifyWebAuthNRegistration as any
//! protocol states them, before validation, and the one validation JSON,
//! gRPC and gRPC-web all make (as `LinkRequest` does for links), so that
//! they refuse alike. What only one protocol has (JSON's path and body
//! agreeing, protobuf's decoding) stays with that protocol.

use passlink_proto::WebAuthNAuthenticatorType;
use passlink_shared::code::PlainCode;
use passlink_shared::error::ApiError;
use passlink_shared::user::validate_user_id;
use serde_json::value::RawValue;
use uuid::Uuid;
use webauthn_rs::prelude::RegisterPublicKeyCredential;

use super::{AuthenticatorType, CodeInput, StartInput, VerifyInput};

/// The contract's limit on the browser's `PublicKeyCredential`, as JSON.
pub const MAX_CREDENTIAL_BYTES: usize = 1 << 20;
/// Room beside the credential for the few small fields around it.
const VERIFY_ENVELOPE_BYTES: usize = 16 * 1024;
/// The longest code accepted for comparison; longer is malformed, not wrong.
const MAX_CODE_CHARS: usize = 64;
const MAX_TEXT_CHARS: usize = 200;

/// The largest verify request, as a JSON body or a protobuf message: as
/// large as the credential needs even when the general limit is smaller,
/// since a credential that the contract allows must get through.
pub fn max_verify_bytes(max_body_bytes: usize) -> usize {
    max_body_bytes.max(MAX_CREDENTIAL_BYTES + VERIFY_ENVELOPE_BYTES)
}

/// A start as it arrived.
#[derive(Debug)]
pub struct StartRequest {
    pub user_id: String,
    pub domain: String,
    /// The `WebAuthNAuthenticatorType` number; `None` when the request
    /// named no type there is (protojson takes names too).
    pub authenticator_type: Option<i32>,
    pub code: Option<CodeRequest>,
}

/// A code as it arrived.
#[derive(Debug)]
pub struct CodeRequest {
    pub id: String,
    pub code: PlainCode,
}

/// A verify as it arrived.
#[derive(Debug)]
pub struct VerifyRequest {
    pub user_id: String,
    pub webauthn_id: String,
    /// The browser's `PublicKeyCredential` as JSON text; a protocol without
    /// JSON converts its form to JSON first.
    pub credential: Option<Box<RawValue>>,
    pub name: String,
}

impl StartRequest {
    pub fn validate(self) -> Result<StartInput, ApiError> {
        validate_user_id(&self.user_id)?;
        if !text_ok(&self.domain) {
            return Err(ApiError::invalid(
                "PASSKEY-DOMAIN-INVALID",
                "domain is required: the relying party's domain, 1 to 200 characters",
            ));
        }
        let code = self.code.map(CodeRequest::validate).transpose()?;
        Ok(StartInput {
            user_id: self.user_id,
            domain: self.domain,
            authenticator: authenticator_type(self.authenticator_type)?,
            code,
        })
    }
}

impl CodeRequest {
    fn validate(self) -> Result<CodeInput, ApiError> {
        let id = self
            .id
            .parse::<Uuid>()
            .map_err(|_| ApiError::invalid("CODE-ID-INVALID", "code.id must be a UUID"))?;
        let chars = self.code.expose().chars().count();
        if chars == 0 || chars > MAX_CODE_CHARS {
            return Err(ApiError::invalid(
                "CODE-FORMAT",
                "code.code must be 1 to 64 characters",
            ));
        }
        Ok(CodeInput {
            id,
            code: self.code,
        })
    }
}

/// The type of a `WebAuthNAuthenticatorType` number.
fn authenticator_type(number: Option<i32>) -> Result<AuthenticatorType, ApiError> {
    use WebAuthNAuthenticatorType as Proto;
    match number.map(Proto::try_from) {
        Some(Ok(Proto::Unspecified)) => Ok(AuthenticatorType::Unspecified),
        Some(Ok(Proto::Platform)) => Ok(AuthenticatorType::Platform),
        Some(Ok(Proto::CrossPlatform)) => Ok(AuthenticatorType::CrossPlatform),
        None | Some(Err(_)) => Err(ApiError::invalid(
            "PASSKEY-AUTHENTICATOR-TYPE-INVALID",
            "authenticatorType must be WEB_AUTH_N_AUTHENTICATOR_TYPE_UNSPECIFIED, \
             WEB_AUTH_N_AUTHENTICATOR_TYPE_PLATFORM or \
             WEB_AUTH_N_AUTHENTICATOR_TYPE_CROSS_PLATFORM",
        )),
    }
}

/// The number protojson reads for an enum name of the contract.
pub fn authenticator_type_number(name: &str) -> Option<i32> {
    WebAuthNAuthenticatorType::from_str_name(name).map(|kind| kind as i32)
}

impl VerifyRequest {
    pub fn validate(self) -> Result<VerifyInput, ApiError> {
        validate_user_id(&self.user_id)?;
        let webauthn_id: Uuid = self
            .webauthn_id
            .parse()
            .map_err(|_| ApiError::invalid("PASSKEY-ID-INVALID", "webAuthNId must be a UUID"))?;

        let name = self.name.trim().to_owned();
        if !text_ok(&name) {
            return Err(ApiError::invalid(
                "PASSKEY-NAME-INVALID",
                "webAuthNName is required: 1 to 200 characters without control characters",
            ));
        }

        let raw = self
            .credential
            .ok_or_else(|| credential_invalid("publicKeyCredential is required"))?;
        if raw.get().len() > MAX_CREDENTIAL_BYTES {
            return Err(credential_invalid(format!(
                "publicKeyCredential is larger than {MAX_CREDENTIAL_BYTES} bytes"
            )));
        }
        if !raw.get().trim_start().starts_with('{') {
            return Err(credential_invalid(
                "publicKeyCredential must be a JSON object",
            ));
        }
        // serde's message names the field and the fault; a credential holds
        // public data only.
        let credential: RegisterPublicKeyCredential =
            serde_json::from_str(raw.get()).map_err(|err| {
                credential_invalid(format!(
                    "publicKeyCredential is not a valid credential: {err}"
                ))
            })?;

        Ok(VerifyInput {
            user_id: self.user_id,
            webauthn_id,
            credential,
            name,
        })
    }
}

/// The error of a credential that cannot be used, for every protocol.
pub fn credential_invalid(why: impl Into<std::borrow::Cow<'static, str>>) -> ApiError {
    ApiError::invalid("PASSKEY-CREDENTIAL-INVALID", why)
}

fn text_ok(text: &str) -> bool {
    (1..=MAX_TEXT_CHARS).contains(&text.chars().count()) && !text.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "e2a48d6a-362b-4db6-a1fb-34feab84dc62";

    fn start(domain: &str, kind: Option<i32>, code: Option<(&str, &str)>) -> StartRequest {
        StartRequest {
            user_id: "u1".into(),
            domain: domain.into(),
            authenticator_type: kind,
            code: code.map(|(id, code)| CodeRequest {
                id: id.into(),
                code: PlainCode::new(code.into()),
            }),
        }
    }

    #[test]
    fn starts() {
        let input = start("example.com", Some(0), Some((ID, "SKJd342kAbCd")))
            .validate()
            .unwrap();
        assert_eq!(input.domain, "example.com");
        assert_eq!(input.authenticator, AuthenticatorType::Unspecified);
        let code = input.code.unwrap();
        assert_eq!(code.id.to_string(), ID);
        assert_eq!(code.code.expose(), "SKJd342kAbCd");
        for (number, kind) in [
            (1, AuthenticatorType::Platform),
            (2, AuthenticatorType::CrossPlatform),
        ] {
            let input = start("x", Some(number), None).validate().unwrap();
            assert_eq!(input.authenticator, kind);
        }
        assert_eq!(
            authenticator_type_number("WEB_AUTH_N_AUTHENTICATOR_TYPE_CROSS_PLATFORM"),
            Some(2)
        );
        assert_eq!(authenticator_type_number("PLATFORM"), None);
    }

    #[test]
    fn start_refusals() {
        let long = "a".repeat(201);
        let long_code = "a".repeat(65);
        let cases = [
            (start("", Some(0), None), "PASSKEY-DOMAIN-INVALID"),
            (start(&long, Some(0), None), "PASSKEY-DOMAIN-INVALID"),
            (start("a\u{7}b", Some(0), None), "PASSKEY-DOMAIN-INVALID"),
            (
                start("x", Some(3), None),
                "PASSKEY-AUTHENTICATOR-TYPE-INVALID",
            ),
            (
                start("x", Some(-1), None),
                "PASSKEY-AUTHENTICATOR-TYPE-INVALID",
            ),
            (start("x", None, None), "PASSKEY-AUTHENTICATOR-TYPE-INVALID"),
            (start("x", Some(0), Some(("nope", "a"))), "CODE-ID-INVALID"),
            (start("x", Some(0), Some((ID, ""))), "CODE-FORMAT"),
            (start("x", Some(0), Some((ID, &long_code))), "CODE-FORMAT"),
            (
                StartRequest {
                    user_id: String::new(),
                    ..start("x", Some(0), None)
                },
                "USER-ID-INVALID",
            ),
        ];
        for (request, id) in cases {
            let case = format!("{request:?}");
            assert_eq!(request.validate().unwrap_err().id, id, "{case}");
        }
    }

    fn verify(id: &str, credential: Option<&str>, name: &str) -> Result<VerifyInput, ApiError> {
        VerifyRequest {
            user_id: "u1".into(),
            webauthn_id: id.into(),
            credential: credential.map(|c| RawValue::from_string(c.to_owned()).unwrap()),
            name: name.into(),
        }
        .validate()
    }

    #[test]
    fn verifies_and_refusals() {
        let credential = r#"{"id":"AA","rawId":"AA","type":"public-key",
            "response":{"attestationObject":"AA","clientDataJSON":"AA"}}"#;
        let input = verify(ID, Some(credential), " Laptop ").unwrap();
        assert_eq!(input.name, "Laptop");
        assert_eq!(input.credential.raw_id, vec![0]);
        assert_eq!(input.webauthn_id.to_string(), ID);

        let huge = format!(r#"{{"id":"{}"}}"#, "a".repeat(MAX_CREDENTIAL_BYTES));
        let cases = [
            ("not-a-uuid", Some(credential), "x", "PASSKEY-ID-INVALID"),
            (ID, Some(credential), "", "PASSKEY-NAME-INVALID"),
            (ID, Some(credential), "   ", "PASSKEY-NAME-INVALID"),
            (ID, Some(credential), "a\nb", "PASSKEY-NAME-INVALID"),
            (ID, None, "x", "PASSKEY-CREDENTIAL-INVALID"),
            (ID, Some("[1]"), "x", "PASSKEY-CREDENTIAL-INVALID"),
            (ID, Some(r#"{"id":1}"#), "x", "PASSKEY-CREDENTIAL-INVALID"),
            (ID, Some(&huge), "x", "PASSKEY-CREDENTIAL-INVALID"),
        ];
        for (id, credential, name, error) in cases {
            let err = verify(id, credential, name).unwrap_err();
            assert_eq!(
                err.id,
                error,
                "{id} {name:?} {:?}",
                credential.map(str::len)
            );
        }
        let err = verify(ID, Some(&huge), "x").unwrap_err();
        assert!(
            err.message.contains("larger than 1048576 bytes"),
            "{}",
            err.message
        );
        assert_eq!(
            max_verify_bytes(64 * 1024),
            MAX_CREDENTIAL_BYTES + 16 * 1024
        );
        assert_eq!(max_verify_bytes(16 << 20), 16 << 20);
    }
}

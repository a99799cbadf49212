//! StartWebAuthNRegistration and VerifyWebAuthNRegistration over gRPC and
//! gRPC-web: the messages become the requests the JSON handlers build
//! ([`crate::registration::request`]), validated there, and the domain's
//! results become response messages. The only gRPC-own step is the
//! `google.protobuf.Struct` form of the options and the credential.

use passlink_proto::json::{json_to_struct, struct_to_json};
use passlink_proto::{
    StartWebAuthNRegistrationRequest, StartWebAuthNRegistrationResponse,
    VerifyWebAuthNRegistrationRequest, VerifyWebAuthNRegistrationResponse,
};
use passlink_shared::code::PlainCode;
use passlink_shared::error::ApiError;
use serde_json::value::{RawValue, to_raw_value};
use tonic::Request;
use webauthn_rs::prelude::CreationChallengeResponse;

use crate::app::App;
use crate::grpc::service::details;
use crate::registration::request::{CodeRequest, StartRequest, VerifyRequest, credential_invalid};
use crate::registration::{self, Change};

pub async fn start(
    app: &App,
    request: Request<StartWebAuthNRegistrationRequest>,
) -> Result<StartWebAuthNRegistrationResponse, ApiError> {
    // Metadata is the request's HTTP headers, as for JSON.
    let caller = app.optional_caller(request.metadata().as_ref()).await?;
    let message = request.into_inner();
    let input = StartRequest {
        user_id: message.user_id,
        domain: message.domain,
        authenticator_type: Some(message.authenticator_type),
        code: message.code.map(|code| CodeRequest {
            id: code.id,
            code: PlainCode::new(code.code),
        }),
    }
    .validate()?;

    let started = registration::start(app, caller.as_deref(), input).await?;
    Ok(StartWebAuthNRegistrationResponse {
        details: Some(change_details(started.details)),
        web_auth_n_id: started.webauthn_id.to_string(),
        public_key_credential_creation_options: Some(options_struct(&started.options)?),
    })
}

pub async fn verify(
    app: &App,
    request: Request<VerifyWebAuthNRegistrationRequest>,
) -> Result<VerifyWebAuthNRegistrationResponse, ApiError> {
    let caller = app.optional_caller(request.metadata().as_ref()).await?;
    let message = request.into_inner();
    let input = VerifyRequest {
        user_id: message.user_id,
        webauthn_id: message.web_auth_n_id,
        credential: message
            .public_key_credential
            .as_ref()
            .map(credential_json)
            .transpose()?,
        name: message.web_auth_n_name,
    }
    .validate()?;

    let verified = registration::verify(app, caller.as_deref(), input).await?;
    Ok(VerifyWebAuthNRegistrationResponse {
        details: Some(change_details(verified.details)),
    })
}

fn change_details(change: Change) -> passlink_proto::Details {
    details(change.sequence, change.change_ms, change.organization_id)
}

/// The options as the JSON API writes them, as a `Struct`.
fn options_struct(options: &CreationChallengeResponse) -> Result<prost_types::Struct, ApiError> {
    let internal = |why: &dyn std::fmt::Display| {
        tracing::error!(error = %why, "registration options have no Struct form");
        ApiError::internal()
    };
    match serde_json::to_value(options) {
        Ok(serde_json::Value::Object(object)) => json_to_struct(&object).map_err(|e| internal(&e)),
        Ok(_) => Err(internal(&"the options are not a JSON object")),
        Err(err) => Err(internal(&err)),
    }
}

/// The credential as JSON text, so that it is checked and read as the JSON
/// API's is (its 1 MiB limit counts this text).
fn credential_json(credential: &prost_types::Struct) -> Result<Box<RawValue>, ApiError> {
    let object = struct_to_json(credential)
        .map_err(|err| credential_invalid(format!("publicKeyCredential holds {err}")))?;
    to_raw_value(&object).map_err(|err| {
        // A map of JSON values always serialises; kept as an error anyway.
        tracing::error!(error = %err, "cannot write a credential as JSON");
        ApiError::internal()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::Value;
    use prost_types::value::Kind;
    use serde_json::json;

    #[test]
    fn credentials_become_the_json_text_the_json_api_reads() {
        let credential = json!({"id": "AA", "rawId": "AA", "type": "public-key",
            "response": {"attestationObject": "AA", "clientDataJSON": "AA",
                         "transports": ["internal"]},
            "clientExtensionResults": {"credProps": {"rk": true}}});
        let message = json_to_struct(credential.as_object().unwrap()).unwrap();
        let text = credential_json(&message).unwrap();
        let back: serde_json::Value = serde_json::from_str(text.get()).unwrap();
        assert_eq!(back, credential);

        let nan = Value {
            kind: Some(Kind::NumberValue(f64::NAN)),
        };
        let mut bad = message.clone();
        bad.fields.insert(
            "response".into(),
            Value {
                kind: Some(Kind::StructValue(prost_types::Struct {
                    fields: [("n".to_owned(), nan)].into(),
                })),
            },
        );
        let err = credential_json(&bad).unwrap_err();
        assert_eq!(err.id, "PASSKEY-CREDENTIAL-INVALID");
        assert_eq!(
            err.message,
            "publicKeyCredential holds a number that is not finite (NaN or infinity) \
             at $.response.n"
        );
    }
}

//! `zitadel.user.v3alpha.UserService` on the domain code: each request
//! becomes the same neutral request the JSON handler builds (`LinkRequest`
//! here, the registration requests in [`super::registration`]), and the
//! results become response messages. Nothing is checked here that the JSON
//! path does not check in the same place.

use std::future::Future;
use std::sync::Arc;

use passlink_proto::{
    AuthenticatorRegistrationCode, CreateWebAuthNRegistrationLinkRequest,
    CreateWebAuthNRegistrationLinkResponse, Details, Medium, StartWebAuthNRegistrationRequest,
    StartWebAuthNRegistrationResponse, UserService, VerifyWebAuthNRegistrationRequest,
    VerifyWebAuthNRegistrationResponse,
};
use passlink_shared::error::ApiError;
use tonic::{Request, Response, Status};

use crate::app::App;
use crate::grpc::registration;
use crate::grpc::status::to_status;
use crate::handlers::links::{Created, LinkRequest, handle_request};

/// The route names of the methods in logs and metrics.
pub const CREATE_LINK_ROUTE: &str = "grpc_create_link";
pub const START_ROUTE: &str = "grpc_start_registration";
pub const VERIFY_ROUTE: &str = "grpc_verify_registration";

/// The service implementation tonic's generated server calls.
pub struct UserApi {
    app: Arc<App>,
}

impl UserApi {
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }

    async fn create(
        &self,
        request: Request<CreateWebAuthNRegistrationLinkRequest>,
    ) -> Result<CreatedMessage, ApiError> {
        // Metadata is the request's HTTP headers (tonic-web keeps them for
        // gRPC-web too), so the bearer token is read exactly as for JSON.
        let caller = self.app.caller(request.metadata().as_ref()).await?;
        let message = request.into_inner();
        let (send_link, return_code) = match message.medium {
            Some(Medium::SendLink(send)) => (Some(send.url_template), false),
            Some(Medium::ReturnCode(_)) => (None, true),
            None => (None, false),
        };
        let request = LinkRequest {
            user_id: &message.user_id,
            send_link,
            return_code,
        };
        let created = handle_request(&self.app, &caller, request).await?;
        Ok(CreatedMessage {
            code_id: created.code_id.to_string(),
            message: response(created),
        })
    }
}

/// The response message and the code id for the response metadata.
struct CreatedMessage {
    code_id: String,
    message: CreateWebAuthNRegistrationLinkResponse,
}

#[tonic::async_trait]
impl UserService for UserApi {
    async fn create_web_auth_n_registration_link(
        &self,
        request: Request<CreateWebAuthNRegistrationLinkRequest>,
    ) -> Result<Response<CreateWebAuthNRegistrationLinkResponse>, Status> {
        let mut response = answer(CREATE_LINK_ROUTE, self.create(request)).await?;
        // The code id as response metadata, as the JSON API sends it in a
        // header (see `CODE_ID_HEADER`).
        let code_id = response.get_ref().code_id.clone();
        if let Ok(value) = code_id.parse() {
            response
                .metadata_mut()
                .insert(crate::handlers::links::CODE_ID_HEADER, value);
        }
        Ok(response.map(|created| created.message))
    }

    async fn start_web_auth_n_registration(
        &self,
        request: Request<StartWebAuthNRegistrationRequest>,
    ) -> Result<Response<StartWebAuthNRegistrationResponse>, Status> {
        answer(START_ROUTE, registration::start(&self.app, request)).await
    }

    async fn verify_web_auth_n_registration(
        &self,
        request: Request<VerifyWebAuthNRegistrationRequest>,
    ) -> Result<Response<VerifyWebAuthNRegistrationResponse>, Status> {
        answer(VERIFY_ROUTE, registration::verify(&self.app, request)).await
    }
}

/// A method's outcome as tonic wants it; failures the caller cannot fix
/// are logged as the JSON routes log them.
async fn answer<T>(
    route: &'static str,
    outcome: impl Future<Output = Result<T, ApiError>>,
) -> Result<Response<T>, Status> {
    match outcome.await {
        Ok(response) => Ok(Response::new(response)),
        Err(err) => {
            crate::handlers::log_failure(&err, route);
            Err(to_status(&err))
        }
    }
}

/// The contract's `details` of a change.
pub fn details(sequence: u64, change_ms: i64, resource_owner: String) -> Details {
    Details {
        sequence,
        change_date: Some(prost_types::Timestamp {
            seconds: change_ms.div_euclid(1000),
            // Below 1e9, so it fits.
            nanos: (change_ms.rem_euclid(1000) * 1_000_000) as i32,
        }),
        resource_owner,
    }
}

/// The response message of a created link.
fn response(created: Created) -> CreateWebAuthNRegistrationLinkResponse {
    CreateWebAuthNRegistrationLinkResponse {
        details: Some(details(
            created.sequence,
            created.change_ms,
            created.organization_id,
        )),
        code: created.code.map(|code| AuthenticatorRegistrationCode {
            id: created.code_id.to_string(),
            code: code.expose().to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use passlink_shared::code::PlainCode;

    #[test]
    fn created_becomes_the_response_message() {
        let code_id = uuid::Uuid::new_v4();
        let message = response(Created {
            sequence: 7,
            change_ms: 1_711_533_949_794,
            organization_id: "69629023906488334".to_owned(),
            code_id,
            code: Some(PlainCode::new("SKJd342kAbCd".to_owned())),
        });
        let details = message.details.unwrap();
        assert_eq!(details.sequence, 7);
        assert_eq!(details.resource_owner, "69629023906488334");
        let date = details.change_date.unwrap();
        assert_eq!((date.seconds, date.nanos), (1_711_533_949, 794_000_000));
        let code = message.code.unwrap();
        assert_eq!(code.id, code_id.to_string());
        assert_eq!(code.code, "SKJd342kAbCd");
    }
}

//! `POST /v3alpha/users/{userId}/webauthn/registration_link` and the
//! delivery status of a link's email.

use http::{Request, StatusCode};
use hyper::body::Incoming;
use passlink_shared::code::new_id;
use passlink_shared::error::ApiError;
use passlink_shared::job::{JOB_VERSION, SendLinkJob};
pub use passlink_shared::link_request::{LinkRequest, Medium};
use passlink_shared::store::{CreateLink, LinkOutcome};
use passlink_shared::time::{now_ms, rfc3339_ms};
use passlink_shared::user::validate_user_id;
use serde::Serialize;
use uuid::Uuid;

use crate::app::App;
use crate::auth::{Caller, PASSKEY_WRITE};
use crate::handlers::{Details, store_error};
use crate::http::{HttpResponse, json, read_body};

#[derive(Serialize)]
struct CodeBody<'a> {
    id: String,
    code: &'a str,
}

#[derive(Serialize)]
struct CreateLinkResponse<'a> {
    details: Details,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<CodeBody<'a>>,
}

pub async fn create(
    app: &App,
    req: Request<Incoming>,
    raw_user_id: &str,
) -> Result<HttpResponse, ApiError> {
    let user_id = crate::http::path_segment(raw_user_id)?;
    let caller = app.caller(req.headers()).await?;
    let body = read_body(req, app.config.http.max_body_bytes).await?;
    let request = passlink_shared::link_request::from_json(&body, &user_id)?;

    let created = handle_request(app, &caller, request).await?;
    let mut response = json(StatusCode::OK, &created.response());
    if let Ok(value) = http::HeaderValue::from_str(&created.code_id.to_string()) {
        response.headers_mut().insert(CODE_ID_HEADER, value);
    }
    Ok(response)
}

/// Response header with the id of the code a link carries. The contract's
/// body holds it only for `returnCode`; with it, a `sendLink` caller can ask
/// for the email's delivery status. The id is not a secret (links carry it).
pub const CODE_ID_HEADER: &str = "passlink-code-id";

/// Validates a request and creates its link: the one path JSON, gRPC and
/// gRPC-web all take once they have authenticated the caller and decoded
/// the request, so that they refuse and answer alike.
pub async fn handle_request(
    app: &App,
    caller: &Caller,
    request: LinkRequest<'_>,
) -> Result<Created, ApiError> {
    let medium = request.validate(&app.config.common.allowed_link_schemes)?;
    create_link(app, caller, request.user_id, medium).await
}

/// The result of creating a link, before it is written out in some format.
pub struct Created {
    pub sequence: u64,
    pub change_ms: i64,
    pub organization_id: String,
    pub code_id: Uuid,
    /// Present for `returnCode` only.
    pub code: Option<passlink_shared::code::PlainCode>,
}

impl Created {
    fn response(&self) -> CreateLinkResponse<'_> {
        CreateLinkResponse {
            details: Details::new(self.sequence, self.change_ms, &self.organization_id),
            code: self.code.as_ref().map(|code| CodeBody {
                id: self.code_id.to_string(),
                code: code.expose(),
            }),
        }
    }
}

/// The protocol-independent part: permission, code, record, outbox.
pub async fn create_link(
    app: &App,
    caller: &Caller,
    user_id: &str,
    medium: Medium,
) -> Result<Created, ApiError> {
    let is_self = caller.subject == user_id;
    let scope = caller.scope(PASSKEY_WRITE);
    if scope.is_none() && !is_self {
        return Err(denied());
    }
    let (all_orgs, orgs) = scope.map_or((false, &[][..]), |s| (s.all_orgs, s.orgs));

    let settings = &app.config.common;
    let code = app.codes.generate();
    let code_id = new_id();
    let job_id = new_id();
    let now = now_ms();
    let expires_at_ms = now + passlink_shared::time::millis(settings.code_ttl);
    let code_hash = app.hasher.hash(&code_id, code.expose());

    let job = match &medium {
        Medium::Send(url_template) => Some(
            SendLinkJob {
                v: JOB_VERSION,
                job_id,
                code_id,
                user_id: user_id.to_owned(),
                url_template: url_template.clone(),
                created_at_ms: now,
                expires_at_ms,
                code: settings.sealer.seal(&code_id, &code),
            }
            .to_bytes(),
        ),
        Medium::Return => None,
    };

    let outcome = app
        .store
        .create_link(&CreateLink {
            user_id,
            caller_subject: &caller.subject,
            all_orgs,
            orgs,
            code_id,
            job_id,
            code_hash: &code_hash,
            now_ms: now,
            validity: settings.code_ttl,
            job: job.as_deref(),
            status_retention: settings.status_retention,
            user_limit: app.config.limits.user_links,
            limit_window: app.config.limits.user_window,
        })
        .await
        .map_err(store_error)?;

    match outcome {
        LinkOutcome::Created(created) => {
            if job.is_some() {
                app.metrics.links_send.inc();
                app.relay.wake(app.store.keys().shard_of(user_id));
                tracing::debug!(user.id = user_id, code.id = %code_id, job.id = %job_id,
                    "registration link queued for email");
            } else {
                app.metrics.links_return.inc();
                tracing::debug!(user.id = user_id, code.id = %code_id,
                    "registration code returned to the caller");
            }
            Ok(Created {
                sequence: created.sequence,
                change_ms: now,
                organization_id: created.organization_id,
                code_id,
                code: matches!(medium, Medium::Return).then_some(code),
            })
        }
        LinkOutcome::UserNotFound => Err(user_not_found()),
        LinkOutcome::Denied => Err(denied()),
        LinkOutcome::Limited { retry_after } => {
            tracing::info!(
                user.id = user_id,
                "link refused: too many links for this user"
            );
            Err(ApiError::new(
                passlink_shared::error::Code::ResourceExhausted,
                "RATE-USER-LINKS",
                format!(
                    "Too many registration links for this user; at most {} per {}",
                    app.config.limits.user_links,
                    humantime::format_duration(app.config.limits.user_window)
                ),
            )
            .with_retry_after(retry_after.as_secs().max(1)))
        }
    }
}

fn user_not_found() -> ApiError {
    ApiError::not_found("USER-404", "User could not be found")
}

fn denied() -> ApiError {
    ApiError::denied(
        "AUTH-PERMISSION-DENIED",
        "The caller may not create registration links for this user",
    )
}

/// `GET .../registration_link/{codeId}`: where the email of a link stands.
pub async fn status(
    app: &App,
    req: Request<Incoming>,
    raw_user_id: &str,
    raw_code_id: &str,
) -> Result<HttpResponse, ApiError> {
    let user_id = crate::http::path_segment(raw_user_id)?;
    let caller = app.caller(req.headers()).await?;
    validate_user_id(&user_id)?;
    let code_id: Uuid = raw_code_id
        .parse()
        .map_err(|_| ApiError::invalid("LINK-CODE-ID-INVALID", "codeId must be a UUID"))?;

    if caller.subject != user_id {
        let scope = caller.scope(PASSKEY_WRITE).ok_or_else(denied)?;
        if !scope.all_orgs {
            let user = app.store.get_user(&user_id).await.map_err(store_error)?;
            match user.map(|u| u.user.organization_id) {
                None => return Err(user_not_found()),
                Some(org) if !scope.orgs.contains(&org) => return Err(denied()),
                Some(_) => {}
            }
        }
    }
    status_body(app, &user_id, &code_id).await
}

async fn status_body(app: &App, user_id: &str, code_id: &Uuid) -> Result<HttpResponse, ApiError> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct StatusResponse {
        code_id: String,
        job_id: String,
        state: &'static str,
        attempt: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        next_attempt_date: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        change_date: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        expiration_date: Option<String>,
    }

    let status = app
        .store
        .delivery_status(user_id, &code_id.to_string())
        .await
        .map_err(store_error)?
        .ok_or_else(|| {
            ApiError::not_found(
                "LINK-STATUS-404",
                "No emailed registration link with this id is known for this user",
            )
        })?;
    Ok(json(
        StatusCode::OK,
        &StatusResponse {
            code_id: code_id.to_string(),
            job_id: status.job_id,
            state: status.state.as_str(),
            attempt: status.attempt,
            next_attempt_date: status.next_attempt_ms.map(rfc3339_ms),
            reason: status.reason,
            change_date: rfc3339_ms(status.updated_ms),
            expiration_date: status.expires_ms.map(rfc3339_ms),
        },
    ))
}

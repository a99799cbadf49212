//! The directory's admin endpoints: `PUT`, `GET` and `DELETE`
//! `/admin/v1/users/{userId}`, behind the `user.write` permission.

use http::{Request, StatusCode};
use hyper::body::Incoming;
use passlink_shared::error::ApiError;
use passlink_shared::json::Object;
use passlink_shared::passkey::PasskeyRecord;
use passlink_shared::store::UserChange;
use passlink_shared::time::{now_ms, rfc3339_ms};
use passlink_shared::user::{User, UserInput, validate_user_id};
use serde::Serialize;

use crate::app::App;
use crate::auth::{Caller, Scope, USER_WRITE};
use crate::handlers::{Details, store_error};
use crate::http::{HttpResponse, json, path_segment, read_json};

#[derive(Serialize)]
struct ChangeResponse {
    details: Details,
}

#[derive(Serialize)]
struct UserResponse<'a> {
    user: &'a User,
    passkeys: Vec<PasskeyView>,
    details: Details,
}

/// A registered passkey as the directory shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PasskeyView {
    id: String,
    name: String,
    public_key: String,
    algorithm: i64,
    counter: u32,
    backup_eligible: bool,
    backup_state: bool,
    creation_date: String,
}

impl From<PasskeyRecord> for PasskeyView {
    fn from(record: PasskeyRecord) -> Self {
        Self {
            creation_date: rfc3339_ms(record.created_ms),
            id: record.id,
            name: record.name,
            public_key: record.public_key,
            algorithm: record.algorithm,
            counter: record.counter,
            backup_eligible: record.backup_eligible,
            backup_state: record.backup_state,
        }
    }
}

fn write_scope(caller: &Caller) -> Result<Scope<'_>, ApiError> {
    caller.scope(USER_WRITE).ok_or_else(denied)
}

fn denied() -> ApiError {
    ApiError::denied(
        "AUTH-PERMISSION-DENIED",
        "The caller may not manage this user",
    )
}

fn not_found() -> ApiError {
    ApiError::not_found("USER-404", "User could not be found")
}

pub async fn put(
    app: &App,
    req: Request<Incoming>,
    raw_id: &str,
) -> Result<HttpResponse, ApiError> {
    let user_id = path_segment(raw_id)?;
    let caller = app.caller(req.headers()).await?;
    let scope = write_scope(&caller)?;
    validate_user_id(&user_id)?;
    let Object(input): Object<UserInput> = read_json(req, app.config.http.max_body_bytes).await?;
    let user = input.validate(Some(&user_id))?;

    let now = now_ms();
    let change = app
        .store
        .put_user(&user, now, scope.all_orgs, scope.orgs)
        .await
        .map_err(store_error)?;
    let (status, sequence) = match change {
        UserChange::Created { sequence } => (StatusCode::CREATED, sequence),
        UserChange::Updated { sequence } => (StatusCode::OK, sequence),
        UserChange::Denied => return Err(denied()),
        other => {
            tracing::error!(?other, "unexpected outcome of a user write");
            return Err(ApiError::internal());
        }
    };
    tracing::info!(
        user.id = user.id.as_str(),
        org.id = user.organization_id.as_str(),
        sequence,
        "directory user written"
    );
    Ok(json(
        status,
        &ChangeResponse {
            details: Details::new(sequence, now, &user.organization_id),
        },
    ))
}

pub async fn get(
    app: &App,
    req: Request<Incoming>,
    raw_id: &str,
) -> Result<HttpResponse, ApiError> {
    let user_id = path_segment(raw_id)?;
    let caller = app.caller(req.headers()).await?;
    let scope = write_scope(&caller)?;
    validate_user_id(&user_id)?;

    let stored = app
        .store
        .get_user(&user_id)
        .await
        .map_err(store_error)?
        .ok_or_else(not_found)?;
    if !scope.all_orgs && !scope.orgs.contains(&stored.user.organization_id) {
        return Err(denied());
    }
    let passkeys = app.store.passkeys(&user_id).await.map_err(store_error)?;
    Ok(json(
        StatusCode::OK,
        &UserResponse {
            user: &stored.user,
            passkeys: passkeys.into_iter().map(PasskeyView::from).collect(),
            details: Details::new(
                stored.sequence,
                stored.changed_ms,
                &stored.user.organization_id,
            ),
        },
    ))
}

pub async fn delete(
    app: &App,
    req: Request<Incoming>,
    raw_id: &str,
) -> Result<HttpResponse, ApiError> {
    let user_id = path_segment(raw_id)?;
    let caller = app.caller(req.headers()).await?;
    let scope = write_scope(&caller)?;
    validate_user_id(&user_id)?;

    let now = now_ms();
    let change = app
        .store
        .delete_user(
            &user_id,
            now,
            scope.all_orgs,
            scope.orgs,
            app.config.common.status_retention,
        )
        .await
        .map_err(store_error)?;
    match change {
        UserChange::Deleted {
            sequence,
            organization_id,
        } => {
            tracing::info!(
                user.id = user_id.as_str(),
                org.id = organization_id.as_str(),
                sequence,
                "directory user deleted"
            );
            Ok(json(
                StatusCode::OK,
                &ChangeResponse {
                    details: Details::new(sequence, now, &organization_id),
                },
            ))
        }
        UserChange::NotFound => Err(not_found()),
        UserChange::Denied => Err(denied()),
        other => {
            tracing::error!(?other, "unexpected outcome of a user delete");
            Err(ApiError::internal())
        }
    }
}

//! Liveness and readiness for orchestrators.

use http::StatusCode;
use serde::Serialize;

use crate::app::App;
use crate::http::{HttpResponse, json};

#[derive(Serialize)]
struct Health {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    redis: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rabbitmq: Option<&'static str>,
}

/// The process runs and answers.
pub fn alive() -> HttpResponse {
    json(
        StatusCode::OK,
        &Health {
            status: "ok",
            redis: None,
            rabbitmq: None,
        },
    )
}

/// Redis answers and every relay task holds a broker connection. Links are
/// still accepted while RabbitMQ is away (they wait in the outbox), but an
/// operator wants to know.
pub async fn ready(app: &App) -> HttpResponse {
    let redis_ok = tokio::time::timeout(std::time::Duration::from_secs(2), app.store.ping())
        .await
        .is_ok_and(|r| r.is_ok());
    let rabbit_ok = app.relay.is_connected();
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let status = if redis_ok && rabbit_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(
        status,
        &Health {
            status: word(redis_ok && rabbit_ok),
            redis: Some(word(redis_ok)),
            rabbitmq: Some(word(rabbit_ok)),
        },
    )
}

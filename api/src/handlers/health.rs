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

/// Ready while Redis answers: that is all a link needs, since jobs wait in
/// the outbox while RabbitMQ is away. A broker outage shows as `degraded`
/// (and in the `relay_connected` metric) without taking every API process
/// out of a load balancer's rotation, which would turn it into an outage of
/// the whole service.
pub async fn ready(app: &App) -> HttpResponse {
    let redis_ok = tokio::time::timeout(std::time::Duration::from_secs(2), app.store.ping())
        .await
        .is_ok_and(|r| r.is_ok());
    let rabbit_ok = app.relay.is_connected();
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let (status, overall) = match (redis_ok, rabbit_ok) {
        (true, true) => (StatusCode::OK, "ok"),
        (true, false) => (StatusCode::OK, "degraded"),
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
    };
    json(
        status,
        &Health {
            status: overall,
            redis: Some(word(redis_ok)),
            rabbitmq: Some(word(rabbit_ok)),
        },
    )
}

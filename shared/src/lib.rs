//! The Passlink domain shared by the API and the worker: codes, link
//! templates, jobs, the Redis store, the RabbitMQ topology, the error model
//! and configuration.

pub mod amqp;
pub mod code;
pub mod config;
pub mod error;
pub mod job;
pub mod json;
pub mod link_request;
pub mod link_template;
pub mod metrics;
pub mod passkey;
pub mod seal;
pub mod settings;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod time;
pub mod user;

//! The StormOps sync server as a library: the router (`app::router`), its handlers, auth, metrics, the
//! OpenAPI document and the operator commands. `main.rs` only parses the command line.

pub mod app;
pub mod arms;
pub mod auth;
pub mod cli;
pub mod error;
pub mod extract;
pub mod health_cli;
pub mod learning;
pub mod lifecycle_cli;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod operator;
pub mod plan_commands;
pub mod property_csv;
pub mod provisioning;
pub mod rate_limit;
pub mod routes;
pub mod serve;
pub mod state;
pub mod system_cli;
pub mod usage_task;

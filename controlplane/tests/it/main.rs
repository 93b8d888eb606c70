//! The control plane's integration tests: one binary (compiled and linked once), one
//! module per area. Every test starts its own server on port 0 with its own database and
//! NATS subject prefix against the real PostgreSQL and NATS that `make test` starts (see
//! `common`), so the tests run in parallel and in any order. `TEST_LOG=1` shows the logs.

mod common;

mod accounts;
mod audit;
mod auth;
mod bounded_events;
mod breakers;
mod budget_http;
mod budget_nats;
mod concurrency;
mod dashboard_api;
mod dlq;
mod fuzz_findings;
mod governance;
mod group_commit;
mod hardening;
mod idle_budgets;
mod live;
mod nats_auth;
mod pipeline;
mod request_drain;
mod route_matrix;
mod sandbox_audit;
mod sandbox_proxy;
mod slow_storage;
mod stream_ownership;
mod watermark;
mod zero_loss;

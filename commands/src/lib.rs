//! The write side of the control plane.
//!
//! A command arrives (over HTTP through the gateway, or over NATS through [`budget_nats`]
//! and the other `*_nats` files, served by [`request_server`]), is parsed and validated
//! ([`api`] and the other `*_api` files), and is executed by its aggregate's service
//! ([`budget::BudgetService`], [`breaker::BreakerService`], [`dlq::DlqService`]) on the
//! shared [`executor::Executor`] (one per aggregate type, all over one [`store::EventStore`]):
//! the command waits in its aggregate's bounded queue (at most a deadline), the
//! aggregate decides, the events of every command waiting together are appended to the
//! PostgreSQL event store with optimistic concurrency (in one statement with the appends of
//! every other aggregate waiting at that moment, [`store`]), and the answer goes back.
//! Commands to one aggregate are serialised inside the process; conflicts with other
//! processes are retried after catching up. Every command is idempotent, so a retry never
//! applies twice.
#![forbid(unsafe_code)]

pub mod api;
pub mod arrival_order;
pub mod breaker;
pub mod breaker_api;
pub mod breaker_nats;
pub mod breaker_outcomes;
pub mod budget;
pub mod budget_nats;
pub mod clock;
pub mod dlq;
pub mod dlq_api;
pub mod dlq_capture;
pub mod dlq_nats;
pub mod dlq_redrive;
pub mod error;
pub mod executor;
pub mod expiry;
pub mod request_server;
pub mod sandbox_audit;
pub mod services;
pub mod store;

pub use error::CommandError;

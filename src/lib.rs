//! tfjob-operator: the I/O shell around [`tfjob_core`]'s pure planner.
//!
//! - [`controller`]: watches, caches, the reconcile callback and the writes it makes;
//! - [`ops`]: metrics, health and readiness, leader election, the client stack, logging;
//! - [`webhook`]: the admission webhook (validation, optional defaulting, certificates);
//! - [`config`]: the command line, parsed into each part's settings;
//! - [`runtime`]: the process lifecycle (servers, leadership, controller, ordered shutdown);
//! - [`check`]: the preflight (`tfjob-operator check`).

pub mod check;
pub mod config;
pub mod controller;
pub mod ops;
pub mod runtime;
pub mod webhook;

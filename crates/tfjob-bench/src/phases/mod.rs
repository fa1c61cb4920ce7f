//! The benchmark's phases, each in its own namespace.

pub mod backlog;
pub mod bare;
pub mod conditions;
pub mod cost;
pub mod crd_variants;
pub mod job_controller;
pub mod large;
pub mod memory;
pub mod open_loop;
pub mod price;
pub mod tfjob;

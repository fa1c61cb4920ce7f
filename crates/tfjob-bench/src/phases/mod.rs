//! The benchmark's phases, each in its own namespace.

pub mod bare;
pub mod cost;
pub mod job_controller;
pub mod large;
pub mod memory;
pub mod tfjob;

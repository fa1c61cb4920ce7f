//! The production operations layer: everything the operator needs to run as a well-behaved
//! service, independent of TFJob logic. The controller wires these together:
//!
//! * [`telemetry`]: process-wide logging (text or JSON, EnvFilter);
//! * [`metrics`]: Prometheus metrics on a private registry;
//! * [`client`]: the kube `Client` with rate limiting, request metrics and User-Agent;
//! * [`server`]: `/metrics`, `/healthz`, `/readyz` over HTTP, and the readiness flags;
//! * [`liveness`]: what `/healthz` checks beyond the process being up (a stalled queue);
//! * [`leader`]: Lease-based leader election.

pub mod client;
pub mod leader;
pub mod liveness;
pub mod metrics;
pub mod server;
pub mod telemetry;

pub use client::{ClientError, RateLimit, build_client};
pub use leader::{LeaderElection, LeaderError, LeaderHandle, LeaseTimings, default_identity};
pub use liveness::Liveness;
pub use metrics::{JobSample, JobStateSource, Metrics, MetricsError, ReconcileTimer};
pub use server::{LeaderState, OpsServer, Readiness, ServerError};
pub use telemetry::{LogFormat, TelemetryError};

//! A simulated kubelet for the local, kubelet-less control plane (`hack/control-plane.sh`).
//!
//! It watches pods, binds new ones to a fake node (creating the `Node` if missing, then POSTing
//! `pods/<name>/binding`) and moves them Pending → Running → Succeeded/Failed with the status a
//! real kubelet writes: `phase`, the `PodScheduled`/`Initialized`/`ContainersReady`/`Ready`
//! conditions, `hostIP`/`podIP`, `startTime` and a `containerStatuses` entry per container
//! (`imageID`, `containerID`, `ready`, `started`, `restartCount`, `state`, `lastState`).
//!
//! Like a kubelet it
//! - restarts containers **in place** when the pod's `restartPolicy` says so (`Always`: any
//!   exit; `OnFailure`: non-zero exit): `restartCount` + 1, `lastState.terminated` filled, phase
//!   stays `Running`. Under `Never` the pod ends `Succeeded` (exit 0) or `Failed`;
//! - reports reasons `Completed` (exit 0), `Error` (other codes) or the configured one
//!   (e.g. `OOMKilled` with 137);
//! - honours deletion: a pod with a `deletionTimestamp` gets its containers stopped (exit 143
//!   after SIGTERM, 137 if they outlive the grace period) and is then deleted with grace period 0,
//!   otherwise bound pods would stay `Terminating` forever.
//!
//! # Behaviour annotations
//!
//! Each pod is driven by annotations (usually from the TFJob's pod template), all under
//! [`ANNOTATION_PREFIX`] = `sim.tfjob-operator.dev/`:
//!
//! | annotation | value | default | meaning |
//! |---|---|---|---|
//! | `pending-ms` | ms | `100` | time from binding until the containers run; `0` skips the `Pending` report (one write less per pod) |
//! | `run-ms` | ms | `1000` | how long each container run lasts before it exits |
//! | `exit-code` | integer | `0` (`1` if `fail-attempts` is set, `137` if `reason` is `OOMKilled`) | exit code of failing runs |
//! | `reason` | string | `Completed` / `Error` from the code | termination reason of failing runs, e.g. `OOMKilled` |
//! | `fail-attempts` | `all`, `none`, `1,2`, `1-3`, `4-` | `all` | which attempts exit with `exit-code`; the others exit 0 |
//! | `run-forever` | `true`/`false` | `false` | containers never exit on their own (until deleted or driven by a test) |
//! | `restart-delay-ms` | ms | `0` | CrashLoopBackOff wait before an in-place restart (the container shows `waiting`) |
//! | `stop-ms` | ms | `0` | time containers take to exit after SIGTERM; at or beyond the grace period they are SIGKILLed (137) |
//! | `manual` | `true`/`false` | `false` | only bind and finalise deletion; the test drives the status with the helpers below |
//! | `log` | text | the container's `TF_CONFIG` | what the container prints, line by line (then `exited with code N` once it ends); see [`logs`] |
//!
//! Container logs are served the way a kubelet serves them (HTTPS, `/containerLogs/…`): the
//! node advertises this process as its kubelet, so `kubectl logs`, `pods/log` and
//! `kubectl tfjob logs` work on a control plane without real nodes.
//!
//! An **attempt** is one container run of a pod *name* in its namespace: the first run of the
//! first pod is attempt 1, each in-place restart and each new pod (a new UID) with the same name
//! continues the count. So `fail-attempts: "1,2"` with `exit-code: "3"` fails twice, then succeeds,
//! whether the operator restarts in place (`OnFailure`) or re-creates the pod (`ExitCode`/`Never`).
//! Invalid annotation values are logged and the defaults used.
//!
//! # Use
//! - In-process from tests: [`SimKubelet::spawn`]`(client, config)`; the loop stops when the
//!   handle is dropped or [`SimKubelet::shutdown`] is awaited.
//! - Directly from tests, without the loop: [`set_running`], [`terminate`], [`restart_in_place`],
//!   [`bind`], [`finalize`] (pods not yet bound are bound to [`DEFAULT_NODE`] first).
//! - As a process: the `tfjob-sim-kubelet` binary (`--help`).
//!
//! # Layout
//! [`behaviour`] reads annotations and [`lifecycle`] decides the next step (both pure);
//! [`status`] builds the status for a step (pure); [`actions`] does the API writes;
//! [`driver`] is the watch loop with one timer task per pod and bounded write concurrency.

pub mod actions;
pub mod behaviour;
pub mod driver;
pub mod lifecycle;
pub mod logs;
pub mod status;

pub use actions::{
    DEFAULT_NODE, DEFAULT_NODE_IP, bind, ensure_node, finalize, restart_in_place, set_running,
    terminate,
};
pub use behaviour::{ANNOTATION_PREFIX, Behaviour, BehaviourError};
pub use driver::{SimKubelet, SimKubeletConfig, run};

/// Errors of the simulated kubelet's API calls.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// kube's error text already includes its causes.
    #[error("Kubernetes API call failed: {0}")]
    Kube(#[from] kube::Error),
    #[error("pod {pod} is already bound to a node: {message}")]
    AlreadyBound { pod: String, message: String },
    #[error("pod {pod} has no status to report before it is bound")]
    NothingToReport { pod: String },
}

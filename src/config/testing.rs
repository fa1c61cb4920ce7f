//! Test support for the flag groups: clap reads the real process environment, and changing that
//! is `unsafe` (Rust 2024: it races with every thread that reads it), which the workspace forbids.
//! So a test that needs given `TFJOB_*` variables runs again in a child process of the test
//! binary that has exactly those variables.

/// Every environment variable a flag of `run` reads.
pub const ENV_VARS: &[&str] = &[
    "TFJOB_NAMESPACES",
    "TFJOB_JOB_SELECTOR",
    "TFJOB_CONCURRENCY",
    "TFJOB_KUBE_API_QPS",
    "TFJOB_KUBE_API_BURST",
    "TFJOB_REQUEST_TIMEOUT",
    "TFJOB_STALL_TIMEOUT",
    "TFJOB_STUCK_TERMINATING_AFTER",
    "TFJOB_PENDING_THRESHOLD",
    "TFJOB_STATUS_BATCH_WINDOW",
    "TFJOB_PENDING_DEADLINE",
    "TFJOB_FORCE_DELETE_STUCK_PODS",
    "TFJOB_WATCH_TIMEOUT_SECONDS",
    "TFJOB_LIST_PAGE_SIZE",
    "TFJOB_METRICS_BIND_ADDRESS",
    "TFJOB_HEALTH_PROBE_BIND_ADDRESS",
    "TFJOB_LEADER_ELECT",
    "TFJOB_LEADER_ELECTION_ID",
    "TFJOB_LEADER_ELECTION_NAMESPACE",
    "TFJOB_LEASE_DURATION",
    "TFJOB_RENEW_DEADLINE",
    "TFJOB_RETRY_PERIOD",
    "TFJOB_GANG_SCHEDULER_NAME",
    "TFJOB_SERVICE_MODE",
    "CUSTOM_CLUSTER_DOMAIN",
    "TFJOB_ALLOW_UPSTREAM_CRD",
    "TFJOB_LOG_LEVEL",
    "TFJOB_LOG_FORMAT",
    "TFJOB_WEBHOOK_ENABLED",
    "TFJOB_WEBHOOK_SERVER_PORT",
    "TFJOB_WEBHOOK_CERT_MODE",
    "TFJOB_WEBHOOK_CERT_DIR",
    "TFJOB_WEBHOOK_SERVICE_NAME",
    "TFJOB_WEBHOOK_SERVICE_NAMESPACE",
    "TFJOB_WEBHOOK_CERT_EXTRA_SANS",
    "TFJOB_WEBHOOK_CERT_VALIDITY",
    "TFJOB_WEBHOOK_CERT_ROTATE_BEFORE",
    "TFJOB_VALIDATING_WEBHOOK_CONFIG_NAME",
    "TFJOB_MUTATING_WEBHOOK_CONFIG_NAME",
    "TFJOB_WEBHOOK_DEFAULTING",
];

/// Set in the child process that [`run_here_with`] starts.
const CHILD_MARKER: &str = "TFJOB_CONFIG_TEST_CHILD";

/// Whether the calling test may go on in this process, where exactly `vars` are set among
/// [`ENV_VARS`]. Otherwise the test (`module`, from `module_path!()`, and its name) runs again
/// in a child process given exactly `vars`, its success is asserted here, and `false` tells the
/// caller to return.
pub fn run_here_with(module: &str, test: &str, vars: &[(&str, &str)]) -> bool {
    for (key, _) in vars {
        assert!(ENV_VARS.contains(key), "{key} must be listed in ENV_VARS");
    }
    let wanted = |key: &str| vars.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    if ENV_VARS
        .iter()
        .all(|key| std::env::var(key).ok().as_deref() == wanted(key))
    {
        return true;
    }
    assert!(
        std::env::var_os(CHILD_MARKER).is_none(),
        "the child process did not get the environment it was started with"
    );
    // libtest names tests by their path without the crate.
    let path = module.split_once("::").map_or(module, |(_, rest)| rest);
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"));
    child
        .args([&format!("{path}::{test}"), "--exact", "--test-threads=1"])
        .env(CHILD_MARKER, "1");
    for key in ENV_VARS {
        child.env_remove(key);
    }
    let output = child
        .envs(vars.iter().copied())
        .output()
        .expect("run the test binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{test} with {vars:?} failed in a child process:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    false
}

/// Parses `args` as the command line of a flag group `G`.
pub fn parse<G: clap::Args>(args: &[&str]) -> Result<G, clap::Error> {
    let command = G::augment_args(clap::Command::new("tfjob-operator"));
    let matches = command
        .try_get_matches_from(std::iter::once("tfjob-operator").chain(args.iter().copied()))?;
    G::from_arg_matches(&matches)
}

/// [`parse`], panicking with the error when the arguments do not parse.
pub fn parse_ok<G: clap::Args>(args: &[&str]) -> G {
    parse(args).unwrap_or_else(|e| panic!("{args:?} should parse: {e}"))
}

/// Asserts that each command line is rejected by `G`'s parser with an error naming its flag.
pub fn assert_each_rejected<G: clap::Args + std::fmt::Debug>(cases: &[(&[&str], &str)]) {
    for (args, flag) in cases {
        let err = parse::<G>(args).expect_err(&format!("{args:?} should fail"));
        assert!(err.to_string().contains(flag), "{args:?}: {err}");
    }
}

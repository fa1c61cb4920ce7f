//! Leader election: on or off, the Lease's name and namespace, and its timings.

use std::time::Duration;

use clap::builder::BoolishValueParser;

use super::values::{ConfigError, check_namespace, check_subdomain, own_namespace, parse_duration};
use crate::ops::leader::LeaseTimings;

/// This operator's own Lease. Not upstream's (`1ca428e5.training-operator.kubeflow.org`):
/// sharing it would let a training-operator kept for PyTorch or MPI jobs block this operator (or
/// be blocked by it), and in two different namespaces it would exclude nothing at all. Pass
/// upstream's name with `--leader-election-id` to take over from a training-operator whose
/// TFJob controller is being replaced (see docs/migration.md).
pub const DEFAULT_LEADER_ELECTION_ID: &str = "tfjob-operator.kubeflow.org";

/// Flags of leader election.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Leader election")]
pub struct LeaderArgs {
    /// Run leader election on a coordination.k8s.io Lease so that only one replica reconciles.
    /// Accepts `--leader-elect`, `--leader-elect=true|false`.
    #[arg(
        long,
        env = "TFJOB_LEADER_ELECT",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        default_value_t = false,
        action = clap::ArgAction::Set,
        value_parser = BoolishValueParser::new()
    )]
    pub leader_elect: bool,

    /// Name of the leader-election Lease. This operator's own by default; upstream's
    /// (`1ca428e5.training-operator.kubeflow.org`) only to take over from a training-operator
    /// that must not reconcile TFJobs at the same time.
    #[arg(
        long,
        value_name = "NAME",
        env = "TFJOB_LEADER_ELECTION_ID",
        default_value = DEFAULT_LEADER_ELECTION_ID
    )]
    pub leader_election_id: String,

    /// Namespace of the leader-election Lease. Unset: POD_NAMESPACE, then MY_POD_NAMESPACE, then
    /// the in-cluster service account's namespace, then `default`.
    #[arg(
        long,
        value_name = "NAMESPACE",
        env = "TFJOB_LEADER_ELECTION_NAMESPACE"
    )]
    pub leader_election_namespace: Option<String>,

    /// How long a Lease stays valid after its last renewal; other replicas take over after it.
    #[arg(
        long,
        value_name = "DURATION",
        env = "TFJOB_LEASE_DURATION",
        default_value = "15s",
        value_parser = parse_duration
    )]
    pub lease_duration: Duration,

    /// How long the leader keeps retrying a failed renewal before it stops leading.
    #[arg(
        long,
        value_name = "DURATION",
        env = "TFJOB_RENEW_DEADLINE",
        default_value = "10s",
        value_parser = parse_duration
    )]
    pub renew_deadline: Duration,

    /// Time between leader-election attempts (acquire or renew).
    #[arg(
        long,
        value_name = "DURATION",
        env = "TFJOB_RETRY_PERIOD",
        default_value = "2s",
        value_parser = parse_duration
    )]
    pub retry_period: Duration,
}

impl LeaderArgs {
    /// Checks the Lease name and namespace and the relations between the timings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_subdomain("--leader-election-id", &self.leader_election_id)?;
        check_namespace("--leader-election-namespace", &self.namespace())?;
        self.timings()
            .validate()
            .map_err(|e| ConfigError::Inconsistent {
                flags: "--lease-duration/--renew-deadline/--retry-period",
                reason: e.to_string(),
            })
    }

    /// Namespace of the Lease (see the flag's help for the fallback order).
    pub fn namespace(&self) -> String {
        own_namespace(self.leader_election_namespace.clone())
    }

    /// Leader-election timings from `--lease-duration`, `--renew-deadline`, `--retry-period`.
    pub fn timings(&self) -> LeaseTimings {
        LeaseTimings {
            lease_duration: self.lease_duration,
            renew_deadline: self.renew_deadline,
            retry_period: self.retry_period,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{assert_each_rejected, parse, parse_ok, run_here_with};

    #[test]
    fn defaults_and_every_flag() {
        if !run_here_with(module_path!(), "defaults_and_every_flag", &[]) {
            return;
        }
        let defaults: LeaderArgs = parse_ok(&[]);
        assert!(!defaults.leader_elect);
        assert_eq!(defaults.leader_election_id, DEFAULT_LEADER_ELECTION_ID);
        assert_eq!(defaults.leader_election_namespace, None);
        assert_eq!(defaults.timings(), LeaseTimings::default());
        assert_eq!(defaults.lease_duration, Duration::from_secs(15));
        assert_eq!(defaults.renew_deadline, Duration::from_secs(10));
        assert_eq!(defaults.retry_period, Duration::from_secs(2));

        let args: LeaderArgs = parse_ok(&[
            "--leader-elect",
            "--leader-election-id=my-lease",
            "--leader-election-namespace=ops",
            "--lease-duration=30s",
            "--renew-deadline=20s",
            "--retry-period=500ms",
        ]);
        assert!(args.leader_elect);
        assert_eq!(args.leader_election_id, "my-lease");
        assert_eq!(args.namespace(), "ops");
        assert_eq!(
            args.timings(),
            LeaseTimings {
                lease_duration: Duration::from_secs(30),
                renew_deadline: Duration::from_secs(20),
                retry_period: Duration::from_millis(500),
            }
        );
        assert_eq!(args.validate(), Ok(()));
    }

    #[test]
    fn every_flag_parses_from_the_environment() {
        if !run_here_with(
            module_path!(),
            "every_flag_parses_from_the_environment",
            &[
                ("TFJOB_LEADER_ELECT", "true"),
                ("TFJOB_LEADER_ELECTION_ID", "lease-x"),
                ("TFJOB_LEADER_ELECTION_NAMESPACE", "kubeflow"),
                ("TFJOB_LEASE_DURATION", "1m"),
                ("TFJOB_RENEW_DEADLINE", "40s"),
                ("TFJOB_RETRY_PERIOD", "5s"),
            ],
        ) {
            return;
        }
        let args: LeaderArgs = parse_ok(&[]);
        assert!(args.leader_elect);
        assert_eq!(args.leader_election_id, "lease-x");
        assert_eq!(args.namespace(), "kubeflow");
        assert_eq!(args.lease_duration, Duration::from_secs(60));
        assert_eq!(args.renew_deadline, Duration::from_secs(40));
        assert_eq!(args.retry_period, Duration::from_secs(5));
        // The command line wins over the environment.
        assert!(!parse_ok::<LeaderArgs>(&["--leader-elect=false"]).leader_elect);
    }

    #[test]
    fn leader_elect_accepts_go_style_booleans() {
        if !run_here_with(
            module_path!(),
            "leader_elect_accepts_go_style_booleans",
            &[],
        ) {
            return;
        }
        let elect = |args: &[&str]| parse::<LeaderArgs>(args).map(|a| a.leader_elect);
        assert!(matches!(elect(&["--leader-elect"]), Ok(true)));
        assert!(matches!(elect(&["--leader-elect=true"]), Ok(true)));
        assert!(matches!(elect(&["--leader-elect=false"]), Ok(false)));
        assert!(matches!(elect(&["--leader-elect=0"]), Ok(false)));
        // A bare flag must not swallow the next argument as its value.
        assert!(elect(&["--leader-elect", "true"]).is_err());
        assert!(elect(&["--leader-elect=maybe"]).is_err());
    }

    #[test]
    fn bad_values_are_rejected_naming_the_flag() {
        if !run_here_with(
            module_path!(),
            "bad_values_are_rejected_naming_the_flag",
            &[],
        ) {
            return;
        }
        assert_each_rejected::<LeaderArgs>(&[
            (&["--lease-duration=15"][..], "--lease-duration"),
            (&["--renew-deadline=-5s"], "--renew-deadline"),
            (&["--retry-period=soon"], "--retry-period"),
        ]);
        let err = parse_ok::<LeaderArgs>(&["--leader-election-id=Not A Name"])
            .validate()
            .expect_err("invalid lease name");
        assert!(err.to_string().contains("--leader-election-id"), "{err}");
    }

    #[test]
    fn bad_environment_values_are_rejected_naming_the_flag() {
        if !run_here_with(
            module_path!(),
            "bad_environment_values_are_rejected_naming_the_flag",
            &[("TFJOB_LEASE_DURATION", "forever")],
        ) {
            return;
        }
        let message = parse::<LeaderArgs>(&[]).expect_err("bad env").to_string();
        assert!(message.contains("--lease-duration"), "{message}");
    }

    #[test]
    fn lease_timings_must_be_ordered() {
        if !run_here_with(module_path!(), "lease_timings_must_be_ordered", &[]) {
            return;
        }
        let args: LeaderArgs = parse_ok(&["--lease-duration=10s", "--renew-deadline=10s"]);
        let err = args
            .validate()
            .expect_err("renew deadline == lease duration");
        assert!(err.to_string().contains("--lease-duration"), "{err}");

        let args: LeaderArgs = parse_ok(&["--renew-deadline=2s", "--retry-period=2s"]);
        let err = args.validate().expect_err("retry period too long");
        assert!(err.to_string().contains("--retry-period"), "{err}");
    }
}

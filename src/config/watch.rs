//! What the controller watches and how it reconciles: namespaces, the job selector, concurrency,
//! the watch and list parameters, and the settings that shape children (service mode, gang
//! scheduler, cluster domain).

use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use kube::core::Selector;
use tfjob_core::api::ServiceMode;
use tfjob_core::api::podgroup::GangScheduler;
use tfjob_core::plan::PlanConfig;

use super::selector::parse_label_selector;
use super::values::{ConfigError, check_namespace, parse_duration};
use crate::controller::Settings;

/// Flags of the watches and the reconciler.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Watching and reconciling")]
pub struct WatchArgs {
    /// Namespace to watch; repeat the flag or separate names with commas. Unset: the single
    /// namespace in KUBEFLOW_NAMESPACE (upstream's variable) if set, else all namespaces. An
    /// explicit empty value means all namespaces.
    #[arg(
        long = "namespace",
        value_name = "NAMESPACE",
        env = "TFJOB_NAMESPACES",
        value_delimiter = ','
    )]
    pub namespaces: Vec<String>,

    /// Only reconcile TFJobs matching this label selector (e.g. `shard=a` or `shard in (a,b)`),
    /// to shard jobs across operator instances. Unset: all TFJobs.
    #[arg(long, value_name = "SELECTOR", env = "TFJOB_JOB_SELECTOR", value_parser = parse_job_selector)]
    pub job_selector: Option<Selector>,

    /// Maximum number of TFJobs reconciled at the same time.
    #[arg(
        long,
        visible_alias = "controller-threads",
        value_name = "N",
        env = "TFJOB_CONCURRENCY",
        default_value_t = 32,
        value_parser = clap::value_parser!(u16).range(1..)
    )]
    pub concurrency: u16,

    /// Server-side timeout of each watch request. Kept below common load-balancer idle timeouts
    /// (240 s on Azure) so the apiserver, not a middlebox, ends quiet watches.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "TFJOB_WATCH_TIMEOUT_SECONDS",
        default_value_t = 200,
        value_parser = clap::value_parser!(u32).range(1..=3600)
    )]
    pub watch_timeout_seconds: u32,

    /// Page size (`limit`) of the initial LIST of each watch. Smaller than client-go's 500:
    /// a page of pods decodes to several MB that the allocator keeps after a (re-)list.
    #[arg(
        long,
        value_name = "N",
        env = "TFJOB_LIST_PAGE_SIZE",
        default_value_t = 100,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub list_page_size: u32,

    /// Gang scheduler: `volcano`, another scheduler-plugins scheduler name, or empty for none.
    #[arg(
        long,
        value_name = "NAME",
        env = "TFJOB_GANG_SCHEDULER_NAME",
        default_value = ""
    )]
    pub gang_scheduler_name: String,

    /// Which Services to create for a TFJob: one headless Service per replica (upstream), or one
    /// headless Service per job.
    #[arg(
        long,
        value_name = "MODE",
        env = "TFJOB_SERVICE_MODE",
        default_value = "per-replica",
        value_parser = PossibleValuesParser::new(ServiceMode::VALUES)
            .map(|s| s.parse::<ServiceMode>().unwrap_or_default())
    )]
    pub service_mode: ServiceMode,

    /// Cluster domain appended to the hosts in TF_CONFIG (e.g. `cluster.local`); upstream's
    /// environment variable.
    #[arg(long, value_name = "DOMAIN", env = "CUSTOM_CLUSTER_DOMAIN")]
    pub custom_cluster_domain: Option<String>,

    /// Run even when the installed TFJob CRD is upstream's, which drops the status fields of
    /// this operator's fixes (restart counts across pod re-creations, completed indices, restart
    /// de-duplication): those fall back to training-operator's behaviour, each affected job gets
    /// a Warning event, and tfjob_operator_crd_compatible is 0. Without it the operator refuses
    /// to start and names the command that replaces the CRD.
    #[arg(
        long,
        env = "TFJOB_ALLOW_UPSTREAM_CRD",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        default_value_t = false,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub allow_upstream_crd: bool,

    /// How long a job's pod may stay Pending, for no lasting reason, before the job's condition
    /// says it cannot start (with one PodCannotStart Warning). Lasting causes (ImagePullBackOff,
    /// InvalidImageName, CreateContainerConfigError, Unschedulable) are told at once.
    #[arg(
        long,
        value_name = "DURATION",
        env = "TFJOB_PENDING_THRESHOLD",
        default_value = "5m",
        value_parser = parse_duration
    )]
    pub pending_threshold: Duration,

    /// Fail a job when one of its pods waits to start longer than this (a bad image, no node
    /// that fits), cleaning up per its cleanPodPolicy so the resources it holds are freed. Off
    /// unless set; a job's `tfjob-operator.dev/pending-deadline` annotation overrides it.
    #[arg(
        long,
        value_name = "DURATION",
        env = "TFJOB_PENDING_DEADLINE",
        value_parser = parse_duration
    )]
    pub pending_deadline: Option<Duration>,

    /// How long a job's progress (Created, pods starting or finishing; its Running condition
    /// half as long) is gathered before its status is written once: a TFJob status patch is
    /// one of the dearest writes an apiserver serves. Succeeded, Failed, Restarting and
    /// failures are written at once; 0 writes every change as it happens.
    #[arg(
        long,
        value_name = "DURATION",
        env = "TFJOB_STATUS_BATCH_WINDOW",
        default_value = "1s",
        value_parser = parse_duration
    )]
    pub status_batch_window: Duration,

    /// How long past its deletion's due time (deletionTimestamp) a pod counts as stuck
    /// Terminating: its job then gets a Warning and its condition names the pod and its node.
    #[arg(
        long,
        value_name = "DURATION",
        env = "TFJOB_STUCK_TERMINATING_AFTER",
        default_value = "5m",
        value_parser = parse_duration
    )]
    pub stuck_terminating_after: Duration,

    /// Force-delete (grace period 0) a pod stuck Terminating whose node is gone or NotReady
    /// for longer than --stuck-terminating-after, so its replica is created again (counted as
    /// a restart against backoffLimit). Needs `get` on nodes. Only safe when a NotReady node's
    /// workloads are really gone: a partitioned node may still run the old pod.
    #[arg(
        long,
        env = "TFJOB_FORCE_DELETE_STUCK_PODS",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        default_value_t = false,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub force_delete_stuck_pods: bool,
}

/// Which namespaces the operator watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceScope {
    /// Every namespace (cluster-wide watches).
    All,
    /// These namespaces only: sorted, deduplicated, never empty.
    Only(Vec<String>),
}

impl NamespaceScope {
    /// Whether a TFJob in `namespace` is in scope.
    pub fn contains(&self, namespace: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(namespaces) => namespaces.iter().any(|ns| ns == namespace),
        }
    }
}

impl WatchArgs {
    /// Checks the namespace names (including the KUBEFLOW_NAMESPACE fallback).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.namespace_scope().map(drop)
    }

    /// The namespaces to watch: the flag/`TFJOB_NAMESPACES`, else `KUBEFLOW_NAMESPACE`, else all.
    pub fn namespace_scope(&self) -> Result<NamespaceScope, ConfigError> {
        self.namespace_scope_with(std::env::var("KUBEFLOW_NAMESPACE").ok())
    }

    fn namespace_scope_with(
        &self,
        kubeflow_namespace: Option<String>,
    ) -> Result<NamespaceScope, ConfigError> {
        let (flag, given) = if self.namespaces.is_empty() {
            (
                "KUBEFLOW_NAMESPACE",
                kubeflow_namespace.into_iter().collect(),
            )
        } else {
            ("--namespace", self.namespaces.clone())
        };
        let mut namespaces = Vec::new();
        for ns in given.iter().map(|ns| ns.trim()).filter(|ns| !ns.is_empty()) {
            check_namespace(flag, ns)?;
            namespaces.push(ns.to_string());
        }
        namespaces.sort();
        namespaces.dedup();
        Ok(if namespaces.is_empty() {
            NamespaceScope::All
        } else {
            NamespaceScope::Only(namespaces)
        })
    }

    /// The controller's settings; `instance` names this replica in events.
    /// How pods are addressed, for the webhook's TF_CONFIG size check.
    pub fn placement(&self) -> crate::webhook::Placement {
        crate::webhook::Placement {
            service_mode: self.service_mode,
            cluster_domain: self.custom_cluster_domain.clone(),
        }
    }

    pub fn settings(&self, instance: String) -> Result<Settings, ConfigError> {
        let namespaces = match self.namespace_scope()? {
            NamespaceScope::All => vec![],
            NamespaceScope::Only(namespaces) => namespaces,
        };
        Ok(Settings {
            namespaces,
            job_selector: self.job_selector.as_ref().map(ToString::to_string),
            concurrency: self.concurrency,
            watch_timeout_seconds: self.watch_timeout_seconds,
            list_page_size: self.list_page_size,
            plan: PlanConfig {
                cluster_domain: self.custom_cluster_domain.clone(),
                service_mode: self.service_mode,
                gang: GangScheduler::from_flag(&self.gang_scheduler_name),
                stuck_after: self.stuck_terminating_after,
                force_delete_stuck: self.force_delete_stuck_pods,
                pending_threshold: self.pending_threshold,
                pending_deadline: self.pending_deadline.filter(|d| !d.is_zero()),
                status_batch_window: self.status_batch_window,
            },
            instance,
            allow_upstream_crd: self.allow_upstream_crd,
        })
    }
}

fn parse_job_selector(s: &str) -> Result<Selector, String> {
    parse_label_selector(s).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{assert_each_rejected, parse_ok, run_here_with};

    #[test]
    fn defaults() {
        if !run_here_with(module_path!(), "defaults", &[]) {
            return;
        }
        let args: WatchArgs = parse_ok(&[]);
        assert!(args.namespaces.is_empty());
        assert_eq!(args.namespace_scope_with(None), Ok(NamespaceScope::All));
        assert!(args.job_selector.is_none());
        assert_eq!(args.concurrency, 32);
        assert_eq!(args.watch_timeout_seconds, 200);
        assert_eq!(args.list_page_size, 100);
        assert_eq!(args.gang_scheduler_name, "");
        assert_eq!(args.service_mode, ServiceMode::PerReplica);
        assert_eq!(args.custom_cluster_domain, None);
        assert!(!args.allow_upstream_crd);
        let settings = args.settings("me".into()).expect("valid");
        assert_eq!(settings.plan.gang, None);
        assert_eq!(settings.instance, "me");
    }

    #[test]
    fn every_flag_parses_from_the_command_line() {
        if !run_here_with(
            module_path!(),
            "every_flag_parses_from_the_command_line",
            &[],
        ) {
            return;
        }
        let args: WatchArgs = parse_ok(&[
            "--namespace=a,b",
            "--namespace",
            "c",
            "--job-selector",
            "shard in (x,y)",
            "--controller-threads",
            "4",
            "--watch-timeout-seconds=120",
            "--list-page-size=100",
            "--gang-scheduler-name=volcano",
            "--service-mode=per-job",
            "--custom-cluster-domain=cluster.local",
            "--allow-upstream-crd",
        ]);
        assert_eq!(args.namespaces, ["a", "b", "c"]);
        assert_eq!(
            args.job_selector
                .as_ref()
                .map(ToString::to_string)
                .as_deref(),
            Some("shard in (x,y)")
        );
        assert_eq!(args.concurrency, 4);
        assert_eq!(args.watch_timeout_seconds, 120);
        assert_eq!(args.list_page_size, 100);
        assert_eq!(args.service_mode, ServiceMode::PerJob);
        let settings = args.settings("me".into()).expect("valid");
        assert_eq!(settings.plan.gang, Some(GangScheduler::Volcano));
        assert_eq!(settings.plan.service_mode, ServiceMode::PerJob);
        assert_eq!(
            settings.plan.cluster_domain.as_deref(),
            Some("cluster.local")
        );
        assert_eq!(settings.namespaces, ["a", "b", "c"]);
        assert!(settings.allow_upstream_crd);
    }

    #[test]
    fn every_flag_parses_from_the_environment() {
        if !run_here_with(
            module_path!(),
            "every_flag_parses_from_the_environment",
            &[
                ("TFJOB_NAMESPACES", "team-b,team-a"),
                ("TFJOB_JOB_SELECTOR", "shard=1"),
                ("TFJOB_CONCURRENCY", "8"),
                ("TFJOB_WATCH_TIMEOUT_SECONDS", "60"),
                ("TFJOB_LIST_PAGE_SIZE", "50"),
                ("TFJOB_GANG_SCHEDULER_NAME", "scheduler-plugins-scheduler"),
                ("TFJOB_SERVICE_MODE", "per-job"),
                ("CUSTOM_CLUSTER_DOMAIN", "example.org"),
            ],
        ) {
            return;
        }
        let args: WatchArgs = parse_ok(&[]);
        assert_eq!(
            args.namespace_scope_with(Some("ignored".into())),
            Ok(NamespaceScope::Only(vec!["team-a".into(), "team-b".into()]))
        );
        assert_eq!(
            args.job_selector
                .as_ref()
                .map(ToString::to_string)
                .as_deref(),
            Some("shard=1")
        );
        assert_eq!(args.concurrency, 8);
        assert_eq!(args.watch_timeout_seconds, 60);
        assert_eq!(args.list_page_size, 50);
        assert_eq!(args.gang_scheduler_name, "scheduler-plugins-scheduler");
        assert_eq!(args.service_mode, ServiceMode::PerJob);
        assert_eq!(args.custom_cluster_domain.as_deref(), Some("example.org"));
    }

    #[test]
    fn command_line_wins_over_environment() {
        if !run_here_with(
            module_path!(),
            "command_line_wins_over_environment",
            &[("TFJOB_CONCURRENCY", "8")],
        ) {
            return;
        }
        let args: WatchArgs = parse_ok(&["--concurrency=2"]);
        assert_eq!(args.concurrency, 2);
    }

    #[test]
    fn namespace_falls_back_to_kubeflow_namespace() {
        if !run_here_with(
            module_path!(),
            "namespace_falls_back_to_kubeflow_namespace",
            &[],
        ) {
            return;
        }
        let args: WatchArgs = parse_ok(&[]);
        assert_eq!(
            args.namespace_scope_with(Some("kubeflow".into())),
            Ok(NamespaceScope::Only(vec!["kubeflow".into()]))
        );
        assert_eq!(
            args.namespace_scope_with(Some(String::new())),
            Ok(NamespaceScope::All)
        );
        let err = args
            .namespace_scope_with(Some("Bad_NS".into()))
            .expect_err("invalid fallback");
        assert!(err.to_string().contains("KUBEFLOW_NAMESPACE"), "{err}");

        // An explicit empty --namespace means all namespaces even when the fallback is set.
        let args: WatchArgs = parse_ok(&["--namespace="]);
        assert_eq!(
            args.namespace_scope_with(Some("kubeflow".into())),
            Ok(NamespaceScope::All)
        );
    }

    #[test]
    fn namespace_lists_are_trimmed_sorted_and_deduplicated() {
        if !run_here_with(
            module_path!(),
            "namespace_lists_are_trimmed_sorted_and_deduplicated",
            &[],
        ) {
            return;
        }
        let args: WatchArgs = parse_ok(&["--namespace", "b, a,,b", "--namespace=c"]);
        let scope = args.namespace_scope_with(None).expect("valid");
        assert_eq!(
            scope,
            NamespaceScope::Only(vec!["a".into(), "b".into(), "c".into()])
        );
        assert!(scope.contains("a"));
        assert!(!scope.contains("d"));
        assert!(NamespaceScope::All.contains("anything"));
    }

    #[test]
    fn invalid_namespace_names_the_flag() {
        if !run_here_with(module_path!(), "invalid_namespace_names_the_flag", &[]) {
            return;
        }
        let args: WatchArgs = parse_ok(&["--namespace=ok,Not_OK"]);
        let err = args.validate().expect_err("invalid namespace");
        assert!(
            matches!(&err, ConfigError::InvalidValue { flag: "--namespace", value, .. } if value == "Not_OK"),
            "{err:?}"
        );
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
        assert_each_rejected::<WatchArgs>(&[
            (&["--concurrency=0"][..], "--concurrency"),
            (&["--controller-threads=-1"], "--concurrency"),
            (&["--watch-timeout-seconds=0"], "--watch-timeout-seconds"),
            (&["--list-page-size=0"], "--list-page-size"),
            (&["--service-mode=per-pod"], "--service-mode"),
            (&["--job-selector=a in (b"], "--job-selector"),
        ]);
    }
}

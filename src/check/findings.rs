//! What `tfjob-operator check` concludes, decided from what it read: each check is a pure
//! function of the objects, so every verdict has a table test.

use std::fmt;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use tfjob_core::api::crd::{KubeVersion, missing_fields, replace_crd_command};

/// How a finding affects the verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Pass,
    Warn,
    Fail,
}

/// One line of the report: what was checked, what was found, and what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    pub check: &'static str,
    pub detail: String,
    /// What to change (warnings and failures).
    pub fix: Option<String>,
}

impl Finding {
    pub fn pass(check: &'static str, detail: impl Into<String>) -> Finding {
        Finding {
            level: Level::Pass,
            check,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn warn(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding {
            level: Level::Warn,
            check,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn fail(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding {
            level: Level::Fail,
            check,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            Level::Pass => "PASS",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        };
        write!(f, "{level}  {:<10} {}", self.check, self.detail)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n      → {fix}")?;
        }
        Ok(())
    }
}

/// The Kubernetes versions this release is tested on (1.20.2 in full, 1.36 for the CRD).
pub const SUPPORTED: ((u32, u32), (u32, u32)) = ((1, 20), (1, 36));

/// The apiserver's version against [`SUPPORTED`]. `minor` may carry a suffix (`"28+"`).
pub fn version(major: &str, minor: &str, git_version: &str) -> Finding {
    let ((min_major, min_minor), (max_major, max_minor)) = SUPPORTED;
    let number = |s: &str| {
        s.trim_end_matches(|c: char| !c.is_ascii_digit())
            .parse::<u32>()
            .ok()
    };
    let range = format!("{min_major}.{min_minor}–{max_major}.{max_minor}");
    let Some(found) = number(major).zip(number(minor)) else {
        return Finding::warn(
            "apiserver",
            format!("version {git_version} is not a Kubernetes version number"),
            format!("this release is tested on Kubernetes {range}"),
        );
    };
    if found < (min_major, min_minor) {
        Finding::fail(
            "apiserver",
            format!("Kubernetes {git_version} is older than {min_major}.{min_minor}"),
            format!("upgrade the cluster; this release supports {range}"),
        )
    } else if found > (max_major, max_minor) {
        Finding::warn(
            "apiserver",
            format!(
                "Kubernetes {git_version} is newer than the newest tested ({max_major}.{max_minor})"
            ),
            "it is expected to work (the TFJob API uses only stable Kubernetes APIs); report \
             problems with the version",
        )
    } else {
        Finding::pass(
            "apiserver",
            format!("Kubernetes {git_version} (supported: {range})"),
        )
    }
}

/// The installed TFJob CRD: present, keeping every stored field, storing only `v1`. `server`
/// (the apiserver's version) picks the form of the command that fixes it.
pub fn crd(
    installed: Option<&CustomResourceDefinition>,
    server: Option<KubeVersion>,
) -> Vec<Finding> {
    let command = replace_crd_command(server);
    let Some(crd) = installed else {
        return vec![Finding::fail(
            "crd",
            "tfjobs.kubeflow.org is not installed",
            format!("install it: {}", command.replace(" --force-conflicts", "")),
        )];
    };
    let mut findings = Vec::new();
    let missing = missing_fields(crd);
    if missing.is_empty() {
        findings.push(Finding::pass(
            "crd",
            "tfjobs.kubeflow.org keeps every field the operator stores",
        ));
    } else {
        let fields: Vec<String> = missing
            .iter()
            .map(|f| format!("{} ({})", f.path, f.purpose))
            .collect();
        findings.push(Finding::fail(
            "crd",
            format!(
                "tfjobs.kubeflow.org drops fields the operator stores (upstream's CRD?): {}",
                fields.join("; ")
            ),
            format!("replace it with this release's CRD: {command}"),
        ));
    }
    let stored = crd
        .status
        .as_ref()
        .and_then(|s| s.stored_versions.clone())
        .unwrap_or_default();
    if stored.iter().any(|v| v != "v1") {
        findings.push(Finding::warn(
            "crd",
            format!("objects are stored in versions {stored:?}, not only v1"),
            "migrate stored objects to v1 and remove the others from status.storedVersions",
        ));
    }
    findings
}

/// This operator's webhook, when it serves one: its configuration's name and its Service.
#[derive(Clone, Copy, Debug)]
pub struct OwnWebhook<'a> {
    pub config: &'a str,
    pub service_namespace: &'a str,
    pub service_name: &'a str,
}

/// The webhooks of `configs` that route TFJob writes anywhere but to `ours`: a webhook is ours
/// when it is in our configuration (whatever its target: an out-of-cluster run may use a URL)
/// or calls our Service.
pub fn foreign_webhooks(
    configs: &[ValidatingWebhookConfiguration],
    ours: Option<OwnWebhook<'_>>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for config in configs {
        let config_name = config.metadata.name.clone().unwrap_or_default();
        for webhook in config.webhooks.iter().flatten() {
            let routes_tfjobs = webhook.rules.iter().flatten().any(|rule| {
                let any = |list: &Option<Vec<String>>, value: &str| {
                    list.iter().flatten().any(|v| v == "*" || v == value)
                };
                any(&rule.api_groups, "kubeflow.org")
                    && (any(&rule.resources, "tfjobs") || any(&rule.resources, "*/*"))
                    && rule
                        .operations
                        .iter()
                        .flatten()
                        .any(|op| op == "*" || op == "CREATE" || op == "UPDATE")
            });
            if !routes_tfjobs {
                continue;
            }
            let service = webhook.client_config.service.as_ref();
            let target = match (service, &webhook.client_config.url) {
                (Some(s), _) => format!("Service {}/{}", s.namespace, s.name),
                (None, Some(url)) => format!("URL {url}"),
                (None, None) => "nowhere".to_string(),
            };
            let is_ours = ours.is_some_and(|own| {
                config_name == own.config
                    || service.is_some_and(|s| {
                        s.namespace == own.service_namespace && s.name == own.service_name
                    })
            });
            if is_ours {
                findings.push(Finding::pass(
                    "webhook",
                    format!(
                        "{config_name}: {} routes TFJob writes to this operator ({target})",
                        webhook.name
                    ),
                ));
            } else {
                findings.push(Finding::fail(
                    "webhook",
                    format!(
                        "{config_name}: {} routes TFJob writes to {target}, not to this operator",
                        webhook.name
                    ),
                    "a training-operator whose TFJob scheme is off refuses every TFJob write: \
                     remove that entry (the tfjob one) from the configuration, as \
                     docs/migration.md shows",
                ));
            }
        }
    }
    findings
}

/// What a Lease says about who leads: `holder` and `renewed` from its spec.
pub struct LeaseView<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub holder: Option<&'a str>,
    pub renewed: Option<Timestamp>,
    pub duration_seconds: Option<i32>,
}

/// Whether a holder identity is this operator's (`<pod>_<8 hex digits>`); controller-runtime's
/// (upstream's) end in a UUID.
pub fn is_our_identity(holder: &str) -> bool {
    holder.rsplit_once('_').is_some_and(|(_, suffix)| {
        suffix.len() == 8 && suffix.chars().all(|c| c.is_ascii_hexdigit())
    })
}

/// Whether the Lease is held now: renewed within its duration (15 s when unset).
fn held(lease: &LeaseView<'_>, now: Timestamp) -> Option<(String, i64)> {
    let holder = lease.holder.filter(|h| !h.is_empty())?;
    let renewed = lease.renewed?;
    let age = now.duration_since(renewed);
    let duration = SignedDuration::from_secs(i64::from(lease.duration_seconds.unwrap_or(15)));
    (age <= duration).then(|| (holder.to_string(), age.as_secs()))
}

/// The Lease this operator will use: free, or held by one of its own instances, passes; held
/// by someone else now fails (two controllers would share one Lease).
pub fn own_lease(lease: Option<&LeaseView<'_>>, name: &str, now: Timestamp) -> Finding {
    let Some(lease) = lease else {
        return Finding::pass("lease", format!("Lease {name} is free (created at start)"));
    };
    match held(lease, now) {
        None => Finding::pass(
            "lease",
            format!("Lease {}/{} is not held now", lease.namespace, lease.name),
        ),
        Some((holder, age)) if is_our_identity(&holder) => Finding::pass(
            "lease",
            format!(
                "Lease {}/{} is held by tfjob-operator {holder} (renewed {age}s ago)",
                lease.namespace, lease.name
            ),
        ),
        Some((holder, age)) => Finding::fail(
            "lease",
            format!(
                "Lease {}/{} is held by {holder} (renewed {age}s ago), which is not a \
                 tfjob-operator",
                lease.namespace, lease.name
            ),
            "another controller uses this Lease: give this operator its own \
             --leader-election-id, or stop that controller first (docs/migration.md)",
        ),
    }
}

/// upstream training-operator's Lease: held now means a training-operator runs.
pub fn upstream_lease(lease: Option<&LeaseView<'_>>, now: Timestamp) -> Option<Finding> {
    let lease = lease?;
    let (holder, age) = held(lease, now)?;
    Some(Finding::warn(
        "upstream",
        format!(
            "a training-operator is running: Lease {}/{} held by {holder} (renewed {age}s ago)",
            lease.namespace, lease.name
        ),
        "if it still runs TFJobs, turn its TFJob scheme off (--enable-scheme for the other \
         frameworks only) and remove its tfjob webhook entry before this operator takes over",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_against_the_supported_range() {
        let cases = [
            ("1", "20", Level::Pass),
            ("1", "28+", Level::Pass),
            ("1", "36", Level::Pass),
            ("1", "19", Level::Fail),
            ("1", "37", Level::Warn),
            ("", "", Level::Warn),
        ];
        for (major, minor, level) in cases {
            assert_eq!(
                version(major, minor, "v-test").level,
                level,
                "{major}.{minor}"
            );
        }
    }

    #[test]
    fn identities_of_this_operator_and_of_controller_runtime() {
        assert!(is_our_identity("tfjob-operator-5d8f9-abcde_0a1b2c3d"));
        assert!(!is_our_identity(
            "training-operator-7c9f_6f1e0a52-1b2c-4d3e-8f90-123456789abc"
        ));
        assert!(!is_our_identity("someone"));
    }

    #[test]
    fn leases_held_by_others_fail_ours_and_stale_ones_pass() {
        let now: Timestamp = "2026-12-07T12:00:00Z".parse().unwrap();
        let ago = |s: i64| now - SignedDuration::from_secs(s);
        let lease = |holder: Option<&'static str>, renewed: Option<Timestamp>| LeaseView {
            name: "tfjob-operator.kubeflow.org",
            namespace: "kubeflow",
            holder,
            renewed,
            duration_seconds: Some(15),
        };
        let cases = [
            (None, Level::Pass),
            (Some(lease(Some("pod_0a1b2c3d"), Some(ago(3)))), Level::Pass),
            (
                Some(lease(
                    Some("other_6f1e0a52-1b2c-4d3e-8f90-123456789abc"),
                    Some(ago(3)),
                )),
                Level::Fail,
            ),
            (
                Some(lease(
                    Some("other_6f1e0a52-1b2c-4d3e-8f90-123456789abc"),
                    Some(ago(60)),
                )),
                Level::Pass,
            ),
            (Some(lease(Some(""), Some(ago(1)))), Level::Pass),
            (Some(lease(Some("x"), None)), Level::Pass),
        ];
        for (view, level) in cases {
            let finding = own_lease(view.as_ref(), "tfjob-operator.kubeflow.org", now);
            assert_eq!(finding.level, level, "{finding}");
        }
        assert!(upstream_lease(None, now).is_none());
        assert!(upstream_lease(Some(&lease(Some("up_x"), Some(ago(60)))), now).is_none());
        let running = upstream_lease(Some(&lease(Some("up_x"), Some(ago(2)))), now).unwrap();
        assert_eq!(running.level, Level::Warn);
        assert!(running.detail.contains("held by up_x"), "{running}");
    }

    fn webhook_config(
        name: &str,
        resources: &[&str],
        service: Option<(&str, &str)>,
    ) -> ValidatingWebhookConfiguration {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "webhooks": [{
                "name": format!("{name}.hook"),
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "clientConfig": match service {
                    Some((ns, n)) => serde_json::json!({"service": {"namespace": ns, "name": n}}),
                    None => serde_json::json!({"url": "https://example.com/validate"}),
                },
                "rules": [{"apiGroups": ["kubeflow.org"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": resources}]
            }]
        }))
        .unwrap()
    }

    #[test]
    fn webhooks_routing_tfjobs_elsewhere_fail() {
        let ours = Some(OwnWebhook {
            config: "tfjob-operator-validator",
            service_namespace: "tfjob-system",
            service_name: "tfjob-operator-webhook",
        });
        let cases = [
            (
                webhook_config(
                    "mine",
                    &["tfjobs"],
                    Some(("tfjob-system", "tfjob-operator-webhook")),
                ),
                vec![Level::Pass],
            ),
            (
                webhook_config(
                    "upstream",
                    &["tfjobs"],
                    Some(("kubeflow", "training-operator")),
                ),
                vec![Level::Fail],
            ),
            (webhook_config("wildcard", &["*"], None), vec![Level::Fail]),
            // Our own configuration, routed by URL (an operator run out of cluster).
            (
                webhook_config("tfjob-operator-validator", &["tfjobs"], None),
                vec![Level::Pass],
            ),
            (
                webhook_config(
                    "pytorch",
                    &["pytorchjobs"],
                    Some(("kubeflow", "training-operator")),
                ),
                vec![],
            ),
        ];
        for (config, levels) in cases {
            let found: Vec<Level> = foreign_webhooks(std::slice::from_ref(&config), ours)
                .iter()
                .map(|f| f.level)
                .collect();
            assert_eq!(found, levels, "{:?}", config.metadata.name);
        }
        // Without a webhook of its own, any TFJob webhook is foreign.
        let mine = webhook_config(
            "mine",
            &["tfjobs"],
            Some(("tfjob-system", "tfjob-operator-webhook")),
        );
        assert_eq!(foreign_webhooks(&[mine], None)[0].level, Level::Fail);
    }

    #[test]
    fn the_crd_must_exist_and_keep_the_stored_fields() {
        let missing = crd(None, None);
        assert_eq!(missing[0].level, Level::Fail);
        assert!(
            missing[0]
                .fix
                .as_ref()
                .unwrap()
                .contains("kubectl apply --server-side -f -")
        );
        let own = tfjob_core::api::crd::tfjob_crd();
        assert_eq!(
            crd(Some(&own), None)
                .iter()
                .map(|f| f.level)
                .collect::<Vec<_>>(),
            [Level::Pass]
        );
        let mut upstream = own.clone();
        if let Some(schema) = upstream.spec.versions[0]
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        {
            schema
                .properties
                .as_mut()
                .unwrap()
                .get_mut("status")
                .unwrap()
                .properties = None;
        }
        let found = crd(Some(&upstream), "1.22".parse().ok());
        assert_eq!(found[0].level, Level::Fail);
        assert!(
            found[0]
                .detail
                .contains("status.replicaStatuses[*].restarts"),
            "{}",
            found[0]
        );
        assert_eq!(
            found[0].fix.as_deref(),
            Some(
                "replace it with this release's CRD: tfjob-operator crd --kubernetes-version=1.22 \
                 | kubectl apply --server-side --force-conflicts -f -"
            ),
            "the command for the apiserver's version"
        );
    }

    #[test]
    fn findings_read_as_report_lines() {
        let line = Finding::fail("crd", "missing", "install it").to_string();
        assert_eq!(line, "FAIL  crd        missing\n      → install it");
        assert_eq!(
            Finding::pass("rbac", "ok").to_string(),
            "PASS  rbac       ok"
        );
    }
}

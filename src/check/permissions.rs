//! Every permission the operator uses with the given flags: what the preflight asks the
//! apiserver about (SelfSubjectAccessReview), and what the chart's RBAC grants.

use std::fmt;

use tfjob_core::api::podgroup::GangScheduler;

use crate::config::RunArgs;

/// One thing the operator does to the API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permission {
    pub verb: &'static str,
    pub group: &'static str,
    pub resource: &'static str,
    pub subresource: Option<&'static str>,
    /// The one object it is limited to, if any.
    pub name: Option<String>,
    /// `None`: cluster-wide (or all namespaces).
    pub namespace: Option<String>,
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let resource = match self.subresource {
            Some(sub) => format!("{}/{sub}", self.resource),
            None => self.resource.to_string(),
        };
        let group = if self.group.is_empty() {
            String::new()
        } else {
            format!(".{}", self.group)
        };
        write!(f, "{} {resource}{group}", self.verb)?;
        if let Some(name) = &self.name {
            write!(f, " {name}")?;
        }
        match &self.namespace {
            Some(ns) => write!(f, " in {ns}"),
            None => write!(f, " (all namespaces)"),
        }
    }
}

fn permission(
    verb: &'static str,
    group: &'static str,
    resource: &'static str,
    namespace: Option<&str>,
) -> Permission {
    Permission {
        verb,
        group,
        resource,
        subresource: None,
        name: None,
        namespace: namespace.map(String::from),
    }
}

/// What the operator needs with `args`, in each namespace it watches (or all of them).
pub fn required(args: &RunArgs, watched: &[String]) -> Vec<Permission> {
    let scopes: Vec<Option<&str>> = if watched.is_empty() {
        vec![None]
    } else {
        watched.iter().map(|ns| Some(ns.as_str())).collect()
    };
    let mut needed = Vec::new();
    for scope in scopes {
        for verb in ["list", "watch", "delete"] {
            needed.push(permission(verb, "kubeflow.org", "tfjobs", scope));
        }
        needed.push(Permission {
            subresource: Some("status"),
            ..permission("patch", "kubeflow.org", "tfjobs", scope)
        });
        for resource in ["pods", "services"] {
            for verb in ["create", "delete", "get", "list", "watch", "patch"] {
                needed.push(permission(verb, "", resource, scope));
            }
        }
        needed.push(permission("create", "", "events", scope));
        if let Some(gang) = GangScheduler::from_flag(&args.watch.gang_scheduler_name) {
            let (group, _, _) = gang.pod_group_gvk();
            for verb in ["create", "delete", "get", "list", "watch", "patch"] {
                needed.push(permission(verb, group, "podgroups", scope));
            }
        }
    }
    needed.push(Permission {
        name: Some("tfjobs.kubeflow.org".into()),
        ..permission(
            "get",
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            None,
        )
    });
    if !args.watch.gang_scheduler_name.trim().is_empty() {
        for verb in ["list", "watch"] {
            needed.push(permission(
                verb,
                "scheduling.k8s.io",
                "priorityclasses",
                None,
            ));
        }
    }
    if args.leader.leader_elect {
        let namespace = args.leader.namespace();
        needed.push(permission(
            "create",
            "coordination.k8s.io",
            "leases",
            Some(&namespace),
        ));
        for verb in ["get", "update"] {
            needed.push(Permission {
                name: Some(args.leader.leader_election_id.clone()),
                ..permission(verb, "coordination.k8s.io", "leases", Some(&namespace))
            });
        }
    }
    needed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::parse_ok;

    #[test]
    fn permissions_follow_the_flags() {
        let cases: [(&[&str], usize, &[&str]); 4] = [
            (
                &[],
                18,
                &[
                    "list tfjobs.kubeflow.org (all namespaces)",
                    "patch tfjobs/status.kubeflow.org (all namespaces)",
                    "create events (all namespaces)",
                    "get customresourcedefinitions.apiextensions.k8s.io tfjobs.kubeflow.org (all namespaces)",
                ],
            ),
            (
                &["--namespace=a,b"],
                35,
                &["patch pods in a", "create events in b"],
            ),
            (
                &["--gang-scheduler-name=volcano"],
                26,
                &[
                    "create podgroups.scheduling.volcano.sh (all namespaces)",
                    "watch priorityclasses.scheduling.k8s.io (all namespaces)",
                ],
            ),
            (
                &["--leader-elect", "--leader-election-namespace=ops"],
                21,
                &[
                    "create leases.coordination.k8s.io in ops",
                    "update leases.coordination.k8s.io tfjob-operator.kubeflow.org in ops",
                ],
            ),
        ];
        for (args, count, includes) in cases {
            let run: RunArgs = parse_ok(args);
            let watched = match run.watch.namespace_scope().expect("valid") {
                crate::config::NamespaceScope::All => vec![],
                crate::config::NamespaceScope::Only(ns) => ns,
            };
            let needed: Vec<String> = required(&run, &watched)
                .iter()
                .map(ToString::to_string)
                .collect();
            assert_eq!(needed.len(), count, "{args:?}: {needed:#?}");
            for line in includes {
                assert!(
                    needed.iter().any(|n| n == line),
                    "{args:?}: no {line} in {needed:#?}"
                );
            }
        }
    }
}

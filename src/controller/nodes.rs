//! Which nodes are lost, for `--force-delete-stuck-pods`: the planner force-deletes a pod stuck
//! Terminating only when its node is gone, or NotReady for longer than the stuck grace (the
//! node controller's own eviction then never completes, as the kubelet that would confirm the
//! pod's end is not there). Looked up only for the nodes of pods already stuck, so a healthy
//! cluster costs no request.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use tracing::warn;

use super::context::Context;
use tfjob_core::plan::observe::PodFacts;

/// The nodes of `pods` stuck past the grace that are lost.
pub async fn lost_nodes(ctx: &Context, pods: &[PodFacts], now: Timestamp) -> Vec<String> {
    let config = &ctx.plan_config;
    if !config.force_delete_stuck {
        return Vec::new();
    }
    let mut nodes: Vec<&str> = pods
        .iter()
        .filter_map(|p| p.deletion.as_deref())
        .filter(|d| is_past(d.due, now, config.stuck_after))
        .filter_map(|d| d.node.as_deref())
        .collect();
    nodes.sort_unstable();
    nodes.dedup();
    let api: Api<Node> = Api::all(ctx.client.clone());
    let mut lost = Vec::new();
    for name in nodes {
        match api.get_opt(name).await {
            Ok(node) if is_lost(node.as_ref(), now, config.stuck_after) => lost.push(name.into()),
            Ok(_) => {}
            Err(error) => warn!(node = name, %error, "cannot read the node of a stuck pod"),
        }
    }
    lost
}

fn is_past(at: Timestamp, now: Timestamp, grace: Duration) -> bool {
    jiff::SignedDuration::try_from(grace)
        .ok()
        .and_then(|g| at.checked_add(g).ok())
        .is_some_and(|limit| now > limit)
}

/// Gone, or its Ready condition not True since longer than `grace`.
fn is_lost(node: Option<&Node>, now: Timestamp, grace: Duration) -> bool {
    let Some(node) = node else {
        return true;
    };
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"));
    match ready {
        Some(ready) if ready.status == "True" => false,
        Some(ready) => ready
            .last_transition_time
            .as_ref()
            .is_some_and(|since| is_past(since.0, now, grace)),
        // A node without a Ready condition has never reported: not judged.
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeCondition, NodeStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn node(ready: Option<(&str, Timestamp)>) -> Node {
        Node {
            status: Some(NodeStatus {
                conditions: ready.map(|(status, since)| {
                    vec![NodeCondition {
                        type_: "Ready".into(),
                        status: status.into(),
                        last_transition_time: Some(Time(since)),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_node_is_lost_when_gone_or_not_ready_past_the_grace() {
        let now: Timestamp = "2026-01-01T01:00:00Z".parse().unwrap();
        let ago = |s: i64| now - jiff::SignedDuration::from_secs(s);
        let grace = Duration::from_secs(300);
        let cases = [
            (None, true),
            (Some(node(Some(("True", ago(10_000))))), false),
            (Some(node(Some(("False", ago(301))))), true),
            (Some(node(Some(("Unknown", ago(301))))), true),
            (Some(node(Some(("Unknown", ago(299))))), false),
            (Some(node(None)), false),
        ];
        for (node, lost) in cases {
            assert_eq!(is_lost(node.as_ref(), now, grace), lost, "{node:?}");
        }
    }
}

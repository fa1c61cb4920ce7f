//! Every kustomize tree builds and matches the chart.

use super::*;

#[test]
fn every_kustomize_tree_builds() {
    for tree in kustomize::TREES {
        let objs = kustomize::build(tree);
        assert_least_privilege(&objs);
        parse_flags(one(&objs, "Deployment"));
        for obj in &objs {
            if !matches!(
                objects::kind(obj),
                "Namespace"
                    | "CustomResourceDefinition"
                    | "ClusterRole"
                    | "ClusterRoleBinding"
                    | "ValidatingWebhookConfiguration"
                    | "MutatingWebhookConfiguration"
            ) {
                assert_eq!(
                    objects::namespace(obj),
                    NAMESPACE,
                    "{tree}: {}",
                    objects::id(obj)
                );
            }
        }
    }
}

/// The kustomize tree's objects equal the chart's rendered with `values`, after dropping
/// Helm-only labels and sorting flags; kustomize adds only the Namespace (Helm's
/// `--create-namespace`).
fn assert_same_objects(tree: &str, values: Value) {
    let mut from_kustomize = kustomize::build(tree);
    from_kustomize.retain(|o| objects::kind(o) != "Namespace");
    let from_helm = helm::render_with_crds(&values);
    assert_eq!(
        ids(&from_kustomize),
        ids(&from_helm),
        "{tree} vs the chart with {values}"
    );
    for helm_obj in &from_helm {
        let id = objects::id(helm_obj);
        let kustomize_obj = from_kustomize
            .iter()
            .find(|o| objects::id(o) == id)
            .expect("same ids");
        let (h, k) = (normalised(helm_obj), normalised(kustomize_obj));
        if let Some(difference) = objects::first_difference(&id, &h, &k) {
            panic!(
                "{tree} differs from the chart with {values}: {difference} (chart != kustomize)"
            );
        }
    }
}

#[test]
fn kustomize_trees_match_the_chart() {
    assert_same_objects("deploy/kustomize/base", json!({}));
    assert_same_objects("deploy/kustomize/overlays/cluster-wide", json!({}));
    assert_same_objects(
        "deploy/kustomize/overlays/single-namespace",
        json!({ "namespaces": [NAMESPACE] }),
    );
    assert_same_objects(
        "deploy/kustomize/overlays/leader-election",
        json!({ "replicas": 2, "leaderElection": { "enabled": true } }),
    );
    assert_same_objects(
        "deploy/kustomize/overlays/without-webhook",
        json!({ "webhook": { "enabled": false } }),
    );
    let base = kustomize::build("deploy/kustomize/base");
    let namespace = one(&base, "Namespace");
    assert_eq!(objects::name(namespace), NAMESPACE);
}

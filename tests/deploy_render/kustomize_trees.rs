//! Every kustomize tree and every combination of components builds and matches the chart.

use super::*;

/// Invariants of a kustomize build: least privilege, flags the operator accepts, and every
/// namespaced object in the install's namespace.
fn assert_sound(what: &str, objs: &[Value], install_namespace: &str) {
    assert_least_privilege(objs);
    parse_flags(one(objs, "Deployment"));
    for obj in objs {
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
                install_namespace,
                "{what}: {}",
                objects::id(obj)
            );
        }
    }
}

#[test]
fn every_kustomize_tree_builds() {
    for tree in kustomize::TREES {
        let objs = kustomize::build(tree);
        let install_namespace = if tree.ends_with("/kubeflow") {
            "kubeflow"
        } else {
            NAMESPACE
        };
        assert_sound(tree, &objs, install_namespace);
    }
}

/// `kustomize` objects equal the chart's rendered with `values` (for a cluster with the
/// Prometheus Operator), after dropping Helm-only labels and sorting flags; kustomize may add
/// only the Namespace (Helm's `--create-namespace`).
fn assert_same_objects(what: &str, mut from_kustomize: Vec<Value>, values: &Value) {
    from_kustomize.retain(|o| objects::kind(o) != "Namespace");
    let from_helm = helm::render_with_crds_for(values, &helm::PROMETHEUS_OPERATOR);
    assert_eq!(
        ids(&from_kustomize),
        ids(&from_helm),
        "{what} vs the chart with {values}"
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
                "{what} differs from the chart with {values}: {difference} (chart != kustomize)"
            );
        }
    }
}

#[test]
fn kustomize_overlays_match_the_chart() {
    // standalone = the chart's defaults (+ the Namespace); high-availability = 2 replicas.
    let standalone = kustomize::build("deploy/kustomize/overlays/standalone");
    assert_same_objects("overlays/standalone", standalone.clone(), &json!({}));
    assert_eq!(objects::name(one(&standalone, "Namespace")), NAMESPACE);
    assert_same_objects(
        "overlays/high-availability",
        kustomize::build("deploy/kustomize/overlays/high-availability"),
        &json!({ "replicas": 2 }),
    );

    // kubeflow = standalone in `kubeflow`, without a Namespace object: `kubectl delete -k` of
    // it must never delete the namespace Kubeflow lives in.
    let kubeflow = kustomize::build("deploy/kustomize/overlays/kubeflow");
    assert!(
        !kubeflow.iter().any(|o| objects::kind(o) == "Namespace"),
        "the kubeflow overlay creates (and so would delete) no Namespace"
    );
    let moved: Vec<Value> = standalone
        .iter()
        .filter(|o| objects::kind(o) != "Namespace")
        .map(|o| {
            serde_json::from_str(&o.to_string().replace("\"tfjob-system\"", "\"kubeflow\""))
                .expect("JSON")
        })
        .collect();
    assert_eq!(ids(&kubeflow), ids(&moved));
    for obj in &moved {
        let id = objects::id(obj);
        let built = kubeflow
            .iter()
            .find(|o| objects::id(o) == id)
            .expect("same ids");
        if let Some(difference) =
            objects::first_difference(&id, &normalised(obj), &normalised(built))
        {
            panic!("the kubeflow overlay is not standalone in `kubeflow`: {difference}");
        }
    }
}

/// All 32 ways to compose the base with the components build, are sound, and install exactly
/// what the chart installs with the matching values.
#[test]
fn every_combination_of_components_matches_the_chart() {
    let combinations = kustomize::component_combinations();
    assert_eq!(combinations.len(), 32);
    for components in combinations {
        let what = format!("base + {components:?}");
        let objs = kustomize::build_with_components(&components);
        assert_sound(&what, &objs, NAMESPACE);
        assert_same_objects(&what, objs, &kustomize::chart_values_for(&components));
    }
}

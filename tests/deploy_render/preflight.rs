//! `tfjob-operator check` in the chart: the `helm test` hook and the optional init container run
//! it with the operator's own flags, environment and identity.

use super::*;

/// The `check` container's args are `check` and then exactly the operator's.
fn assert_checks_what_the_operator_runs(check: &Value, operator: &Value, what: &str) {
    let check_args = objects::strings(&check["args"]);
    assert_eq!(
        check_args.first().map(String::as_str),
        Some("check"),
        "{what}"
    );
    assert_eq!(
        check_args[1..],
        objects::strings(&operator["args"]),
        "{what}: the operator's flags"
    );
    assert_eq!(check["env"], operator["env"], "{what}: the operator's env");
    assert_eq!(
        check["image"], operator["image"],
        "{what}: the operator's image"
    );
    assert_eq!(
        check["securityContext"], operator["securityContext"],
        "{what}: restricted like the operator"
    );
}

#[test]
fn helm_test_runs_check_with_the_operators_flags_and_identity() {
    let values = json!({ "leaderElection": { "enabled": true }, "namespaces": ["team-a"] });
    let hooks = helm::test_hooks(&values);
    assert_eq!(ids(&hooks), ["Pod tfjob-system/tfjob-operator-preflight"]);
    let pod = &hooks[0];
    assert_eq!(
        pod["metadata"]["annotations"]["helm.sh/hook-delete-policy"], "before-hook-creation",
        "the last run's pod stays for `kubectl logs` until the next `helm test`"
    );
    let spec = &pod["spec"];
    assert_eq!(spec["restartPolicy"], "Never");
    let deployment = get(&helm::render(&values), "Deployment", "tfjob-operator").clone();
    let pod_spec = &deployment["spec"]["template"]["spec"];
    assert_eq!(spec["serviceAccountName"], pod_spec["serviceAccountName"]);
    assert_eq!(spec["securityContext"], pod_spec["securityContext"]);
    let containers = spec["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    assert_checks_what_the_operator_runs(&containers[0], container(&deployment), "helm test");
    assert!(
        pod_spec.get("initContainers").is_none(),
        "no init container by default"
    );

    assert!(
        helm::test_hooks(&json!({ "preflight": { "helmTest": false } })).is_empty(),
        "preflight.helmTest=false leaves the hook out"
    );
}

/// `check` reads two things `run` never does, read-only; they go when neither preflight runs.
#[test]
fn preflight_rbac_is_read_only_and_only_with_a_preflight() {
    let objs = helm::render(&json!({}));
    assert_eq!(
        rules(get(&objs, "ClusterRole", "tfjob-operator-preflight")),
        [
            "admissionregistration.k8s.io/validatingwebhookconfigurations: list",
            "coordination.k8s.io/leases: get names=1ca428e5.training-operator.kubeflow.org",
        ]
    );
    let binding = get(&objs, "ClusterRoleBinding", "tfjob-operator-preflight");
    assert_eq!(
        binding["subjects"],
        json!([{ "kind": "ServiceAccount", "name": "tfjob-operator", "namespace": NAMESPACE }]),
        "bound to the operator's identity, the one `check` tests"
    );
    let without = helm::render(&json!({ "preflight": { "helmTest": false } }));
    assert!(
        !ids(&without).iter().any(|id| id.contains("preflight")),
        "{:?}",
        ids(&without)
    );
}

#[test]
fn the_init_container_runs_check_before_the_operator() {
    let objs = helm::render(&json!({ "preflight": { "initContainer": true } }));
    let deployment = get(&objs, "Deployment", "tfjob-operator");
    let init = deployment["spec"]["template"]["spec"]["initContainers"]
        .as_array()
        .expect("initContainers");
    assert_eq!(init.len(), 1);
    assert_eq!(init[0]["name"], "preflight");
    assert_checks_what_the_operator_runs(&init[0], container(deployment), "init container");
}

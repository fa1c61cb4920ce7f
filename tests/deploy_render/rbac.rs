//! The rendered RBAC: least privilege in every mode.

use super::*;

#[test]
fn default_render_is_cluster_wide_with_exactly_the_operators_rules() {
    let objs = helm::render(&json!({}));
    assert_eq!(
        ids(&objs),
        [
            "ClusterRole tfjob-operator",
            "ClusterRole tfjob-operator-preflight",
            "ClusterRole tfjob-operator-tfjobs-admin",
            "ClusterRole tfjob-operator-tfjobs-edit",
            "ClusterRole tfjob-operator-tfjobs-view",
            "ClusterRole tfjob-operator-webhook",
            "ClusterRoleBinding tfjob-operator",
            "ClusterRoleBinding tfjob-operator-preflight",
            "ClusterRoleBinding tfjob-operator-webhook",
            "Deployment tfjob-system/tfjob-operator",
            "Role tfjob-system/tfjob-operator-leader-election",
            "RoleBinding tfjob-system/tfjob-operator-leader-election",
            "Service tfjob-system/tfjob-operator-metrics",
            "Service tfjob-system/tfjob-operator-webhook",
            "ServiceAccount tfjob-system/tfjob-operator",
            "ValidatingWebhookConfiguration tfjob-operator-validator",
        ],
        "the webhook is on by default, as upstream's; leader election and the user roles too"
    );
    assert_least_privilege(&objs);
    assert_eq!(
        rules(get(&objs, "ClusterRole", "tfjob-operator")),
        cluster_wide_rules()
    );
    let binding = get(&objs, "ClusterRoleBinding", "tfjob-operator");
    assert_eq!(binding["roleRef"]["name"], "tfjob-operator");
    assert_eq!(
        binding["subjects"],
        json!([{ "kind": "ServiceAccount", "name": "tfjob-operator", "namespace": NAMESPACE }])
    );
    let deployment = one(&objs, "Deployment");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["serviceAccountName"],
        "tfjob-operator"
    );
    let flags = parse_flags(deployment);
    assert!(
        flags.watch.namespaces.is_empty(),
        "all namespaces by default"
    );
    assert!(flags.leader.leader_elect, "leader election on by default");
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(
        deployment["spec"]["strategy"]["type"], "RollingUpdate",
        "the Lease keeps old and new pods apart"
    );

    // The metrics Service: scrape annotations, the container's metrics port.
    let service = get(&objs, "Service", "tfjob-operator-metrics");
    let annotations = &service["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/path"], "/metrics");
    assert_eq!(annotations["prometheus.io/port"], "8080");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "metrics");
    assert_eq!(
        service["spec"]["selector"], deployment["spec"]["selector"]["matchLabels"],
        "the Service selects the operator's pods"
    );
}

#[test]
fn rbac_and_service_account_can_be_brought_along() {
    let objs = helm::render(&json!({
        "rbac": { "create": false },
        "serviceAccount": { "create": false, "name": "platform-operator" },
        "leaderElection": { "enabled": true },
    }));
    assert_eq!(
        ids(&objs),
        [
            "Deployment tfjob-system/tfjob-operator",
            "Service tfjob-system/tfjob-operator-metrics",
            "Service tfjob-system/tfjob-operator-webhook",
            "ValidatingWebhookConfiguration tfjob-operator-validator",
        ]
    );
    let pod = &one(&objs, "Deployment")["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "platform-operator");
}

#[test]
fn namespaced_mode_grants_roles_only_in_the_listed_namespaces() {
    let objs = helm::render(&json!({ "namespaces": ["team-a", "team-b"] }));
    assert_least_privilege(&objs);
    // Cluster-wide only what no Role can grant: reading the TFJob CRD.
    assert_eq!(
        rules(get(&objs, "ClusterRole", "tfjob-operator-cluster-scoped")),
        [CRD_RULE]
    );
    let cluster_roles: Vec<&str> = all(&objs, "ClusterRole")
        .into_iter()
        .map(objects::name)
        .collect();
    assert_eq!(
        cluster_roles,
        [
            "tfjob-operator-cluster-scoped",
            "tfjob-operator-preflight",
            "tfjob-operator-tfjobs-view",
            "tfjob-operator-tfjobs-edit",
            "tfjob-operator-tfjobs-admin",
            "tfjob-operator-webhook"
        ],
        "no other ClusterRole (the tfjobs-* ones are for users, not the operator)"
    );
    for ns in ["team-a", "team-b"] {
        let role = objs
            .iter()
            .find(|o| objects::kind(o) == "Role" && objects::namespace(o) == ns)
            .unwrap_or_else(|| panic!("a Role in {ns}: {:?}", ids(&objs)));
        assert_eq!(rules(role), sorted(OPERATOR_RULES));
        let binding = objs
            .iter()
            .find(|o| objects::kind(o) == "RoleBinding" && objects::namespace(o) == ns)
            .unwrap_or_else(|| panic!("a RoleBinding in {ns}"));
        assert_eq!(binding["roleRef"]["kind"], "Role");
        assert_eq!(
            binding["subjects"][0]["namespace"], NAMESPACE,
            "the SA stays in the release namespace"
        );
    }
    assert_eq!(
        all(&objs, "Role")
            .into_iter()
            .filter(|r| objects::name(r) == "tfjob-operator")
            .count(),
        2,
        "no other operator Role: {:?}",
        ids(&objs)
    );
    let flags = parse_flags(one(&objs, "Deployment"));
    assert_eq!(flags.watch.namespaces, ["team-a", "team-b"]);
}

#[test]
fn leader_election_adds_a_role_for_one_lease_and_rolls_pods_one_by_one() {
    let objs = helm::render(&json!({ "replicas": 2, "leaderElection": { "enabled": true } }));
    assert_least_privilege(&objs);
    let role = get(&objs, "Role", "tfjob-operator-leader-election");
    assert_eq!(objects::namespace(role), NAMESPACE);
    assert_eq!(
        rules(role),
        sorted(&[
            "coordination.k8s.io/leases: create",
            &format!("coordination.k8s.io/leases: get,update names={LEASE}"),
        ])
    );
    let binding = get(&objs, "RoleBinding", "tfjob-operator-leader-election");
    assert_eq!(binding["subjects"][0]["name"], "tfjob-operator");
    let deployment = one(&objs, "Deployment");
    let flags = parse_flags(deployment);
    assert!(flags.leader.leader_elect);
    assert_eq!(flags.leader.leader_election_id, LEASE);
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(deployment["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(
        deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
        0
    );
    assert!(
        deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"].is_object(),
        "replicas prefer different nodes"
    );
    // Without leader election there is no Lease access at all.
    let objs = helm::render(&json!({ "leaderElection": { "enabled": false } }));
    assert!(all(&objs, "Role").is_empty(), "{:?}", ids(&objs));
}

#[test]
fn gang_scheduler_adds_podgroup_and_priority_class_rules() {
    let podgroups = |group: &str| format!("{group}/podgroups: create,delete,get,list,patch,watch");
    let priority_classes = "scheduling.k8s.io/priorityclasses: list,watch";
    for (name, group) in [
        ("volcano", "scheduling.volcano.sh"),
        ("scheduler-plugins-scheduler", "scheduling.x-k8s.io"),
    ] {
        // All namespaces: one ClusterRole with PodGroups of that group and PriorityClasses.
        let objs = helm::render(&json!({ "gangScheduler": { "name": name } }));
        assert_least_privilege(&objs);
        let mut expected = cluster_wide_rules();
        expected.push(podgroups(group));
        expected.push(priority_classes.to_string());
        expected.sort();
        assert_eq!(
            rules(get(&objs, "ClusterRole", "tfjob-operator")),
            expected,
            "gang scheduler {name}"
        );
        assert_eq!(
            parse_flags(one(&objs, "Deployment"))
                .watch
                .gang_scheduler_name,
            name
        );

        // Listed namespaces: PodGroups in each Role; PriorityClasses (cluster-scoped) alone in
        // a ClusterRole.
        let objs = helm::render(&json!({
            "gangScheduler": { "name": name },
            "namespaces": ["team-a"],
            "leaderElection": { "enabled": false },
        }));
        assert_least_privilege(&objs);
        let mut expected = sorted(OPERATOR_RULES);
        expected.push(podgroups(group));
        expected.sort();
        assert_eq!(
            rules(one(&objs, "Role")),
            expected,
            "namespaced, gang scheduler {name}"
        );
        let cluster_role = get(&objs, "ClusterRole", "tfjob-operator-cluster-scoped");
        let mut cluster_scoped = vec![CRD_RULE.to_string(), priority_classes.to_string()];
        cluster_scoped.sort();
        assert_eq!(rules(cluster_role), cluster_scoped);
        let binding = get(&objs, "ClusterRoleBinding", "tfjob-operator-cluster-scoped");
        assert_eq!(binding["subjects"][0]["name"], "tfjob-operator");
    }
    // Without gang scheduling, no PriorityClasses.
    let objs = helm::render(&json!({ "namespaces": ["team-a"] }));
    assert_eq!(
        rules(get(&objs, "ClusterRole", "tfjob-operator-cluster-scoped")),
        [CRD_RULE],
        "{:?}",
        ids(&objs)
    );
}

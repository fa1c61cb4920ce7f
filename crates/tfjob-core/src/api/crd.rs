//! The `tfjobs.kubeflow.org` CustomResourceDefinition, generated from the Rust types.
//!
//! `tfjob-operator crd` prints it and `crds/kubeflow.org_tfjobs.yaml` is that output, committed
//! (a test fails when they drift). The embedded core/v1 PodTemplateSpec schema makes the CRD
//! about 320 KB, more than the 256 KiB that client-side `kubectl apply` can store in its
//! last-applied annotation, so descriptions are dropped inside the pod template: the template's
//! field docs are Kubernetes' own, one `kubectl explain pod.spec` away.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use kube_core::CustomResourceExt;

use super::types::TFJob;

/// Upper bound that keeps plain `kubectl apply -f` working.
pub const MAX_CRD_BYTES: usize = 256 * 1024;

/// The CRD as installed by `kubectl apply -f crds/kubeflow.org_tfjobs.yaml`.
pub fn tfjob_crd() -> CustomResourceDefinition {
    let mut crd = TFJob::crd();
    for version in &mut crd.spec.versions {
        let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        else {
            continue;
        };
        let Some(spec) = schema.properties.as_mut().and_then(|p| p.get_mut("spec")) else {
            continue;
        };
        // `tfReplicaSpecs` deserialises with a default so that a bad object still reaches
        // validation, but the apiserver should refuse a TFJob without it, as upstream's does.
        spec.required = Some(vec!["tfReplicaSpecs".into()]);
        let template = spec
            .properties
            .as_mut()
            .and_then(|p| p.get_mut("tfReplicaSpecs"))
            .and_then(|r| r.additional_properties.as_mut())
            .and_then(|a| match a {
                k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrBool::Schema(s) => Some(s),
                _ => None,
            })
            .and_then(|r| r.properties.as_mut())
            .and_then(|p| p.get_mut("template"));
        if let Some(template) = template {
            strip_descriptions(template);
            mark_list_maps(template);
        }
    }
    crd
}

/// Lists of the pod template that Kubernetes' own Pod API merges by key under server-side
/// apply (`+listType=map`): containers, init containers and volumes by `name`, and each
/// container's `env` by `name`. Marked the same way here, so that two field managers applying
/// one TFJob each own their own containers instead of replacing the whole list.
fn mark_list_maps(template: &mut JSONSchemaProps) {
    fn property<'a>(node: &'a mut JSONSchemaProps, name: &str) -> Option<&'a mut JSONSchemaProps> {
        node.properties.as_mut()?.get_mut(name)
    }
    fn keyed_by_name(list: &mut JSONSchemaProps) {
        list.x_kubernetes_list_type = Some("map".into());
        list.x_kubernetes_list_map_keys = Some(vec!["name".into()]);
    }
    let Some(pod_spec) = property(template, "spec") else {
        return;
    };
    for name in ["containers", "initContainers", "volumes"] {
        let Some(list) = property(pod_spec, name) else {
            continue;
        };
        keyed_by_name(list);
        if name == "volumes" {
            continue;
        }
        let env = list
            .items
            .as_mut()
            .and_then(|items| match items {
                k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schema(s) => Some(s),
                _ => None,
            })
            .and_then(|container| property(container, "env"));
        if let Some(env) = env {
            keyed_by_name(env);
        }
    }
}

/// A Kubernetes version as `--kubernetes-version` takes it (`1.22`, `v1.22.3`, `1.22+`): what
/// matters for the CRD is the minor version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KubeVersion {
    pub major: u32,
    pub minor: u32,
}

impl std::str::FromStr for KubeVersion {
    type Err = String;

    fn from_str(text: &str) -> Result<KubeVersion, String> {
        let number = |part: Option<&str>| -> Option<u32> {
            let digits: String = part?.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        };
        let mut parts = text.trim().trim_start_matches('v').split('.');
        match (number(parts.next()), number(parts.next())) {
            (Some(major), Some(minor)) => Ok(KubeVersion { major, minor }),
            _ => Err(format!(
                "{text:?} is not a Kubernetes version; give MAJOR.MINOR, such as 1.22"
            )),
        }
    }
}

impl std::fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The first Kubernetes whose CRD schema knows CEL rules (`x-kubernetes-validations`). Older
/// apiservers refuse a server-side apply that carries them, and older kubectl schemas fail
/// client-side validation.
pub const CEL_RULES_SINCE: KubeVersion = KubeVersion {
    major: 1,
    minor: 23,
};

/// The CRD for an apiserver of version `server`: without CEL rules before [`CEL_RULES_SINCE`]
/// (there its two rules, `schedulingPolicy.queue` and `managedBy` immutable, are enforced by
/// the webhook only).
pub fn tfjob_crd_for(server: Option<KubeVersion>) -> CustomResourceDefinition {
    let mut crd = tfjob_crd();
    if server.is_some_and(|v| v < CEL_RULES_SINCE) {
        for version in &mut crd.spec.versions {
            if let Some(schema) = version
                .schema
                .as_mut()
                .and_then(|s| s.open_api_v3_schema.as_mut())
            {
                visit_schemas(schema, &mut |node| node.x_kubernetes_validations = None);
            }
        }
    }
    crd
}

/// [`tfjob_crd_for`] as YAML.
pub fn tfjob_crd_yaml_for(
    server: Option<KubeVersion>,
) -> Result<String, serde_saphyr::SerializeError> {
    serde_saphyr::to_string(&tfjob_crd_for(server))
}

/// [`REPLACE_CRD_COMMAND`] for an apiserver of version `server` (unknown: the current form).
pub fn replace_crd_command(server: Option<KubeVersion>) -> String {
    match server {
        Some(version) if version < CEL_RULES_SINCE => REPLACE_CRD_COMMAND.replacen(
            "tfjob-operator crd",
            &format!("tfjob-operator crd --kubernetes-version={version}"),
            1,
        ),
        _ => REPLACE_CRD_COMMAND.to_string(),
    }
}

/// The CRD as YAML, exactly as committed under `crds/`.
pub fn tfjob_crd_yaml() -> Result<String, serde_saphyr::SerializeError> {
    serde_saphyr::to_string(&tfjob_crd())
}

/// A field this operator stores that an installed CRD does not declare: the apiserver would
/// prune it from every write without an error, and the fix that depends on it would silently
/// revert to upstream's behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredField {
    /// Its path in the object (`status.replicaStatuses[*].restarts`).
    pub path: &'static str,
    /// Where it sits in the schema: property names, `*` for a map's values.
    pub schema_path: &'static [&'static str],
    /// What stops working without it.
    pub purpose: &'static str,
}

/// Every field of this project's CRD that upstream training-operator v1.9's CRD lacks.
pub const STORED_FIELDS: [StoredField; 9] = [
    StoredField {
        path: "status.replicaStatuses[*].restarts",
        schema_path: &["status", "replicaStatuses", "*", "restarts"],
        purpose: "backoffLimit counts re-created pods and survives operator restarts",
    },
    StoredField {
        path: "status.replicaStatuses[*].completedIndexes",
        schema_path: &["status", "replicaStatuses", "*", "completedIndexes"],
        purpose: "a replica index that succeeded is never run again",
    },
    StoredField {
        path: "status.replicaStatuses[*].restartedPods",
        schema_path: &["status", "replicaStatuses", "*", "restartedPods"],
        purpose: "each restart is counted once, even across a failed delete or an operator restart",
    },
    StoredField {
        path: "status.replicaStatuses[*].lastFailure",
        schema_path: &["status", "replicaStatuses", "*", "lastFailure"],
        purpose: "each replica type shows how its last pod failed (exit code, reason, message)",
    },
    StoredField {
        path: "status.ready",
        schema_path: &["status", "ready"],
        purpose: "kubectl get tfjobs -o wide shows running pods / wanted replicas",
    },
    StoredField {
        path: "spec.backoffLimit",
        schema_path: &["spec", "backoffLimit"],
        purpose: "the legacy flat layout (spec.backoffLimit) is honoured",
    },
    StoredField {
        path: "spec.cleanPodPolicy",
        schema_path: &["spec", "cleanPodPolicy"],
        purpose: "the legacy flat layout (spec.cleanPodPolicy) is honoured",
    },
    StoredField {
        path: "spec.activeDeadlineSeconds",
        schema_path: &["spec", "activeDeadlineSeconds"],
        purpose: "the legacy flat layout (spec.activeDeadlineSeconds) is honoured",
    },
    StoredField {
        path: "spec.ttlSecondsAfterFinished",
        schema_path: &["spec", "ttlSecondsAfterFinished"],
        purpose: "the legacy flat layout (spec.ttlSecondsAfterFinished) is honoured",
    },
];

/// The command that replaces an installed CRD with this release's (server-side apply takes the
/// fields over from whoever installed it before).
pub const REPLACE_CRD_COMMAND: &str =
    "tfjob-operator crd | kubectl apply --server-side --force-conflicts -f -";

/// The fields of [`STORED_FIELDS`] that the `v1` schema of `installed` would prune. A schema
/// node with `x-kubernetes-preserve-unknown-fields: true` keeps everything below it. An
/// installed CRD that does not serve `v1` lacks all of them.
pub fn missing_fields(installed: &CustomResourceDefinition) -> Vec<StoredField> {
    let schema = installed
        .spec
        .versions
        .iter()
        .find(|v| v.name == "v1" && v.served)
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref());
    STORED_FIELDS
        .into_iter()
        .filter(|field| !schema.is_some_and(|s| declares(s, field.schema_path)))
        .collect()
}

/// This project's CRD in the shape of upstream training-operator v1.9's: without the
/// [`STORED_FIELDS`] (what a cluster that installed training-operator has). The migration tests
/// start from it.
pub fn upstream_shaped() -> CustomResourceDefinition {
    let mut crd = tfjob_crd();
    for field in STORED_FIELDS {
        without(&mut crd, field.schema_path);
    }
    crd
}

/// Removes the property at `path` (property names, `*` for a map's values) from every
/// version's schema; a path that is not there is left alone.
pub fn without(crd: &mut CustomResourceDefinition, path: &[&str]) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrBool;
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    for version in &mut crd.spec.versions {
        let mut node = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut());
        for part in parents {
            node = node.and_then(|n| {
                if *part == "*" {
                    match n.additional_properties.as_mut() {
                        Some(JSONSchemaPropsOrBool::Schema(s)) => Some(s.as_mut()),
                        _ => None,
                    }
                } else {
                    n.properties.as_mut().and_then(|p| p.get_mut(*part))
                }
            });
        }
        if let Some(properties) = node.and_then(|n| n.properties.as_mut()) {
            properties.remove(*last);
        }
    }
}

/// Whether `schema` keeps the value at `path`.
fn declares(schema: &JSONSchemaProps, path: &[&str]) -> bool {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrBool;
    if schema.x_kubernetes_preserve_unknown_fields == Some(true) {
        return true;
    }
    let Some((first, rest)) = path.split_first() else {
        return true;
    };
    let next = if *first == "*" {
        match schema.additional_properties.as_ref() {
            Some(JSONSchemaPropsOrBool::Schema(values)) => Some(values.as_ref()),
            Some(JSONSchemaPropsOrBool::Bool(true)) => return true,
            _ => None,
        }
    } else {
        schema.properties.as_ref().and_then(|p| p.get(*first))
    };
    next.is_some_and(|next| declares(next, rest))
}

fn strip_descriptions(schema: &mut JSONSchemaProps) {
    visit_schemas(schema, &mut |node| node.description = None);
}

/// Calls `f` on `schema` and every schema nested in it.
fn visit_schemas(schema: &mut JSONSchemaProps, f: &mut impl FnMut(&mut JSONSchemaProps)) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
        JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
    };
    f(schema);
    for child in schema.properties.iter_mut().flat_map(|p| p.values_mut()) {
        visit_schemas(child, f);
    }
    if let Some(JSONSchemaPropsOrBool::Schema(child)) = schema.additional_properties.as_mut() {
        visit_schemas(child, f);
    }
    match schema.items.as_mut() {
        Some(JSONSchemaPropsOrArray::Schema(child)) => visit_schemas(child, f),
        Some(JSONSchemaPropsOrArray::Schemas(children)) => {
            children.iter_mut().for_each(|c| visit_schemas(c, f))
        }
        None => {}
    }
    for list in [&mut schema.all_of, &mut schema.any_of, &mut schema.one_of] {
        list.iter_mut().flatten().for_each(|c| visit_schemas(c, f));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMITTED: &str = include_str!("../../../../crds/kubeflow.org_tfjobs.yaml");

    #[test]
    fn committed_crd_matches_the_rust_types() {
        let generated = tfjob_crd_yaml().unwrap();
        assert!(
            generated == COMMITTED,
            "crds/kubeflow.org_tfjobs.yaml is out of date; regenerate it (and its copies) with \
             `cargo xtask gen`"
        );
    }

    /// The pod template's lists that server-side apply merges by key, as in the Pod API, and
    /// the two immutable fields as CEL rules.
    #[test]
    fn template_lists_merge_by_name_and_two_fields_are_immutable() {
        let crd = serde_json::to_value(tfjob_crd()).unwrap();
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        let pod = &schema["properties"]["tfReplicaSpecs"]["additionalProperties"]["properties"]["template"]
            ["properties"]["spec"]["properties"];
        for list in [
            &pod["containers"],
            &pod["initContainers"],
            &pod["volumes"],
            &pod["containers"]["items"]["properties"]["env"],
        ] {
            assert_eq!(list["x-kubernetes-list-type"], "map");
            assert_eq!(
                list["x-kubernetes-list-map-keys"],
                serde_json::json!(["name"])
            );
        }
        let run_policy = &schema["properties"]["runPolicy"]["properties"];
        for (field, message) in [
            (
                &run_policy["schedulingPolicy"]["properties"]["queue"],
                "spec.runPolicy.schedulingPolicy.queue is immutable",
            ),
            (
                &run_policy["managedBy"],
                "spec.runPolicy.managedBy is immutable",
            ),
        ] {
            assert_eq!(
                field["x-kubernetes-validations"],
                serde_json::json!([{ "rule": "self == oldSelf", "message": message }])
            );
        }
    }

    #[test]
    fn crd_fits_client_side_kubectl_apply() {
        let json = serde_json::to_string(&tfjob_crd()).unwrap();
        assert!(
            json.len() < MAX_CRD_BYTES,
            "CRD JSON is {} bytes, limit {MAX_CRD_BYTES}",
            json.len()
        );
        assert!(COMMITTED.len() < MAX_CRD_BYTES);
    }

    #[test]
    fn crd_identity_columns_and_subresources_match_upstream() {
        let crd = tfjob_crd();
        assert_eq!(crd.metadata.name.as_deref(), Some("tfjobs.kubeflow.org"));
        assert_eq!(crd.spec.group, "kubeflow.org");
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(crd.spec.names.kind, "TFJob");
        assert_eq!(crd.spec.names.plural, "tfjobs");
        assert_eq!(crd.spec.names.singular.as_deref(), Some("tfjob"));
        assert_eq!(crd.spec.versions.len(), 1);
        let v1 = &crd.spec.versions[0];
        assert_eq!(
            (v1.name.as_str(), v1.served, v1.storage),
            ("v1", true, true)
        );
        let columns: Vec<(&str, &str)> = v1
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| (c.name.as_str(), c.json_path.as_str()))
            .collect();
        assert_eq!(
            columns,
            [
                ("State", ".status.conditions[-1:].type"),
                ("Age", ".metadata.creationTimestamp"),
                ("Ready", ".status.ready"),
                ("Restarts", ".status.replicaStatuses.Worker.restarts"),
                ("Reason", ".status.conditions[-1:].reason"),
                ("Message", ".status.conditions[-1:].message"),
            ]
        );
        let default_view: Vec<&str> = v1
            .additional_printer_columns
            .iter()
            .flatten()
            .filter(|c| c.priority.unwrap_or(0) == 0)
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            default_view,
            ["State", "Age"],
            "upstream's columns by default"
        );
        assert_eq!(
            crd.spec.names.categories.as_deref(),
            Some(&["kubeflow".to_string(), "all".to_string()][..])
        );
        let subresources = v1.subresources.as_ref().unwrap();
        assert!(subresources.status.is_some());
        assert!(subresources.scale.is_none());
    }

    #[test]
    fn schema_requires_replica_specs_and_defaults_suspend_to_false() {
        let crd = serde_json::to_value(tfjob_crd()).unwrap();
        let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        assert_eq!(spec["required"], serde_json::json!(["tfReplicaSpecs"]));
        let run_policy = &spec["properties"]["runPolicy"]["properties"];
        assert_eq!(run_policy["suspend"]["default"], serde_json::json!(false));
        // Stored when left out, so clients whose models require it can read every job.
        assert_eq!(
            spec["properties"]["runPolicy"]["default"],
            serde_json::json!({})
        );
        for legacy in [
            "backoffLimit",
            "cleanPodPolicy",
            "activeDeadlineSeconds",
            "ttlSecondsAfterFinished",
        ] {
            assert!(
                spec["properties"][legacy].is_object(),
                "legacy spec.{legacy} must stay in the schema"
            );
        }
        let template =
            &spec["properties"]["tfReplicaSpecs"]["additionalProperties"]["properties"]["template"];
        assert!(
            !template.to_string().contains("\"description\""),
            "descriptions inside the pod template are dropped to stay under the size limit"
        );
        assert!(template["properties"]["spec"]["properties"]["containers"].is_object());
    }

    #[test]
    fn kubernetes_versions_parse_and_old_ones_get_no_cel_rules() {
        let v = |text: &str| text.parse::<KubeVersion>();
        let cases = [
            ("1.22", Ok((1, 22))),
            ("v1.20.2", Ok((1, 20))),
            ("1.28+", Ok((1, 28))),
            (" 1.36 ", Ok((1, 36))),
            ("1", Err(())),
            ("one.two", Err(())),
            ("", Err(())),
        ];
        for (text, expected) in cases {
            assert_eq!(
                v(text).map(|k| (k.major, k.minor)).map_err(|_| ()),
                expected,
                "{text:?}"
            );
        }
        assert!(v("x").unwrap_err().contains("such as 1.22"));

        let rules = |crd: &CustomResourceDefinition| {
            serde_json::to_string(crd)
                .unwrap()
                .matches("x-kubernetes-validations")
                .count()
        };
        assert!(rules(&tfjob_crd()) > 0, "the CRD has a CEL rule");
        assert_eq!(rules(&tfjob_crd_for(Some(v("1.22").unwrap()))), 0);
        assert_eq!(tfjob_crd_for(Some(v("1.23").unwrap())), tfjob_crd());
        assert_eq!(tfjob_crd_for(None), tfjob_crd());

        assert_eq!(
            replace_crd_command(Some(v("1.20").unwrap())),
            "tfjob-operator crd --kubernetes-version=1.20 | kubectl apply --server-side --force-conflicts -f -"
        );
        assert_eq!(
            replace_crd_command(Some(v("1.30").unwrap())),
            REPLACE_CRD_COMMAND
        );
        assert_eq!(replace_crd_command(None), REPLACE_CRD_COMMAND);
    }

    #[test]
    fn the_own_crd_declares_every_stored_field_and_an_upstream_shaped_one_none() {
        assert_eq!(missing_fields(&tfjob_crd()), vec![]);
        let upstream = upstream_shaped();
        assert_eq!(missing_fields(&upstream), STORED_FIELDS.to_vec());

        let mut one_missing = tfjob_crd();
        without(
            &mut one_missing,
            &["status", "replicaStatuses", "*", "restarts"],
        );
        let missing: Vec<&str> = missing_fields(&one_missing)
            .iter()
            .map(|f| f.path)
            .collect();
        assert_eq!(missing, ["status.replicaStatuses[*].restarts"]);

        // Preserving unknown fields keeps everything below.
        let mut preserving = upstream.clone();
        let status = preserving.spec.versions[0]
            .schema
            .as_mut()
            .unwrap()
            .open_api_v3_schema
            .as_mut()
            .unwrap()
            .properties
            .as_mut()
            .unwrap()
            .get_mut("status")
            .unwrap();
        status.x_kubernetes_preserve_unknown_fields = Some(true);
        let missing: Vec<&str> = missing_fields(&preserving).iter().map(|f| f.path).collect();
        assert_eq!(missing.len(), 4, "only the spec fields: {missing:?}");

        // A CRD that does not serve v1 keeps none of them.
        let mut other_version = tfjob_crd();
        other_version.spec.versions[0].name = "v2".into();
        assert_eq!(missing_fields(&other_version).len(), STORED_FIELDS.len());
    }
}

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
        }
    }
    crd
}

/// The CRD as YAML, exactly as committed under `crds/`.
pub fn tfjob_crd_yaml() -> Result<String, serde_saphyr::SerializeError> {
    serde_saphyr::to_string(&tfjob_crd())
}

fn strip_descriptions(schema: &mut JSONSchemaProps) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
        JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
    };
    schema.description = None;
    for child in schema.properties.iter_mut().flat_map(|p| p.values_mut()) {
        strip_descriptions(child);
    }
    if let Some(JSONSchemaPropsOrBool::Schema(child)) = schema.additional_properties.as_mut() {
        strip_descriptions(child);
    }
    match schema.items.as_mut() {
        Some(JSONSchemaPropsOrArray::Schema(child)) => strip_descriptions(child),
        Some(JSONSchemaPropsOrArray::Schemas(children)) => {
            children.iter_mut().for_each(strip_descriptions)
        }
        None => {}
    }
    for list in [&mut schema.all_of, &mut schema.any_of, &mut schema.one_of] {
        list.iter_mut().flatten().for_each(strip_descriptions);
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
                ("Age", ".metadata.creationTimestamp")
            ]
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
}

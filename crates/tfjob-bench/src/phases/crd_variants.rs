//! Where a TFJob write's cost goes: the same create and status patch against this CRD and
//! against two variants of it, each under its own API group on the same apiserver:
//! - *open templates*: the pod templates are `x-kubernetes-preserve-unknown-fields` (the
//!   apiserver neither prunes nor validates them: most of the schema is there);
//! - *no descriptions*: the same schema without a single `description`.

use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

use crate::cluster::install_crd;
use crate::phases::price::measure;
use crate::report::RequestCost;
use crate::run::Run;
use crate::workload;

/// A variant of the TFJob CRD: its API group, and the change to the schema.
struct Variant {
    label: &'static str,
    group: &'static str,
    change: fn(&mut Value),
}

const VARIANTS: [Variant; 2] = [
    Variant {
        label: "templates preserve-unknown-fields",
        group: "open-templates.bench.tfjob-operator.dev",
        change: open_templates,
    },
    Variant {
        label: "no descriptions",
        group: "no-descriptions.bench.tfjob-operator.dev",
        change: strip_descriptions,
    },
];

/// The rows of both variants: create and status patch, `n` of each.
pub async fn run(
    run: &Run,
    namespace: &str,
    n: usize,
    status: &Value,
) -> anyhow::Result<Vec<RequestCost>> {
    let mut rows = Vec::new();
    for variant in &VARIANTS {
        let crd = variant_crd(variant)?;
        install_crd(&run.client, &crd).await?;
        let resource = ApiResource {
            group: variant.group.into(),
            version: "v1".into(),
            api_version: format!("{}/v1", variant.group),
            kind: "TFJob".into(),
            plural: "tfjobs".into(),
        };
        let api: Api<DynamicObject> =
            Api::namespaced_with(run.client.clone(), namespace, &resource);
        let names: Vec<String> = (0..n).map(|i| workload::name("variant", i)).collect();
        let objects: Vec<DynamicObject> = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let mut job =
                    serde_json::to_value(workload::tfjob(namespace, name, i, run.sizes.replicas))?;
                job["apiVersion"] = json!(resource.api_version);
                serde_json::from_value(job)
            })
            .collect::<Result<_, _>>()?;
        rows.push(
            measure(
                run,
                &format!("create TFJob ({})", variant.label),
                n,
                run.create_all(&api, objects),
            )
            .await,
        );
        rows.push(
            measure(
                run,
                &format!("patch TFJob status ({})", variant.label),
                n,
                async {
                    futures::stream::iter(&names)
                        .map(|name| async {
                            api.patch_status(name, &PatchParams::default(), &Patch::Merge(status))
                                .await
                        })
                        .buffer_unordered(run.sizes.concurrency.max(1))
                        .filter(|result| futures::future::ready(result.is_err()))
                        .count()
                        .await
                },
            )
            .await,
        );
    }
    Ok(rows)
}

/// The TFJob CRD under `variant`'s group, with its schema changed.
fn variant_crd(variant: &Variant) -> anyhow::Result<CustomResourceDefinition> {
    let mut crd = serde_json::to_value(tfjob_core::api::crd::tfjob_crd())?;
    crd["metadata"] = json!({"name": format!("tfjobs.{}", variant.group)});
    crd["spec"]["group"] = json!(variant.group);
    // Categories and short names would clash with the real CRD's in discovery.
    if let Some(names) = crd["spec"]["names"].as_object_mut() {
        names.remove("shortNames");
        names.remove("categories");
    }
    for version in crd["spec"]["versions"].as_array_mut().into_iter().flatten() {
        (variant.change)(&mut version["schema"]["openAPIV3Schema"]);
    }
    Ok(serde_json::from_value(crd)?)
}

/// Pod templates become opaque objects the apiserver keeps as they are.
fn open_templates(schema: &mut Value) {
    let template = schema.pointer_mut(
        "/properties/spec/properties/tfReplicaSpecs/additionalProperties/properties/template",
    );
    if let Some(template) = template {
        *template = json!({
            "type": "object",
            "nullable": true,
            "x-kubernetes-preserve-unknown-fields": true
        });
    }
}

/// Removes every `description` (a property called `description` stays).
fn strip_descriptions(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if map.get("description").is_some_and(Value::is_string) {
                map.remove("description");
            }
            for value in map.values_mut() {
                strip_descriptions(value);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip_descriptions),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variants_change_only_what_they_say() {
        let original = serde_json::to_value(tfjob_core::api::crd::tfjob_crd()).unwrap();
        let size = |v: &Value| v.to_string().len();
        for variant in &VARIANTS {
            let crd = serde_json::to_value(variant_crd(variant).unwrap()).unwrap();
            assert_eq!(crd["spec"]["group"], variant.group);
            assert_eq!(crd["spec"]["names"]["kind"], "TFJob");
            assert!(crd["spec"]["names"].get("shortNames").is_none());
            assert!(
                size(&crd) < size(&original),
                "{}: a smaller schema",
                variant.label
            );
        }
        let open = serde_json::to_value(variant_crd(&VARIANTS[0]).unwrap()).unwrap();
        let template = open
            .pointer("/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/tfReplicaSpecs/additionalProperties/properties/template")
            .unwrap();
        assert_eq!(template["x-kubernetes-preserve-unknown-fields"], true);
        let bare = serde_json::to_value(variant_crd(&VARIANTS[1]).unwrap()).unwrap();
        let schema = bare.pointer("/spec/versions/0/schema").unwrap().to_string();
        assert!(!schema.contains("\"description\":\""), "{}", &schema[..300]);
        // The status schema (what a status patch validates) is the same in every variant.
        let status = "/spec/versions/0/schema/openAPIV3Schema/properties/status/properties/replicaStatuses/additionalProperties/properties/active/type";
        assert_eq!(open.pointer(status), original.pointer(status));
    }
}

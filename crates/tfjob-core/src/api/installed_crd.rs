//! The installed `tfjobs.kubeflow.org` CRD, decoded only as far as the start-up check needs:
//! the served versions, the stored versions, and in each schema just the nodes on the paths of
//! [`STORED_FIELDS`]. The full CRD is about 200 KB of JSON with thousands of schema nodes (the
//! embedded pod template); decoding all of it into `JSONSchemaProps` left ~2.6 MB of heap that
//! the allocator never gave back, for an answer that needs a few dozen nodes.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionStatus, CustomResourceDefinitionVersion,
    CustomResourceValidation, JSONSchemaProps, JSONSchemaPropsOrBool,
};
use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::crd::STORED_FIELDS;

/// Decodes an installed CRD from its JSON, keeping in each version's schema only the nodes on
/// the paths [`missing_fields`](super::crd::missing_fields) looks at. The result answers
/// `missing_fields` and `status.storedVersions` exactly as the full object would.
pub fn decode_installed(json: &str) -> Result<CustomResourceDefinition, serde_json::Error> {
    let installed: Installed = serde_json::from_str(json)?;
    let versions = installed
        .spec
        .versions
        .into_iter()
        .map(|v| CustomResourceDefinitionVersion {
            name: v.name,
            served: v.served,
            storage: v.storage,
            schema: v.schema.map(|s| CustomResourceValidation {
                open_api_v3_schema: s.open_api_v3_schema.map(|p| p.0),
            }),
            ..Default::default()
        })
        .collect();
    let mut crd = CustomResourceDefinition::default();
    crd.metadata.name = installed.metadata.name;
    crd.spec.versions = versions;
    crd.status = installed.status.map(|s| CustomResourceDefinitionStatus {
        stored_versions: s.stored_versions,
        ..Default::default()
    });
    Ok(crd)
}

#[derive(Deserialize)]
struct Installed {
    #[serde(default)]
    metadata: Metadata,
    spec: Spec,
    #[serde(default)]
    status: Option<Status>,
}

#[derive(Default, Deserialize)]
struct Metadata {
    name: Option<String>,
}

#[derive(Deserialize)]
struct Spec {
    #[serde(default)]
    versions: Vec<Version>,
}

#[derive(Deserialize)]
struct Version {
    name: String,
    #[serde(default)]
    served: bool,
    #[serde(default)]
    storage: bool,
    schema: Option<Validation>,
}

#[derive(Deserialize)]
struct Validation {
    #[serde(rename = "openAPIV3Schema")]
    open_api_v3_schema: Option<PrunedSchema>,
}

#[derive(Deserialize)]
struct Status {
    #[serde(rename = "storedVersions")]
    stored_versions: Option<Vec<String>>,
}

/// A schema with only the nodes on the paths of [`STORED_FIELDS`].
struct PrunedSchema(JSONSchemaProps);

impl<'de> Deserialize<'de> for PrunedSchema {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let paths: Vec<&[&str]> = STORED_FIELDS.iter().map(|f| f.schema_path).collect();
        PathSeed(paths).deserialize(deserializer).map(PrunedSchema)
    }
}

/// Decodes one schema node, descending only into the children that `paths` (relative to this
/// node: property names, `*` for `additionalProperties`) go through.
struct PathSeed<'p>(Vec<&'p [&'p str]>);

impl PathSeed<'_> {
    /// The paths that continue below child `name`.
    fn below(&self, name: &str) -> PathSeed<'_> {
        PathSeed(
            self.0
                .iter()
                .filter_map(|p| p.split_first())
                .filter(|(first, _)| **first == name)
                .map(|(_, rest)| rest)
                .collect(),
        )
    }
}

impl<'de> DeserializeSeed<'de> for PathSeed<'_> {
    type Value = JSONSchemaProps;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PathSeed<'_> {
    type Value = JSONSchemaProps;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an OpenAPI v3 schema object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JSONSchemaProps, A::Error> {
        let mut node = JSONSchemaProps::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "properties" => {
                    node.properties = Some(map.next_value_seed(Properties(&self))?);
                }
                "additionalProperties" => {
                    node.additional_properties =
                        map.next_value_seed(Additional(self.below("*")))?;
                }
                "x-kubernetes-preserve-unknown-fields" => {
                    node.x_kubernetes_preserve_unknown_fields = map.next_value()?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(node)
    }
}

/// A `properties` map: the children a path goes through, decoded; the others skipped.
struct Properties<'s, 'p>(&'s PathSeed<'p>);

impl<'de> DeserializeSeed<'de> for Properties<'_, '_> {
    type Value = BTreeMap<String, JSONSchemaProps>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Properties<'_, '_> {
    type Value = BTreeMap<String, JSONSchemaProps>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of property schemas")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut kept = BTreeMap::new();
        while let Some(name) = map.next_key::<String>()? {
            let below = self.0.below(&name);
            if below.0.is_empty() {
                map.next_value::<IgnoredAny>()?;
            } else {
                kept.insert(name, map.next_value_seed(below)?);
            }
        }
        Ok(kept)
    }
}

/// `additionalProperties`: `true`/`false`, or a schema (decoded only where a path goes on).
struct Additional<'p>(PathSeed<'p>);

impl<'de> DeserializeSeed<'de> for Additional<'_> {
    type Value = Option<JSONSchemaPropsOrBool>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Additional<'_> {
    type Value = Option<JSONSchemaPropsOrBool>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a boolean or a schema")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Self::Value, E> {
        Ok(Some(JSONSchemaPropsOrBool::Bool(value)))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let schema = self.0.visit_map(map)?;
        Ok(Some(JSONSchemaPropsOrBool::Schema(Box::new(schema))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::crd::{missing_fields, tfjob_crd, upstream_shaped, without};

    fn round_trip(crd: &CustomResourceDefinition) -> CustomResourceDefinition {
        decode_installed(&serde_json::to_string(crd).unwrap()).expect("decodes")
    }

    #[test]
    fn the_pruned_crd_answers_like_the_full_one() {
        let mut one_missing = tfjob_crd();
        without(
            &mut one_missing,
            &["status", "replicaStatuses", "*", "completedIndexes"],
        );
        let mut preserving = upstream_shaped();
        if let Some(status) = preserving.spec.versions[0]
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
            .and_then(|s| s.properties.as_mut())
            .and_then(|p| p.get_mut("status"))
        {
            status.x_kubernetes_preserve_unknown_fields = Some(true);
        }
        let mut other_version = tfjob_crd();
        other_version.spec.versions[0].name = "v2".into();
        let mut stored = tfjob_crd();
        stored.status = Some(CustomResourceDefinitionStatus {
            stored_versions: Some(vec!["v1".into(), "v1beta1".into()]),
            ..Default::default()
        });
        for (case, crd) in [
            ("own", tfjob_crd()),
            ("upstream", upstream_shaped()),
            ("one missing", one_missing),
            ("status preserved", preserving),
            ("not v1", other_version),
            ("stored versions", stored.clone()),
        ] {
            let pruned = round_trip(&crd);
            assert_eq!(missing_fields(&pruned), missing_fields(&crd), "{case}");
            assert_eq!(
                pruned.status.and_then(|s| s.stored_versions),
                crd.status.and_then(|s| s.stored_versions),
                "{case}"
            );
        }
    }

    #[test]
    fn only_the_nodes_on_the_paths_are_kept() {
        let pruned = round_trip(&tfjob_crd());
        let schema = pruned.spec.versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("a schema");
        let top: Vec<&String> = schema.properties.as_ref().unwrap().keys().collect();
        assert_eq!(top, ["spec", "status"]);
        let spec = &schema.properties.as_ref().unwrap()["spec"];
        let kept: Vec<&String> = spec.properties.as_ref().unwrap().keys().collect();
        assert_eq!(
            kept,
            [
                "activeDeadlineSeconds",
                "backoffLimit",
                "cleanPodPolicy",
                "ttlSecondsAfterFinished"
            ],
            "tfReplicaSpecs and its pod templates are skipped"
        );
        let size = serde_json::to_string(schema).unwrap().len();
        assert!(size < 2_000, "{size} bytes kept");
    }

    #[test]
    fn bad_json_is_an_error_not_a_panic() {
        for text in ["", "{", r#"{"spec": 3}"#, r#"{"spec": {"versions": [{}]}}"#] {
            assert!(decode_installed(text).is_err(), "{text:?}");
        }
        let odd = r#"{"spec": {"versions": [{"name": "v1", "served": true,
            "schema": {"openAPIV3Schema": {"properties": {"status": {"properties":
            {"replicaStatuses": {"additionalProperties": false}}}}}}}]}}"#;
        let crd = decode_installed(odd).expect("a boolean additionalProperties is valid");
        assert_eq!(missing_fields(&crd).len(), STORED_FIELDS.len());
    }
}

//! Reading the local control plane's apiserver audit log (`hack/control-plane.sh` writes every
//! write request of the test identities there), to count what the operator actually sent.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::control_plane;

/// The operator's requests in `namespace` from the apiserver audit log (writes only, the
/// audit policy's scope): `(verb, resource, subresource, name, code)`.
pub fn operator_writes(namespace: &str) -> Vec<(String, String, String, String, u16)> {
    let text = std::fs::read_to_string(control_plane().audit_log()).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["stage"] == "ResponseComplete")
        .filter(|e| {
            e["userAgent"]
                .as_str()
                .is_some_and(|ua| ua.starts_with("tfjob-operator/"))
        })
        .filter(|e| e["objectRef"]["namespace"] == namespace)
        .map(|e| {
            let field = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (
                field(&e["verb"]),
                field(&e["objectRef"]["resource"]),
                field(&e["objectRef"]["subresource"]),
                field(&e["objectRef"]["name"]),
                e["responseStatus"]["code"].as_u64().unwrap_or(0) as u16,
            )
        })
        .collect()
}

/// How many times the operator created each pod (any response code).
pub fn pod_creates(namespace: &str) -> BTreeMap<String, Vec<u16>> {
    let mut creates: BTreeMap<String, Vec<u16>> = BTreeMap::new();
    for (verb, resource, subresource, name, code) in operator_writes(namespace) {
        if verb == "create" && resource == "pods" && subresource.is_empty() {
            creates.entry(name).or_default().push(code);
        }
    }
    creates
}

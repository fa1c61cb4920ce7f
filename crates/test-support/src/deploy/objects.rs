//! Rendered Kubernetes objects as JSON values: parsing YAML streams, finding objects, reading
//! the parts the tests check, and normalising what only Helm adds.

use serde_json::Value;

/// Labels only Helm sets; the kustomize trees carry every other label of the chart.
pub const HELM_ONLY_LABELS: &[&str] = &["helm.sh/chart", "app.kubernetes.io/managed-by"];

/// The objects of a multi-document YAML stream (empty documents skipped).
pub fn parse_stream(yaml: &str) -> Vec<Value> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml)
        .unwrap_or_else(|e| panic!("not a YAML stream of objects: {e}\n{yaml}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

pub fn kind(obj: &Value) -> &str {
    obj["kind"].as_str().unwrap_or("")
}

pub fn name(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or("")
}

pub fn namespace(obj: &Value) -> &str {
    obj["metadata"]["namespace"].as_str().unwrap_or("")
}

/// `Kind namespace/name` (or `Kind name` when cluster-scoped), sorted: what a render contains.
pub fn ids(objs: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = objs.iter().map(id).collect();
    ids.sort();
    ids
}

pub fn id(obj: &Value) -> String {
    match namespace(obj) {
        "" => format!("{} {}", kind(obj), name(obj)),
        ns => format!("{} {ns}/{}", kind(obj), name(obj)),
    }
}

/// The only object of `kind`; panics naming what there is instead.
pub fn one<'a>(objs: &'a [Value], kind_: &str) -> &'a Value {
    let found: Vec<&Value> = objs.iter().filter(|o| kind(o) == kind_).collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {kind_}, the render has {:?}",
        ids(objs)
    );
    found[0]
}

/// Every object of `kind`.
pub fn all<'a>(objs: &'a [Value], kind_: &str) -> Vec<&'a Value> {
    objs.iter().filter(|o| kind(o) == kind_).collect()
}

/// The object `kind` named `name`; panics naming what there is instead.
pub fn get<'a>(objs: &'a [Value], kind_: &str, name_: &str) -> &'a Value {
    objs.iter()
        .find(|o| kind(o) == kind_ && name(o) == name_)
        .unwrap_or_else(|| panic!("no {kind_} {name_} in {:?}", ids(objs)))
}

/// The Deployment's only container.
pub fn container(deployment: &Value) -> &Value {
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("a Deployment has containers");
    assert_eq!(containers.len(), 1, "one container expected");
    &containers[0]
}

/// The container's arguments.
pub fn args(deployment: &Value) -> Vec<String> {
    strings(&container(deployment)["args"])
}

/// A JSON array of strings as a Vec (empty when absent).
pub fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// One RBAC rule, flattened for comparison: `group/resource: verbs` plus resource names.
pub fn rules(role: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for rule in role["rules"].as_array().expect("a role has rules") {
        let mut verbs = strings(&rule["verbs"]);
        verbs.sort();
        let names = strings(&rule["resourceNames"]);
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                let group = if group.is_empty() { "core" } else { &group };
                let mut line = format!("{group}/{resource}: {}", verbs.join(","));
                if !names.is_empty() {
                    line.push_str(&format!(" names={}", names.join(",")));
                }
                out.push(line);
            }
        }
    }
    out.sort();
    out
}

/// The object without Helm-only labels, and with container args sorted (flag order means
/// nothing to the operator; components append flags the chart puts in the middle). The
/// single-namespace component's `TFJOB_NAMESPACES` from the pod's namespace (the downward API)
/// counts as the chart's `--namespace=<that namespace>`.
pub fn normalised(obj: &Value) -> Value {
    let mut obj = obj.clone();
    if let Some(labels) = obj["metadata"]["labels"].as_object_mut() {
        for label in HELM_ONLY_LABELS {
            labels.remove(*label);
        }
    }
    let own_namespace = format!("--namespace={}", namespace(&obj));
    if let Some(containers) = obj["spec"]["template"]["spec"]["containers"].as_array_mut() {
        for container in containers {
            let from_downward_api = |var: &Value| {
                var["name"] == "TFJOB_NAMESPACES"
                    && var["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
            };
            if let Some(env) = container["env"].as_array_mut()
                && env.iter().any(from_downward_api)
            {
                env.retain(|var| !from_downward_api(var));
                if let Some(args) = container["args"].as_array_mut() {
                    args.push(Value::String(own_namespace.clone()));
                }
            }
            if let Some(args) = container["args"].as_array_mut() {
                args.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
        }
    }
    obj
}

/// The first difference between two JSON values, as `path: left != right`.
pub fn first_difference(path: &str, left: &Value, right: &Value) -> Option<String> {
    match (left, right) {
        (Value::Object(l), Value::Object(r)) => {
            let mut keys: Vec<&String> = l.keys().chain(r.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| {
                first_difference(
                    &format!("{path}.{k}"),
                    l.get(k).unwrap_or(&Value::Null),
                    r.get(k).unwrap_or(&Value::Null),
                )
            })
        }
        (Value::Array(l), Value::Array(r)) if l.len() == r.len() => l
            .iter()
            .zip(r)
            .enumerate()
            .find_map(|(i, (l, r))| first_difference(&format!("{path}[{i}]"), l, r)),
        _ if left == right => None,
        _ => Some(format!("{path}: {left} != {right}")),
    }
}

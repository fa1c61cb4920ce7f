//! etcd behind the local control plane: finding it, and compacting it so that watches resuming
//! from an older resourceVersion get 410 Gone.

use std::net::SocketAddr;
use std::path::Path;

use serde_json::{Value, json};

use super::binary::http;

/// The etcd client endpoint of the control plane, from kube-apiserver's `--etcd-servers`.
pub fn etcd_endpoint(dir: &Path) -> SocketAddr {
    let pids = std::fs::read_to_string(dir.join("pids")).expect("the control plane's pids file");
    let pid = pids
        .lines()
        .filter_map(|l| l.strip_prefix("kube-apiserver "))
        .next_back()
        .expect("kube-apiserver's pid");
    let cmdline =
        std::fs::read(format!("/proc/{}/cmdline", pid.trim())).expect("apiserver cmdline");
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let servers = args
        .iter()
        .position(|a| a == "--etcd-servers")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| {
            args.iter()
                .find_map(|a| a.strip_prefix("--etcd-servers=").map(str::to_string))
        })
        .expect("kube-apiserver --etcd-servers");
    servers
        .split(',')
        .next()
        .and_then(|u| u.trim_start_matches("http://").parse().ok())
        .unwrap_or_else(|| panic!("cannot use etcd endpoint {servers}"))
}

/// Through etcd's JSON gateway: writes a key outside the apiserver's prefix (the revision moves
/// on) and compacts everything before it.
pub async fn bump_and_compact(etcd: SocketAddr) -> u64 {
    let call = |path: &'static str, body: String| async move {
        let (status, reply) = http(etcd, "POST", path, &body)
            .await
            .unwrap_or_else(|e| panic!("etcd {path}: {e}"));
        assert_eq!(status, 200, "etcd {path}: {reply}");
        serde_json::from_str::<Value>(&reply).expect("etcd answers JSON")
    };
    // base64("/tfjob-operator-tests/bump")
    let key = "L3Rmam9iLW9wZXJhdG9yLXRlc3RzL2J1bXA=";
    let put = call(
        "/v3/kv/put",
        json!({"key": key, "value": "eA=="}).to_string(),
    )
    .await;
    let revision: u64 = put["header"]["revision"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no revision in {put}"));
    call(
        "/v3/kv/compaction",
        json!({"revision": revision.to_string(), "physical": false}).to_string(),
    )
    .await;
    revision
}

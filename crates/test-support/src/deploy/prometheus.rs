//! Prometheus and promtool from Debian's package, unpacked by `hack/prometheus.sh`: the alert
//! unit tests (`promtool test rules`) and a real Prometheus that scrapes the operator.

use std::path::PathBuf;

/// `bin/prometheus` or `bin/promtool` of the unpacked package; panics with the command that
/// installs it.
pub fn binary(name: &str) -> PathBuf {
    let dir = std::env::var_os("TFJOB_PROMETHEUS_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            let cache = std::env::var_os("TFJOB_CACHE_DIR")
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/tfjob-operator"))
                })?;
            Some(cache.join("prometheus"))
        })
        .expect("HOME or TFJOB_CACHE_DIR must be set to find Prometheus");
    let path = dir.join("bin").join(name);
    assert!(
        path.is_file(),
        "{name} is not installed: {} is missing.\nInstall it (about 5 s, cached) with:\n    \
         hack/prometheus.sh\n(hack/test.sh does this).",
        path.display()
    );
    path
}

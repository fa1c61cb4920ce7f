//! The operator's container image as `hack/image.sh` writes it (an OCI image layout), read the
//! way a container runtime reads it: index → manifest → config and layers; the layers unpacked
//! in order into a root directory the operator can then be run from (`chroot`, see
//! [`super::process::OperatorProcess::start_in_image`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::{inherited_from_cargo_test, release_binary, repo_path};

/// An image in an OCI layout directory.
pub struct OciImage {
    pub layout: PathBuf,
    pub manifest: Value,
    pub config: Value,
    /// The tag `index.json` gives it (`org.opencontainers.image.ref.name`).
    pub tag: String,
}

impl OciImage {
    /// Builds the image with `hack/image.sh` (from the fresh release binary) and opens it.
    pub fn build() -> OciImage {
        release_binary("tfjob-operator");
        let out = repo_path("target/image");
        let mut command = Command::new("bash");
        command
            .arg(repo_path("hack/image.sh"))
            .env("TFJOB_IMAGE_SKIP_BUILD", "1")
            .env("TFJOB_IMAGE_OUT", &out);
        for (key, _) in std::env::vars_os() {
            if key.to_str().is_some_and(inherited_from_cargo_test) {
                command.env_remove(key);
            }
        }
        let status = command.status().expect("bash runs hack/image.sh");
        assert!(
            status.success(),
            "hack/image.sh failed ({status}); see above"
        );
        OciImage::open(&out.join("oci"))
    }

    /// Reads the layout's only image.
    pub fn open(layout: &Path) -> OciImage {
        let index = read_json(&layout.join("index.json"));
        let descriptors = index["manifests"].as_array().expect("index.json manifests");
        assert_eq!(descriptors.len(), 1, "one image in the layout: {index}");
        let tag = descriptors[0]["annotations"]["org.opencontainers.image.ref.name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let manifest = read_blob_json(layout, &descriptors[0]);
        let config = read_blob_json(layout, &manifest["config"]);
        OciImage {
            layout: layout.to_path_buf(),
            manifest,
            config,
            tag,
        }
    }

    /// The layers' blob paths, base first.
    pub fn layers(&self) -> Vec<PathBuf> {
        self.manifest["layers"]
            .as_array()
            .expect("manifest layers")
            .iter()
            .map(|layer| blob_path(&self.layout, layer))
            .collect()
    }

    /// What a registry stores and a node pulls: the layers' compressed bytes.
    pub fn compressed_size(&self) -> u64 {
        self.manifest["layers"]
            .as_array()
            .expect("manifest layers")
            .iter()
            .map(|layer| layer["size"].as_u64().expect("layer size"))
            .sum()
    }

    /// Checks every blob against its digest (`sha256sum`), as a registry would.
    pub fn verify_digests(&self) {
        let mut descriptors = vec![self.manifest["config"].clone()];
        descriptors.extend(
            self.manifest["layers"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
        for descriptor in descriptors {
            let path = blob_path(&self.layout, &descriptor);
            let output = Command::new("sha256sum")
                .arg(&path)
                .output()
                .expect("sha256sum runs");
            let text = String::from_utf8_lossy(&output.stdout);
            let actual = format!("sha256:{}", text.split_whitespace().next().unwrap_or(""));
            assert_eq!(
                descriptor["digest"].as_str(),
                Some(actual.as_str()),
                "{} does not match its digest",
                path.display()
            );
        }
    }

    /// `config.User`, `config.Entrypoint`, `config.Env`, `config.Labels`.
    pub fn runtime(&self, field: &str) -> &Value {
        &self.config["config"][field]
    }

    /// Unpacks every layer, in order, into `root` (created): the container's filesystem.
    pub fn unpack(&self, root: &Path) {
        std::fs::create_dir_all(root).expect("the image root");
        for layer in self.layers() {
            let status = Command::new("tar")
                .arg("-xzf")
                .arg(&layer)
                .arg("-C")
                .arg(root)
                .arg("--numeric-owner")
                .status()
                .expect("tar runs");
            assert!(status.success(), "tar -xzf {} failed", layer.display());
        }
    }
}

/// `skopeo ARGS` (unpacked by hack/skopeo.sh): its stdout; panics with its stderr on failure.
pub fn skopeo(args: &[&str]) -> String {
    let cache = std::env::var_os("TFJOB_CACHE_DIR")
        .filter(|d| !d.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/tfjob-operator"))
        })
        .expect("HOME or TFJOB_CACHE_DIR must be set to find skopeo");
    let wrapper = cache.join("skopeo/bin/skopeo");
    assert!(
        wrapper.is_file(),
        "skopeo is not installed: {} is missing.\nInstall it (about 5 s, cached) with:\n    \
         hack/skopeo.sh\n(hack/test.sh does this).",
        wrapper.display()
    );
    let output = Command::new(&wrapper)
        .args(args)
        .output()
        .expect("skopeo runs");
    assert!(
        output.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Every path in `root` (relative), for content checks.
pub fn files_under(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)
            .expect("read the image root")
            .flatten()
        {
            let path = entry.path();
            let relative = path
                .strip_prefix(root)
                .expect("under the root")
                .display()
                .to_string();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            }
            found.push(relative);
        }
    }
    found.sort();
    found
}

fn blob_path(layout: &Path, descriptor: &Value) -> PathBuf {
    let digest = descriptor["digest"]
        .as_str()
        .expect("a descriptor's digest");
    let hex = digest
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("a sha256 digest: {digest}"));
    layout.join("blobs/sha256").join(hex)
}

fn read_blob_json(layout: &Path, descriptor: &Value) -> Value {
    read_json(&blob_path(layout, descriptor))
}

fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

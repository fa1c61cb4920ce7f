//! The Dockerfile builds the tested binary as non-root.

use super::*;

/// The Dockerfile cannot be built here (no container engine). What can be checked: it copies
/// every source file the tested binary is compiled from (cargo's dep-info of that very
/// binary), builds it with `--locked` (what hack/test.sh's cargo commands use) as the binary the
/// tests run, and runs it as the non-root user the chart's pod security context requires.
#[test]
fn dockerfile_builds_the_tested_binary_as_non_root() {
    let dockerfile = std::fs::read_to_string(repo_path("Dockerfile")).expect("Dockerfile");
    let lines: Vec<&str> = dockerfile.lines().map(str::trim).collect();

    // The build command, and the binary it names exists.
    assert!(
        dockerfile.contains("cargo build --release --locked --bin tfjob-operator"),
        "the Dockerfile builds with: cargo build --release --locked --bin tfjob-operator"
    );
    let manifest = std::fs::read_to_string(repo_path("Cargo.toml")).expect("Cargo.toml");
    assert!(manifest.contains("name = \"tfjob-operator\"\npath = \"src/main.rs\""));

    // The builder's Rust is at least the crate's rust-version.
    let rust_version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("Cargo.toml has rust-version");
    let builder = lines
        .iter()
        .find_map(|l| l.strip_prefix("FROM docker.io/library/rust:"))
        .expect("a rust builder stage");
    let minor = |v: &str| -> u32 {
        v.split('.')
            .nth(1)
            .and_then(|m| m.split('-').next())
            .and_then(|m| m.parse().ok())
            .unwrap_or(0)
    };
    assert!(
        minor(builder) >= minor(rust_version),
        "builder rust:{builder} < rust-version {rust_version}"
    );

    // Every file the binary is compiled from is in the build context and copied.
    let copied: Vec<String> = lines
        .iter()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from="))
        .flat_map(|l| {
            let parts: Vec<&str> = l.split_whitespace().skip(1).collect();
            parts[..parts.len() - 1]
                .iter()
                .map(|p| p.trim_end_matches('/').to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    let sources = binary_sources();
    assert!(sources.contains("src/main.rs"), "{sources:?}");
    // .cargo/config.toml configures jemalloc when it is built (src/main.rs).
    for required in ["Cargo.toml", "Cargo.lock", ".cargo/config.toml"]
        .into_iter()
        .chain(sources.iter().map(String::as_str))
    {
        assert!(
            copied
                .iter()
                .any(|c| required == c || required.starts_with(&format!("{c}/"))),
            "the Dockerfile does not COPY {required} (copies {copied:?})"
        );
    }
    let ignore = std::fs::read_to_string(repo_path(".dockerignore")).expect(".dockerignore");
    for path in &copied {
        assert!(
            ignore
                .lines()
                .any(|l| l.trim_end_matches('/') == format!("!{path}")),
            ".dockerignore lets {path} in"
        );
    }

    // Non-root, numerically (the kubelet can only verify runAsNonRoot on a numeric user), the
    // chart's runAsUser, and the binary as entrypoint (the chart passes args only).
    let runtime = lines
        .iter()
        .rev()
        .find(|l| l.starts_with("FROM "))
        .expect("a runtime stage");
    assert!(
        runtime.contains("distroless") && runtime.ends_with(":nonroot"),
        "{runtime}"
    );
    let deployment = get(&helm::render(&json!({})), "Deployment", "tfjob-operator").clone();
    let uid = deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"].clone();
    assert!(
        lines.contains(&format!("USER {uid}:{uid}").as_str()),
        "USER {uid}:{uid}"
    );
    assert!(
        container(&deployment).get("command").is_none(),
        "the image's entrypoint runs"
    );
    assert!(lines.contains(&r#"ENTRYPOINT ["/usr/local/bin/tfjob-operator"]"#));
    // Upstream's Deployments run `command: [/manager]`: the same binary is there too.
    assert!(
        lines.contains(&"COPY --from=build /usr/local/bin/tfjob-operator /manager"),
        "the image has /manager"
    );
}

/// The repository files the operator binary is compiled from, from rustc's dep-info of the
/// binary and of the (non-test) library it links, which `cargo test` builds for
/// `CARGO_BIN_EXE_tfjob-operator`. The library's dep-info is the one whose hash matches a
/// `libtfjob_operator-HASH.rlib` (the test build of the library has no rlib).
fn binary_sources() -> BTreeSet<String> {
    let deps = std::path::Path::new(env!("CARGO_BIN_EXE_tfjob-operator"))
        .parent()
        .expect("the binary's directory")
        .join("deps");
    let root = format!("{}/", env!("CARGO_MANIFEST_DIR"));
    let read = |name: &str| std::fs::read_to_string(deps.join(name)).unwrap_or_default();
    let files = |text: &str| -> Vec<String> {
        // `target: dependency...` lines; `# env-dep:` comments are not files.
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once(": ").map(|(_, deps)| deps))
            .flat_map(str::split_whitespace)
            .map(|f| f.strip_prefix(&root).unwrap_or(f).to_string())
            .filter(|f| !f.starts_with('/'))
            .collect()
    };
    let mut sources = BTreeSet::new();
    let entries = std::fs::read_dir(&deps)
        .unwrap_or_else(|e| panic!("cargo's deps directory {}: {e}", deps.display()));
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // The operator's library and the workspace crates it links.
        let library = ["tfjob_operator", "tfjob_core"]
            .into_iter()
            .find_map(|crate_name| {
                let hash = name
                    .strip_prefix(&format!("lib{crate_name}-"))?
                    .strip_suffix(".rlib")?;
                Some(format!("{crate_name}-{hash}.d"))
            });
        if let Some(dep_info) = library {
            sources.extend(files(&read(&dep_info)));
        } else if name.starts_with("tfjob_operator-") && name.ends_with(".d") {
            let text = read(&name);
            if files(&text).iter().any(|f| f == "src/main.rs") {
                sources.extend(files(&text));
            }
        }
    }
    assert!(
        sources.contains("src/main.rs")
            && sources.contains("src/lib.rs")
            && sources.contains("crates/tfjob-core/src/lib.rs"),
        "no dep-info of the operator binary and its library in {}: {sources:?}",
        deps.display()
    );
    sources
}

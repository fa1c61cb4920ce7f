//! The architecture, checked rather than described: the core crate reaches no I/O crate, no
//! module imports one that imports it back, production files stay small, `main.rs` stays thin,
//! and nothing in the repository points at files outside it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `cargo tree -p tfjob-core -e normal` lists no client, runtime or network crate: the compiler,
/// not a convention, keeps the planner pure.
#[test]
fn the_core_crate_depends_on_no_io_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "tree",
            "--package",
            "tfjob-core",
            "--edges",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8_lossy(&output.stdout);
    let crates: BTreeSet<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(crates.contains("k8s-openapi") && crates.contains("kube-core"));
    let forbidden = [
        "kube-client",
        "kube-runtime",
        "kube",
        "tokio",
        "hyper",
        "hyper-util",
        "reqwest",
        "rustls",
        "tower",
        "mio",
        "socket2",
        "tracing",
    ];
    let found: Vec<&&str> = forbidden.iter().filter(|c| crates.contains(**c)).collect();
    assert!(found.is_empty(), "tfjob-core depends on {found:?}:\n{tree}");
}

/// The Rust modules of one crate, from its file tree: `src/a/b.rs` and `src/a/b/mod.rs` are the
/// module `a::b`. Test-only files (`tests.rs`, scenario and fixture modules) are left out.
fn modules(src: &Path) -> BTreeMap<String, PathBuf> {
    fn walk(dir: &Path, src: &Path, out: &mut BTreeMap<String, PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("source directory") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, src, out);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).expect("under src");
            let mut parts: Vec<String> = relative
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts
                .last()
                .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
            {
                parts.pop();
            }
            let test_only = [
                "tests",
                "scenarios",
                "properties",
                "test_fixtures",
                "testing",
            ];
            if parts.iter().any(|p| test_only.contains(&p.as_str())) {
                continue;
            }
            out.insert(parts.join("::"), path);
        }
    }
    let mut out = BTreeMap::new();
    walk(src, src, &mut out);
    out
}

/// The modules of the same crate that `module`'s code names (`crate::x::y`, `super::z`), each
/// resolved to the longest known module path.
fn imports(module: &str, text: &str, known: &BTreeMap<String, PathBuf>) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .take_while(|l| l.trim() != "#[cfg(test)]")
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = BTreeSet::new();
    let tokens: Vec<&str> = code
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .filter(|t| t.starts_with("crate::") || t.starts_with("super::"))
        .collect();
    for token in tokens {
        let mut base: Vec<&str> = if module.is_empty() {
            vec![]
        } else {
            module.split("::").collect()
        };
        let mut rest: Vec<&str> = token.split("::").filter(|s| !s.is_empty()).collect();
        if rest.first() == Some(&"crate") {
            base.clear();
            rest.remove(0);
        } else {
            // `super` of `a::b` is `a`, whether `b` is `a/b.rs` or `a/b/mod.rs`.
            while rest.first() == Some(&"super") {
                base.pop();
                rest.remove(0);
            }
        }
        let mut path = base.clone();
        let mut resolved = None;
        for part in rest {
            path.push(part);
            let candidate = path.join("::");
            if known.contains_key(&candidate) {
                resolved = Some(candidate);
            }
        }
        if let Some(target) = resolved
            && target != module
            && !module.starts_with(&format!("{target}::"))
        {
            found.insert(target);
        }
    }
    found
}

/// A cycle in `graph`, if any (depth-first search).
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, graph, &mut Vec::new(), &mut done) {
            return Some(cycle);
        }
    }
    None
}

/// No module of any crate imports a module that imports it back, directly or through others.
/// A module using its own ancestors (`super::Pass` in a child of the planner) is ownership, not
/// an import cycle, and is not counted.
#[test]
fn no_module_imports_form_a_cycle() {
    let mut crates = vec![root().join("src")];
    for entry in std::fs::read_dir(root().join("crates")).expect("crates/") {
        crates.push(entry.expect("entry").path().join("src"));
    }
    let mut checked = 0;
    for src in crates {
        let known = modules(&src);
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (module, path) in &known {
            let text = std::fs::read_to_string(path).expect("source");
            graph.insert(module.clone(), imports(module, &text, &known));
        }
        checked += graph.len();
        if let Some(cycle) = find_cycle(&graph) {
            panic!("import cycle in {}: {}", src.display(), cycle.join(" → "));
        }
    }
    assert!(checked > 80, "found the modules: {checked}");
}

/// The cycle finder itself finds a cycle (a check that cannot fail proves nothing).
#[test]
fn the_cycle_finder_finds_cycles() {
    let graph = |edges: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    };
    assert_eq!(find_cycle(&graph(&[("a", "b"), ("b", "c")])), None);
    assert_eq!(
        find_cycle(&graph(&[("a", "b"), ("b", "c"), ("c", "a")])),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    let known: BTreeMap<String, PathBuf> = ["plan", "plan::gang", "plan::planner"]
        .into_iter()
        .map(|m| (m.to_string(), PathBuf::from(format!("{m}.rs"))))
        .collect();
    assert_eq!(
        imports("plan::gang", "use super::planner::{Planner, X};", &known),
        BTreeSet::from(["plan::planner".to_string()])
    );
    assert_eq!(
        imports("plan::planner", "use crate::plan::gang::Action;", &known),
        BTreeSet::from(["plan::gang".to_string()])
    );
}

/// Production files stay readable: none over ~600 lines (tests live in their own files), and
/// `main.rs` is a thin entry point.
#[test]
fn production_files_stay_small_and_main_stays_thin() {
    let crates = [root().join("src"), root().join("crates/tfjob-core/src")];
    let mut too_long = Vec::new();
    for src in crates {
        for path in modules(&src).values() {
            let text = std::fs::read_to_string(path).expect("source");
            let code = text
                .lines()
                .take_while(|l| l.trim() != "#[cfg(test)]")
                .count();
            if code > 650 {
                too_long.push(format!("{}: {code} lines", path.display()));
            }
        }
    }
    assert!(too_long.is_empty(), "files over ~600 lines: {too_long:?}");
    let main = std::fs::read_to_string(root().join("src/main.rs")).expect("main.rs");
    assert!(
        main.lines().count() < 100,
        "src/main.rs has {} lines",
        main.lines().count()
    );
}

/// The project explains itself: no file in the repository refers to documents outside it.
#[test]
fn nothing_points_outside_the_repository() {
    // Built from pieces, so that this file does not match itself.
    let pattern = format!("{}|shared/{}|\\.\\./{}", '\u{a7}', "reference", "shared");
    let output = Command::new("git")
        .args(["grep", "-n", "-I", "-E", &pattern, "--", "."])
        .current_dir(root())
        .output()
        .expect("git grep runs");
    let matches = String::from_utf8_lossy(&output.stdout);
    let outside: Vec<&str> = matches.lines().collect();
    assert!(
        outside.is_empty(),
        "references to files outside the repository:\n{}",
        outside.join("\n")
    );
}

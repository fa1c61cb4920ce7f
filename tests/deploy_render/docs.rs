//! The user documentation: README.md stays short and every relative link in it and in docs/
//! resolves (the file exists; a `#anchor` names a heading of that file).

use super::*;

use std::path::{Path, PathBuf};

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(markdown: &str) -> Vec<String> {
    let mut in_code = false;
    let mut found = Vec::new();
    for line in markdown.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            found.push(anchor(line.trim_start_matches('#')));
        }
    }
    found
}

/// `(link text, target)` of every inline link outside code blocks.
fn links(markdown: &str) -> Vec<String> {
    let mut in_code = false;
    let mut found = Vec::new();
    for line in markdown.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let mut rest = line;
        while let Some(start) = rest.find("](") {
            let after = &rest[start + 2..];
            let Some(end) = after.find(')') else { break };
            found.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    found
}

pub(crate) fn user_docs() -> Vec<PathBuf> {
    let mut docs = vec![repo_path("README.md")];
    let mut in_docs: Vec<PathBuf> = std::fs::read_dir(repo_path("docs"))
        .expect("docs/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    in_docs.sort();
    docs.extend(in_docs);
    docs
}

#[test]
fn every_relative_link_in_the_docs_resolves() {
    let mut broken = Vec::new();
    for doc in user_docs() {
        let text = std::fs::read_to_string(&doc).expect("a doc");
        let dir = doc.parent().expect("a directory").to_path_buf();
        for target in links(&text) {
            if target.starts_with("http://")
                || target.starts_with("https://")
                || target.starts_with("mailto:")
            {
                continue;
            }
            let (path, fragment) = target.split_once('#').unwrap_or((&target, ""));
            let file: PathBuf = if path.is_empty() {
                doc.clone()
            } else {
                dir.join(path)
            };
            let name = doc
                .strip_prefix(repo_path(""))
                .unwrap_or(&doc)
                .display()
                .to_string();
            if !file.exists() {
                broken.push(format!(
                    "{name}: ({target}): {} does not exist",
                    file.display()
                ));
                continue;
            }
            if !fragment.is_empty() && file.extension().is_some_and(|e| e == "md") {
                let headings = anchors(&std::fs::read_to_string(&file).expect("a doc"));
                if !headings.iter().any(|a| a == fragment) {
                    broken.push(format!("{name}: ({target}): no heading #{fragment}"));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "broken links:\n  {}",
        broken.join("\n  ")
    );
}

#[test]
fn the_readme_is_short_and_starts_with_the_two_commands() {
    let readme = std::fs::read_to_string(repo_path("README.md")).expect("README.md");
    assert!(
        readme.len() < 15 * 1024,
        "README.md is {} bytes; keep it under 15 KB (details go to docs/)",
        readme.len()
    );
    let first_block: Vec<&str> = readme
        .split("```")
        .nth(1)
        .expect("a code block")
        .lines()
        .skip(1)
        .collect();
    assert!(
        first_block[0].starts_with("hack/demo.sh"),
        "{first_block:?}"
    );
    assert!(
        first_block[1].starts_with("hack/test.sh"),
        "{first_block:?}"
    );
    let ci = std::fs::read_to_string(repo_path(".ci/run")).expect(".ci/run");
    assert!(
        ci.contains("exec hack/test.sh"),
        "CI runs the README's test command"
    );
}

#[allow(dead_code)]
fn _path(_: &Path) {}

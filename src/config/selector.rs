//! Parser for Kubernetes label-selector strings (`app=x,tier!=db,env in (a,b),!legacy`).
//!
//! kube-core has a typed [`Selector`] but no string parser, and `--job-selector` must reject a bad
//! selector at start-up rather than have the apiserver reject every list call later. The grammar
//! follows `k8s.io/apimachinery/pkg/labels.Parse`: comma-separated requirements of the forms
//! `k=v`, `k==v`, `k!=v`, `k in (v1,v2)`, `k notin (v1,v2)`, `k` and `!k`.

use std::collections::BTreeSet;

use kube::core::{Expression, Selector};

/// Why a label selector string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid label selector requirement {requirement:?}: {reason}")]
pub struct SelectorError {
    /// The requirement (one comma-separated part) that failed.
    pub requirement: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Parses a label-selector string; the empty string selects everything.
pub fn parse_label_selector(input: &str) -> Result<Selector, SelectorError> {
    let mut expressions = Vec::new();
    for requirement in split_requirements(input) {
        let requirement = requirement.trim();
        if requirement.is_empty() {
            if input.trim().is_empty() {
                continue;
            }
            return Err(error(requirement, "empty requirement (stray comma?)"));
        }
        expressions.push(parse_requirement(requirement)?);
    }
    Ok(expressions.into_iter().collect())
}

/// Splits on commas that are not inside `( … )`, because set values are comma-separated too.
fn split_requirements(input: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in input.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&input[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&input[start..]);
    parts
}

fn parse_requirement(req: &str) -> Result<Expression, SelectorError> {
    if let Some(key) = req.strip_prefix('!') {
        let key = key.trim();
        check_key(req, key)?;
        return Ok(Expression::DoesNotExist(key.to_string()));
    }
    if let Some((key, value)) = req.split_once("!=") {
        let (key, value) = (key.trim(), value.trim());
        check_key(req, key)?;
        check_value(req, value)?;
        return Ok(Expression::NotEqual(key.to_string(), value.to_string()));
    }
    if let Some((key, value)) = req.split_once('=') {
        // `==` is accepted as a synonym of `=`, as in apimachinery.
        let value = value.strip_prefix('=').unwrap_or(value);
        let (key, value) = (key.trim(), value.trim());
        check_key(req, key)?;
        check_value(req, value)?;
        return Ok(Expression::Equal(key.to_string(), value.to_string()));
    }
    if let Some(open) = req.find('(') {
        let head = req[..open].trim();
        let Some(inner) = req[open + 1..].trim_end().strip_suffix(')') else {
            return Err(error(req, "set is missing its closing ')'"));
        };
        let mut words = head.split_whitespace();
        let (Some(key), Some(op), None) = (words.next(), words.next(), words.next()) else {
            return Err(error(req, "expected `key in (…)` or `key notin (…)`"));
        };
        check_key(req, key)?;
        let values = inner
            .split(',')
            .map(str::trim)
            .map(|v| check_value(req, v).map(|()| v.to_string()))
            .collect::<Result<BTreeSet<_>, _>>()?;
        if values.iter().all(String::is_empty) {
            return Err(error(req, "a set needs at least one value"));
        }
        return match op {
            "in" => Ok(Expression::In(key.to_string(), values)),
            "notin" => Ok(Expression::NotIn(key.to_string(), values)),
            other => Err(error(
                req,
                &format!("unknown operator {other:?}; use in or notin"),
            )),
        };
    }
    if req.split_whitespace().count() > 1 {
        return Err(error(
            req,
            "unknown operator; use =, ==, !=, in (…), notin (…), key or !key",
        ));
    }
    check_key(req, req)?;
    Ok(Expression::Exists(req.to_string()))
}

/// A label key: optional DNS-subdomain prefix and `/`, then a name of at most 63 characters.
fn check_key(req: &str, key: &str) -> Result<(), SelectorError> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let valid_prefix = !prefix.is_empty()
            && prefix.len() <= 253
            && prefix.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !valid_prefix {
            return Err(error(
                req,
                &format!("key prefix {prefix:?} is not a DNS subdomain"),
            ));
        }
    }
    if name.is_empty() {
        return Err(error(req, "missing label key"));
    }
    if !is_label_name(name) {
        return Err(error(
            req,
            &format!(
                "label key {name:?} must be at most 63 alphanumeric characters, '-', '_' or '.', starting and ending with an alphanumeric"
            ),
        ));
    }
    Ok(())
}

/// A label value: empty, or the same character rules as a key name.
fn check_value(req: &str, value: &str) -> Result<(), SelectorError> {
    if value.is_empty() || is_label_name(value) {
        Ok(())
    } else {
        Err(error(
            req,
            &format!(
                "label value {value:?} must be at most 63 alphanumeric characters, '-', '_' or '.', starting and ending with an alphanumeric"
            ),
        ))
    }
}

fn is_label_name(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    s.len() <= 63
        && s.starts_with(alnum)
        && s.ends_with(alnum)
        && s.chars()
            .all(|c| alnum(c) || c == '-' || c == '_' || c == '.')
}

fn error(requirement: &str, reason: &str) -> SelectorError {
    SelectorError {
        requirement: requirement.to_string(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(input: &str) -> String {
        parse_label_selector(input)
            .map(|s| s.to_string())
            .unwrap_or_else(|e| panic!("{input:?} should parse: {e}"))
    }

    #[test]
    fn parses_every_operator() {
        assert_eq!(roundtrip("app=tf"), "app=tf");
        assert_eq!(roundtrip("app==tf"), "app=tf");
        assert_eq!(roundtrip("app != tf"), "app!=tf");
        assert_eq!(roundtrip("env in (b, a)"), "env in (a,b)");
        assert_eq!(roundtrip("env notin (a)"), "env notin (a)");
        assert_eq!(roundtrip("shard"), "shard");
        assert_eq!(roundtrip("!legacy"), "!legacy");
        assert_eq!(
            roundtrip("example.com/shard=1,env in (a,b),!x"),
            "example.com/shard=1,env in (a,b),!x"
        );
    }

    #[test]
    fn empty_selects_everything() {
        let selector = parse_label_selector("").expect("empty parses");
        assert!(selector.selects_all());
        assert!(parse_label_selector("  ").expect("blank").selects_all());
    }

    #[test]
    fn rejects_malformed_requirements() {
        for bad in [
            "a,,b", // stray comma
            "=x",   // no key
            "env in (a",
            "env within (a)",
            "env in ()",
            "-bad=x",
            "app=bad value",
            "UPPER.example.com/x=y",
            "a b",
        ] {
            let err = parse_label_selector(bad).expect_err(bad);
            assert!(!err.reason.is_empty(), "{bad}: {err}");
        }
    }

    #[test]
    fn empty_value_is_valid() {
        assert_eq!(roundtrip("app="), "app=");
    }

    #[test]
    fn parsed_selector_matches_labels() {
        use kube::core::SelectorExt;
        let selector = parse_label_selector("shard in (a,b),!skip").expect("parses");
        let labels = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(selector.matches(&labels(&[("shard", "a")])));
        assert!(!selector.matches(&labels(&[("shard", "c")])));
        assert!(!selector.matches(&labels(&[("shard", "a"), ("skip", "")])));
    }
}

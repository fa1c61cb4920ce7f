//! The chart's alerts: valid rules (`promtool check rules`), each firing and staying quiet as
//! its unit tests say (`promtool test rules`, tests/fixtures/alerts/alerts.test.yaml), and each
//! linked to its section of docs/runbooks.md.

use super::*;

use deploy::prometheus;

/// The default PrometheusRule's rule groups, as a Prometheus rule file.
fn rule_groups(keep_annotations: bool) -> Value {
    let objs = helm::render_for(
        &json!({ "prometheusRule": { "enabled": true } }),
        &helm::PROMETHEUS_OPERATOR,
    );
    let mut spec = one(&objs, "PrometheusRule")["spec"].clone();
    if !keep_annotations {
        for group in spec["groups"].as_array_mut().expect("groups") {
            for rule in group["rules"].as_array_mut().expect("rules") {
                rule.as_object_mut().expect("a rule").remove("annotations");
            }
        }
    }
    spec
}

fn alerts(spec: &Value) -> Vec<Value> {
    spec["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .collect()
}

fn promtool(dir: &std::path::Path, args: &[&str]) -> String {
    let output = std::process::Command::new(prometheus::binary("promtool"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn alerts_are_valid_and_their_unit_tests_pass() {
    let dir = repo_path("target/alert-tests");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");

    // The full rules, annotations and their templates included, are valid.
    std::fs::write(dir.join("full.yaml"), rule_groups(true).to_string()).expect("rules");
    promtool(&dir, &["check", "rules", "full.yaml"]);

    // The firing logic, alert by alert (annotations are compared by promtool when present,
    // and they hold values; they are checked below instead).
    std::fs::write(dir.join("rules.yaml"), rule_groups(false).to_string()).expect("rules");
    let tests = std::fs::read_to_string(repo_path("tests/fixtures/alerts/alerts.test.yaml"))
        .expect("the alert tests");
    std::fs::write(dir.join("alerts.test.yaml"), &tests).expect("tests");
    let report = promtool(&dir, &["test", "rules", "alerts.test.yaml"]);
    assert!(report.contains("SUCCESS"), "{report}");

    // Every alert has a test where it fires and one where it does not.
    for alert in alerts(&rule_groups(false)) {
        let name = alert["alert"].as_str().expect("an alert name");
        let cases: Vec<&str> = tests
            .split("alertname: ")
            .skip(1)
            .filter(|case| case.starts_with(name) && case[name.len()..].starts_with([',', '\n']))
            .collect();
        assert!(
            cases.iter().any(|c| c.contains("exp_alerts: []")),
            "{name}: no test where it stays quiet"
        );
        assert!(
            cases.iter().any(|c| c.contains("exp_labels")),
            "{name}: no test where it fires"
        );
    }
}

#[test]
fn every_alert_links_its_runbook() {
    let runbooks =
        std::fs::read_to_string(repo_path("docs/runbooks.md")).expect("docs/runbooks.md");
    let anchors: Vec<String> = runbooks
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(|heading| heading.trim().to_lowercase())
        .collect();
    let spec = rule_groups(true);
    let all_alerts = alerts(&spec);
    assert!(all_alerts.len() >= 7, "{all_alerts:?}");
    for alert in all_alerts {
        let name = alert["alert"].as_str().expect("an alert name");
        let url = alert["annotations"]["runbook_url"]
            .as_str()
            .unwrap_or_default();
        assert_eq!(
            url,
            format!(
                "https://github.com/tfjob-operator/tfjob-operator/blob/main/docs/runbooks.md#{}",
                name.to_lowercase()
            ),
            "{name}'s runbook_url"
        );
        assert!(
            anchors.contains(&name.to_lowercase()),
            "docs/runbooks.md has no section `## {name}`"
        );
        for annotation in ["summary", "description"] {
            assert!(
                alert["annotations"][annotation].is_string(),
                "{name} has a {annotation}"
            );
        }
    }
}

//! `kubectl auth can-i --as <user>` (impersonation by the admin): what an identity may and may
//! not do, asked of the apiserver's own authorizer.

use std::path::Path;

use futures::future::join_all;
use tokio::process::Command;

/// One question: `kubectl auth can-i ARGS` and the expected answer.
pub struct Check {
    pub allowed: bool,
    pub args: String,
}

/// Expect `yes` for `kubectl auth can-i ARGS` (whitespace-separated).
pub fn may(args: impl Into<String>) -> Check {
    Check {
        allowed: true,
        args: args.into(),
    }
}

/// Expect `no`.
pub fn may_not(args: impl Into<String>) -> Check {
    Check {
        allowed: false,
        args: args.into(),
    }
}

/// Asks every check (concurrently) as `user`; panics listing every wrong answer.
pub async fn assert_access(admin_kubeconfig: &Path, user: &str, checks: &[Check]) {
    let answers = join_all(checks.iter().map(|check| async move {
        let output = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(admin_kubeconfig)
            .args(["auth", "can-i"])
            .args(check.args.split_whitespace())
            .arg(format!("--as={user}"))
            .output()
            .await
            .unwrap_or_else(|e| panic!("cannot run kubectl ({e}); install kubectl"));
        let answer = String::from_utf8_lossy(&output.stdout).trim().to_string();
        // can-i exits 0 for yes, 1 for no; anything else is a broken question.
        let allowed = match (output.status.code(), answer.as_str()) {
            (Some(0), "yes") => Ok(true),
            (Some(1), a) if a.starts_with("no") => Ok(false),
            _ => Err(format!(
                "kubectl auth can-i {} failed ({}): {answer} {}",
                check.args,
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )),
        };
        (check, allowed)
    }))
    .await;
    let wrong: Vec<String> = answers
        .iter()
        .filter_map(|(check, allowed)| match allowed {
            Ok(a) if *a == check.allowed => None,
            Ok(a) => Some(format!(
                "can-i {}: {} (expected {})",
                check.args,
                if *a { "yes" } else { "no" },
                if check.allowed { "yes" } else { "no" }
            )),
            Err(e) => Some(e.clone()),
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{user} has the wrong access ({} of {} checks):\n  {}",
        wrong.len(),
        checks.len(),
        wrong.join("\n  ")
    );
}

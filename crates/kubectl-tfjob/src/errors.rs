//! Errors that say what to do next: a missing job, a missing permission (with the verb and
//! resource), a missing CRD, an unreachable cluster.

use std::fmt;

/// What went wrong, ready to print after `error: `, and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub code: u8,
}

impl Failure {
    /// Bad flags or kubeconfig (exit 2, as clap).
    pub fn usage(message: String) -> Failure {
        Failure { message, code: 2 }
    }

    /// Anything else (exit 1, as kubectl).
    pub fn failed(message: String) -> Failure {
        Failure { message, code: 1 }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The request that failed: `get` of `tfjobs` named `x` in `ns`.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub verb: &'a str,
    pub resource: &'a str,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
    pub server: &'a str,
}

/// Explains a failed request.
pub fn explain(error: &kube::Error, request: Request<'_>) -> Failure {
    let Request {
        verb,
        resource,
        namespace,
        name,
        server,
    } = request;
    let scope = namespace.map_or_else(
        || "in any namespace".to_string(),
        |ns| format!("in namespace {ns:?}"),
    );
    let message = match error {
        kube::Error::Api(status)
            if status.code == 404
                && name.is_some()
                && status.reason == "NotFound"
                && status.details.as_ref().is_some_and(|d| !d.name.is_empty()) =>
        {
            let name = name.unwrap_or_default();
            let list = namespace.map_or_else(|| "-A".to_string(), |ns| format!("-n {ns}"));
            format!("no TFJob {name:?} {scope}; list them with: kubectl tfjob list {list}")
        }
        kube::Error::Api(status) if status.code == 404 => format!(
            "the server has no TFJob resource (kubeflow.org/v1 tfjobs): install the CRD, e.g. \
             kubectl apply --server-side -f crds/kubeflow.org_tfjobs.yaml ({})",
            status.message
        ),
        kube::Error::Api(status) if status.code == 403 => format!(
            "you may not {verb} {resource} {scope}: {}; ask for a Role that allows {verb:?} on \
             {resource} (the chart's aggregated roles give namespace editors TFJobs)",
            status.message
        ),
        kube::Error::Api(status) if status.code == 401 => format!(
            "the server at {server} does not accept your credentials ({}); log in again or \
             check --context",
            status.message
        ),
        kube::Error::Api(status) => format!("{verb} {resource} {scope}: {}", status.message),
        other => format!(
            "cannot reach the cluster at {server}: {other}; check --context and --kubeconfig, \
             and that the apiserver is up (kubectl cluster-info)"
        ),
    };
    Failure::failed(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16, reason: &str, details_name: &str) -> kube::Error {
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "status": "Failure", "message": format!("{reason} message"), "reason": reason,
            "code": code, "details": {"name": details_name}
        }))
        .unwrap();
        kube::Error::Api(Box::new(status))
    }

    #[test]
    fn failures_say_what_to_do_next() {
        let request = |name| Request {
            verb: "get",
            resource: "tfjobs",
            namespace: Some("team-a"),
            name,
            server: "https://k:6443/",
        };
        let cases = [
            (
                api(404, "NotFound", "x"),
                request(Some("x")),
                "no TFJob \"x\" in namespace \"team-a\"; list them with: kubectl tfjob list -n team-a",
            ),
            (
                api(404, "NotFound", ""),
                request(None),
                "the server has no TFJob resource",
            ),
            (
                api(403, "Forbidden", ""),
                request(None),
                "you may not get tfjobs in namespace \"team-a\"",
            ),
            (
                api(401, "Unauthorized", ""),
                request(None),
                "does not accept your credentials",
            ),
        ];
        for (error, request, want) in cases {
            let failure = explain(&error, request);
            assert!(failure.message.contains(want), "{}", failure.message);
            assert_eq!(failure.code, 1);
        }
    }
}

//! Container logs, served the way a kubelet serves them, so that `kubectl logs`, the API's
//! `pods/log` and everything built on them work on a control plane without real nodes.
//!
//! The kube-apiserver proxies `GET /api/v1/namespaces/<ns>/pods/<pod>/log` to the node's
//! kubelet at `https://<address>:<daemonEndpoints.kubeletEndpoint.Port>/containerLogs/<ns>/
//! <pod>/<container>`; without `--kubelet-certificate-authority` it does not verify the
//! kubelet's certificate, so a self-signed one does. What a simulated container "prints":
//! the lines of its pod's `sim.tfjob-operator.dev/log` annotation (default: its `TF_CONFIG`,
//! as a TensorFlow program logs its cluster), then `exited with code N` once it has ended.
//! `follow=true` keeps the answer open until the container ends; `tailLines` is honoured.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::Client;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// The pod annotation whose lines the simulated container prints.
pub const LOG: &str = "sim.tfjob-operator.dev/log";

type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

/// What a container has printed so far, and whether it has ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Not started: the kubelet answers 400 with this reason.
    NotStarted(String),
    Lines {
        lines: Vec<String>,
        ended: bool,
    },
}

/// The output of `container` of `pod` (pure).
pub fn output_of(pod: &Pod, container: &str) -> Output {
    let status = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == container));
    let state = status.and_then(|c| c.state.as_ref());
    let terminated = state.and_then(|s| s.terminated.as_ref());
    if state.and_then(|s| s.running.as_ref()).is_none() && terminated.is_none() {
        let why = state
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.clone())
            .unwrap_or_else(|| "ContainerCreating".into());
        return Output::NotStarted(format!(
            "container {container:?} in pod {:?} is waiting to start: {why}",
            pod.metadata.name.as_deref().unwrap_or_default()
        ));
    }
    let annotated = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(LOG))
        .map(|text| text.lines().map(String::from).collect::<Vec<_>>());
    let mut lines = annotated.unwrap_or_else(|| default_lines(pod, container));
    if let Some(t) = terminated {
        lines.push(format!("exited with code {}", t.exit_code));
    }
    Output::Lines {
        lines,
        ended: terminated.is_some(),
    }
}

/// `TF_CONFIG=<value>` when the container has one, else `<container> started`.
fn default_lines(pod: &Pod, container: &str) -> Vec<String> {
    let tf_config = pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.iter().find(|c| c.name == container))
        .and_then(|c| c.env.as_ref())
        .and_then(|env| env.iter().find(|e| e.name == "TF_CONFIG"))
        .and_then(|e| e.value.clone());
    vec![match tf_config {
        Some(value) => format!("TF_CONFIG={value}"),
        None => format!("{container} started"),
    }]
}

/// The last `tail` lines (all when `None`).
pub fn tail(lines: &[String], tail: Option<usize>) -> &[String] {
    let skip = tail.map_or(0, |n| lines.len().saturating_sub(n));
    &lines[skip..]
}

/// Serves container logs on an ephemeral port of 127.0.0.1 until the returned task is
/// aborted; the port.
pub async fn serve(client: Client) -> std::io::Result<(u16, tokio::task::JoinHandle<()>)> {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
            .map_err(std::io::Error::other)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(signing_key.serialize_der()));
    let mut tls = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .map_err(std::io::Error::other)?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
    let port = listener.local_addr()?.port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, client) = (acceptor.clone(), client.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |request| {
                    let client = client.clone();
                    async move { Ok::<_, Infallible>(answer(client, request).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Ok((port, task))
}

/// `GET /containerLogs/<ns>/<pod>/<container>?follow=&tailLines=`.
async fn answer(client: Client, request: Request<Incoming>) -> Response<Body> {
    let path: Vec<&str> = request.uri().path().trim_matches('/').split('/').collect();
    let ["containerLogs", namespace, pod, container] = path.as_slice() else {
        return plain(
            StatusCode::NOT_FOUND,
            "only /containerLogs/<ns>/<pod>/<container>".into(),
        );
    };
    let query = request.uri().query().unwrap_or_default();
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    };
    let follow = param("follow").is_some_and(|v| v == "true");
    let tail_lines = param("tailLines").and_then(|v| v.parse::<usize>().ok());
    let pods: Api<Pod> = Api::namespaced(client, namespace);
    let (pod, container) = (pod.to_string(), container.to_string());
    let first = match pods.get_opt(&pod).await {
        Ok(Some(found)) => output_of(&found, &container),
        Ok(None) => return plain(StatusCode::NOT_FOUND, format!("pod {pod:?} not found")),
        Err(e) => return plain(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let (lines, ended) = match first {
        Output::NotStarted(why) => return plain(StatusCode::BAD_REQUEST, why),
        Output::Lines { lines, ended } => (lines, ended),
    };
    let shown = tail(&lines, tail_lines).to_vec();
    if !follow || ended {
        return plain(StatusCode::OK, joined(&shown));
    }
    // Follow: what is there now, then each new line until the container ends.
    let follow = Follow {
        pending: Some(shown),
        printed: lines.len(),
        done: false,
        pods,
        pod,
        container,
    };
    let stream = futures::stream::unfold(follow, Follow::next)
        .map(|text| Ok::<_, Infallible>(Frame::data(Bytes::from(text))));
    let body = StreamBody::new(stream.boxed()).boxed_unsync();
    let mut response = Response::new(body);
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain"),
    );
    response
}

/// A followed container: the text to send next, until it has ended or its pod is gone.
struct Follow {
    pending: Option<Vec<String>>,
    printed: usize,
    done: bool,
    pods: Api<Pod>,
    pod: String,
    container: String,
}

impl Follow {
    async fn next(mut self) -> Option<(String, Follow)> {
        if let Some(now) = self.pending.take() {
            return Some((joined(&now), self));
        }
        while !self.done {
            tokio::time::sleep(Duration::from_millis(200)).await;
            // Deleted: the stream ends, as a kubelet's does.
            let found = self.pods.get_opt(&self.pod).await.ok().flatten()?;
            if let Output::Lines { lines, ended } = output_of(&found, &self.container)
                && (lines.len() > self.printed || ended)
            {
                let new = lines.get(self.printed..).unwrap_or_default().to_vec();
                self.printed = lines.len();
                self.done = ended;
                return Some((joined(&new), self));
            }
        }
        None
    }
}

fn joined(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

fn plain(status: StatusCode, text: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(text)).boxed_unsync());
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: &str) -> Pod {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn containers_print_their_tf_config_or_annotation_then_their_exit() {
        let running = pod(r#"{"metadata": {"name": "j-worker-0"},
            "spec": {"containers": [{"name": "tensorflow", "env": [{"name": "TF_CONFIG", "value": "{\"task\":{}}"}]}]},
            "status": {"containerStatuses": [{"name": "tensorflow", "image": "tf", "imageID": "", "ready": true, "restartCount": 0, "state": {"running": {}}}]}}"#);
        assert_eq!(
            output_of(&running, "tensorflow"),
            Output::Lines {
                lines: vec![r#"TF_CONFIG={"task":{}}"#.into()],
                ended: false
            }
        );
        let done = pod(
            r#"{"metadata": {"name": "j-ps-0", "annotations": {"sim.tfjob-operator.dev/log": "step 1\nstep 2"}},
            "status": {"containerStatuses": [{"name": "tensorflow", "image": "tf", "imageID": "", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 3}}}]}}"#,
        );
        assert_eq!(
            output_of(&done, "tensorflow"),
            Output::Lines {
                lines: vec![
                    "step 1".into(),
                    "step 2".into(),
                    "exited with code 3".into()
                ],
                ended: true
            }
        );
        let waiting = pod(r#"{"metadata": {"name": "j-ps-0"},
            "status": {"containerStatuses": [{"name": "tensorflow", "image": "tf", "imageID": "", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}}"#);
        assert_eq!(
            output_of(&waiting, "tensorflow"),
            Output::NotStarted(
                r#"container "tensorflow" in pod "j-ps-0" is waiting to start: ImagePullBackOff"#
                    .into()
            )
        );
        let lines: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        assert_eq!(tail(&lines, Some(2)), ["b", "c"]);
        assert_eq!(tail(&lines, Some(9)), ["a", "b", "c"]);
        assert_eq!(tail(&lines, None).len(), 3);
    }
}

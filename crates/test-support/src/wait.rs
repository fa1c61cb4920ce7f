//! Waiting for the cluster to reach a state, with failure messages that show what was seen last.

use std::fmt::{Debug, Display};
use std::future::Future;
use std::time::{Duration, Instant};

use kube::api::Api;
use kube::runtime::wait::await_condition;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;

/// What a [`wait_for`] probe returns: done (with a value), or not yet (with what it saw).
pub trait Probe {
    type Output;
    fn check(self) -> Result<Self::Output, String>;
}

impl Probe for bool {
    type Output = ();
    fn check(self) -> Result<(), String> {
        if self {
            Ok(())
        } else {
            Err("condition false".into())
        }
    }
}

impl<T> Probe for Option<T> {
    type Output = T;
    fn check(self) -> Result<T, String> {
        self.ok_or_else(|| "nothing yet".into())
    }
}

/// `Err` carries the description of the state seen, shown if the wait times out.
impl<T, E: Display> Probe for Result<T, E> {
    type Output = T;
    fn check(self) -> Result<T, String> {
        self.map_err(|e| e.to_string())
    }
}

/// Calls `probe` every 100 ms until it reports done, and returns its value. Panics after
/// `timeout` naming `what` and the last state the probe described.
///
/// ```text
/// let pod = wait_for(secs(10), "pod to run", || async {
///     let pod = pods.get("p").await.map_err(|e| e.to_string())?;
///     if phase(&pod) == "Running" { Ok(pod) } else { Err(format!("phase {}", phase(&pod))) }
/// }).await;
/// ```
pub async fn wait_for<F, Fut, P>(timeout: Duration, what: &str, mut probe: F) -> P::Output
where
    F: FnMut() -> Fut,
    Fut: Future<Output = P>,
    P: Probe,
{
    let start = Instant::now();
    loop {
        match probe().await.check() {
            Ok(value) => return value,
            Err(last) if start.elapsed() >= timeout => {
                panic!("timed out after {timeout:?} waiting for {what}; last seen: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Watches object `name` until `cond` holds and returns it (event-driven, no polling). Panics after
/// `timeout` with `what` and the object as it was then.
pub async fn await_object<K>(
    api: &Api<K>,
    name: &str,
    timeout: Duration,
    what: &str,
    cond: impl Fn(&K) -> bool,
) -> K
where
    K: Resource + Clone + Debug + Send + DeserializeOwned + serde::Serialize + 'static,
{
    let matched = move |obj: Option<&K>| obj.is_some_and(&cond);
    match tokio::time::timeout(timeout, await_condition(api.clone(), name, matched)).await {
        Ok(Ok(Some(obj))) => obj,
        Ok(Ok(None)) => unreachable!("the condition only matches existing objects"),
        Ok(Err(e)) => panic!("watching {name} failed while waiting for {what}: {e}"),
        Err(_) => {
            let now = api
                .get_opt(name)
                .await
                .ok()
                .flatten()
                .map(|o| describe(&o))
                .unwrap_or_else(|| "<not found>".into());
            panic!("timed out after {timeout:?} waiting for {what}; {name} is now: {now}")
        }
    }
}

/// Waits until object `name` is gone (deleted and finalised).
pub async fn await_deleted<K>(api: &Api<K>, name: &str, timeout: Duration)
where
    K: Resource + Clone + Debug + Send + DeserializeOwned + serde::Serialize + 'static,
{
    let gone = |obj: Option<&K>| obj.is_none();
    if tokio::time::timeout(timeout, await_condition(api.clone(), name, gone))
        .await
        .is_err()
    {
        let now = api.get_opt(name).await.ok().flatten().map(|o| describe(&o));
        panic!("timed out after {timeout:?} waiting for {name} to be deleted; it is now: {now:?}")
    }
}

/// Compact JSON of an object without managedFields, for failure messages.
pub fn describe<K: Resource + serde::Serialize + Clone>(obj: &K) -> String {
    let mut obj = obj.clone();
    obj.managed_fields_mut().clear();
    serde_json::to_string(&obj).unwrap_or_else(|e| format!("<unserialisable: {e}>"))
}

/// Seconds, for readable timeouts: `secs(10)`.
pub const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Like [`wait_for`] but probing every 20 ms, for waits whose duration is measured.
pub async fn wait_fast<F, Fut, T>(timeout: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) if start.elapsed() >= timeout => {
                panic!("timed out after {timeout:?} waiting for {what}; last seen: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

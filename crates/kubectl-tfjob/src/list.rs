//! `kubectl tfjob list`: the list-TFJobs API's parameters one for one (labelSelector,
//! fieldSelector, limit and continue, resourceVersion, timeoutSeconds, watch).

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use tfjob_core::api::TFJob;

use crate::cli::{ListArgs, Output};
use crate::connect::Cluster;
use crate::errors::{Failure, Request, explain};
use crate::table::{Row, render};

/// Page size of an unlimited list (the apiserver's list chunks; kubectl uses 500 too).
const PAGE: u32 = 500;
/// The longest watch request; longer watches are resumed from the last resourceVersion
/// (kube's client gives up reading after 295 s).
const WATCH_CHUNK: Duration = Duration::from_secs(290);

pub async fn list(cluster: &Cluster, args: &ListArgs) -> Result<(), Failure> {
    let api: Api<TFJob> = if args.all_namespaces {
        Api::all(cluster.client.clone())
    } else {
        Api::namespaced(cluster.client.clone(), &cluster.namespace)
    };
    let request = Request {
        verb: if args.watch { "watch" } else { "list" },
        resource: "tfjobs",
        namespace: (!args.all_namespaces).then_some(cluster.namespace.as_str()),
        name: None,
        server: &cluster.server,
    };
    let printer = Printer {
        output: args.output,
        all_namespaces: args.all_namespaces,
    };
    let resource_version = match (&args.resource_version, args.watch) {
        (Some(rv), true) => rv.clone(),
        _ => {
            let (jobs, resource_version, next) = list_pages(&api, args)
                .await
                .map_err(|e| explain(&e, request))?;
            printer.print_list(&jobs);
            if let Some(token) = next {
                eprintln!(
                    "(more TFJobs: run again with --limit {} --continue {token})",
                    args.limit.unwrap_or(PAGE)
                );
            }
            resource_version
        }
    };
    if args.watch {
        watch(&api, args, resource_version, &printer)
            .await
            .map_err(|e| match e {
                WatchFailure::Api(e) => explain(&e, request),
                WatchFailure::Gone => Failure::failed(
                    "the resourceVersion is too old (410 Gone): watch without \
                     --resource-version, or from a newer one"
                        .into(),
                ),
            })?;
    }
    Ok(())
}

/// One page with `--limit`, else every page. The list's resourceVersion and, for a limited
/// list with more items, the continue token.
async fn list_pages(
    api: &Api<TFJob>,
    args: &ListArgs,
) -> Result<(Vec<TFJob>, String, Option<String>), kube::Error> {
    let mut params = ListParams::default().limit(args.limit.unwrap_or(PAGE));
    if let Some(selector) = &args.selector {
        params = params.labels(selector);
    }
    if let Some(selector) = &args.field_selector {
        params = params.fields(selector);
    }
    let mut token = args.continue_token.clone();
    let mut jobs = Vec::new();
    loop {
        let page_params = match &token {
            Some(t) => params.clone().continue_token(t),
            None => params.clone(),
        };
        let page = api.list(&page_params).await?;
        jobs.extend(page.items);
        let rv = page.metadata.resource_version.unwrap_or_default();
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if args.limit.is_some() || token.is_none() {
            return Ok((jobs, rv, token));
        }
    }
}

enum WatchFailure {
    Api(kube::Error),
    Gone,
}

/// Prints each change from `resource_version` on, until `--timeout` (or for ever).
async fn watch(
    api: &Api<TFJob>,
    args: &ListArgs,
    mut resource_version: String,
    printer: &Printer,
) -> Result<(), WatchFailure> {
    let deadline = args.timeout.map(|t| Instant::now() + t);
    loop {
        let left = deadline.map_or(WATCH_CHUNK, |d| d.saturating_duration_since(Instant::now()));
        if left.is_zero() {
            return Ok(());
        }
        let seconds = left.min(WATCH_CHUNK).as_secs().max(1);
        let mut params = WatchParams::default().timeout(seconds as u32);
        if let Some(selector) = &args.selector {
            params = params.labels(selector);
        }
        if let Some(selector) = &args.field_selector {
            params = params.fields(selector);
        }
        let stream = api
            .watch(&params, &resource_version)
            .await
            .map_err(WatchFailure::Api)?;
        let mut stream = stream.boxed();
        while let Some(event) = stream.try_next().await.map_err(WatchFailure::Api)? {
            match event {
                WatchEvent::Added(job) | WatchEvent::Modified(job) | WatchEvent::Deleted(job) => {
                    if let Some(rv) = &job.metadata.resource_version {
                        resource_version = rv.clone();
                    }
                    printer.print_change(&job);
                }
                WatchEvent::Bookmark(bookmark) => {
                    resource_version = bookmark.metadata.resource_version;
                }
                WatchEvent::Error(status) if status.code == 410 => {
                    return Err(WatchFailure::Gone);
                }
                WatchEvent::Error(status) => {
                    return Err(WatchFailure::Api(kube::Error::Api(status)));
                }
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(());
        }
    }
}

/// Prints lists and changes in the chosen format.
struct Printer {
    output: Option<Output>,
    all_namespaces: bool,
}

impl Printer {
    fn print_list(&self, jobs: &[TFJob]) {
        match self.output {
            Some(Output::Json) => println!("{}", to_json(&list_object(jobs))),
            Some(Output::Yaml) => print!("{}", to_yaml(&list_object(jobs))),
            Some(Output::Name) => jobs.iter().for_each(|j| println!("{}", name_of(j))),
            None | Some(Output::Wide) => {
                if jobs.is_empty() {
                    eprintln!("No TFJobs found.");
                    return;
                }
                print!("{}", self.table(jobs, true));
            }
        }
    }

    /// One change of a watch: a row without the header (as `kubectl get -w`), or one object.
    fn print_change(&self, job: &TFJob) {
        match self.output {
            Some(Output::Json) => println!(
                "{}",
                to_json(&serde_json::to_value(job).unwrap_or_default())
            ),
            Some(Output::Yaml) => print!(
                "---\n{}",
                to_yaml(&serde_json::to_value(job).unwrap_or_default())
            ),
            Some(Output::Name) => println!("{}", name_of(job)),
            None | Some(Output::Wide) => print!("{}", self.table(std::slice::from_ref(job), false)),
        }
    }

    fn table(&self, jobs: &[TFJob], header: bool) -> String {
        let now = jiff::Timestamp::now();
        let rows: Vec<Row> = jobs.iter().map(|j| Row::of(j, now)).collect();
        let text = render(
            &rows,
            self.all_namespaces,
            self.output == Some(Output::Wide),
        );
        if header {
            text
        } else {
            text.lines().skip(1).map(|l| format!("{l}\n")).collect()
        }
    }
}

fn name_of(job: &TFJob) -> String {
    format!(
        "tfjob.kubeflow.org/{}",
        job.metadata.name.as_deref().unwrap_or_default()
    )
}

/// kubectl's `-o json` of a list: a `v1` `List` of the items.
fn list_object(jobs: &[TFJob]) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "metadata": {"resourceVersion": ""},
        "items": jobs,
    })
}

fn to_json(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

fn to_yaml(value: &serde_json::Value) -> String {
    serde_saphyr::to_string(value).unwrap_or_default()
}

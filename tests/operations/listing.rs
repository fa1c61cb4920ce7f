//! The initial list in pages, and the re-list after etcd compaction or a dropped watch.

use super::*;

/// 2,000 TFJobs, listed 100 at a time: `/readyz` stays 503 until the cache holds every one of
/// them (and `/healthz` is 200 throughout), the list was paged, and every job was reconciled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_list_of_2000_jobs_in_pages_of_100_fills_the_cache_before_ready() {
    // Creating 2,000 objects saturates a 2-core control plane for seconds: alone, so that the
    // lease renewals and timings of the other tests are not starved by it.
    let _exclusive = EXCLUSIVE.write().await;
    let ctx = TestContext::new("list2000").await;
    const JOBS: usize = 2000;
    let jobs: Api<TFJob> = ctx.api();
    // Jobs handed to another controller (Kueue): cached and reconciled, but never written to,
    // which keeps 2,000 of them light.
    let kueue = json!({"managedBy": "kueue.x-k8s.io/multikueue"});
    let created = Instant::now();
    futures::stream::iter(0..JOBS)
        .map(|i| {
            let jobs = jobs.clone();
            let job = job(&format!("j{i:04}"), &[], kueue.clone(), 1, "Never", "");
            async move { jobs.create(&PostParams::default(), &job).await }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await
        .expect("create 2,000 TFJobs");
    let created = created.elapsed();

    let mut operator = start_operator(
        "list2000",
        &[
            &format!("--namespace={}", ctx.namespace),
            "--list-page-size=100",
            // kube's request log: one `requesting` line per request, in a span with its URL.
            "--log-level=info,kube_client::client::builder=debug",
        ],
        &[],
    )
    .await;

    // Poll both probes from the start; readiness must not come before the whole list.
    let not_ready = std::cell::Cell::new(0);
    let ready_after = wait_fast(secs(60), "/readyz to turn 200", || {
        let (operator, not_ready) = (&operator, &not_ready);
        async move {
            let health = probe(operator, "/healthz").await?;
            assert_eq!(health, (200, "ok".to_string()), "/healthz while starting");
            match probe(operator, "/readyz").await? {
                (200, _) => Ok(operator.started.elapsed()),
                (503, reason) => {
                    assert_eq!(reason, "caches not synced");
                    not_ready.set(not_ready.get() + 1);
                    Err(reason)
                }
                other => panic!("/readyz answered {other:?}"),
            }
        }
    })
    .await;
    let not_ready = not_ready.get();
    assert!(not_ready > 0, "/readyz was never seen unready");
    let scrape = operator.scrape().await;
    assert_eq!(
        scrape.sum("tfjob_operator_jobs", &[("job_namespace", &ctx.namespace)]),
        JOBS as f64,
        "every job is cached when /readyz first says ready: {:?}",
        scrape.series("tfjob_operator_jobs")
    );
    assert_eq!(
        sample(&scrape, "tfjob_operator_jobs", &[("state", "Pending")]),
        Some(JOBS as f64)
    );

    // Every job reaches the reconciler.
    let reconciles = wait_for(secs(60), "2,000 reconciles", || async {
        let n = operator
            .scrape()
            .await
            .sum("tfjob_operator_reconcile_total", &[]);
        if n >= JOBS as f64 {
            Ok(n)
        } else {
            Err(format!("{n} reconciles"))
        }
    })
    .await;

    // Paged: the TFJob list took exactly 20 requests with limit=100, 19 of them continuations.
    let lists: Vec<String> = operator
        .log_lines()
        .iter()
        .filter(|l| message(l) == "requesting" && l["otel.name"] == "list")
        .filter_map(|l| l["http.url"].as_str().map(str::to_string))
        .filter(|url| url.contains("/tfjobs?"))
        .collect();
    let pages: Vec<&String> = lists.iter().filter(|u| u.contains("limit=100")).collect();
    assert_eq!(pages.len(), JOBS / 100, "TFJob list requests: {lists:#?}");
    assert_eq!(
        pages.iter().filter(|u| u.contains("continue=")).count(),
        JOBS / 100 - 1,
        "{pages:#?}"
    );
    // The same from the operator's own request metric: 20 TFJob pages and one page each of pods
    // and Services (the CRD probe is a `list_metadata`); no watch restarted.
    let scrape = operator.scrape().await;
    assert_eq!(
        sample(
            &scrape,
            "tfjob_operator_api_requests_total",
            &[("verb", "list"), ("code", "200")]
        ),
        Some((JOBS / 100 + 2) as f64),
        "{:?}",
        scrape.series("tfjob_operator_api_requests_total")
    );
    assert_eq!(scrape.sum("tfjob_operator_watch_restarts_total", &[]), 0.0);
    assert!(
        operator_writes(&ctx.namespace).is_empty(),
        "Kueue's jobs are not written to"
    );

    assert!(operator.terminate(secs(10)).await.success());
    eprintln!(
        "2,000 jobs: created in {:.1}s; operator ready {:.2}s after start ({not_ready} polls saw 503); {reconciles} reconciles",
        created.as_secs_f64(),
        ready_after.as_secs_f64()
    );
    ctx.teardown().await;
}

/// Lines of a JSON log whose `error` field contains `text`.
fn errors_containing(lines: &[Value], text: &str) -> usize {
    lines
        .iter()
        .filter(|l| l["error"].as_str().is_some_and(|e| e.contains(text)))
        .count()
}

/// The operator's writes in `namespace` received after `since`, as `verb resource/name`.
fn operator_writes_since(namespace: &str, since: jiff::Timestamp) -> Vec<String> {
    let text = std::fs::read_to_string(control_plane().audit_log()).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["stage"] == "ResponseComplete" && e["objectRef"]["namespace"] == namespace)
        .filter(|e| {
            e["userAgent"]
                .as_str()
                .is_some_and(|ua| ua.starts_with("tfjob-operator/"))
        })
        .filter(|e| {
            e["requestReceivedTimestamp"]
                .as_str()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .is_some_and(|t| t > since)
        })
        .map(|e| {
            format!(
                "{} {}/{}{}",
                e["verb"].as_str().unwrap_or_default(),
                e["objectRef"]["resource"].as_str().unwrap_or_default(),
                e["objectRef"]["name"].as_str().unwrap_or_default(),
                e["objectRef"]["subresource"]
                    .as_str()
                    .map(|s| format!("/{s}"))
                    .unwrap_or_default()
            )
        })
        .collect()
}

/// Compacts etcd every few milliseconds until dropped, so that any paged list taking longer
/// than that gets 410 Expired on its next page.
struct Compactor(tokio::task::JoinHandle<()>);

impl Compactor {
    fn start(etcd: SocketAddr) -> Compactor {
        Compactor(tokio::spawn(async move {
            loop {
                bump_and_compact(etcd).await;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }))
    }
}

impl Drop for Compactor {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Puts the TFJob CRD back as the project defines it when dropped (also when a test fails).
struct RestoreCrd;

impl Drop for RestoreCrd {
    fn drop(&mut self) {
        let restore = std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let text = std::fs::read_to_string(TFJOB_CRD_PATH).expect("the CRD file");
                let crd: CustomResourceDefinition = serde_saphyr::from_str(&text).expect("a CRD");
                install_crd(&client().await, &crd).await;
            });
        });
        let _ = restore.join();
    }
}

/// etcd compaction during the paged initial list (its continue token expires: 410) and a TFJob
/// watch that can no longer resume (410 "too old resource version") both make the operator
/// list again and carry on: jobs created or changed while it was not watching are reconciled,
/// nothing settled is written again, no pod is created twice. Watches that merely time out
/// resume across a compaction without a re-list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_and_a_dropped_watch_make_the_operator_relist_without_duplicate_work() {
    let _exclusive = EXCLUSIVE.write().await;
    let ctx = TestContext::new("relist").await;
    let ns = ctx.namespace.as_str();
    let pod_history = PodHistory::record(&ctx);
    let _kubelet = sim_kubelet(&ctx);
    const BEFORE: usize = 8;
    for i in 0..BEFORE {
        create(
            &ctx,
            ns,
            &job(&format!("before-{i}"), &[], json!({}), 1, "Never", FOREVER),
        )
        .await;
    }
    let tfjob_restarts = |s: &Scrape| {
        s.sum(
            "tfjob_operator_watch_restarts_total",
            &[("resource", "tfjobs")],
        )
    };

    // 1. Compact etcd continuously while the operator starts. Its TFJob list has four pages at
    // least 100 ms apart (10 requests/s, burst 1), so each continuation names a compacted
    // revision and is answered 410 Expired: the watcher lists again from the start.
    let etcd = etcd_endpoint(&control_plane().dir);
    let compactor = Compactor::start(etcd);
    let operator = start_operator(
        "relist",
        &[
            &format!("--namespace={ns}"),
            "--list-page-size=2",
            "--kube-api-qps=10",
            "--kube-api-burst=1",
            "--watch-timeout-seconds=1",
        ],
        &[],
    )
    .await;
    wait_for(secs(30), "a TFJob list to fail with 410", || async {
        let scrape = operator.scrape().await;
        if tfjob_restarts(&scrape) >= 1.0 {
            Ok(())
        } else {
            Err(format!(
                "{:?}",
                scrape.series("tfjob_operator_watch_restarts_total")
            ))
        }
    })
    .await;
    drop(compactor);
    assert!(
        errors_containing(&operator.log_lines(), "continue parameter is too old") >= 1,
        "the list failed because of the compaction:\n{}",
        operator.log_tail(20)
    );
    wait_for(secs(30), "/readyz", || async {
        matches!(probe(&operator, "/readyz").await, Ok((200, _)))
    })
    .await;
    for i in 0..BEFORE {
        await_job(&ctx, ns, &format!("before-{i}"), "Running", secs(60)).await;
    }

    // 2. Watches end every second (--watch-timeout-seconds=1) and resume from their last
    // resourceVersion, which etcd has compacted by now: the apiserver's watch cache still serves
    // them, so nothing is re-listed and nothing is written again.
    let settled = jiff::Timestamp::now();
    let before = operator.scrape().await;
    let watches = |s: &Scrape| s.sum("tfjob_operator_api_requests_total", &[("verb", "watch")]);
    bump_and_compact(etcd).await;
    wait_for(
        secs(20),
        "every watch to resume twice after the compaction",
        || async {
            let n = watches(&operator.scrape().await) - watches(&before);
            if n >= 6.0 {
                Ok(())
            } else {
                Err(format!("{n} new watch requests"))
            }
        },
    )
    .await;
    create(
        &ctx,
        ns,
        &job("a-resumed", &[], json!({}), 1, "Never", FOREVER),
    )
    .await;
    await_job(&ctx, ns, "a-resumed", "Running", secs(30)).await;
    let scrape = operator.scrape().await;
    assert_eq!(
        scrape.sum("tfjob_operator_watch_restarts_total", &[]),
        before.sum("tfjob_operator_watch_restarts_total", &[]),
        "a resumed watch needs no re-list: {:?}",
        scrape.series("tfjob_operator_watch_restarts_total")
    );

    // 3. Drop the TFJob watch for good: a change to the CRD's spec makes kube-apiserver rebuild
    // the resource's storage and watch cache at the current revision, so the operator's watch
    // ends and its resume is answered 410 "too old resource version" (etcd compaction alone
    // cannot do that on an apiserver with a watch cache). Compaction keeps the re-list failing
    // meanwhile, so a job is created and another suspended while the operator is not watching.
    let restore_crd = RestoreCrd;
    let restarts = tfjob_restarts(&operator.scrape().await);
    let compactor = Compactor::start(etcd);
    let crds: Api<CustomResourceDefinition> = Api::all(ctx.client.clone());
    let column = json!([{"op": "add", "path": "/spec/versions/0/additionalPrinterColumns/-",
        "value": {"name": "Test", "type": "string", "jsonPath": ".metadata.uid"}}]);
    crds.patch(
        "tfjobs.kubeflow.org",
        &PatchParams::default(),
        &Patch::<()>::Json(serde_json::from_value(column).expect("json patch")),
    )
    .await
    .expect("patch the CRD");
    wait_for(secs(30), "the TFJob watch to fail with 410", || async {
        let n = tfjob_restarts(&operator.scrape().await);
        if n > restarts {
            Ok(())
        } else {
            Err(format!("{n} TFJob watch restarts"))
        }
    })
    .await;
    assert!(
        errors_containing(&operator.log_lines(), "too old resource version") >= 1,
        "the watch failed with 410:\n{}",
        operator.log_tail(20)
    );
    create(
        &ctx,
        ns,
        &job("a-unwatched", &[], json!({}), 1, "Never", FOREVER),
    )
    .await;
    Api::<TFJob>::namespaced(ctx.client.clone(), ns)
        .patch(
            "a-resumed",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"runPolicy": {"suspend": true}}})),
        )
        .await
        .expect("suspend a-resumed");
    // A re-list failing after both changes proves they happened before the list that succeeds.
    // Both jobs are on its first page (names sort first), so they are listed while the store
    // still holds the old list: a reconcile started for them then would find the old state.
    let failed = tfjob_restarts(&operator.scrape().await);
    wait_for(secs(30), "another failed re-list", || async {
        let n = tfjob_restarts(&operator.scrape().await);
        if n > failed {
            Ok(())
        } else {
            Err(format!("{n} TFJob watch restarts"))
        }
    })
    .await;
    drop(compactor);
    await_job(&ctx, ns, "a-unwatched", "Running", secs(30)).await;
    await_job(&ctx, ns, "a-resumed", "Suspended", secs(30)).await;

    // Put the CRD back (another storage reset, another re-list) before other tests run.
    let restarts = tfjob_restarts(&operator.scrape().await);
    drop(restore_crd);
    wait_for(secs(30), "the re-list after restoring the CRD", || async {
        let n = tfjob_restarts(&operator.scrape().await);
        if n > restarts {
            Ok(())
        } else {
            Err(format!("{n} TFJob watch restarts"))
        }
    })
    .await;
    create(
        &ctx,
        ns,
        &job("restored", &[], json!({}), 1, "Never", FOREVER),
    )
    .await;
    await_job(&ctx, ns, "restored", "Running", secs(30)).await;

    // No duplicate work: the settled jobs were not written to again by any re-list or resume,
    // and every pod was created once (one create request, one UID).
    let late: Vec<String> = operator_writes_since(ns, settled)
        .into_iter()
        .filter(|w| w.contains("/before-"))
        .collect();
    assert!(
        late.is_empty(),
        "writes for settled jobs after they settled: {late:#?}"
    );
    let creates = pod_creates(ns);
    let expected: BTreeSet<String> = (0..BEFORE)
        .map(|i| format!("before-{i}-worker-0"))
        .chain(["a-resumed", "a-unwatched", "restored"].map(|j| format!("{j}-worker-0")))
        .collect();
    assert_eq!(creates.keys().cloned().collect::<BTreeSet<_>>(), expected);
    assert!(creates.values().all(|codes| codes == &[201]), "{creates:?}");
    pod_history.stop();
    pod_history.assert_no_pod_created_twice();
    let scrape = operator.scrape().await;
    assert_eq!(
        scrape.sum("tfjob_operator_reconcile_errors_total", &[]),
        0.0
    );
    eprintln!(
        "re-lists: {} TFJob watch restarts (410 on a compacted continue token or a too-old resourceVersion)",
        tfjob_restarts(&scrape)
    );
    ctx.teardown().await;
}

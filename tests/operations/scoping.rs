//! Namespace and label-selector scoping.

use super::*;

/// `--namespace a,b --job-selector shard=a`: only jobs in a or b labelled shard=a are cached,
/// get a status and get pods; nothing the operator sends touches anything else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_and_label_selector_scoping_only_touch_the_selected_jobs() {
    let _shared = EXCLUSIVE.read().await;
    let a = TestContext::new("scope-a").await;
    let b = TestContext::new("scope-b").await;
    let c = TestContext::new("scope-c").await;
    let namespaces = [&a.namespace, &b.namespace, &c.namespace];
    for ns in namespaces {
        create(
            &a,
            ns,
            &job("shard-a", &[("shard", "a")], json!({}), 1, "Never", ""),
        )
        .await;
        create(
            &a,
            ns,
            &job("shard-b", &[("shard", "b")], json!({}), 1, "Never", ""),
        )
        .await;
        create(&a, ns, &job("unlabelled", &[], json!({}), 1, "Never", "")).await;
    }
    let operator = start_operator(
        "scope",
        &[
            &format!("--namespace={},{}", a.namespace, b.namespace),
            "--job-selector=shard=a",
        ],
        &[],
    )
    .await;
    wait_for(secs(30), "/readyz", || async {
        matches!(probe(&operator, "/readyz").await, Ok((200, _)))
    })
    .await;
    // The watches are filtered by the apiserver: the cache never held the other seven jobs.
    let scrape = operator.scrape().await;
    assert_eq!(
        scrape.sum("tfjob_operator_jobs", &[]),
        2.0,
        "{:?}",
        scrape.series("tfjob_operator_jobs")
    );
    assert_eq!(
        scrape.sum("tfjob_operator_jobs", &[("job_namespace", &a.namespace)]),
        1.0
    );
    assert_eq!(
        scrape.sum("tfjob_operator_jobs", &[("job_namespace", &b.namespace)]),
        1.0
    );

    // Jobs created while it runs are filtered the same way.
    create(
        &a,
        &a.namespace,
        &job("late", &[("shard", "a")], json!({}), 1, "Never", ""),
    )
    .await;
    create(
        &a,
        &a.namespace,
        &job("late-b", &[("shard", "b")], json!({}), 1, "Never", ""),
    )
    .await;
    create(
        &a,
        &c.namespace,
        &job("late", &[("shard", "a")], json!({}), 1, "Never", ""),
    )
    .await;
    for (ns, name) in [
        (&a.namespace, "shard-a"),
        (&b.namespace, "shard-a"),
        (&a.namespace, "late"),
    ] {
        await_job(&a, ns, name, "Created", secs(30)).await;
    }
    wait_for(secs(30), "the selected jobs' pods", || async {
        let (in_a, in_b) = (
            pods_in(&a, &a.namespace).await,
            pods_in(&a, &b.namespace).await,
        );
        if in_a == ["late-worker-0", "shard-a-worker-0"] && in_b == ["shard-a-worker-0"] {
            Ok(())
        } else {
            Err(format!("{in_a:?} {in_b:?}"))
        }
    })
    .await;

    assert!(pods_in(&a, &c.namespace).await.is_empty());
    for (ns, names) in [
        (&a.namespace, &["shard-b", "unlabelled", "late-b"][..]),
        (&b.namespace, &["shard-b", "unlabelled"]),
        (&c.namespace, &["shard-a", "shard-b", "unlabelled", "late"]),
    ] {
        let jobs: Api<TFJob> = Api::namespaced(a.client.clone(), ns);
        for name in names {
            let job = jobs.get(name).await.expect("get job");
            assert!(
                job.status.is_none(),
                "{ns}/{name} got a status: {:?}",
                job.status
            );
        }
    }
    assert!(
        operator_writes(&c.namespace).is_empty(),
        "{:?}",
        operator_writes(&c.namespace)
    );
    for ns in [&a.namespace, &b.namespace] {
        for (verb, resource, subresource, name, _) in operator_writes(ns) {
            let job = match resource.as_str() {
                "tfjobs" => name.clone(),
                "pods" | "services" => name.trim_end_matches("-worker-0").to_string(),
                // Events are named after the object they are about: `<job>.<suffix>`.
                _ => name.split('.').next().unwrap_or_default().to_string(),
            };
            assert!(
                job == "shard-a" || (job == "late" && ns == &a.namespace),
                "{verb} {resource}/{name}/{subresource} in {ns} is outside the scope"
            );
        }
    }
    let scrape = operator.scrape().await;
    assert_eq!(
        scrape.sum("tfjob_operator_jobs", &[]),
        3.0,
        "{:?}",
        scrape.series("tfjob_operator_jobs")
    );
    assert_eq!(scrape.sum("training_operator_jobs_created_total", &[]), 3.0);
    c.teardown().await;
    b.teardown().await;
    a.teardown().await;
}

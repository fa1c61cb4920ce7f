//! 200 jobs through twelve SIGKILLs of the operator (the release binary).
//!
//! Three kinds of kill take turns: after a freeze of its traffic (the instant of the crash is
//! known exactly, so each incarnation's counters can be compared with what the apiserver
//! acknowledged to it), at a random instant with requests in flight (raw), and a random
//! 0–300 ms after start, during the initial list.

use super::*;

/// How an incarnation ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kill {
    /// Its traffic frozen first: its metrics are those at the instant of the crash.
    Frozen,
    /// SIGKILL at a random instant while it works; metrics scraped just before (a lower bound).
    Raw,
    /// SIGKILL 0–300 ms after it started, during the initial list.
    DuringList,
}

impl Kill {
    fn nth(kill: usize) -> Kill {
        match kill % 3 {
            1 => Kill::Frozen,
            2 => Kill::Raw,
            _ => Kill::DuringList,
        }
    }
}

/// One run of the operator binary: when it was spawned, how it ended, and its metrics then.
struct Incarnation {
    spawned: Instant,
    kill: Kill,
    /// When its metrics were scraped (for a raw kill, just before the SIGKILL).
    scraped: Instant,
    metrics: Scrape,
}

/// The instant of a crash: nothing the operator sends is forwarded or answered any more, the
/// requests already at the apiserver finish there, and the answers already on their way are
/// read; then its metrics cannot change and are scraped.
async fn freeze_and_scrape(proxy: &FaultProxy, operator: &OperatorBinary) -> Scrape {
    proxy.freeze();
    assert!(
        proxy.await_quiet(secs(20)).await,
        "requests forwarded before the freeze did not finish within 20 s"
    );
    // Answers the proxy handed over just before the freeze reach the client's counters.
    tokio::time::sleep(ms(500)).await;
    operator.scrape().await
}

async fn await_ready(operator: &OperatorBinary) {
    wait_for(
        secs(60),
        &format!("{} to be ready", operator.name),
        || async {
            match operator.readyz().await {
                Ok((200, _)) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await
}

/// SIGKILLs the operator the `kill` way; returns its metrics and when they were scraped.
async fn kill(
    how: Kill,
    proxy: &FaultProxy,
    operator: &mut OperatorBinary,
    rng: &mut Rng,
) -> (Scrape, Instant) {
    let scraped = match how {
        Kill::Frozen => {
            await_ready(operator).await;
            tokio::time::sleep(ms(rng.range(1000, 2500))).await;
            let metrics = freeze_and_scrape(proxy, operator).await;
            let at = Instant::now();
            operator.kill().await;
            proxy.reset();
            return (metrics, at);
        }
        Kill::Raw => {
            await_ready(operator).await;
            tokio::time::sleep(ms(rng.range(500, 2500))).await;
            operator.try_scrape().await
        }
        Kill::DuringList => {
            tokio::time::sleep(ms(rng.range(0, 300))).await;
            operator.try_scrape().await
        }
    };
    let at = Instant::now();
    operator.kill().await;
    let empty = || Scrape::parse("").expect("empty metrics");
    (scraped.unwrap_or_else(empty), at)
}

/// 200 seeded TFJobs while the operator binary is SIGKILLed 12 times; see the module docs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_jobs_survive_an_operator_sigkilled_twelve_times() {
    const JOBS: usize = 200;
    const KILLS: usize = 12;
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let ctx = TestContext::new("soak").await;
    let ns = ctx.namespace.clone();
    let pod_history = PodHistory::record(&ctx);
    let _kubelet = sim_kubelet(&ctx);
    let mut rng = Rng(0x5eed_0007);
    let scripts: Vec<Scripted> = (0..JOBS)
        .map(|i| soak_script(format!("soak-{i:03}"), i, &mut rng))
        .collect();

    // The operator talks to the apiserver only through the proxy (no faults: only freezes).
    let proxy = FaultProxy::start(control_plane(), 7).await;
    let args = vec![format!("--namespace={ns}")];
    let mut incarnations = Vec::new();
    let mut spawned = Instant::now();
    let mut operator = OperatorBinary::start_release("soak-0", &proxy.kubeconfig, &args).await;

    // 10 jobs every 500 ms: submissions span the first ~10 s of the kills.
    let submitter = tokio::spawn({
        let scripts = scripts.clone();
        let client = ctx.client.clone();
        let ns = ns.clone();
        async move {
            let jobs: Api<TFJob> = Api::namespaced(client, &ns);
            let mut resumes = Vec::new();
            for wave in scripts.chunks(10) {
                for s in wave {
                    jobs.create(&PostParams::default(), &s.job)
                        .await
                        .unwrap_or_else(|e| panic!("creating TFJob {} failed: {e}", s.name));
                    if s.suspended {
                        let (jobs, name) = (jobs.clone(), s.name.clone());
                        resumes.push(tokio::spawn(async move {
                            tokio::time::sleep(secs(3)).await;
                            let resume = json!({"spec": {"runPolicy": {"suspend": false}}});
                            jobs.patch(&name, &PatchParams::default(), &Patch::Merge(&resume))
                                .await
                                .unwrap_or_else(|e| panic!("resuming {name} failed: {e}"));
                        }));
                    }
                }
                tokio::time::sleep(ms(500)).await;
            }
            for resume in resumes {
                resume.await.expect("resumed");
            }
        }
    });

    for n in 1..=KILLS {
        let how = Kill::nth(n);
        let (metrics, scraped) = kill(how, &proxy, &mut operator, &mut rng).await;
        panic_free(&operator);
        incarnations.push(Incarnation {
            spawned,
            kill: how,
            scraped,
            metrics,
        });
        spawned = Instant::now();
        operator =
            OperatorBinary::start_release(&format!("soak-{n}"), &proxy.kubeconfig, &args).await;
    }
    submitter.await.expect("every job submitted");
    let killed_at = started.elapsed();

    let jobs = await_all_finished(&ctx, &scripts, secs(120)).await;
    let converged_at = started.elapsed();
    // Let the last writes (clean-up, final status) land, then stop the last incarnation the
    // same way.
    tokio::time::sleep(secs(2)).await;
    let metrics = freeze_and_scrape(&proxy, &operator).await;
    let scraped = Instant::now();
    operator.kill().await;
    panic_free(&operator);
    incarnations.push(Incarnation {
        spawned,
        kill: Kill::Frozen,
        scraped,
        metrics,
    });
    proxy.reset();
    pod_history.stop();

    // 1. Every job ended as its pods dictate, with the conditions a run without kills shows.
    let records = proxy.records();
    let kill_times: Vec<u128> = incarnations
        .iter()
        .map(|i| i.spawned.duration_since(started).as_millis())
        .collect();
    let explain = |problems: &[String]| explain(&records, problems, started);
    let mut bounds: Vec<Instant> = incarnations.iter().map(|i| i.spawned).collect();
    bounds.push(Instant::now());
    let incarnation_of = |r: &Record| {
        bounds
            .windows(2)
            .position(|w| r.received >= w[0] && r.received < w[1])
    };
    let (problems, canonical) = end_state_problems(&scripts, &jobs);
    assert!(
        problems.is_empty(),
        "{} of {JOBS} jobs differ from their script (incarnations spawned at {kill_times:?} ms):\n{}",
        problems.len(),
        explain(&problems)
    );

    // 2. Nothing was created twice (audit log and watch).
    let (problems, never_created) = duplicate_problems(&ns, &scripts, &pod_history, &records);
    assert!(
        problems.is_empty(),
        "children created other than once (incarnations spawned at {kill_times:?} ms):\n{}",
        explain(&problems)
    );

    // 3. Each incarnation counted exactly the writes the apiserver acknowledged to it.
    let mut mismatches = Vec::new();
    for (i, incarnation) in incarnations.iter().enumerate() {
        let acked = records
            .iter()
            .filter(|r| incarnation_of(r) == Some(i))
            .filter(|r| r.is_write() && r.outcome == Outcome::Delivered && r.took_effect())
            .count();
        let counted = counted_writes(&incarnation.metrics);
        // A raw kill's metrics were scraped before it: they may miss its last writes.
        let fits = match incarnation.kill {
            Kill::Frozen => counted == acked as f64,
            Kill::Raw | Kill::DuringList => counted <= acked as f64,
        };
        if !fits {
            mismatches.push(format!(
                "incarnation {i}: counted {counted} successful writes, the apiserver acknowledged {acked} to it ({:?})",
                incarnation.metrics.series("tfjob_operator_api_requests_total")
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));

    // 4. Job counters, summed over incarnations: never more than the real transitions; fewer
    // only by transitions whose reconcile a kill cut off (a transition is counted in memory
    // once the reconcile that stored it has also sent its events).
    // A raw kill gives no notice: a write answered in the second before it may not have been
    // followed by what the incarnation meant to do next (its events, its counters).
    let cut_by_raw_kill = |r: &Record| {
        incarnation_of(r).is_some_and(|i| {
            let inc = &incarnations[i];
            inc.kill != Kill::Frozen && r.received + secs(1) >= inc.scraped
        })
    };
    let interrupted: BTreeSet<String> = records
        .iter()
        .filter(|r| r.is_write() && (r.outcome != Outcome::Delivered || cut_by_raw_kill(r)))
        .filter_map(job_of_write)
        .collect();
    let withheld = records
        .iter()
        .filter(|r| r.outcome == Outcome::Withheld)
        .count();
    let total = |metric: &str| -> f64 {
        incarnations
            .iter()
            .map(|i| i.metrics.sum(metric, &[("job_namespace", ns.as_str())]))
            .sum()
    };
    // A write the apiserver answered, or one forwarded whose answer nobody read because a raw
    // kill closed its connection (the proxy then never learns the outcome).
    let may_have_stored =
        |r: &Record| r.took_effect() || (r.forwarded && r.upstream_status.is_none());
    let counters = [
        ("training_operator_jobs_created_total", "Created"),
        ("training_operator_jobs_successful_total", "Succeeded"),
        ("training_operator_jobs_failed_total", "Failed"),
        ("training_operator_jobs_restarted_total", "Restarting"),
    ];
    let mut counter_report = Vec::new();
    for (metric, condition) in counters {
        // The transitions that happened: those a status patch stored (one per job and
        // condition: the scripts restart a pod once at most).
        let stored_by: BTreeSet<String> = records
            .iter()
            .filter(|r| may_have_stored(r) && sets_condition(r, condition))
            .filter_map(job_of_write)
            .collect();
        let scripted: Vec<&Scripted> = scripts
            .iter()
            .filter(|s| match condition {
                "Created" => true,
                "Restarting" => s.restarts > 0,
                end => s.end.condition() == end,
            })
            .collect();
        let unstored: Vec<String> = scripted
            .iter()
            .filter(|s| !stored_by.contains(&s.name))
            .map(|s| format!("{} ({})", s.name, s.kind))
            .collect();
        assert!(
            unstored.is_empty(),
            "no status patch through the proxy set {condition} for {unstored:?}:\n{}",
            explain(&unstored)
        );
        let transitioned: Vec<&Scripted> = scripted
            .into_iter()
            .filter(|s| stored_by.contains(&s.name))
            .collect();
        let real = transitioned.len();
        // A count is lost only when the kill fell inside the reconcile that stored the
        // transition: its status patch was never answered, or a write of that job sent with
        // it (its events, sent concurrently: 3 s of slack under load) or after it in the same
        // incarnation (a later reconcile: over-counted, harmless) was cut.
        let may_be_lost = transitioned
            .iter()
            .filter(|s| {
                let job = Some(s.name.clone());
                let Some(stored) = records.iter().find(|r| {
                    may_have_stored(r) && sets_condition(r, condition) && job_of_write(r) == job
                }) else {
                    return false;
                };
                stored.outcome != Outcome::Delivered
                    || cut_by_raw_kill(stored)
                    || records.iter().any(|r| {
                        r.is_write()
                            && r.outcome != Outcome::Delivered
                            && r.received + Duration::from_secs(3) >= stored.received
                            && incarnation_of(r) == incarnation_of(stored)
                            && job_of_write(r) == job
                    })
            })
            .count();
        let counted = total(metric);
        counter_report.push(format!(
            "{metric}: {counted} counted, {real} real, {may_be_lost} stored by a reconcile a kill cut off"
        ));
        assert!(
            counted <= real as f64,
            "{metric} summed over incarnations is {counted}, more than the {real} real {condition} transitions: a transition was counted twice"
        );
        assert!(
            counted >= (real - may_be_lost) as f64,
            "{metric} summed over incarnations is {counted}: {} of {real} {condition} transitions uncounted, but kills interrupted only {may_be_lost} of those jobs",
            real as f64 - counted
        );
    }

    // 5. Each transition announced once: exactly for jobs no kill interrupted; for the others
    // a kill may fall between the status write and its event (missing) or between an event
    // and a status write that never reached the apiserver (announced again).
    let events = transition_events(&ctx).await;
    let mut event_problems = Vec::new();
    let mut event_notes = Vec::new();
    for s in &scripts {
        let mut expected = vec![(format!("TFJob{}", s.end.condition()), 1)];
        if s.restarts > 0 {
            expected.push(("TFJobRestarting".into(), s.restarts));
        }
        for (reason, times) in expected {
            let n = events
                .get(&(s.name.clone(), reason.clone()))
                .copied()
                .unwrap_or(0);
            if n == times {
                continue;
            }
            let line = format!(
                "{} ({}): {n} {reason} events, expected {times}",
                s.name, s.kind
            );
            if interrupted.contains(&s.name) {
                event_notes.push(line);
            } else {
                event_problems.push(line);
            }
        }
    }
    assert!(
        event_problems.is_empty(),
        "transitions announced other than once for jobs no kill interrupted:\n{}",
        event_problems.join("\n")
    );

    let writes = records.iter().filter(|r| r.is_write()).count();
    let kinds: BTreeMap<&str, usize> = scripts.iter().fold(BTreeMap::new(), |mut m, s| {
        *m.entry(s.kind).or_default() += 1;
        m
    });
    let checked_for_sequence = scripts.iter().filter(|s| !s.ttl).count();
    eprintln!(
        "soak: {JOBS} jobs ({} pods; {kinds:?}), {KILLS} SIGKILLs ({:?}) within {:.1}s, all \
         finished at {:.1}s; {} requests ({writes} writes, {withheld} carried out but never \
         answered at a frozen kill); duplicates 0; {canonical} of {checked_for_sequence} jobs \
         with the canonical conditions; {} jobs checked loosely (a kill cut one of their \
         writes); children never created (their job ended first): {never_created:?}\n  {}\n  \
         events differing for interrupted jobs: {event_notes:?}",
        scripts.iter().map(|s| s.pods.len()).sum::<usize>(),
        incarnations.iter().map(|i| i.kill).collect::<Vec<_>>(),
        killed_at.as_secs_f64(),
        converged_at.as_secs_f64(),
        records.len(),
        interrupted.len(),
        counter_report.join("\n  "),
    );
    // Kills must not make the checks lenient for many jobs, nor hide Running from many.
    assert!(
        canonical * 100 >= checked_for_sequence * 95,
        "{canonical} of {checked_for_sequence} jobs with the canonical conditions, under 95 %"
    );
    // Twelve kills in 40 s of 200 jobs catch many jobs mid-write (55–60 % on an idle machine,
    // once 81.5 % in CI, when the other reliability tests slowed every write); the bound keeps
    // a change that makes every job "interrupted" (and so every check lenient) from passing
    // unnoticed.
    assert!(
        interrupted.len() * 100 <= JOBS * 90,
        "{} of {JOBS} jobs checked loosely, over 90 %",
        interrupted.len()
    );
    ctx.teardown().await;
}

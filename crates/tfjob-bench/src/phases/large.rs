//! Phase 7, large jobs: one TFJob of N workers at a time, each in a fresh operator process and
//! namespace, with no kubelet (pods stay Pending); the operator's peak RSS (VmHWM) once every
//! pod and Service exists. Standard TF_CONFIG (every pod lists every host: the pods' total size
//! grows with N²) for N = 500 … 3,000, and the sparse form (`enableDynamicWorker`) for 10,000.
//! The fitted exponent of peak RSS against N says whether memory stays bounded: before passes
//! were bounded, 3,000 workers alone peaked at 977 MiB.

use std::time::{Duration, Instant};

use kube::api::{Api, PostParams};
use tfjob_core::api::TFJob;

use crate::cluster::ensure_namespace;
use crate::daemons::OperatorProcess;
use crate::procs;
use crate::prom;
use crate::report::{Large, LargeJob};
use crate::run::Run;

/// The smoke run's jobs: the same path, in seconds.
pub const SMOKE_SIZES: [(u32, bool); 3] = [(20, false), (40, false), (100, true)];

/// (workers, enableDynamicWorker)
pub const SIZES: [(u32, bool); 5] = [
    (500, false),
    (1_000, false),
    (2_000, false),
    (3_000, false),
    (10_000, true),
];

fn job(workers: u32, dynamic: bool) -> anyhow::Result<TFJob> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "kubeflow.org/v1", "kind": "TFJob",
        "metadata": {"name": "w"},
        "spec": {"enableDynamicWorker": dynamic, "tfReplicaSpecs": {
            "PS": {"replicas": 1, "template": {"spec": {"containers": [{"name": "tensorflow", "image": "tf"}]}}},
            "Worker": {"replicas": workers, "template": {"spec": {"containers": [{"name": "tensorflow", "image": "tf"}]}}},
        }}
    }))?)
}

pub async fn run(run: &mut Run) -> anyhow::Result<Large> {
    let mut jobs = Vec::new();
    for (workers, dynamic) in run.sizes.large_jobs.clone() {
        // Short names keep 3,000 hosts under Linux's 128 KiB limit for one variable.
        let namespace = format!("lg{workers}");
        ensure_namespace(&run.client, &namespace).await?;
        let operator = OperatorProcess::start(
            &run.bins.operator,
            &run.cp,
            &namespace,
            &run.sizes.operator_args,
            &run.logs.join(format!("operator-large-{workers}.log")),
        )?;
        let (idle_kib, _) = procs::memory_kib(operator.pid()).unwrap_or_default();
        let api: Api<TFJob> = Api::namespaced(run.client.clone(), &namespace);
        let started = Instant::now();
        api.create(&PostParams::default(), &job(workers, dynamic)?)
            .await?;
        let expected = 2.0 * f64::from(workers + 1);
        let deadline = started + Duration::from_secs(900);
        let mut said = Instant::now();
        loop {
            let text = operator.scrape();
            let created = prom::sum(&text, "tfjob_operator_pods_created_total")
                + prom::sum(&text, "tfjob_operator_services_created_total");
            if created >= expected {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{workers} workers: {created} of {expected} children after 15 minutes"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
            if said.elapsed() >= Duration::from_secs(10) {
                said = Instant::now();
                eprintln!(
                    "   {workers} workers: {created} of {expected} children so far ({:.0} s)",
                    started.elapsed().as_secs_f64()
                );
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        let (_, peak_kib) = procs::memory_kib(operator.pid()).unwrap_or_default();
        operator.stop();
        eprintln!(
            "   {workers} workers{}: children in {seconds:.1} s, peak RSS {:.1} MiB",
            if dynamic { " (sparse)" } else { "" },
            peak_kib as f64 / 1024.0
        );
        jobs.push(LargeJob {
            workers,
            dynamic,
            seconds,
            idle_rss_kib: idle_kib,
            peak_rss_kib: peak_kib,
        });
    }
    let standard: Vec<(f64, f64)> = jobs
        .iter()
        .filter(|j| !j.dynamic)
        .map(|j| (f64::from(j.workers), j.peak_rss_kib as f64))
        .collect();
    Ok(Large {
        exponent: fitted_exponent(&standard),
        jobs,
    })
}

/// The slope of ln(y) against ln(x) by least squares: y ≈ c·x^slope.
pub fn fitted_exponent(points: &[(f64, f64)]) -> f64 {
    let logs: Vec<(f64, f64)> = points
        .iter()
        .filter(|(x, y)| *x > 0.0 && *y > 0.0)
        .map(|(x, y)| (x.ln(), y.ln()))
        .collect();
    let n = logs.len() as f64;
    if n < 2.0 {
        return f64::NAN;
    }
    let (mx, my) = (
        logs.iter().map(|p| p.0).sum::<f64>() / n,
        logs.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let covariance: f64 = logs.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let variance: f64 = logs.iter().map(|(x, _)| (x - mx).powi(2)).sum();
    covariance / variance
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exponent_of_a_power_law_is_recovered() {
        let cases = [(0.0, 1.0), (1.0, 1.0), (2.0, 1.0), (0.25, 1e3)];
        for (exponent, scale) in cases {
            let points: Vec<(f64, f64)> = [500.0, 1000.0, 2000.0, 3000.0]
                .iter()
                .map(|&x: &f64| (x, scale * x.powf(exponent)))
                .collect();
            assert!(
                (fitted_exponent(&points) - exponent).abs() < 1e-9,
                "{exponent}"
            );
        }
        assert!(fitted_exponent(&[(1.0, 1.0)]).is_nan());
    }
}

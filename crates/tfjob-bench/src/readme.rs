//! The README's benchmark section, written from a run's report: what it measured and which
//! targets it met, in sentences made from its numbers (never typed by hand). A run into the
//! default results directory replaces the block between the markers; a test checks that the
//! README shows exactly what `bench/results/latest.json` holds.

use std::fmt::Write;
use std::path::Path;

use anyhow::Context;

use crate::report::{Report, fmt_f as f};

const BEGIN: &str = "<!-- bench:begin -->";
const END: &str = "<!-- bench:end -->";

/// Replaces the block between the markers in the README at `path`.
pub fn update(path: &Path, report: &Report) -> anyhow::Result<()> {
    let readme = std::fs::read_to_string(path)
        .with_context(|| format!("reading {} to update its benchmark section", path.display()))?;
    let updated = splice(&readme, &block(report)).with_context(|| {
        format!(
            "{} has no `{BEGIN}` … `{END}` block to write the results into",
            path.display()
        )
    })?;
    std::fs::write(path, updated)?;
    Ok(())
}

/// `readme` with its block replaced; `None` without the markers.
fn splice(readme: &str, block: &str) -> Option<String> {
    Some(readme.replacen(current(readme)?, block, 1))
}

/// The block in `readme`, markers included.
fn current(readme: &str) -> Option<&str> {
    let start = readme.find(BEGIN)?;
    let end = readme[start..].find(END)? + start + END.len();
    Some(&readme[start..end])
}

/// The block: the run, what it says, the targets, the charts.
pub fn block(report: &Report) -> String {
    let mut out = String::new();
    let m = &report.machine;
    let met = report.targets.iter().filter(|t| t.met).count();
    let _ = writeln!(out, "{BEGIN}");
    let _ = writeln!(
        out,
        "Latest run ({}; {} CPUs, Kubernetes {}, load average {:.2} at start; {:.0} s): \
         **{met} of {} targets met**.\n",
        report.started,
        m.cpus,
        m.kubernetes,
        m.load_start[0],
        report.seconds,
        report.targets.len()
    );
    for sentence in findings(report) {
        let _ = writeln!(out, "- {sentence}");
    }
    out.push_str(&report.targets_table());
    let _ = writeln!(
        out,
        "\n![Backlog: pods created over time](bench/results/backlog-pods-over-time.png)\n\
         ![Open loop: latency against arrival rate](bench/results/open-loop-latency.png)"
    );
    let _ = write!(out, "{END}");
    out
}

/// What the run shows, one sentence per phase that ran.
fn findings(report: &Report) -> Vec<String> {
    let mut out = Vec::new();
    let price = |kind: &str| {
        report
            .costs
            .iter()
            .find(|c| c.kind == kind)
            .map(|c| c.apiserver_cpu_ms + c.etcd_cpu_ms)
    };
    let life = |mode: &str, batched: bool| {
        report
            .lifecycle
            .iter()
            .find(|l| l.mode == mode && (l.window_ms > 0.0) == batched)
    };
    let patches = |l: &crate::report::Lifecycle| {
        l.writes_per_job
            .get("patch tfjobs/status")
            .copied()
            .unwrap_or(0.0)
    };
    if let (Some(batched), Some(each)) = (life("per-replica", true), life("per-replica", false)) {
        let mut sentence = format!(
            "Status writes: a {}-replica TFJob's lifecycle took {} status patches with the {} ms \
             batch window and {} writing every change",
            report.sizes.replicas,
            f(patches(batched)),
            batched.window_ms,
            f(patches(each))
        );
        if let (Some(a), Some(b), Some(patch), Some(pod)) = (
            report.cost_per_job(&each.writes_per_job),
            report.cost_per_job(&batched.writes_per_job),
            price("patch TFJob status"),
            price("create pod"),
        ) {
            let _ = write!(
                sentence,
                "; at this run's prices ({} ms of apiserver + etcd CPU per TFJob status patch, {} \
                 per pod create) the operator caused {} ms per job instead of {} ms",
                f(patch),
                f(pod),
                f(b),
                f(a)
            );
        }
        let _ = write!(
            sentence,
            ". Conditions trailed the pod change behind them by {} ms at p99 (p50 {} ms).",
            f(batched.condition_delay_p99_ms),
            f(batched.condition_delay_p50_ms)
        );
        out.push(sentence);
    }
    let backlog = |name: &str| report.backlog.iter().find(|b| b.creator.ends_with(name));
    if let (Some(jobs), Some(replica), Some(job)) = (
        backlog("Job controller"),
        backlog("per-replica"),
        backlog("per-job"),
    ) {
        out.push(format!(
            "Backlog ({} parents stored before the controller started, median of {} runs): the \
             operator created {} pods/s per-replica and {} per-job, the Job controller {}.",
            jobs.jobs,
            jobs.runs.len(),
            f(replica.pods_per_second),
            f(job.pods_per_second),
            f(jobs.pods_per_second)
        ));
    }
    for rate in &report.sizes.open_loop_rates {
        let at = |creator: &str| {
            report
                .open_loop
                .iter()
                .find(|o| o.rate == *rate && o.creator.starts_with(creator))
        };
        if let (Some(ours), Some(theirs)) = (at("tfjob"), at("Job controller")) {
            out.push(format!(
                "Open loop at {} parents/s: parent stored → all pods p99 {} ms for the operator, \
                 {} ms for the Job controller (p50 {} and {} ms).",
                f(*rate),
                f(ours.p99_ms),
                f(theirs.p99_ms),
                f(ours.p50_ms),
                f(theirs.p50_ms)
            ));
        }
    }
    let shares = report.shares();
    if !shares.is_empty() {
        let parts: Vec<String> = shares
            .iter()
            .map(|s| {
                format!(
                    "{} {:.2} ({} of {} pods/s)",
                    s.creator,
                    s.share,
                    f(s.pods_per_second),
                    f(s.cap_pods_per_second)
                )
            })
            .collect();
        out.push(format!(
            "End to end (parents submitted at once), each side's share of what the apiserver \
             and etcd could serve for its own requests on {} CPUs: {}.",
            report.machine.cpus,
            parts.join("; ")
        ));
    }
    if let Some(m) = &report.memory {
        out.push(format!(
            "Memory: {:.1} MiB idle, {:.2} KiB per cached TFJob with its pods and Services \
             ({} jobs), re-list peak {:.2}× steady.",
            m.idle_rss_kib as f64 / 1024.0,
            m.per_job_kib,
            m.jobs,
            m.relist_peak_ratio
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splicing_replaces_only_the_block() {
        let readme = format!("intro\n{BEGIN}\nold\n{END}\noutro\n");
        let new = format!("{BEGIN}\nnew\n{END}");
        assert_eq!(
            splice(&readme, &new).unwrap(),
            format!("intro\n{BEGIN}\nnew\n{END}\noutro\n")
        );
        assert_eq!(splice("no markers", &new), None);
    }

    /// The README shows the committed results, as `block` writes them.
    #[test]
    fn the_readme_shows_the_latest_results() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let json = std::fs::read_to_string(root.join("bench/results/latest.json")).unwrap();
        let report: Report = serde_json::from_str(&json).unwrap();
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        let shown = current(&readme).expect("README.md has the benchmark block");
        assert_eq!(
            shown,
            block(&report),
            "README.md's benchmark block differs from bench/results/latest.json: \
             rerun hack/bench.sh (it rewrites the block)"
        );
    }
}

//! What `list` prints: one row per TFJob, in kubectl's table style (pure).

use std::time::Duration;

use jiff::Timestamp;
use tfjob_core::api::{ReplicaType, TFJob};

/// One TFJob as `list` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub namespace: String,
    pub name: String,
    /// The newest condition's type, as upstream's `State` column.
    pub state: String,
    /// Running/wanted per replica type: `PS:1/1,Worker:2/3`.
    pub replicas: String,
    /// Restarts counted against backoffLimit, all types.
    pub restarts: i32,
    pub age: String,
    /// From `startTime` to `completionTime` (or now, while it runs).
    pub duration: String,
    /// The newest condition's reason.
    pub reason: String,
    /// The newest condition's message (`-o wide`).
    pub message: String,
}

impl Row {
    pub fn of(job: &TFJob, now: Timestamp) -> Row {
        let status = job.status.clone().unwrap_or_default();
        let last = status.conditions.last();
        let mut types: Vec<(ReplicaType, i32)> = job
            .spec
            .tf_replica_specs
            .iter()
            .filter_map(|(key, spec)| {
                Some((ReplicaType::from_key(key)?, spec.replicas.unwrap_or(1)))
            })
            .collect();
        types.sort();
        let replicas = types
            .iter()
            .map(|(t, wanted)| {
                let running = status
                    .replica_statuses
                    .get(t.as_str())
                    .map_or(0, |s| s.active);
                format!("{t}:{running}/{wanted}")
            })
            .collect::<Vec<_>>()
            .join(",");
        let since =
            |t: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| t.map(|t| t.0);
        let started = since(status.start_time.as_ref());
        let ended = since(status.completion_time.as_ref()).unwrap_or(now);
        Row {
            namespace: job.metadata.namespace.clone().unwrap_or_default(),
            name: job.metadata.name.clone().unwrap_or_default(),
            state: last.map(|c| c.type_.clone()).unwrap_or_default(),
            replicas,
            restarts: status
                .replica_statuses
                .values()
                .map(|s| s.restarts)
                .fold(0, i32::saturating_add),
            age: since(job.metadata.creation_timestamp.as_ref())
                .map_or_else(|| "<unknown>".into(), |t| human_duration(elapsed(t, now))),
            duration: started.map_or_else(String::new, |t| human_duration(elapsed(t, ended))),
            reason: last.and_then(|c| c.reason.clone()).unwrap_or_default(),
            message: last.and_then(|c| c.message.clone()).unwrap_or_default(),
        }
    }
}

fn elapsed(from: Timestamp, to: Timestamp) -> Duration {
    Duration::try_from(to.duration_since(from)).unwrap_or_default()
}

/// The rows as kubectl prints a table: upper-case headers, columns padded to their widest cell
/// and three spaces apart. `-A` adds NAMESPACE first, `-o wide` MESSAGE last.
pub fn render(rows: &[Row], all_namespaces: bool, wide: bool) -> String {
    let mut headers = vec![
        "NAME", "STATE", "REPLICAS", "RESTARTS", "AGE", "DURATION", "REASON",
    ];
    if all_namespaces {
        headers.insert(0, "NAMESPACE");
    }
    if wide {
        headers.push("MESSAGE");
    }
    let mut lines: Vec<Vec<String>> = vec![headers.iter().map(|h| h.to_string()).collect()];
    for row in rows {
        let mut cells = vec![
            row.name.clone(),
            row.state.clone(),
            row.replicas.clone(),
            row.restarts.to_string(),
            row.age.clone(),
            row.duration.clone(),
            row.reason.clone(),
        ];
        if all_namespaces {
            cells.insert(0, row.namespace.clone());
        }
        if wide {
            cells.push(row.message.clone());
        }
        lines.push(cells);
    }
    let columns = lines[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in lines {
        let mut text = String::new();
        for (i, cell) in line.iter().enumerate() {
            if i + 1 == columns {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}   ", width = widths[i]));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

/// kubectl's `HumanDuration`: `45s`, `3m20s`, `45m`, `3h10m`, `20h`, `3d4h`, `40d`, `2y10d`.
pub fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{}d", hours / 24),
            h => format!("{}d{h}h", hours / 24),
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let years = hours / 24 / 365;
        return match (hours / 24) % 365 {
            0 => format!("{years}y"),
            d => format!("{years}y{d}d"),
        };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_kubectl() {
        let cases = [
            (0, "0s"),
            (45, "45s"),
            (119, "119s"),
            (120, "2m"),
            (200, "3m20s"),
            (45 * 60, "45m"),
            (179 * 60, "179m"),
            (3 * 3600 + 600, "3h10m"),
            (20 * 3600, "20h"),
            (76 * 3600, "3d4h"),
            (40 * 86400, "40d"),
            (740 * 86400, "2y10d"),
            (9 * 365 * 86400, "9y"),
        ];
        for (seconds, want) in cases {
            assert_eq!(
                human_duration(Duration::from_secs(seconds)),
                want,
                "{seconds}"
            );
        }
    }

    fn job(yaml: &str) -> TFJob {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn a_row_per_job() {
        let now: Timestamp = "2026-01-01T01:00:00Z".parse().unwrap();
        let failed = job(r#"
metadata: {name: oom, namespace: a, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  tfReplicaSpecs:
    worker: {replicas: 3, template: {}}
    PS: {template: {}}
status:
  startTime: "2026-01-01T00:00:10Z"
  completionTime: "2026-01-01T00:05:10Z"
  replicaStatuses:
    Worker: {active: 2, restarts: 2}
    PS: {active: 1, restarts: 1}
  conditions:
  - {type: Created, status: "True", reason: TFJobCreated}
  - {type: Failed, status: "True", reason: TFJobFailed, message: "it failed"}
"#);
        assert_eq!(
            Row::of(&failed, now),
            Row {
                namespace: "a".into(),
                name: "oom".into(),
                state: "Failed".into(),
                replicas: "PS:1/1,Worker:2/3".into(),
                restarts: 3,
                age: "60m".into(),
                duration: "5m".into(),
                reason: "TFJobFailed".into(),
                message: "it failed".into(),
            }
        );
        // Just created: no status yet.
        let fresh = job(
            "metadata: {name: new, namespace: a}\nspec: {tfReplicaSpecs: {Worker: {template: {}}}}",
        );
        let row = Row::of(&fresh, now);
        assert_eq!(
            (
                row.state.as_str(),
                row.replicas.as_str(),
                row.age.as_str(),
                row.duration.as_str()
            ),
            ("", "Worker:0/1", "<unknown>", "")
        );
    }

    #[test]
    fn tables_are_aligned_like_kubectl() {
        let row = |name: &str, state: &str| Row {
            namespace: "team-a".into(),
            name: name.into(),
            state: state.into(),
            replicas: "Worker:1/1".into(),
            restarts: 0,
            age: "5s".into(),
            duration: "4s".into(),
            reason: format!("TFJob{state}"),
            message: "m".into(),
        };
        let rows = [row("a", "Running"), row("longer-name", "Created")];
        assert_eq!(
            render(&rows, false, false),
            "NAME          STATE     REPLICAS     RESTARTS   AGE   DURATION   REASON\n\
             a             Running   Worker:1/1   0          5s    4s         TFJobRunning\n\
             longer-name   Created   Worker:1/1   0          5s    4s         TFJobCreated\n"
        );
        let wide = render(&rows[..1], true, true);
        assert!(wide.starts_with("NAMESPACE   NAME   STATE"), "{wide}");
        assert!(
            wide.lines()
                .next()
                .unwrap()
                .ends_with("REASON         MESSAGE"),
            "{wide}"
        );
        assert!(
            wide.lines().nth(1).unwrap().ends_with("TFJobRunning   m"),
            "{wide}"
        );
    }
}

//! TFJob annotations this operator reads (its own, under `tfjob-operator.dev/`).

use super::TFJob;
use super::constants::PENDING_DEADLINE_ANNOTATION;

/// The job's pending-deadline annotation, if set: parsed (`10m`, `1h30m`, `90s`), or the
/// value that is not a positive duration.
pub fn pending_deadline(job: &TFJob) -> Option<Result<std::time::Duration, String>> {
    let value = job
        .metadata
        .annotations
        .as_ref()?
        .get(PENDING_DEADLINE_ANNOTATION)?;
    let parsed = value
        .trim()
        .parse::<jiff::SignedDuration>()
        .ok()
        .and_then(|d| std::time::Duration::try_from(d).ok())
        .filter(|d| !d.is_zero());
    Some(parsed.ok_or_else(|| value.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_pending_deadline_annotation_parses() {
        let job = |value: Option<&str>| {
            let mut job = TFJob::new("j", Default::default());
            if let Some(value) = value {
                job.metadata.annotations =
                    Some([(PENDING_DEADLINE_ANNOTATION.to_string(), value.to_string())].into());
            }
            job
        };
        let cases = [
            (None, None),
            (Some("10m"), Some(Ok(Duration::from_secs(600)))),
            (Some(" 1h30m "), Some(Ok(Duration::from_secs(5400)))),
            (Some("soon"), Some(Err("soon".to_string()))),
            (Some("0s"), Some(Err("0s".to_string()))),
            (Some("-5m"), Some(Err("-5m".to_string()))),
        ];
        for (value, want) in cases {
            assert_eq!(pending_deadline(&job(value)), want, "{value:?}");
        }
    }
}

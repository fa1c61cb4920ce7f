//! How one simulated pod behaves, read from its annotations (pure; no I/O).
//!
//! See the table in the [module docs](super) for the annotations and their defaults.

use std::collections::BTreeMap;
use std::time::Duration;

/// Prefix of every annotation the simulated kubelet reads.
pub const ANNOTATION_PREFIX: &str = "sim.tfjob-operator.dev/";

/// Time from binding until the containers run (`pending-ms`).
pub const PENDING_MS: &str = "sim.tfjob-operator.dev/pending-ms";
/// How long each container run lasts before it exits (`run-ms`).
pub const RUN_MS: &str = "sim.tfjob-operator.dev/run-ms";
/// Exit code of failing runs (`exit-code`).
pub const EXIT_CODE: &str = "sim.tfjob-operator.dev/exit-code";
/// Termination reason of failing runs, e.g. `OOMKilled` (`reason`).
pub const REASON: &str = "sim.tfjob-operator.dev/reason";
/// Which runs fail (`fail-attempts`), e.g. `1,2`, `1-3`, `4-`, `all`, `none`.
pub const FAIL_ATTEMPTS: &str = "sim.tfjob-operator.dev/fail-attempts";
/// Containers never exit on their own (`run-forever`).
pub const RUN_FOREVER: &str = "sim.tfjob-operator.dev/run-forever";
/// CrashLoopBackOff wait before an in-place restart (`restart-delay-ms`).
pub const RESTART_DELAY_MS: &str = "sim.tfjob-operator.dev/restart-delay-ms";
/// Time containers take to exit after SIGTERM on deletion (`stop-ms`).
pub const STOP_MS: &str = "sim.tfjob-operator.dev/stop-ms";
/// Only bind and finalise; the test drives the status (`manual`).
pub const MANUAL: &str = "sim.tfjob-operator.dev/manual";

/// A pod annotation under [`ANNOTATION_PREFIX`] that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("annotation {annotation}={value:?} is invalid: expected {expected}")]
pub struct BehaviourError {
    pub annotation: String,
    pub value: String,
    pub expected: &'static str,
}

/// Which attempts (1-based runs of a pod name, see [`Behaviour::exit_for`]) fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptSet {
    All,
    /// Inclusive ranges; `None` as the end means "and every later attempt".
    Ranges(Vec<(u32, Option<u32>)>),
}

impl AttemptSet {
    pub fn contains(&self, attempt: u32) -> bool {
        match self {
            AttemptSet::All => true,
            AttemptSet::Ranges(ranges) => ranges
                .iter()
                .any(|&(lo, hi)| attempt >= lo && hi.is_none_or(|hi| attempt <= hi)),
        }
    }

    /// Parses `all`, `*`, `none` or a comma list of `N`, `N-M` and `N-`.
    pub fn parse(text: &str) -> Option<AttemptSet> {
        let text = text.trim();
        match text {
            "all" | "*" => return Some(AttemptSet::All),
            "none" | "" => return Some(AttemptSet::Ranges(Vec::new())),
            _ => {}
        }
        let mut ranges = Vec::new();
        for part in text.split(',').map(str::trim) {
            let range = match part.split_once('-') {
                None => {
                    let n = part.parse().ok()?;
                    (n, Some(n))
                }
                Some((lo, "")) => (lo.trim().parse().ok()?, None),
                Some((lo, hi)) => {
                    let (lo, hi) = (lo.trim().parse().ok()?, hi.trim().parse().ok()?);
                    if hi < lo {
                        return None;
                    }
                    (lo, Some(hi))
                }
            };
            if range.0 == 0 {
                return None; // attempts count from 1
            }
            ranges.push(range);
        }
        Some(AttemptSet::Ranges(ranges))
    }
}

/// How a container run ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    pub code: i32,
    pub reason: String,
}

impl Exit {
    /// The reason a real kubelet reports for an exit code it saw (no OOM information).
    pub fn with_default_reason(code: i32) -> Exit {
        let reason = if code == 0 { "Completed" } else { "Error" };
        Exit {
            code,
            reason: reason.to_string(),
        }
    }
}

/// The behaviour of one pod's containers. All containers of a pod behave alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Behaviour {
    pub pending: Duration,
    pub run: Duration,
    /// Exit code of the attempts in `fail_attempts`; the others exit 0.
    pub exit_code: i32,
    /// Reason for the failing attempts; `None` derives it from the code like a kubelet does.
    pub reason: Option<String>,
    pub fail_attempts: AttemptSet,
    pub run_forever: bool,
    pub restart_delay: Duration,
    pub stop: Duration,
    pub manual: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            pending: Duration::from_millis(100),
            run: Duration::from_millis(1000),
            exit_code: 0,
            reason: None,
            fail_attempts: AttemptSet::All,
            run_forever: false,
            restart_delay: Duration::ZERO,
            stop: Duration::ZERO,
            manual: false,
        }
    }
}

impl Behaviour {
    /// Reads the behaviour from pod annotations; missing ones take their defaults.
    pub fn from_annotations(
        annotations: &BTreeMap<String, String>,
    ) -> Result<Behaviour, BehaviourError> {
        let mut b = Behaviour::default();
        let get = |key: &str| annotations.get(key).map(String::as_str);
        if let Some(v) = get(PENDING_MS) {
            b.pending = parse_ms(PENDING_MS, v)?;
        }
        if let Some(v) = get(RUN_MS) {
            b.run = parse_ms(RUN_MS, v)?;
        }
        if let Some(v) = get(RESTART_DELAY_MS) {
            b.restart_delay = parse_ms(RESTART_DELAY_MS, v)?;
        }
        if let Some(v) = get(STOP_MS) {
            b.stop = parse_ms(STOP_MS, v)?;
        }
        if let Some(v) = get(RUN_FOREVER) {
            b.run_forever = parse_bool(RUN_FOREVER, v)?;
        }
        if let Some(v) = get(MANUAL) {
            b.manual = parse_bool(MANUAL, v)?;
        }
        b.reason = get(REASON)
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty());
        let fail_attempts = get(FAIL_ATTEMPTS)
            .map(|v| {
                AttemptSet::parse(v).ok_or_else(|| {
                    invalid(
                        FAIL_ATTEMPTS,
                        v,
                        "`all`, `none` or a list like `1,2`, `1-3`, `4-`",
                    )
                })
            })
            .transpose()?;
        b.exit_code = match get(EXIT_CODE) {
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| invalid(EXIT_CODE, v, "an integer exit code"))?,
            // Naming failing attempts or an OOM kill implies a failure code.
            None if b.reason.as_deref() == Some("OOMKilled") => 137,
            None if fail_attempts.is_some() => 1,
            None => 0,
        };
        if let Some(set) = fail_attempts {
            b.fail_attempts = set;
        }
        Ok(b)
    }

    /// How attempt `attempt` (1-based) ends: the configured failure if the attempt is one of the
    /// failing ones, otherwise a clean exit.
    pub fn exit_for(&self, attempt: u32) -> Exit {
        if self.exit_code != 0 && self.fail_attempts.contains(attempt) {
            match &self.reason {
                Some(reason) => Exit {
                    code: self.exit_code,
                    reason: reason.clone(),
                },
                None => Exit::with_default_reason(self.exit_code),
            }
        } else {
            Exit::with_default_reason(0)
        }
    }
}

fn invalid(annotation: &str, value: &str, expected: &'static str) -> BehaviourError {
    BehaviourError {
        annotation: annotation.to_string(),
        value: value.to_string(),
        expected,
    }
}

fn parse_ms(annotation: &str, value: &str) -> Result<Duration, BehaviourError> {
    value
        .trim()
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| invalid(annotation, value, "a whole number of milliseconds"))
}

fn parse_bool(annotation: &str, value: &str) -> Result<bool, BehaviourError> {
    match value.trim() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" | "" => Ok(false),
        _ => Err(invalid(annotation, value, "`true` or `false`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_when_no_annotations() {
        let b = Behaviour::from_annotations(&BTreeMap::new()).unwrap();
        assert_eq!(b, Behaviour::default());
        assert_eq!(b.pending, Duration::from_millis(100));
        assert_eq!(b.run, Duration::from_millis(1000));
        assert_eq!(b.exit_for(1), Exit::with_default_reason(0));
        assert_eq!(b.exit_for(1).reason, "Completed");
    }

    #[test]
    fn exit_code_applies_to_every_attempt_by_default() {
        let b = Behaviour::from_annotations(&annotations(&[(EXIT_CODE, "3")])).unwrap();
        assert_eq!(
            b.exit_for(1),
            Exit {
                code: 3,
                reason: "Error".into()
            }
        );
        assert_eq!(b.exit_for(7).code, 3);
    }

    #[test]
    fn fail_attempts_selects_failing_runs_and_implies_exit_1() {
        let b =
            Behaviour::from_annotations(&annotations(&[(FAIL_ATTEMPTS, "1, 3-4, 9-")])).unwrap();
        let codes: Vec<i32> = (1..=10).map(|a| b.exit_for(a).code).collect();
        assert_eq!(codes, vec![1, 0, 1, 1, 0, 0, 0, 0, 1, 1]);
    }

    #[test]
    fn oom_reason_implies_137() {
        let b = Behaviour::from_annotations(&annotations(&[(REASON, "OOMKilled")])).unwrap();
        assert_eq!(
            b.exit_for(1),
            Exit {
                code: 137,
                reason: "OOMKilled".into()
            }
        );
    }

    #[test]
    fn explicit_reason_and_code() {
        let b = Behaviour::from_annotations(&annotations(&[
            (EXIT_CODE, "137"),
            (REASON, "OOMKilled"),
            (FAIL_ATTEMPTS, "2"),
        ]))
        .unwrap();
        assert_eq!(b.exit_for(1).code, 0);
        assert_eq!(
            b.exit_for(2),
            Exit {
                code: 137,
                reason: "OOMKilled".into()
            }
        );
    }

    #[test]
    fn timing_and_flags() {
        let b = Behaviour::from_annotations(&annotations(&[
            (PENDING_MS, "5"),
            (RUN_MS, "0"),
            (RESTART_DELAY_MS, "250"),
            (STOP_MS, "40"),
            (RUN_FOREVER, "true"),
            (MANUAL, "yes"),
        ]))
        .unwrap();
        assert_eq!(b.pending, Duration::from_millis(5));
        assert_eq!(b.run, Duration::ZERO);
        assert_eq!(b.restart_delay, Duration::from_millis(250));
        assert_eq!(b.stop, Duration::from_millis(40));
        assert!(b.run_forever && b.manual);
    }

    #[test]
    fn invalid_values_name_the_annotation() {
        let err = Behaviour::from_annotations(&annotations(&[(RUN_MS, "1s")])).unwrap_err();
        assert_eq!(err.annotation, RUN_MS);
        assert!(err.to_string().contains("milliseconds"), "{err}");
        assert!(Behaviour::from_annotations(&annotations(&[(FAIL_ATTEMPTS, "0")])).is_err());
        assert!(Behaviour::from_annotations(&annotations(&[(FAIL_ATTEMPTS, "3-1")])).is_err());
        assert!(Behaviour::from_annotations(&annotations(&[(EXIT_CODE, "x")])).is_err());
        assert!(Behaviour::from_annotations(&annotations(&[(RUN_FOREVER, "maybe")])).is_err());
    }

    #[test]
    fn attempt_set_parsing() {
        assert_eq!(AttemptSet::parse("all"), Some(AttemptSet::All));
        assert_eq!(AttemptSet::parse("none"), Some(AttemptSet::Ranges(vec![])));
        assert!(!AttemptSet::parse("none").unwrap().contains(1));
        assert_eq!(
            AttemptSet::parse("2-"),
            Some(AttemptSet::Ranges(vec![(2, None)]))
        );
        assert!(AttemptSet::parse("a-b").is_none());
    }
}

//! `ttlSecondsAfterFinished`: delete the TFJob that long after it finished, by timer (upstream
//! noticed only at its next resync before #1614), suspended or not (#2239).

use jiff::Timestamp;

/// What the TTL asks for now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ttl {
    /// No TTL set.
    Keep,
    /// Expired: delete the TFJob.
    DeleteNow,
    /// Look again at this instant (seconds since the epoch).
    At(i64),
}

/// The TTL decision for a job that completed at `completion`.
pub fn decide(ttl_seconds: Option<i32>, completion: Timestamp, now: Timestamp) -> Ttl {
    let Some(ttl) = ttl_seconds else {
        return Ttl::Keep;
    };
    let expiry = completion.as_second().saturating_add(i64::from(ttl));
    if now.as_second() >= expiry {
        Ttl::DeleteNow
    } else {
        Ttl::At(expiry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::t;

    #[test]
    fn ttl_after_completion() {
        let cases = [
            (None, 0, 1_000, Ttl::Keep),
            (Some(0), 10, 10, Ttl::DeleteNow),
            (Some(60), 10, 69, Ttl::At(t(70).as_second())),
            (Some(60), 10, 70, Ttl::DeleteNow),
            (Some(60), 10, 500, Ttl::DeleteNow),
            (
                Some(i32::MAX),
                10,
                11,
                Ttl::At(t(10).as_second() + i64::from(i32::MAX)),
            ),
        ];
        for (ttl, completion, now, want) in cases {
            assert_eq!(
                decide(ttl, t(completion), t(now)),
                want,
                "{ttl:?} {completion} {now}"
            );
        }
    }
}

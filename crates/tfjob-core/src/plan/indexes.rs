//! Sets of replica indices in `batch/v1` Job's compact text form (`"0,2-4"`), used for the
//! `completedIndexes` status extension.

use std::collections::BTreeSet;

/// Parses `"0,2-4"`; malformed parts are skipped (the field is ours, but a bad value must never
/// stop reconciliation).
pub fn parse(text: &str) -> BTreeSet<i32> {
    let mut set = BTreeSet::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let range = match part.split_once('-') {
            Some((a, b)) => a.parse::<i32>().ok().zip(b.parse::<i32>().ok()),
            None => part.parse::<i32>().ok().map(|n| (n, n)),
        };
        if let Some((start, end)) = range
            && 0 <= start
            && start <= end
        {
            // Bounded by the validation limit on replicas, so this never explodes.
            set.extend(start..=end.min(start + crate::api::constants::MAX_REPLICAS));
        }
    }
    set
}

/// Formats a set as `"0,2-4"`; `None` when empty.
pub fn format(set: &BTreeSet<i32>) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    let mut iter = set.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    (!parts.is_empty()).then(|| parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_ranges() {
        let set: BTreeSet<i32> = [0, 2, 3, 4, 7].into();
        assert_eq!(format(&set).as_deref(), Some("0,2-4,7"));
        assert_eq!(parse("0,2-4,7"), set);
        assert_eq!(format(&BTreeSet::new()), None);
        assert_eq!(parse(""), BTreeSet::new());
    }

    #[test]
    fn malformed_parts_are_skipped() {
        assert_eq!(parse("x,1,5-3,-2,3-4"), [1, 3, 4].into());
    }
}

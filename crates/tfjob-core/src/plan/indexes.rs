//! Sets of replica indices in `batch/v1` Job's compact text form (`"0,2-4"`), used for the
//! `completedIndexes` status extension.

use std::collections::BTreeSet;

/// Parses `"0,2-4"`, keeping only indices in `0..below` (the replica count). Malformed parts
/// are skipped: the field is ours, but a bad or hostile value must never stop reconciliation,
/// so the work is bounded too — at most `below + 1` ranges are read (a well-formed value never
/// has more), merged before they are expanded.
pub fn parse(text: &str, below: i32) -> BTreeSet<i32> {
    let limit = usize::try_from(below).unwrap_or(0).saturating_add(1);
    let mut ranges: Vec<(i32, i32)> = text
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .take(limit)
        .filter_map(|part| match part.split_once('-') {
            Some((a, b)) => a.parse::<i32>().ok().zip(b.parse::<i32>().ok()),
            None => part.parse::<i32>().ok().map(|n| (n, n)),
        })
        .filter(|&(start, end)| 0 <= start && start <= end && start < below)
        .map(|(start, end)| (start, end.min(below - 1)))
        .collect();
    ranges.sort_unstable();
    let mut set = BTreeSet::new();
    let mut covered_to: i32 = -1;
    for (start, end) in ranges {
        let from = start.max(covered_to.saturating_add(1));
        if from <= end {
            set.extend(from..=end);
            covered_to = end;
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
        assert_eq!(parse("0,2-4,7", 10), set);
        assert_eq!(format(&BTreeSet::new()), None);
        assert_eq!(parse("", 10), BTreeSet::new());
    }

    #[test]
    fn malformed_and_out_of_range_parts_are_skipped() {
        let cases: [(&str, i32, &[i32]); 8] = [
            ("x,1,5-3,-2,3-4", 10, &[1, 3, 4]),
            ("0-100", 3, &[0, 1, 2]),
            ("5,7-9", 3, &[]),
            ("2147483647", 10, &[]),
            (
                "2147483644-2147483647",
                i32::MAX,
                &[2147483644, 2147483645, 2147483646],
            ),
            ("0-2147483647", 2, &[0, 1]),
            ("1,0-1,1-1,0", 5, &[0, 1]),
            ("0", 0, &[]),
        ];
        for (text, below, expected) in cases {
            let expected: BTreeSet<i32> = expected.iter().copied().collect();
            assert_eq!(parse(text, below), expected, "{text:?} below {below}");
        }
    }

    /// A hostile value (a megabyte of overlapping full ranges) is read in bounded work.
    #[test]
    fn hostile_values_cost_bounded_work() {
        let text = vec!["0-9999"; 150_000].join(",");
        let started = std::time::Instant::now();
        assert_eq!(parse(&text, 10_000).len(), 10_000);
        // A generous bound: a correctness check, not a speed target.
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}

//! Just enough of the Prometheus text format to read counters, gauges and histogram sums.

use std::collections::BTreeMap;

pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// The samples of metric `name` (exactly that name: `_sum`/`_count` are other names).
pub fn samples(text: &str, name: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let (labels, value) = if let Some(inner) = rest.strip_prefix('{') {
                let (labels, value) = inner.split_once('}')?;
                (parse_labels(labels), value)
            } else if rest.starts_with(' ') {
                (BTreeMap::new(), rest)
            } else {
                return None; // a longer name with this prefix
            };
            let value = value.split_whitespace().next()?.parse().ok()?;
            Some(Sample { labels, value })
        })
        .collect()
}

/// The sum of all samples of `name`.
pub fn sum(text: &str, name: &str) -> f64 {
    samples(text, name).iter().map(|s| s.value).sum()
}

/// The sum of the samples of `name` whose label `key` is `value`.
pub fn sum_where(text: &str, name: &str, key: &str, value: &str) -> f64 {
    samples(text, name)
        .iter()
        .filter(|s| s.labels.get(key).is_some_and(|v| v == value))
        .map(|s| s.value)
        .sum()
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(if escaped == 'n' { '\n' } else { escaped });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        labels.insert(key.trim_start_matches(',').trim().to_string(), value);
        rest = &after[end..];
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_labels_and_values() {
        let text = "# HELP x\nx_total{verb=\"create\",code=\"201\"} 3\nx_total{verb=\"get\",code=\"200\"} 4\nx_total_other 9\ny 1.5e3\n";
        assert_eq!(sum(text, "x_total"), 7.0);
        assert_eq!(sum_where(text, "x_total", "verb", "get"), 4.0);
        assert_eq!(sum(text, "y"), 1500.0);
        assert_eq!(samples(text, "x_total")[0].labels["code"], "201");
    }
}

//! Reading the Prometheus text exposition format (0.0.4) back into samples: the integration
//! tests and `tfjob-bench` scrape `/metrics` (the operator's and the apiserver's). The
//! `prometheus` crate only writes this format, so this is the one small reader of it.

use std::collections::BTreeMap;

/// One line of a scrape: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    /// Whether every `(key, value)` of `labels` is among this sample's labels.
    pub fn has_labels(&self, labels: &[(&str, &str)]) -> bool {
        labels
            .iter()
            .all(|(k, v)| self.labels.get(*k).is_some_and(|own| own == v))
    }
}

/// Every sample of one scrape, in the order served.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    samples: Vec<Sample>,
}

/// A line that is not a comment, blank, or a well-formed sample.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {reason}: {text:?}")]
pub struct ParseError {
    pub line: usize,
    pub reason: &'static str,
    pub text: String,
}

impl Scrape {
    /// Parses a whole `/metrics` body. Strict: a malformed line is an error rather than a sample
    /// quietly missing from a sum.
    pub fn parse(text: &str) -> Result<Scrape, ParseError> {
        let mut samples = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let sample = parse_sample(line).map_err(|reason| ParseError {
                line: i + 1,
                reason,
                text: line.to_string(),
            })?;
            samples.push(sample);
        }
        Ok(Scrape { samples })
    }

    /// The samples of metric `name`: exactly that name (a histogram's `_sum` and `_count` are
    /// names of their own).
    pub fn samples<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> {
        self.samples.iter().filter(move |s| s.name == name)
    }

    /// The samples of `name` whose labels include all of `labels`.
    pub fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> {
        self.samples(name).filter(move |s| s.has_labels(labels))
    }

    /// The sum of the samples of `name` whose labels include all of `labels` (0 when none does).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|s| s.value).sum()
    }

    /// Each sample of `name` as `{labels} value`, for failure messages.
    pub fn series(&self, name: &str) -> Vec<String> {
        self.samples(name)
            .map(|s| format!("{:?} {}", s.labels, s.value))
            .collect()
    }
}

/// `name[{labels}] value [timestamp]`.
fn parse_sample(line: &str) -> Result<Sample, &'static str> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or("no value")?;
    let (name, rest) = line.split_at(name_end);
    if name.is_empty() {
        return Err("no metric name");
    }
    let mut labels = BTreeMap::new();
    let rest = match rest.trim_start().strip_prefix('{') {
        Some(inside) => parse_labels(inside, &mut labels)?,
        None => rest,
    };
    let mut fields = rest.split_whitespace();
    // `f64::from_str` also reads the format's `+Inf`, `-Inf` and `NaN`.
    let value = fields
        .next()
        .ok_or("no value")?
        .parse()
        .map_err(|_| "the value is not a number")?;
    match (fields.next(), fields.next()) {
        (None, _) => {}
        (Some(timestamp), None) if timestamp.parse::<i64>().is_ok() => {}
        _ => return Err("unexpected text after the value"),
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Reads `key="value",…}` (values escape `\\`, `\"` and `\n`) into `labels`; returns what
/// follows the closing brace.
fn parse_labels<'a>(
    mut rest: &'a str,
    labels: &mut BTreeMap<String, String>,
) -> Result<&'a str, &'static str> {
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('}') {
            return Ok(after);
        }
        let (key, after) = rest.split_once('=').ok_or("a label without a value")?;
        let key = key.trim();
        if key.is_empty() {
            return Err("a label without a name");
        }
        let quoted = after
            .trim_start()
            .strip_prefix('"')
            .ok_or("a label value not in quotes")?;
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        let end = loop {
            match chars.next().ok_or("an unterminated label value")? {
                (_, '\\') => match chars.next().ok_or("an unterminated label value")? {
                    (_, 'n') => value.push('\n'),
                    (_, escaped) => value.push(escaped),
                },
                (i, '"') => break i + 1,
                (_, c) => value.push(c),
            }
        };
        labels.insert(key.to_string(), value);
        rest = quoted[end..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# HELP x_total Requests.
# TYPE x_total counter
x_total{verb=\"create\",code=\"201\"} 3
x_total{verb=\"get\",code=\"200\"} 4
x_total_other 9

y 1.5e3
";

    #[test]
    fn sums_all_samples_of_exactly_one_name() {
        let scrape = Scrape::parse(TEXT).unwrap();
        assert_eq!(scrape.sum("x_total", &[]), 7.0);
        assert_eq!(scrape.sum("x_total_other", &[]), 9.0);
        assert_eq!(scrape.sum("y", &[]), 1500.0);
        assert_eq!(scrape.sum("x", &[]), 0.0);
    }

    #[test]
    fn sums_only_samples_with_every_given_label() {
        let scrape = Scrape::parse(TEXT).unwrap();
        assert_eq!(scrape.sum("x_total", &[("verb", "get")]), 4.0);
        assert_eq!(
            scrape.sum("x_total", &[("verb", "get"), ("code", "201")]),
            0.0
        );
        assert_eq!(scrape.sum("x_total", &[("missing", "")]), 0.0);
        assert_eq!(scrape.matching("x_total", &[("code", "201")]).count(), 1);
        assert_eq!(
            scrape.series("x_total"),
            [
                r#"{"code": "201", "verb": "create"} 3"#,
                r#"{"code": "200", "verb": "get"} 4"#
            ]
        );
    }

    #[test]
    fn unescapes_label_values_that_hold_format_characters() {
        let text = r#"m{path="/a b}",q="say \"hi\"\nbye",back="\\", empty=""} 2 1712345678000"#;
        let scrape = Scrape::parse(text).unwrap();
        let sample = scrape.samples("m").next().unwrap();
        assert_eq!(sample.labels["path"], "/a b}");
        assert_eq!(sample.labels["q"], "say \"hi\"\nbye");
        assert_eq!(sample.labels["back"], "\\");
        assert_eq!(sample.labels["empty"], "");
        assert_eq!(sample.value, 2.0);
    }

    #[test]
    fn reads_the_special_values_and_a_trailing_comma() {
        let text = "h_bucket{le=\"+Inf\",} 5\nnan NaN\nup +Inf\ndown -Inf\nnone{} 1\n";
        let scrape = Scrape::parse(text).unwrap();
        assert_eq!(scrape.sum("h_bucket", &[("le", "+Inf")]), 5.0);
        assert!(scrape.sum("nan", &[]).is_nan());
        assert_eq!(scrape.sum("up", &[]), f64::INFINITY);
        assert_eq!(scrape.sum("down", &[]), f64::NEG_INFINITY);
        assert_eq!(scrape.sum("none", &[]), 1.0);
    }

    #[test]
    fn rejects_malformed_lines_naming_the_line() {
        for (text, reason) in [
            ("ok 1\nx{a=\"1\"}", "no value"),
            ("ok 1\nx abc", "the value is not a number"),
            ("ok 1\nx 1 2 3", "unexpected text after the value"),
            ("ok 1\nx{a=1} 1", "a label value not in quotes"),
            ("ok 1\nx{a=\"1} 1", "an unterminated label value"),
            ("ok 1\nx{=\"1\"} 1", "a label without a name"),
        ] {
            let error = Scrape::parse(text).unwrap_err();
            assert_eq!((error.line, error.reason), (2, reason), "{text:?}");
        }
    }

    #[test]
    fn reads_what_the_operator_serves() {
        let registry = prometheus::Registry::new();
        let counter = prometheus::IntCounterVec::new(
            prometheus::Opts::new("requests_total", "Requests."),
            &["verb"],
        )
        .unwrap();
        registry.register(Box::new(counter.clone())).unwrap();
        counter.with_label_values(&["list \"all\"\n"]).inc_by(2);
        let mut text = String::new();
        prometheus::TextEncoder::new()
            .encode_utf8(&registry.gather(), &mut text)
            .unwrap();
        let scrape = Scrape::parse(&text).unwrap();
        assert_eq!(
            scrape.sum("requests_total", &[("verb", "list \"all\"\n")]),
            2.0
        );
    }
}

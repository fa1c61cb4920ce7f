//! The operator's counters as the phases read them, through the library's parser
//! ([`test_support::prom_text`]).

use test_support::prom_text::Scrape;

/// The sum of all samples of `name` in a scrape of the operator's `/metrics`.
pub fn sum(text: &str, name: &str) -> f64 {
    parse(text).sum(name, &[])
}

/// The sum of the samples of `name` whose label `key` is `value`.
pub fn sum_where(text: &str, name: &str, key: &str, value: &str) -> f64 {
    parse(text).sum(name, &[(key, value)])
}

/// A failed scrape is empty (no samples). A malformed one would make every number of the run
/// wrong, so it stops the run rather than being read in part.
fn parse(text: &str) -> Scrape {
    Scrape::parse(text)
        .unwrap_or_else(|e| panic!("the operator's /metrics is not Prometheus text: {e}"))
}

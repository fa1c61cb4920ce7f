//! `tfjob_operator_heap_bytes`: what the allocator (jemalloc, see `src/main.rs`) holds, read on
//! every scrape. `allocated` is the live heap, `resident` the pages the allocator keeps in
//! memory for it; far more `resident` than `allocated` would be memory freed but not given
//! back. In a process whose global allocator is not jemalloc (the library's tests) both are 0.

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntGaugeVec, Opts};
use tikv_jemalloc_ctl::{epoch, stats};

pub struct HeapCollector {
    gauge: IntGaugeVec,
}

impl HeapCollector {
    pub fn new() -> prometheus::Result<Self> {
        Ok(Self {
            gauge: IntGaugeVec::new(
                Opts::new(
                    "tfjob_operator_heap_bytes",
                    "Heap held by the operator's allocator: allocated (live) and resident \
                     (pages kept in memory for it)",
                ),
                &["state"],
            )?,
        })
    }
}

impl Collector for HeapCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.gauge.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        // jemalloc's statistics are a snapshot taken when the epoch advances.
        if epoch::advance().is_ok() {
            for (state, read) in [
                ("allocated", stats::allocated::read()),
                ("resident", stats::resident::read()),
            ] {
                if let Ok(bytes) = read {
                    let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
                    self.gauge.with_label_values(&[state]).set(bytes);
                }
            }
        }
        self.gauge.collect()
    }
}

#[cfg(test)]
mod tests {
    use tikv_jemalloc_ctl::opt;

    /// `.cargo/config.toml` configures jemalloc when it is built; a build without that
    /// configuration would run with jemalloc's defaults (an arena per CPU ×4, thread caches).
    #[test]
    fn jemalloc_is_built_with_one_arena_and_no_thread_caches() {
        assert_eq!(opt::narenas::read().ok(), Some(1), "opt.narenas");
        assert_eq!(opt::tcache::read().ok(), Some(false), "opt.tcache");
    }
}

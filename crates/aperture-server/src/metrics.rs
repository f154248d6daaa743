//! Metrics in the Prometheus text format: counters kept here, job and asset counts read from
//! the catalog at scrape time.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the search latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Default)]
pub struct Metrics {
    pub bytes_ingested: AtomicU64,
    pub files_ingested: AtomicU64,
    pub requests: AtomicU64,
    pub errors: AtomicU64,
    search: Histogram,
}

#[derive(Default)]
struct Histogram {
    /// Cumulative counts per bucket, plus +Inf last.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Metrics {
    pub fn observe_search(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let h = &self.search;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        h.buckets[BUCKETS.len()].fetch_add(1, Ordering::Relaxed);
        h.count.fetch_add(1, Ordering::Relaxed);
        h.sum_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    /// The exposition text; `jobs` are (state, count) and `assets` the catalog's asset count.
    pub fn render(&self, jobs: &[(String, u64)], assets: u64, documents: u64) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        counter(
            &mut out,
            "aperture_ingested_bytes_total",
            "Bytes of uploaded files taken in (new, or the same content as a stored file).",
            self.bytes_ingested.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "aperture_ingested_files_total",
            "Uploaded files taken in (new, or the same content as a stored file).",
            self.files_ingested.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "aperture_http_requests_total",
            "HTTP requests answered.",
            self.requests.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "aperture_http_errors_total",
            "HTTP requests answered with a 5xx status.",
            self.errors.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP aperture_jobs Analysis jobs by state.\n# TYPE aperture_jobs gauge"
        );
        for (state, n) in jobs {
            let _ = writeln!(out, "aperture_jobs{{state=\"{state}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP aperture_assets Assets in the catalog.\n# TYPE aperture_assets gauge\naperture_assets {assets}"
        );
        let _ = writeln!(
            out,
            "# HELP aperture_search_documents Assets in the search index.\n# TYPE aperture_search_documents gauge\naperture_search_documents {documents}"
        );
        let name = "aperture_search_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time to answer a search, similar or duplicates request.\n# TYPE {name} histogram"
        );
        let h = &self.search;
        for (i, bound) in BUCKETS.iter().enumerate() {
            let n = h.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"+Inf\"}} {}",
            h.buckets[BUCKETS.len()].load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "{name}_sum {}",
            h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {}", h.count.load(Ordering::Relaxed));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.observe_search(Duration::from_micros(800));
        m.observe_search(Duration::from_millis(30));
        let text = m.render(&[("queued".into(), 3)], 7, 5);
        assert!(text.contains("aperture_search_duration_seconds_bucket{le=\"0.001\"} 1"));
        assert!(text.contains("aperture_search_duration_seconds_bucket{le=\"0.025\"} 1"));
        assert!(text.contains("aperture_search_duration_seconds_bucket{le=\"0.05\"} 2"));
        assert!(text.contains("aperture_search_duration_seconds_bucket{le=\"+Inf\"} 2"));
        assert!(text.contains("aperture_search_duration_seconds_count 2"));
        assert!(text.contains("aperture_jobs{state=\"queued\"} 3"));
        assert!(text.contains("aperture_assets 7"));
    }
}

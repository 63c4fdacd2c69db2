//! The Prometheus text format (version 0.0.4), written by hand: a few counters, gauges and one
//! histogram family do not justify a metrics crate and its registry. Shared by the door
//! runtime's job metrics and the endpoint API's own.

use std::fmt::Write;

/// Histogram bucket bounds, seconds: from a fast mockup stage to a slow cold denoise.
pub(crate) const BUCKETS: [f64; 13] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// Cumulative bucket counts, count and sum of one labelled series.
#[derive(Debug, Default, Clone)]
pub(crate) struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    pub(crate) fn observe(&mut self, seconds: f64) {
        for (bound, count) in BUCKETS.iter().zip(self.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }

    /// The series `name{labels,le=…}`, `_sum` and `_count` (`labels` like `stage="denoise"`).
    pub(crate) fn render(&self, out: &mut String, name: &str, labels: &str) {
        for (bound, count) in BUCKETS.iter().zip(self.counts.iter()) {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// `# HELP` and `# TYPE` lines of a family.
pub(crate) fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A family with one unlabelled counter.
pub(crate) fn counter(out: &mut String, name: &str, help: &str, value: f64) {
    family(out, name, "counter", help);
    let _ = writeln!(out, "{name} {value}");
}

/// A family with one unlabelled gauge.
pub(crate) fn gauge(out: &mut String, name: &str, help: &str, value: f64) {
    family(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {value}");
}

/// A label value with `\`, `"` and newlines escaped.
pub(crate) fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

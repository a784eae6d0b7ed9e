//! A tiny Prometheus text exposition helper: atomic counters and gauges that handlers update,
//! and a writer that renders them (plus values computed at scrape time) in the text format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The content type of the Prometheus text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A monotonically increasing count, cheap to clone and share.
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down, cheap to clone and share.
#[derive(Debug, Clone, Default)]
pub struct Gauge(Arc<AtomicI64>);

impl Gauge {
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
    /// Increments now and decrements when the returned guard drops (e.g. open connections).
    pub fn track(&self) -> GaugeGuard {
        self.inc();
        GaugeGuard(self.clone())
    }
}

/// Decrements its gauge on drop; see [`Gauge::track`].
#[derive(Debug)]
pub struct GaugeGuard(Gauge);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Builds one scrape's worth of Prometheus text.
///
/// ```
/// let mut text = service_kit::MetricsText::new();
/// text.counter("demo_requests_total", "Requests served.", 3);
/// text.labelled("demo_lag", "gauge", "Lag per group.", [(vec![("group", "a")], 5.0)]);
/// assert!(text.finish().contains("demo_lag{group=\"a\"} 5"));
/// ```
#[derive(Debug, Default)]
pub struct MetricsText {
    out: String,
}

impl MetricsText {
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes a counter without labels.
    pub fn counter(&mut self, name: &str, help: &str, value: u64) -> &mut Self {
        self.header(name, "counter", help);
        let _ = writeln!(self.out, "{name} {value}");
        self
    }

    /// Writes a gauge without labels.
    pub fn gauge(&mut self, name: &str, help: &str, value: f64) -> &mut Self {
        self.header(name, "gauge", help);
        let _ = writeln!(self.out, "{name} {}", format_value(value));
        self
    }

    /// Writes a metric family of `kind` ("counter" or "gauge") with one sample per label set.
    pub fn labelled<'a, L>(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        samples: impl IntoIterator<Item = (L, f64)>,
    ) -> &mut Self
    where
        L: IntoIterator<Item = (&'a str, &'a str)>,
    {
        self.header(name, kind, help);
        for (labels, value) in samples {
            let rendered: Vec<String> = labels
                .into_iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                .collect();
            let _ = writeln!(
                self.out,
                "{name}{{{}}} {}",
                rendered.join(","),
                format_value(value)
            );
        }
        self
    }

    /// The finished text.
    pub fn finish(self) -> String {
        self.out
    }

    fn header(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {}", help.replace('\n', " "));
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }
}

impl IntoResponse for MetricsText {
    fn into_response(self) -> Response {
        ([(header::CONTENT_TYPE, CONTENT_TYPE)], self.finish()).into_response()
    }
}

fn format_value(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{v}")
    }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_exposition_format() {
        let requests = Counter::default();
        requests.add(41);
        requests.inc();
        let open = Gauge::default();
        let guard = open.track();
        let mut text = MetricsText::new();
        text.counter("svc_requests_total", "Requests served.", requests.get())
            .gauge("svc_open", "Open connections.", open.get() as f64)
            .labelled(
                "svc_lag",
                "gauge",
                "Lag.",
                [(vec![("group", "a\"b")], 1.5), (vec![("group", "c")], 2.0)],
            );
        drop(guard);
        assert_eq!(open.get(), 0);
        let expected = "\
# HELP svc_requests_total Requests served.
# TYPE svc_requests_total counter
svc_requests_total 42
# HELP svc_open Open connections.
# TYPE svc_open gauge
svc_open 1
# HELP svc_lag Lag.
# TYPE svc_lag gauge
svc_lag{group=\"a\\\"b\"} 1.5
svc_lag{group=\"c\"} 2
";
        assert_eq!(text.finish(), expected);
    }
}

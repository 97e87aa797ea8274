//! Prometheus metrics (text format, `prometheus-client`): containers by
//! state and runtime, starts and start failures by runtime and reason, start
//! latency by runtime, reloads, config generation, wrappers and wrapper GC,
//! API requests by route and status, containerd restarts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

pub struct Metrics {
    registry: Mutex<Registry>,
    containers: Family<Labels, Gauge>,
    starts: Family<Labels, Counter>,
    start_failures: Family<Labels, Counter>,
    start_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    reloads: Family<Labels, Counter>,
    reload_seconds: Histogram,
    generation: Gauge,
    wrappers: Gauge,
    wrappers_collected: Counter,
    api_requests: Family<Labels, Counter>,
    containerd_restarts: Gauge,
    /// Set by the daemon from the managed containerd's restart count.
    pub containerd_restart_count: AtomicU64,
}

fn start_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 12))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let m = Metrics {
            registry: Mutex::new(Registry::with_prefix("berth")),
            containers: Family::default(),
            starts: Family::default(),
            start_failures: Family::default(),
            start_seconds: Family::new_with_constructor(start_histogram as fn() -> Histogram),
            reloads: Family::default(),
            // 0.25 ms .. ~1 s
            reload_seconds: Histogram::new(exponential_buckets(0.00025, 2.0, 13)),
            generation: Gauge::default(),
            wrappers: Gauge::default(),
            wrappers_collected: Counter::default(),
            api_requests: Family::default(),
            containerd_restarts: Gauge::default(),
            containerd_restart_count: AtomicU64::new(0),
        };
        {
            let mut r = m.registry.lock().unwrap_or_else(|e| e.into_inner());
            r.register("containers", "Containers by state and runtime", m.containers.clone());
            r.register("container_starts", "Container starts by runtime", m.starts.clone());
            r.register("container_start_failures", "Failed container starts by runtime and reason", m.start_failures.clone());
            r.register("container_start_seconds", "Time to start a container, by runtime", m.start_seconds.clone());
            r.register("reloads", "Configuration reloads by result", m.reloads.clone());
            r.register("reload_seconds", "Time to apply a successful reload (files read to generation live)", m.reload_seconds.clone());
            r.register("config_generation", "Generation of the live configuration", m.generation.clone());
            r.register("wrappers", "Wrapper scripts on disk", m.wrappers.clone());
            r.register("wrappers_collected", "Wrapper scripts garbage-collected", m.wrappers_collected.clone());
            r.register("api_requests", "API requests by route and status", m.api_requests.clone());
            r.register("containerd_restarts", "Restarts of the managed containerd (berth reconnects after each)", m.containerd_restarts.clone());
        }
        m
    }

    pub fn start_ok(&self, runtime: &str, seconds: f64) {
        self.starts.get_or_create(&labels(&[("runtime", runtime)])).inc();
        self.start_seconds.get_or_create(&labels(&[("runtime", runtime)])).observe(seconds);
    }

    pub fn start_failed(&self, runtime: &str, reason: &str) {
        self.start_failures.get_or_create(&labels(&[("runtime", runtime), ("reason", reason)])).inc();
    }

    /// Counts a reload; `apply_seconds` is the time a successful one took.
    pub fn reload(&self, ok: bool, apply_seconds: Option<f64>) {
        self.reloads.get_or_create(&labels(&[("result", if ok { "ok" } else { "failed" })])).inc();
        if let Some(s) = apply_seconds {
            self.reload_seconds.observe(s);
        }
    }

    /// Brings the GC counter up to `total` (the runtime service counts).
    pub fn set_wrappers_collected(&self, total: u64) {
        let seen = self.wrappers_collected.get();
        if total > seen {
            self.wrappers_collected.inc_by(total - seen);
        }
    }

    /// Counts an API request. `route` must come from a fixed set (the API
    /// passes route templates), never from a raw path.
    pub fn api_request(&self, route: &str, status: u16) {
        self.api_requests.get_or_create(&labels(&[("route", route), ("status", &status.to_string())])).inc();
    }

    /// Renders every metric; `containers` gives (state, runtime) per
    /// container, read at scrape time.
    pub fn render(&self, generation: u64, wrappers: usize, containers: impl Iterator<Item = (String, String)>) -> String {
        self.generation.set(generation as i64);
        self.wrappers.set(wrappers as i64);
        self.containerd_restarts.set(self.containerd_restart_count.load(Ordering::Relaxed) as i64);
        self.containers.clear();
        for (state, runtime) in containers {
            self.containers.get_or_create(&labels(&[("state", &state), ("runtime", &runtime)])).inc();
        }
        let mut out = String::new();
        let r = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        let _ = encode(&mut out, &r);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render() {
        let m = Metrics::new();
        m.start_ok("runc", 0.2);
        m.start_failed("gvisor", "not-found");
        m.reload(true, Some(0.002));
        m.api_request("/_ping", 200);
        let text = m.render(7, 2, vec![("running".to_string(), "runc".to_string())].into_iter());
        for needle in [
            "berth_container_starts_total{runtime=\"runc\"} 1",
            "berth_container_start_failures_total{runtime=\"gvisor\",reason=\"not-found\"} 1",
            "berth_reloads_total{result=\"ok\"} 1",
            "berth_reload_seconds_count 1",
            "berth_config_generation 7",
            "berth_containers{state=\"running\",runtime=\"runc\"} 1",
            "berth_api_requests_total{route=\"/_ping\",status=\"200\"} 1",
            "berth_container_start_seconds_bucket{le=",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }
}

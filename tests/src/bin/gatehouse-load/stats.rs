//! Latency samples and the summary printed for each phase.

use std::time::{Duration, Instant};

/// What one worker measured: every latency in microseconds, and its failures.
#[derive(Debug, Default)]
pub struct WorkerOut {
    pub latencies_us: Vec<u32>,
    pub errors: u64,
    /// The first failure this worker saw, for the report.
    pub first_error: Option<String>,
    /// When its last request finished.
    pub finished_at: Option<Instant>,
    /// With `--trace`: the phase's start, and when each recorded request started (µs after it).
    pub trace_origin: Option<Instant>,
    pub starts_us: Vec<u32>,
}

impl WorkerOut {
    /// A worker expecting about `n` requests; `trace_origin` turns on the per-request timeline.
    pub fn new(n: usize, trace_origin: Option<Instant>) -> Self {
        Self {
            latencies_us: Vec::with_capacity(n),
            trace_origin,
            starts_us: Vec::with_capacity(if trace_origin.is_some() { n } else { 0 }),
            ..Self::default()
        }
    }

    /// Records one request that started at `t0` and finished at `t1`.
    #[inline]
    pub fn record(&mut self, t0: Instant, t1: Instant) {
        self.latencies_us
            .push(micros(t1.saturating_duration_since(t0)));
        if let Some(origin) = self.trace_origin {
            self.starts_us
                .push(micros(t0.saturating_duration_since(origin)));
        }
    }

    pub fn fail(&mut self, why: impl FnOnce() -> String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(why());
        }
    }
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// Appends each recorded request of a phase to a CSV timeline: `phase,worker,start_us,latency_us`.
pub fn write_trace(
    out: &mut impl std::io::Write,
    phase: &str,
    workers: &[WorkerOut],
) -> std::io::Result<()> {
    for (w, o) in workers.iter().enumerate() {
        for (start, lat) in o.starts_us.iter().zip(&o.latencies_us) {
            writeln!(out, "{phase},{w},{start},{lat}")?;
        }
    }
    Ok(())
}

/// CPU seconds used by a process (and by the load generator itself) over a phase.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuUse {
    pub server_secs: f64,
    pub load_secs: f64,
    /// CPU seconds the rest of the machine used meanwhile (anything else running skews the
    /// figures: on 2 cores, a build next door halves them).
    pub other_secs: Option<f64>,
}

/// One phase's result.
#[derive(Debug)]
pub struct Summary {
    pub name: &'static str,
    /// Requests that completed (successful or not) inside the measured window.
    pub requests: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    pub p50_us: u32,
    pub p90_us: u32,
    pub p99_us: u32,
    pub p999_us: u32,
    pub max_us: u32,
    pub mean_us: f64,
    pub cpu: Option<CpuUse>,
    /// Per-thread-name server CPU seconds, largest first.
    pub server_threads: Vec<(String, f64)>,
    /// A latency measurement of requests made one at a time: its rate means nothing.
    pub latency_only: bool,
}

impl Summary {
    pub fn from_workers(
        name: &'static str,
        outs: Vec<WorkerOut>,
        elapsed: Duration,
        cpu: Option<CpuUse>,
        server_threads: Vec<(String, f64)>,
    ) -> Self {
        let total: usize = outs.iter().map(|o| o.latencies_us.len()).sum();
        let mut all = Vec::with_capacity(total);
        let mut errors = 0;
        let mut first_error = None;
        for o in outs {
            all.extend_from_slice(&o.latencies_us);
            errors += o.errors;
            if first_error.is_none() {
                first_error = o.first_error;
            }
        }
        all.sort_unstable();
        let pct = |p: f64| -> u32 {
            if all.is_empty() {
                return 0;
            }
            // Nearest-rank percentile.
            let rank = (p * all.len() as f64).ceil() as usize;
            all[rank.clamp(1, all.len()) - 1]
        };
        let mean_us = if all.is_empty() {
            0.0
        } else {
            all.iter().map(|&v| f64::from(v)).sum::<f64>() / all.len() as f64
        };
        Summary {
            name,
            requests: all.len() as u64,
            errors,
            first_error,
            elapsed,
            p50_us: pct(0.50),
            p90_us: pct(0.90),
            p99_us: pct(0.99),
            p999_us: pct(0.999),
            max_us: all.last().copied().unwrap_or(0),
            mean_us,
            cpu,
            server_threads,
            latency_only: false,
        }
    }

    pub fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.requests as f64 / secs
        } else {
            0.0
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        let secs = self.elapsed.as_secs_f64();
        let cores = |cpu: f64| if secs > 0.0 { cpu / secs } else { 0.0 };
        serde_json::json!({
            "phase": self.name,
            "requests": self.requests,
            "errors": self.errors,
            "first_error": self.first_error,
            "seconds": round3(secs),
            "requests_per_second": (!self.latency_only).then(|| round3(self.rate())),
            "latency_us": {
                "mean": round3(self.mean_us),
                "p50": self.p50_us,
                "p90": self.p90_us,
                "p99": self.p99_us,
                "p999": self.p999_us,
                "max": self.max_us,
            },
            "cpu": self.cpu.map(|c| serde_json::json!({
                "server_seconds": round3(c.server_secs),
                "server_cores": round3(cores(c.server_secs)),
                "load_seconds": round3(c.load_secs),
                "load_cores": round3(cores(c.load_secs)),
                "other_seconds": c.other_secs.map(round3),
                "other_cores": c.other_secs.map(|s| round3(cores(s))),
            })),
            "server_threads": self.server_threads.iter().map(|(n, s)| serde_json::json!({
                "name": n, "seconds": round3(*s), "cores": round3(cores(*s)),
            })).collect::<Vec<_>>(),
        })
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// `1234` µs as `1.23 ms`, `456` as `456 µs`.
pub fn fmt_us(us: u32) -> String {
    if us >= 10_000 {
        format!("{:.1} ms", f64::from(us) / 1000.0)
    } else if us >= 1000 {
        format!("{:.2} ms", f64::from(us) / 1000.0)
    } else {
        format!("{us} µs")
    }
}

/// `12345.6` as `12,346`.
pub fn fmt_int(v: f64) -> String {
    let n = v.round() as u64;
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut w = WorkerOut::default();
        let t0 = Instant::now();
        for us in 1..=100u64 {
            w.record(t0, t0 + Duration::from_micros(us));
        }
        let s = Summary::from_workers("x", vec![w], Duration::from_secs(1), None, Vec::new());
        assert_eq!((s.p50_us, s.p90_us, s.p99_us, s.max_us), (50, 90, 99, 100));
        assert_eq!(s.requests, 100);
        assert_eq!(fmt_int(1_234_567.4), "1,234,567");
        assert_eq!(fmt_int(999.0), "999");
    }
}

//! What a run shows: the progress line on stderr while it runs, and the final report as a
//! table or as JSON (`--json`, the input of `scripts/chart.py`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::floor::Floor;
use super::procfs::ProcSample;
use super::stats::Recorder;
use super::Options;

/// Latency percentiles of one operation, milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
        }
    }
}

/// One operation's line of the table.
#[derive(Debug, Clone, Serialize)]
pub struct OpReport {
    pub count: u64,
    pub ops_per_sec: f64,
    pub latency_ms: Latency,
}

/// The server's cost over the measured window (`--server-pid`).
#[derive(Debug, Clone, Serialize)]
pub struct ServerReport {
    pub pid: u32,
    pub cpu_secs: f64,
    pub cpu_user_secs: f64,
    pub cpu_system_secs: f64,
    /// Server CPU time per successful operation, microseconds.
    pub cpu_us_per_op: Option<f64>,
    /// `cpu_us_per_op` in units of the run's floor (one OpenSSL P-256 verification).
    pub cpu_per_op_over_floor: Option<f64>,
    pub rss_start_kib: u64,
    /// The highest resident set sampled during the window (every 200 ms), KiB.
    pub rss_peak_kib: u64,
    /// The kernel's peak resident set since the server started (`VmHWM`), KiB.
    pub hwm_kib: u64,
    /// (peak − start) / sockets held, in idle mode.
    pub rss_per_socket_kib: Option<f64>,
    /// In idle mode, the least-squares slope of RSS against open sockets over the samples taken
    /// while the sockets opened: what one more socket costs, whatever the server held (or had
    /// free for reuse) when the window began.
    pub rss_marginal_per_socket_kib: Option<f64>,
}

/// The slope, KiB per socket, of `(open sockets, RSS KiB)` samples up to the first that reached
/// the most sockets; `None` with fewer than 3 such samples or no spread in the socket count.
pub fn marginal_kib_per_socket(samples: &[(u64, u64)]) -> Option<f64> {
    let most = samples.iter().map(|&(open, _)| open).max()?;
    let end = samples.iter().position(|&(open, _)| open == most)?;
    let ramp = &samples[..=end];
    if ramp.len() < 3 {
        return None;
    }
    let n = ramp.len() as f64;
    let mean_x = ramp.iter().map(|&(x, _)| x as f64).sum::<f64>() / n;
    let mean_y = ramp.iter().map(|&(_, y)| y as f64).sum::<f64>() / n;
    let (mut cov, mut var) = (0.0, 0.0);
    for &(x, y) in ramp {
        let dx = x as f64 - mean_x;
        cov += dx * (y as f64 - mean_y);
        var += dx * dx;
    }
    (var > 0.0).then(|| cov / var)
}

impl ServerReport {
    pub fn new(pid: u32, start: ProcSample, end: ProcSample, peak_rss_kib: u64) -> Self {
        ServerReport {
            pid,
            cpu_secs: end.cpu().saturating_sub(start.cpu()).as_secs_f64(),
            cpu_user_secs: end.user.saturating_sub(start.user).as_secs_f64(),
            cpu_system_secs: end.system.saturating_sub(start.system).as_secs_f64(),
            cpu_us_per_op: None,
            cpu_per_op_over_floor: None,
            rss_start_kib: start.rss_kib,
            rss_peak_kib: peak_rss_kib,
            hwm_kib: end.hwm_kib,
            rss_per_socket_kib: None,
            rss_marginal_per_socket_kib: None,
        }
    }
}

/// Facts about the window that are not per operation.
pub struct Window {
    pub elapsed: Duration,
    pub setup: Duration,
    pub setup_failed: u64,
    pub peak_open_sockets: u64,
}

/// The result of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub mode: &'static str,
    pub url: String,
    pub clients: usize,
    /// The paced rate asked for (`--rate`), if any.
    pub rate: Option<f64>,
    pub threads: usize,
    pub duration_secs: f64,
    pub elapsed_secs: f64,
    pub setup_secs: f64,
    pub ops: u64,
    pub ops_per_sec: f64,
    pub latency_ms: Option<Latency>,
    pub operations: BTreeMap<&'static str, OpReport>,
    pub errors: BTreeMap<String, u64>,
    pub error_count: u64,
    pub setup_failed: u64,
    /// Idle mode: the most sockets held open at once.
    pub peak_open_sockets: u64,
    pub server: Option<ServerReport>,
    /// The load generator's own CPU time per successful operation, microseconds.
    pub client_cpu_us_per_op: Option<f64>,
    /// One OpenSSL P-256 verification, timed in this run (after the window).
    pub floor: Option<Floor>,
}

impl Report {
    pub fn new(
        options: &Options,
        recorder: &Recorder,
        window: Window,
        server: Option<ServerReport>,
        client_cpu: Option<Duration>,
        floor: Option<Floor>,
    ) -> Self {
        let secs = window.elapsed.as_secs_f64().max(1e-9);
        let (each, all) = recorder.histograms();
        let operations = each
            .iter()
            .map(|(op, h)| {
                let line = OpReport {
                    count: h.len(),
                    ops_per_sec: h.len() as f64 / secs,
                    latency_ms: Latency::of(h),
                };
                (op.name(), line)
            })
            .collect();
        let ops = all.len();
        let per_op = |d: Duration| (ops > 0).then(|| d.as_secs_f64() * 1e6 / ops as f64);
        let server = server.map(|mut s| {
            s.cpu_us_per_op = per_op(Duration::from_secs_f64(s.cpu_secs));
            s.cpu_per_op_over_floor = s
                .cpu_us_per_op
                .zip(floor)
                .map(|(us, f)| us / f.openssl_p256_verify_us);
            if window.peak_open_sockets > 0 {
                let grown = s.rss_peak_kib.saturating_sub(s.rss_start_kib);
                s.rss_per_socket_kib = Some(grown as f64 / window.peak_open_sockets as f64);
            }
            s
        });
        Report {
            mode: options.mode.name(),
            url: options.ceremony_url.clone(),
            clients: options.clients,
            rate: (options.rate > 0.0).then_some(options.rate),
            threads: options.threads,
            duration_secs: options.duration.as_secs_f64(),
            elapsed_secs: window.elapsed.as_secs_f64(),
            setup_secs: window.setup.as_secs_f64(),
            ops,
            ops_per_sec: ops as f64 / secs,
            latency_ms: (ops > 0).then(|| Latency::of(&all)),
            operations,
            error_count: recorder.errors().values().sum(),
            errors: recorder.errors().clone(),
            setup_failed: window.setup_failed,
            peak_open_sockets: window.peak_open_sockets,
            server,
            client_cpu_us_per_op: client_cpu.and_then(per_op),
            floor,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "wsauthn bench: {} against {}, {} clients{} on {} thread(s), {:.1} s measured \
             (setup {:.1} s)\n",
            self.mode,
            self.url,
            self.clients,
            self.rate
                .map_or(String::new(), |r| format!(" paced at {r} ops/s")),
            self.threads,
            self.elapsed_secs,
            self.setup_secs
        );
        let _ = writeln!(
            out,
            "{:<10} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9}",
            "operation", "count", "ops/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
        );
        let mut line = |name: &str, count: u64, rate: f64, l: &Latency| {
            let _ = writeln!(
                out,
                "{name:<10} {count:>9} {rate:>10.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                l.p50, l.p90, l.p99, l.max
            );
        };
        for (name, op) in &self.operations {
            line(name, op.count, op.ops_per_sec, &op.latency_ms);
        }
        if let (true, Some(all)) = (self.operations.len() > 1, &self.latency_ms) {
            line("all", self.ops, self.ops_per_sec, all);
        }
        if self.ops == 0 {
            let _ = writeln!(out, "(no operation succeeded)");
        }
        let _ = writeln!(out);
        if self.errors.is_empty() {
            let _ = writeln!(out, "errors: none");
        } else {
            let list: Vec<String> = self
                .errors
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            let _ = writeln!(
                out,
                "errors: {} ({}){}",
                self.error_count,
                list.join(", "),
                if self.setup_failed > 0 {
                    format!("; {} users failed their setup", self.setup_failed)
                } else {
                    String::new()
                }
            );
        }
        if self.peak_open_sockets > 0 {
            let _ = writeln!(out, "sockets held open at peak: {}", self.peak_open_sockets);
        }
        if let Some(s) = &self.server {
            let per_op = s
                .cpu_us_per_op
                .map_or(String::new(), |us| format!(" = {us:.1} µs per operation"));
            let _ = writeln!(
                out,
                "server (pid {}): CPU {:.2} s (user {:.2}, system {:.2}){per_op}",
                s.pid, s.cpu_secs, s.cpu_user_secs, s.cpu_system_secs
            );
            let marginal = s
                .rss_marginal_per_socket_kib
                .map_or(String::new(), |k| format!(" (marginal {k:.1} KiB)"));
            let per_socket = s.rss_per_socket_kib.map_or(String::new(), |k| {
                format!(", {k:.1} KiB per open socket{marginal}")
            });
            let _ = writeln!(
                out,
                "server memory: RSS {} at start, {} at peak (VmHWM {}){per_socket}",
                mib(s.rss_start_kib),
                mib(s.rss_peak_kib),
                mib(s.hwm_kib)
            );
        }
        if let Some(us) = self.client_cpu_us_per_op {
            let _ = writeln!(out, "load generator: {us:.1} µs CPU per operation");
        }
        match &self.floor {
            Some(f) => {
                let _ = writeln!(
                    out,
                    "floor: one OpenSSL P-256 verify = {:.1} µs of CPU ({:.0} verifies/s, \
                     timed after this run's window, {} clock)",
                    f.openssl_p256_verify_us, f.verifies_per_sec, f.clock
                );
            }
            None => {
                let _ = writeln!(out, "floor: not measured (OpenSSL P-256 verify failed)");
            }
        }
        match (
            &self.server,
            self.server.as_ref().and_then(|s| s.cpu_per_op_over_floor),
        ) {
            (_, Some(ratio)) => {
                let _ = writeln!(
                    out,
                    "server CPU per operation / floor = {ratio:.2} × one P-256 verify"
                );
            }
            (None, _) => {
                let _ = writeln!(
                    out,
                    "server CPU per operation / floor: needs --server-pid (a server on this machine)"
                );
            }
            (Some(_), None) => {
                let _ = writeln!(
                    out,
                    "server CPU per operation / floor: no operation or no floor"
                );
            }
        }
        out
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::marginal_kib_per_socket;

    #[test]
    fn the_marginal_cost_is_the_slope_while_sockets_open() {
        // 1,000 KiB held before; 16 KiB per socket; the plateau after the peak is left out, and
        // so is where the window began.
        let samples = [
            (0, 1_000),
            (100, 2_600),
            (250, 5_000),
            (400, 7_400),
            (400, 9_000),
        ];
        let slope = marginal_kib_per_socket(&samples).unwrap();
        assert!((slope - 16.0).abs() < 1e-9, "{slope}");
        // Noise around the line still gives its slope.
        let noisy = [
            (0, 1_010),
            (100, 2_590),
            (200, 4_210),
            (300, 5_790),
            (400, 7_400),
        ];
        let slope = marginal_kib_per_socket(&noisy).unwrap();
        assert!((slope - 15.96).abs() < 0.05, "{slope}");
    }

    #[test]
    fn too_few_samples_or_no_spread_give_no_figure() {
        assert_eq!(marginal_kib_per_socket(&[]), None);
        assert_eq!(marginal_kib_per_socket(&[(0, 1), (10, 200)]), None);
        assert_eq!(marginal_kib_per_socket(&[(5, 1), (5, 2), (5, 3)]), None);
    }
}

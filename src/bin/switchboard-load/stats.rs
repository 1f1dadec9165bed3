//! Measurements: CPU time of a process from schedstat, RSS, and a latency histogram.

use std::time::Instant;

/// CPU time (ns) of every thread of `pid`, from `/proc/PID/task/*/schedstat`.
pub fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(|t| t.ok())
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// CPU time (ns) of thread `tid` of this process, from `/proc/self/task/TID/schedstat`.
pub fn thread_cpu_ns(tid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Context switches (voluntary and not) of thread `tid` of this process so far.
pub fn ctx_switches(tid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/status"))
        .map(|s| {
            s.lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0)
}

pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Latencies in µs: exact buckets below 64 ms, one overflow bucket above.
pub struct Histogram {
    buckets: Vec<u64>,
    count: u64,
    max: u64,
}

const EXACT_US: usize = 65_536;

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: vec![0; EXACT_US + 1],
            count: 0,
            max: 0,
        }
    }
}

impl Histogram {
    pub fn record(&mut self, us: u64) {
        self.buckets[(us as usize).min(EXACT_US)] += 1;
        self.count += 1;
        self.max = self.max.max(us);
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let want = ((self.count as f64) * q).ceil() as u64;
        let mut seen = 0;
        for (us, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= want {
                return us as u64;
            }
        }
        self.max
    }
}

/// A measured window: wall time and both processes' CPU.
pub struct Window {
    start: Instant,
    server_cpu: u64,
    own_cpu: u64,
    server: u32,
}

pub struct Measured {
    pub secs: f64,
    pub server_cpu_us: f64,
    pub own_cpu_us: f64,
}

impl Window {
    pub fn start(server: u32) -> Window {
        Window {
            start: Instant::now(),
            server_cpu: cpu_ns(server),
            own_cpu: cpu_ns(std::process::id()),
            server,
        }
    }

    pub fn finish(&self) -> Measured {
        Measured {
            secs: self.start.elapsed().as_secs_f64(),
            server_cpu_us: (cpu_ns(self.server).saturating_sub(self.server_cpu)) as f64 / 1e3,
            own_cpu_us: (cpu_ns(std::process::id()).saturating_sub(self.own_cpu)) as f64 / 1e3,
        }
    }
}

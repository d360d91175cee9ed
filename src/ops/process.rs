//! The process's own resource use on `/metrics`, read at each scrape: the standard `process_*`
//! metrics every Prometheus client library exports (the names dashboards and the
//! `kube-prometheus` rules expect), and, in a jemalloc build, the allocator's live and
//! resident bytes, which say how much of the resident memory is live heap and how much pages
//! the allocator still holds. Nothing here is a secret: sizes and counts only.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// `/proc` counts CPU time in `USER_HZ` ticks, which the kernel's ABI fixes at 100 on every
/// architecture Linux exports to user space (`sysconf(_SC_CLK_TCK)`, which would need
/// `unsafe` here, returns the same).
const USER_HZ: f64 = 100.0;

/// One reading of `/proc/self`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProcessSample {
    /// User plus system CPU time, seconds.
    pub cpu_seconds: f64,
    /// `VmRSS`, bytes.
    pub resident_bytes: u64,
    /// `VmSize`, bytes.
    pub virtual_bytes: u64,
    /// Start time, seconds since the Unix epoch.
    pub start_time_seconds: f64,
    /// `Threads`.
    pub threads: u64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// The soft limit on open file descriptors (`None` when unlimited).
    pub max_fds: Option<u64>,
}

/// A `kB` line of `/proc/<pid>/status` in bytes (`Threads:` and other plain counts as is).
/// Also read by the benchmarks, for the controller's process.
pub fn status_value(status: &str, key: &str) -> Option<u64> {
    let rest = status.lines().find_map(|l| l.strip_prefix(key))?;
    let rest = rest.trim();
    match rest.strip_suffix("kB") {
        Some(kib) => kib.trim().parse::<u64>().ok().map(|v| v * 1024),
        None => rest.parse().ok(),
    }
}

/// utime + stime (seconds) and the start time (ticks after boot) from `/proc/<pid>/stat`.
/// The command name may hold spaces and parentheses, so fields count from its last `)`.
/// Also read by the benchmarks, for the controller's process.
pub fn stat_times(stat: &str) -> Option<(f64, f64)> {
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, utime 14, stime 15, starttime 22.
    let field = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
    let cpu = (field(14)? + field(15)?) / USER_HZ;
    Some((cpu, field(22)?))
}

/// `btime` of `/proc/stat`: boot time, seconds since the epoch.
fn boot_time(stat: &str) -> Option<f64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// The soft "Max open files" of `/proc/<pid>/limits`; `None` when unlimited or unreadable.
fn max_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

impl ProcessSample {
    /// Builds a sample from the texts of `/proc/self/{stat,status,limits}`, `/proc/stat` and
    /// the count of `/proc/self/fd`; `None` when `stat` or `status` cannot be parsed.
    pub fn parse(
        self_stat: &str,
        self_status: &str,
        self_limits: &str,
        proc_stat: &str,
        open_fds: u64,
    ) -> Option<Self> {
        let (cpu_seconds, start_ticks) = stat_times(self_stat)?;
        Some(Self {
            cpu_seconds,
            resident_bytes: status_value(self_status, "VmRSS:")?,
            virtual_bytes: status_value(self_status, "VmSize:").unwrap_or(0),
            start_time_seconds: boot_time(proc_stat).map_or(0.0, |b| b + start_ticks / USER_HZ),
            threads: status_value(self_status, "Threads:").unwrap_or(0),
            open_fds,
            max_fds: max_open_files(self_limits),
        })
    }

    /// Reads this process's `/proc`; `None` where there is none (not Linux).
    pub fn read() -> Option<Self> {
        let read = |p: &str| std::fs::read_to_string(p).ok();
        let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
        Self::parse(
            &read("/proc/self/stat")?,
            &read("/proc/self/status")?,
            &read("/proc/self/limits").unwrap_or_default(),
            &read("/proc/stat").unwrap_or_default(),
            fds,
        )
    }
}

/// The allocator's own counters (jemalloc `stats.allocated` and `stats.resident`, refreshed
/// at each read); `None` in a build without jemalloc.
#[derive(Clone, Copy, Debug)]
pub struct AllocatorSample {
    /// Bytes the program holds (live heap).
    pub allocated_bytes: u64,
    /// Bytes of physical memory the allocator holds: live heap, its metadata, and freed pages
    /// not yet returned to the kernel.
    pub resident_bytes: u64,
}

impl AllocatorSample {
    /// Reads jemalloc's counters.
    #[cfg(feature = "jemalloc")]
    pub fn read() -> Option<Self> {
        use tikv_jemalloc_ctl::{epoch, stats};
        epoch::advance().ok()?;
        Some(Self {
            allocated_bytes: stats::allocated::read().ok()? as u64,
            resident_bytes: stats::resident::read().ok()? as u64,
        })
    }

    /// No jemalloc in this build.
    #[cfg(not(feature = "jemalloc"))]
    pub fn read() -> Option<Self> {
        None
    }
}

/// Encodes [`ProcessSample::read`] and [`AllocatorSample::read`] at each scrape. Register it on
/// a registry without a prefix: the `process_*` names are the standard ones, the allocator's
/// carry the operator's prefix themselves.
#[derive(Debug, Default)]
pub struct ProcessCollector;

fn gauge<T>(encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: T) -> fmt::Result
where
    ConstGauge<T>: EncodeMetric,
{
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        if let Some(p) = ProcessSample::read() {
            let cpu = ConstCounter::new(p.cpu_seconds);
            cpu.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                cpu.metric_type(),
            )?)?;
            let e = &mut encoder;
            gauge(
                e,
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                p.resident_bytes as i64,
            )?;
            gauge(
                e,
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                p.virtual_bytes as i64,
            )?;
            gauge(
                e,
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch in seconds",
                p.start_time_seconds,
            )?;
            gauge(
                e,
                "process_threads",
                "Number of OS threads in the process",
                p.threads as i64,
            )?;
            gauge(
                e,
                "process_open_fds",
                "Number of open file descriptors",
                p.open_fds as i64,
            )?;
            if let Some(max) = p.max_fds {
                gauge(
                    e,
                    "process_max_fds",
                    "Maximum number of open file descriptors",
                    max as i64,
                )?;
            }
        }
        if let Some(a) = AllocatorSample::read() {
            let e = &mut encoder;
            gauge(
                e,
                "alicloud_bgp_operator_allocator_allocated_bytes",
                "Heap bytes the operator holds (jemalloc stats.allocated)",
                a.allocated_bytes as i64,
            )?;
            gauge(
                e,
                "alicloud_bgp_operator_allocator_resident_bytes",
                "Physical memory the allocator holds: live heap, metadata, and freed pages not yet returned (jemalloc stats.resident)",
                a.resident_bytes as i64,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (alicloud (bgp) op) S 1 4242 4242 0 -1 4194560 2961 0 0 0 150 25 0 0 20 0 7 0 12345 123456789 4321 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0";
    const STATUS: &str = "Name:\talicloud-bgp-op\nVmSize:\t  1000 kB\nVmRSS:\t    2048 kB\nRssAnon:\t  1024 kB\nThreads:\t7\n";
    const LIMITS: &str = "Limit                     Soft Limit           Hard Limit           Units     \nMax cpu time              unlimited            unlimited            seconds   \nMax open files            1024                 1048576              files     \n";

    #[test]
    fn parses_proc_texts() {
        let s = ProcessSample::parse(STAT, STATUS, LIMITS, "cpu 1 2 3\nbtime 1700000000\n", 9)
            .expect("parses");
        // Ticks of 1/100 s: utime 150 + stime 25, started 12,345 ticks after boot.
        assert!((s.cpu_seconds - 1.75).abs() < 1e-9, "{s:?}");
        assert!(
            (s.start_time_seconds - 1_700_000_123.45).abs() < 1e-6,
            "{s:?}"
        );
        assert_eq!(
            (
                s.resident_bytes,
                s.virtual_bytes,
                s.threads,
                s.open_fds,
                s.max_fds
            ),
            (2048 * 1024, 1000 * 1024, 7, 9, Some(1024))
        );
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(max_open_files(unlimited), None);
        assert_eq!(ProcessSample::parse("garbage", STATUS, "", "", 0), None);
        assert_eq!(ProcessSample::parse(STAT, "Name:\tx\n", "", "", 0), None);
    }

    #[test]
    fn this_process_is_read_and_encoded() {
        let s = ProcessSample::read().expect("/proc/self is readable on Linux");
        assert!(
            s.resident_bytes > 0 && s.threads >= 1 && s.open_fds >= 1,
            "{s:?}"
        );
        let now = jiff::Timestamp::now().as_second() as f64;
        assert!(
            s.start_time_seconds > now - 24.0 * 3600.0 && s.start_time_seconds <= now + 1.0,
            "start time {} vs now {now}",
            s.start_time_seconds
        );
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(ProcessCollector));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        for needle in [
            "# TYPE process_cpu_seconds counter\nprocess_cpu_seconds_total ",
            "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes ",
            "process_start_time_seconds ",
            "process_threads ",
            "process_open_fds ",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }
}

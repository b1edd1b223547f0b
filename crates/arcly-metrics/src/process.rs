//! [`ProcessCollector`]: the process's own CPU time and resident memory,
//! read from `/proc/self` at scrape time, under the names the Prometheus
//! client libraries use (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`), so dashboards written for any
//! Prometheus-instrumented process work unchanged.
//!
//! Where `/proc` is absent (not Linux) the collector writes nothing.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

/// `/proc` reports CPU times in clock ticks of `USER_HZ`, 100 on every
/// Linux ABI (`man 5 proc`).
const USER_HZ: f64 = 100.0;

/// Longest `/proc/self` file read (both are a few hundred bytes).
const MAX_PROC_FILE: usize = 64 * 1024;

/// Registers nothing of its own: add it with
/// `Registry::register_collector` at the registry's root (no prefix).
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessCollector;

fn read(path: &str) -> Option<String> {
    let s = std::fs::read_to_string(path).ok()?;
    (s.len() <= MAX_PROC_FILE).then_some(s)
}

/// User + system CPU seconds from `/proc/self/stat` (fields 14 and 15,
/// counted after the command name, which may contain spaces).
pub fn cpu_seconds(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace().skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

/// Resident bytes from `/proc/self/status` (`VmRSS: <n> kB`).
pub fn resident_bytes(status: &str) -> Option<i64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        if let Some(cpu) = read("/proc/self/stat").as_deref().and_then(cpu_seconds) {
            let e = encoder.encode_descriptor(
                "process_cpu",
                "Total user and system CPU time spent.",
                Some(&Unit::Seconds),
                MetricType::Counter,
            )?;
            ConstCounter::new(cpu).encode(e)?;
        }
        if let Some(rss) = read("/proc/self/status")
            .as_deref()
            .and_then(resident_bytes)
        {
            let e = encoder.encode_descriptor(
                "process_resident_memory",
                "Resident memory size.",
                Some(&Unit::Bytes),
                MetricType::Gauge,
            )?;
            ConstGauge::new(rss).encode(e)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_are_read() {
        let stat = "1234 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 250 150 0 0 20 0";
        assert_eq!(cpu_seconds(stat), Some(4.0));
        assert_eq!(cpu_seconds("garbage"), None);
        assert_eq!(cpu_seconds("1 (x) S 1"), None);
        let status = "Name:\tarcly\nVmRSS:\t   2048 kB\n";
        assert_eq!(resident_bytes(status), Some(2 << 20));
        assert_eq!(resident_bytes("VmRSS: x kB"), None);
    }

    #[test]
    fn scraped_under_the_usual_names() {
        let mut r = prometheus_client::registry::Registry::default();
        r.register_collector(Box::new(ProcessCollector));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &r).unwrap();
        if std::path::Path::new("/proc/self/stat").exists() {
            assert!(out.contains("process_cpu_seconds_total "), "{out}");
            assert!(out.contains("process_resident_memory_bytes "), "{out}");
        }
    }
}

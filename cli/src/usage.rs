//! The process's CPU time and peak resident memory, for the `perf` commands' summaries
//! (`getrusage(RUSAGE_SELF)`, POSIX; on other systems nothing is printed).

use std::time::Duration;

/// CPU time (user + system) of this process so far, if the system reports it.
pub(crate) fn cpu_time() -> Option<Duration> {
    #[cfg(unix)]
    {
        use nix::sys::resource::{UsageWho, getrusage};
        let u = getrusage(UsageWho::RUSAGE_SELF).ok()?;
        let tv = |t: nix::sys::time::TimeVal| {
            Duration::from_secs(t.tv_sec().max(0) as u64)
                + Duration::from_micros(t.tv_usec().max(0) as u64)
        };
        Some(tv(u.user_time()) + tv(u.system_time()))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The largest resident set this process has had, in bytes, if the system reports it.
pub(crate) fn peak_rss() -> Option<u64> {
    #[cfg(unix)]
    {
        use nix::sys::resource::{UsageWho, getrusage};
        let u = getrusage(UsageWho::RUSAGE_SELF).ok()?;
        let max = u.max_rss().max(0) as u64;
        // Linux and the BSDs report KiB, macOS bytes.
        Some(if cfg!(target_os = "macos") {
            max
        } else {
            max * 1024
        })
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// "CPU 0.52 µs/record (1.23 s), peak RSS 48.1 MB" for `records` records over the CPU time
/// since `cpu_at_start`; empty where the system reports nothing.
pub(crate) fn summary(records: u64, cpu_at_start: Option<Duration>) -> String {
    let mut parts = Vec::new();
    if let (Some(start), Some(now)) = (cpu_at_start, cpu_time()) {
        let cpu = now.saturating_sub(start);
        let per = if records == 0 {
            0.0
        } else {
            cpu.as_secs_f64() * 1e6 / records as f64
        };
        parts.push(format!(
            "process CPU {per:.2} µs/record ({:.2} s)",
            cpu.as_secs_f64()
        ));
    }
    if let Some(rss) = peak_rss() {
        parts.push(format!("peak RSS {:.1} MB", rss as f64 / 1e6));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_moves_with_work_and_rss_is_reported() {
        #[cfg(unix)]
        {
            let start = cpu_time().expect("getrusage");
            let mut x = 0u64;
            for i in 0..30_000_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            std::hint::black_box(x);
            assert!(cpu_time().expect("getrusage") > start);
            // A test process holds more than 1 MB.
            assert!(peak_rss().expect("getrusage") > 1_000_000);
            let line = summary(1_000, Some(start));
            assert!(
                line.contains("µs/record") && line.contains("peak RSS"),
                "{line}"
            );
        }
    }
}

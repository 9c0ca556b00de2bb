//! Wall time, CPU time and peak memory of a timed phase, and the `RESULT` line that reports
//! them.
//!
//! CPU time comes from `getrusage(RUSAGE_SELF)`: user and system time of every thread of the
//! process (the application's, tokio's workers, librdkafka's broker and background threads),
//! read just before the phase and again at its end, and subtracted. Peak RSS is `ru_maxrss`
//! at the end (KiB on Linux): the largest resident set the process ever had, setup included.

use std::time::{Duration, Instant};

/// One `getrusage(RUSAGE_SELF)` reading.
#[derive(Clone, Copy, Debug)]
struct Usage {
    user: Duration,
    sys: Duration,
    max_rss_kib: u64,
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
}

fn usage_now() -> Usage {
    // SAFETY: `rusage` is plain old data, valid when zeroed; getrusage writes it in full and
    // cannot fail for RUSAGE_SELF with a valid pointer.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    Usage {
        user: timeval(ru.ru_utime),
        sys: timeval(ru.ru_stime),
        max_rss_kib: ru.ru_maxrss.max(0) as u64,
    }
}

/// A phase being timed: started by [`Meter::start`], ended by [`Meter::finish`].
pub struct Meter {
    wall: Instant,
    usage: Usage,
}

/// What a finished phase cost.
#[derive(Clone, Copy, Debug)]
pub struct Measurement {
    /// Wall-clock time of the phase.
    pub elapsed: Duration,
    /// User CPU time of the whole process during the phase.
    pub cpu_user: Duration,
    /// System CPU time of the whole process during the phase.
    pub cpu_sys: Duration,
    /// Peak resident set size of the process so far, in KiB.
    pub peak_rss_kib: u64,
}

impl Meter {
    /// Starts the clock and takes the CPU reading the phase's cost is counted from.
    pub fn start() -> Meter {
        let usage = usage_now();
        Meter {
            wall: Instant::now(),
            usage,
        }
    }

    /// Stops the clock.
    pub fn finish(self) -> Measurement {
        let elapsed = self.wall.elapsed();
        let end = usage_now();
        Measurement {
            elapsed,
            cpu_user: end.user.saturating_sub(self.usage.user),
            cpu_sys: end.sys.saturating_sub(self.usage.sys),
            peak_rss_kib: end.max_rss_kib,
        }
    }
}

/// Labels of a `RESULT` line.
pub struct Labels<'a> {
    /// `kafkawire` or `rdkafka`.
    pub client: &'a str,
    /// `produce` or `consume`.
    pub phase: &'a str,
    /// Partitions of the topic (from the broker's metadata).
    pub partitions: usize,
    /// Records produced or consumed in the phase.
    pub records: u64,
    /// Bytes per value.
    pub value_size: usize,
}

/// The one machine-readable line a run prints on stdout, `key=value` pairs separated by
/// spaces after the word `RESULT`.
pub fn result_line(l: &Labels<'_>, m: &Measurement) -> String {
    let secs = m.elapsed.as_secs_f64().max(1e-9);
    let cpu = (m.cpu_user + m.cpu_sys).as_secs_f64();
    let records = l.records.max(1) as f64;
    format!(
        "RESULT client={} phase={} partitions={} records={} value_size={} secs={:.3} \
         records_per_s={:.0} value_mb_per_s={:.2} cpu_user_s={:.3} cpu_sys_s={:.3} \
         cpu_us_per_record={:.3} cpu_util={:.2} peak_rss_mb={:.1}",
        l.client,
        l.phase,
        l.partitions,
        l.records,
        l.value_size,
        secs,
        l.records as f64 / secs,
        l.records as f64 * l.value_size as f64 / secs / (1024.0 * 1024.0),
        m.cpu_user.as_secs_f64(),
        m.cpu_sys.as_secs_f64(),
        cpu * 1e6 / records,
        cpu / secs,
        m.peak_rss_kib as f64 / 1024.0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_line_has_every_field() {
        let m = Measurement {
            elapsed: Duration::from_secs(2),
            cpu_user: Duration::from_millis(1500),
            cpu_sys: Duration::from_millis(500),
            peak_rss_kib: 10 * 1024,
        };
        let l = Labels {
            client: "kafkawire",
            phase: "produce",
            partitions: 4,
            records: 1_000_000,
            value_size: 100,
        };
        assert_eq!(
            result_line(&l, &m),
            "RESULT client=kafkawire phase=produce partitions=4 records=1000000 value_size=100 \
             secs=2.000 records_per_s=500000 value_mb_per_s=47.68 cpu_user_s=1.500 \
             cpu_sys_s=0.500 cpu_us_per_record=2.000 cpu_util=1.00 peak_rss_mb=10.0"
        );
    }

    #[test]
    fn cpu_time_only_grows() {
        let meter = Meter::start();
        let mut x = 0u64;
        for i in 0..1_000_000u64 {
            x = x.wrapping_add(std::hint::black_box(i));
        }
        std::hint::black_box(x);
        let m = meter.finish();
        assert!(m.peak_rss_kib > 0);
        assert!(m.elapsed > Duration::ZERO);
    }
}

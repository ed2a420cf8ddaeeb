//! The load generator's own CPU time (user and system, all threads), so that a report shows
//! whether the generator or the host it loads was the limit.

use std::time::Duration;

/// CPU time used by this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTime {
    /// In user mode.
    pub user: Duration,
    /// In the kernel on the process's behalf (network stack, system calls).
    pub system: Duration,
}

impl CpuTime {
    /// This process's CPU time so far (`getrusage(RUSAGE_SELF)`); `None` where the system
    /// does not tell.
    #[cfg(unix)]
    pub fn now() -> Option<CpuTime> {
        use nix::sys::resource::{getrusage, UsageWho};
        use nix::sys::time::TimeValLike;
        let usage = getrusage(UsageWho::RUSAGE_SELF).ok()?;
        let micros = |t: nix::sys::time::TimeVal| {
            Duration::from_micros(u64::try_from(t.num_microseconds()).unwrap_or(0))
        };
        Some(CpuTime {
            user: micros(usage.user_time()),
            system: micros(usage.system_time()),
        })
    }

    /// This process's CPU time so far; `None` where the system does not tell.
    #[cfg(not(unix))]
    pub fn now() -> Option<CpuTime> {
        None
    }

    /// The CPU time used between `earlier` and `self`.
    pub fn since(&self, earlier: &CpuTime) -> CpuTime {
        CpuTime {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }

    /// User and system time together.
    pub fn total(&self) -> Duration {
        self.user + self.system
    }
}

#[cfg(test)]
mod tests {
    use super::CpuTime;
    use std::time::{Duration, Instant};

    #[cfg(unix)]
    #[test]
    fn busy_work_shows_as_cpu_time() {
        let before = CpuTime::now().expect("getrusage works here");
        // Spin until the clock shows at least 30 ms of CPU time used (bounded by wall time).
        let started = Instant::now();
        let mut x = 0u64;
        while CpuTime::now().unwrap().since(&before).total() < Duration::from_millis(30)
            && started.elapsed() < Duration::from_secs(5)
        {
            for i in 0..10_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
        }
        std::hint::black_box(x);
        let used = CpuTime::now().unwrap().since(&before);
        assert!(used.total() >= Duration::from_millis(30), "{used:?}");
        assert!(used.user > Duration::ZERO);
        assert!(used.total() <= started.elapsed() + Duration::from_millis(20));
    }

    #[test]
    fn since_subtracts_and_never_goes_negative() {
        let a = CpuTime {
            user: Duration::from_millis(300),
            system: Duration::from_millis(100),
        };
        let b = CpuTime {
            user: Duration::from_millis(500),
            system: Duration::from_millis(400),
        };
        let d = b.since(&a);
        assert_eq!(d.user, Duration::from_millis(200));
        assert_eq!(d.system, Duration::from_millis(300));
        assert_eq!(d.total(), Duration::from_millis(500));
        assert_eq!(a.since(&b), CpuTime::default());
    }
}

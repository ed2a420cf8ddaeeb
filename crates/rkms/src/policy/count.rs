//! The client count a host reports (PROTOCOL.md §9.2).

/// How the reported count is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountMode {
    /// Twice the request's required count (a fully charged genuine host), 1 when it asks for 0.
    Auto,
    /// A fixed count, adjusted per request as py-kms does (see [`current_count`]).
    Fixed(u32),
}

/// The count to report for a request needing `required` clients.
///
/// `Auto`: 2·N (1 for N = 0). `Fixed(c)`: c below N gives N + 1 (a client must never see a
/// count too low to activate while the host claims to serve it), c from N to 2N−1 is reported
/// as is, c at or above 2N is capped at 2N like a genuine host.
pub fn current_count(mode: CountMode, required: u32) -> u32 {
    let n = u64::from(required);
    let charged = if n == 0 { 1 } else { 2 * n };
    let count = match mode {
        CountMode::Auto => charged,
        CountMode::Fixed(c) => {
            let c = u64::from(c);
            if c < n {
                n + 1
            } else {
                c.min(charged)
            }
        }
    };
    u32::try_from(count).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_twice_the_threshold() {
        assert_eq!(current_count(CountMode::Auto, 25), 50);
        assert_eq!(current_count(CountMode::Auto, 5), 10);
        assert_eq!(current_count(CountMode::Auto, 0), 1);
        assert_eq!(current_count(CountMode::Auto, 1000), 2000);
    }

    #[test]
    fn fixed_follows_pykms_rules() {
        assert_eq!(current_count(CountMode::Fixed(10), 25), 26);
        assert_eq!(current_count(CountMode::Fixed(30), 25), 30);
        assert_eq!(current_count(CountMode::Fixed(500), 25), 50);
        assert_eq!(current_count(CountMode::Fixed(7), 5), 7);
        assert_eq!(current_count(CountMode::Fixed(3), 0), 1);
    }
}

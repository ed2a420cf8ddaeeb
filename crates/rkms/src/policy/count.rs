//! The client count a host reports (PROTOCOL.md §9.2).

use rkms_catalog::Catalog;

/// How the reported count is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountMode {
    /// Twice the request's required count (a fully charged genuine host), 1 when it asks for 0.
    Auto,
    /// A fixed count, adjusted per request (see [`current_count`]).
    Fixed(u32),
    /// Distinct clients of the last 30 days per KMS ID pool, capped at twice the threshold,
    /// as a genuine host counts (`--client-count auto`).
    Genuine {
        /// Report only real clients (`--start empty`); else never less than a charged host.
        start_empty: bool,
    },
}

/// The count a genuine host reports: `distinct` clients capped at twice the threshold
/// (`threshold` is the KMS ID's, or the request's own when the ID is unknown). Charged hosts
/// report at least what [`CountMode::Auto`] would.
pub fn genuine_count(distinct: u64, threshold: u32, required: u32, start_empty: bool) -> u32 {
    let cap = 2 * u64::from(threshold.max(required).max(1));
    let real = distinct.min(cap);
    let count = if start_empty {
        real
    } else {
        real.max(u64::from(current_count(CountMode::Auto, required)))
    };
    u32::try_from(count).unwrap_or(u32::MAX)
}

/// The count to report for a request needing `required` clients.
///
/// `Auto`: 2·N (1 for N = 0). `Fixed(c)`, with py-kms' meaning: c below N reports N + 1 (the
/// host claims to serve the client, so it must not report a count too low to activate), c from
/// N to 2N reports c, above 2N it is capped at 2N as on a genuine host, which stops counting at
/// twice the threshold.
pub fn current_count(mode: CountMode, required: u32) -> u32 {
    let n = u64::from(required);
    let charged = if n == 0 { 1 } else { 2 * n };
    let count = match mode {
        CountMode::Auto | CountMode::Genuine { .. } => charged,
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

/// Start-up warnings explaining how a fixed count will be adjusted for the catalog's thresholds.
pub fn count_warnings(mode: CountMode, catalog: &Catalog) -> Vec<String> {
    let CountMode::Fixed(c) = mode else {
        return Vec::new();
    };
    let mut thresholds: Vec<u32> = catalog.kms_items().map(|k| k.ncount_policy).collect();
    thresholds.sort_unstable();
    thresholds.dedup();
    let mut out = Vec::new();
    let above: Vec<String> = thresholds
        .iter()
        .filter(|&&n| c > 2 * n)
        .map(|n| format!("{} (threshold {n})", 2 * n))
        .collect();
    if !above.is_empty() {
        out.push(format!(
            "--client-count {c} is more than a genuine host reports: it stops counting at twice a product's threshold, \
             so clients are told at most {}",
            above.join(", ")
        ));
    }
    let below: Vec<String> = thresholds
        .iter()
        .filter(|&&n| c < n)
        .map(|n| format!("{} (threshold {n})", n + 1))
        .collect();
    if !below.is_empty() {
        out.push(format!(
            "--client-count {c} is below some products' thresholds; those clients are told {} so they activate",
            below.join(", ")
        ));
    }
    out
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

    #[test]
    fn genuine_counts() {
        assert_eq!(genuine_count(3, 25, 25, true), 3);
        assert_eq!(
            genuine_count(300, 25, 25, true),
            50,
            "capped at twice the threshold"
        );
        assert_eq!(
            genuine_count(3, 25, 25, false),
            50,
            "charged until real clients fill the pool"
        );
        assert_eq!(genuine_count(3, 5, 5, true), 3);
    }

    #[test]
    fn warnings_explain_the_clamp() {
        let c = Catalog::builtin();
        assert!(count_warnings(CountMode::Auto, c).is_empty());
        assert!(count_warnings(CountMode::Fixed(10), c)
            .iter()
            .any(|w| w.contains("26 (threshold 25)")));
        let w = count_warnings(CountMode::Fixed(100), c);
        assert!(
            w[0].contains("50 (threshold 25)") && w[0].contains("10 (threshold 5)"),
            "{w:?}"
        );
        assert!(count_warnings(CountMode::Fixed(30), c)
            .iter()
            .any(|w| w.contains("10 (threshold 5)")));
    }
}

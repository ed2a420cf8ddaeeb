//! RFC 2782 ordering of SRV targets: ascending priority, weighted random order within one.

use rand::seq::SliceRandom;
use rand::{Rng, RngCore};

use super::SrvTarget;

/// Orders SRV targets the way a client should try them (RFC 2782).
///
/// Priorities ascend. Within one priority, targets with a non-zero weight are picked by weighted
/// random selection without replacement (a target's chance of each next place is its weight over
/// the weights still in play); weight-0 targets follow them, in random order among themselves.
pub fn order_targets(targets: Vec<SrvTarget>, rng: &mut dyn RngCore) -> Vec<SrvTarget> {
    let mut targets = targets;
    targets.sort_by_key(|t| t.priority);
    let mut out = Vec::with_capacity(targets.len());
    let mut rest = targets.into_iter().peekable();
    while let Some(first) = rest.next() {
        let mut group = vec![first];
        while let Some(next) = rest.next_if(|t| t.priority == group[0].priority) {
            group.push(next);
        }
        order_group(group, rng, &mut out);
    }
    out
}

/// Appends one priority group to `out` in weighted random order.
fn order_group(group: Vec<SrvTarget>, rng: &mut dyn RngCore, out: &mut Vec<SrvTarget>) {
    let (mut weighted, mut zero): (Vec<_>, Vec<_>) = group.into_iter().partition(|t| t.weight > 0);
    while !weighted.is_empty() {
        let total: u64 = weighted.iter().map(|t| u64::from(t.weight)).sum();
        let mut pick = rng.gen_range(0..total);
        let index = weighted
            .iter()
            .position(|t| {
                let w = u64::from(t.weight);
                if pick < w {
                    true
                } else {
                    pick -= w;
                    false
                }
            })
            .unwrap_or(weighted.len() - 1);
        out.push(weighted.remove(index));
    }
    zero.shuffle(rng);
    out.extend(zero);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn t(priority: u16, weight: u16, host: &str) -> SrvTarget {
        SrvTarget {
            priority,
            weight,
            port: 1688,
            host: host.to_string(),
        }
    }

    fn first_place_share(targets: &[SrvTarget], host: &str, draws: u32, seed: u64) -> f64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let hits = (0..draws)
            .filter(|_| order_targets(targets.to_vec(), &mut rng)[0].host == host)
            .count();
        hits as f64 / f64::from(draws)
    }

    #[test]
    fn weights_90_10_give_about_90_percent_first_places() {
        let targets = [t(0, 90, "heavy"), t(0, 10, "light")];
        let share = first_place_share(&targets, "heavy", 10_000, 2782);
        assert!((share - 0.90).abs() < 0.015, "share {share}");
    }

    #[test]
    fn weights_are_shares_among_three() {
        let targets = [t(5, 60, "a"), t(5, 30, "b"), t(5, 10, "c")];
        for (host, expected) in [("a", 0.6), ("b", 0.3), ("c", 0.1)] {
            let share = first_place_share(&targets, host, 10_000, 7);
            assert!((share - expected).abs() < 0.02, "{host}: {share}");
        }
    }

    #[test]
    fn second_place_follows_remaining_weights() {
        // P(b second) = P(a first)·(30/40) + P(c first)·(30/90) = 0.6·0.75 + 0.1·(1/3) ≈ 0.4833
        let targets = [t(0, 60, "a"), t(0, 30, "b"), t(0, 10, "c")];
        let mut rng = StdRng::seed_from_u64(11);
        let hits = (0..10_000)
            .filter(|_| order_targets(targets.to_vec(), &mut rng)[1].host == "b")
            .count();
        let share = hits as f64 / 10_000.0;
        assert!((share - 0.4833).abs() < 0.02, "share {share}");
    }

    #[test]
    fn priorities_ascend_whatever_the_weights() {
        let targets = vec![
            t(20, 1, "p20"),
            t(10, 0, "p10-zero"),
            t(0, 0, "p0-zero"),
            t(10, 65535, "p10-heavy"),
            t(0, 5, "p0"),
        ];
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..200 {
            let ordered = order_targets(targets.clone(), &mut rng);
            let hosts: Vec<_> = ordered.iter().map(|t| t.host.as_str()).collect();
            assert_eq!(hosts, ["p0", "p0-zero", "p10-heavy", "p10-zero", "p20"]);
        }
    }

    #[test]
    fn zero_weights_go_last_in_random_order() {
        let targets = vec![t(0, 0, "z1"), t(0, 0, "z2"), t(0, 1, "w")];
        let mut rng = StdRng::seed_from_u64(3);
        let mut z1_first = 0;
        for _ in 0..2_000 {
            let ordered = order_targets(targets.clone(), &mut rng);
            assert_eq!(ordered[0].host, "w");
            if ordered[1].host == "z1" {
                z1_first += 1;
            }
        }
        assert!(
            (800..1_200).contains(&z1_first),
            "z1 before z2 {z1_first} times"
        );
    }

    #[test]
    fn keeps_every_target_and_handles_empty_input() {
        let mut rng = StdRng::seed_from_u64(5);
        assert!(order_targets(Vec::new(), &mut rng).is_empty());
        let targets: Vec<_> = (0..50u16)
            .map(|i| t(i % 3, i % 4, &format!("h{i}")))
            .collect();
        let mut ordered = order_targets(targets.clone(), &mut rng);
        assert!(ordered.windows(2).all(|w| w[0].priority <= w[1].priority));
        ordered.sort_by(|a, b| a.host.cmp(&b.host));
        let mut expected = targets;
        expected.sort_by(|a, b| a.host.cmp(&b.host));
        assert_eq!(ordered, expected);
    }
}

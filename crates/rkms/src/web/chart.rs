//! The overview's chart, drawn on the server as inline SVG: requests per day over the last
//! [`CHART_DAYS`] days, stacked by product family, refusals on top. Colours come from the
//! stylesheet (classes `s-<series>`), so it follows the light or dark theme.

use std::fmt::Write as _;

use rkms_store::SECONDS_PER_DAY;

use super::format;
use super::stats::{DayFamily, CHART_DAYS};

/// The stacked series, bottom to top: (CSS class suffix, legend label).
pub const SERIES: [(&str, &str); 5] = [
    ("windows-client", "Windows client"),
    ("windows-server", "Windows Server"),
    ("office", "Office"),
    ("unknown", "Other"),
    ("refused", "Refused"),
];

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 26.0;

/// The smallest "nice" axis maximum (1, 2 or 5 × 10ⁿ, times the tick count) at least `max`,
/// and its tick step.
fn axis(max: u64) -> (u64, u64) {
    let max = max.max(1);
    let mut magnitude = 1u64;
    loop {
        for step in [magnitude, 2 * magnitude, 5 * magnitude] {
            if step.saturating_mul(5) >= max {
                let ticks = max.div_ceil(step);
                return (ticks * step, step);
            }
        }
        magnitude = magnitude.saturating_mul(10);
    }
}

/// The chart as an `<svg>` element, for days ending with the UTC day starting at `today`.
pub fn svg(by_day: &[DayFamily], today: i64) -> String {
    let first = today - (CHART_DAYS - 1) * SECONDS_PER_DAY;
    let days = usize::try_from(CHART_DAYS).unwrap_or(30);
    // values[day][series]
    let mut values = vec![[0u64; SERIES.len()]; days];
    for d in by_day {
        let Ok(i) = usize::try_from((d.day_unix - first) / SECONDS_PER_DAY) else {
            continue;
        };
        let Some(row) = values.get_mut(i) else {
            continue;
        };
        let s = SERIES
            .iter()
            .position(|(key, _)| *key == d.family)
            .unwrap_or(3);
        row[s] += d.activated;
        row[SERIES.len() - 1] += d.refused;
    }
    let peak = values
        .iter()
        .map(|r| r.iter().sum::<u64>())
        .max()
        .unwrap_or(0);
    let (top, step) = axis(peak);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = plot_w / days as f64;
    let bar = (slot * 0.72).max(1.0);
    let y = |v: u64| TOP + plot_h - plot_h * v as f64 / top as f64;

    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="Requests per day over the last {CHART_DAYS} days by product family" xmlns="http://www.w3.org/2000/svg">"#
    );
    let mut tick = 0;
    while tick <= top {
        let ty = y(tick);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{LEFT}" x2="{}" y1="{ty:.1}" y2="{ty:.1}"/><text class="axis" x="{}" y="{:.1}" text-anchor="end">{tick}</text>"#,
            WIDTH - RIGHT,
            LEFT - 6.0,
            ty + 4.0
        );
        tick += step;
    }
    for (i, row) in values.iter().enumerate() {
        let day = first + i as i64 * SECONDS_PER_DAY;
        let x = LEFT + slot * i as f64 + (slot - bar) / 2.0;
        let mut base = 0u64;
        for (s, (key, label)) in SERIES.iter().enumerate() {
            let v = row[s];
            if v == 0 {
                continue;
            }
            let (y1, y0) = (y(base + v), y(base));
            let _ = write!(
                out,
                r#"<rect class="s-{key}" x="{x:.1}" y="{y1:.1}" width="{bar:.1}" height="{:.1}"><title>{} {label}: {v}</title></rect>"#,
                (y0 - y1).max(0.5),
                format::date(day)
            );
            base += v;
        }
        if i % 5 == (days - 1) % 5 {
            let _ = write!(
                out,
                r#"<text class="axis" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                x + bar / 2.0,
                HEIGHT - 8.0,
                format::month_day(day)
            );
        }
    }
    let _ = write!(
        out,
        r#"<line class="baseline" x1="{LEFT}" x2="{}" y1="{:.1}" y2="{:.1}"/>"#,
        WIDTH - RIGHT,
        TOP + plot_h,
        TOP + plot_h
    );
    if peak == 0 {
        let _ = write!(
            out,
            r#"<text class="empty" x="{:.1}" y="{:.1}" text-anchor="middle">No requests in the last {CHART_DAYS} days</text>"#,
            LEFT + plot_w / 2.0,
            TOP + plot_h / 2.0
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_axes() {
        assert_eq!(axis(0), (1, 1));
        assert_eq!(axis(3), (3, 1));
        assert_eq!(axis(7), (8, 2));
        assert_eq!(axis(23), (25, 5));
        assert_eq!(axis(101), (150, 50));
    }

    #[test]
    fn bars_per_series_with_titles() {
        let today = 1_799_971_200;
        let d = |family, activated, refused| DayFamily {
            day: format::date(today),
            day_unix: today,
            family,
            activated,
            refused,
        };
        let out = svg(&[d("windows-client", 3, 0), d("office", 2, 1)], today);
        assert!(out.starts_with("<svg") && out.ends_with("</svg>"));
        assert!(out.contains("Windows client: 3"), "{out}");
        assert!(out.contains("Office: 2"));
        assert!(out.contains("Refused: 1"));
        assert!(!out.contains("No requests"));
        assert!(svg(&[], today).contains("No requests"));
    }
}

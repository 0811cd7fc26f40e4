//! Bar charts drawn on the server as SVG: labelled axes with units, a title for each bar
//! (its exact value on hover), and the numbers beside it in a table for screen readers and
//! for anyone who wants them exact.

use std::fmt::Write;

use serde::Serialize;

/// How a chart's values read.
#[derive(Debug, Clone, Copy)]
pub enum Unit {
    Count,
    Usd,
}

impl Unit {
    fn format(self, value: f64) -> String {
        match self {
            Unit::Count if value.fract() != 0.0 => format!("{value:.1}"),
            Unit::Count => super::render::number(value as i64),
            Unit::Usd if value != 0.0 && value.abs() < 0.01 => format!("${value:.4}"),
            Unit::Usd => format!("${value:.2}"),
        }
    }
}

/// A chart for templates: its SVG (safe markup made here) and its points as text.
#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    pub title: String,
    pub unit: String,
    pub svg: String,
    pub total: String,
    pub points: Vec<(String, String)>,
}

const WIDTH: f64 = 560.0;
const HEIGHT: f64 = 160.0;
const LEFT: f64 = 48.0;
const BOTTOM: f64 = 20.0;
const TOP: f64 = 8.0;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A "nice" upper bound for the axis: 1, 2 or 5 times a power of ten at or above `max`.
fn nice_max(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|v| *v >= max)
        .unwrap_or(max)
}

/// Bars of `points` (label, value), one per day or key.
pub fn bars(title: &str, unit_label: &str, points: &[(String, f64)], unit: Unit) -> Chart {
    let max = nice_max(points.iter().map(|p| p.1).fold(0.0, f64::max));
    let plot_w = WIDTH - LEFT - 4.0;
    let plot_h = HEIGHT - BOTTOM - TOP;
    let slot = plot_w / points.len().max(1) as f64;
    let bar = (slot * 0.7).max(1.0);
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{} per day, in {}\">",
        escape(title),
        escape(unit_label)
    );
    // Gridlines and the value axis: 0, half, max.
    for fraction in [0.0, 0.5, 1.0] {
        let y = TOP + plot_h * (1.0 - fraction);
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{WIDTH}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
             <text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 6.0,
            y + 4.0,
            escape(&unit.format(max * fraction))
        );
    }
    for (idx, (label, value)) in points.iter().enumerate() {
        let h = if max > 0.0 { value / max * plot_h } else { 0.0 };
        let x = LEFT + slot * idx as f64 + (slot - bar) / 2.0;
        let y = TOP + plot_h - h;
        let _ = write!(
            svg,
            "<rect class=\"bar\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{:.1}\"><title>{}: {}</title></rect>",
            h.max(0.0),
            escape(label),
            escape(&unit.format(*value))
        );
    }
    // The first and last labels of the category axis.
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        let _ = write!(
            svg,
            "<text class=\"axis\" x=\"{LEFT}\" y=\"{:.1}\">{}</text><text class=\"axis\" x=\"{WIDTH}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            HEIGHT - 4.0,
            escape(&first.0),
            HEIGHT - 4.0,
            escape(&last.0)
        );
    }
    svg.push_str("</svg>");
    let total: f64 = points.iter().map(|p| p.1).sum();
    Chart {
        title: title.to_owned(),
        unit: unit_label.to_owned(),
        svg,
        total: unit.format(total),
        points: points
            .iter()
            .map(|(label, value)| (label.clone(), unit.format(*value)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_round_up_and_bars_carry_their_values() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(130.0), 200.0);
        assert_eq!(nice_max(0.03), 0.05);
        let chart = bars(
            "Tokens",
            "tokens",
            &[("2026-12-01".into(), 1500.0), ("2026-12-02".into(), 0.0)],
            Unit::Count,
        );
        assert!(
            chart.svg.contains("<title>2026-12-01: 1,500</title>"),
            "{}",
            chart.svg
        );
        assert_eq!(chart.total, "1,500");
        assert_eq!(chart.points[1].1, "0");
    }
}

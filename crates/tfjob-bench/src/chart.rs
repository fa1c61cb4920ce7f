//! The PNG chart: pods created over time by each creator. Pure Rust (plotters' bitmap backend)
//! with a font compiled in (egui's Ubuntu Light via `epaint_default_fonts`), so it renders the
//! same on a machine without any system font.

use std::path::Path;

use anyhow::anyhow;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::report::{OpenLoop, Timeline};

const COLORS: [RGBColor; 6] = [
    RGBColor(90, 90, 90),
    RGBColor(230, 120, 20),
    RGBColor(200, 40, 40),
    RGBColor(30, 110, 200),
    RGBColor(20, 160, 90),
    RGBColor(140, 70, 170),
];

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Fails only for an unreadable font, which a compiled-in one is not.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            epaint_default_fonts::UBUNTU_LIGHT,
        );
    });
}

/// What a pods-over-time chart says: its title and what its time axis counts from.
pub struct Labels<'a> {
    pub title: &'a str,
    pub x_desc: &'a str,
    pub subtitle: &'a str,
}

/// Two panels: the first seconds, where the fast creators finish, and the whole run, where the
/// rate-limited Job controller is still going.
pub fn draw(path: &Path, lines: &[Timeline], labels: &Labels<'_>) -> anyhow::Result<()> {
    let subtitle = labels.subtitle;
    register_font();
    let err = |e: &dyn std::fmt::Display| anyhow!("chart: {e}");
    let root = BitMapBackend::new(path, (1400, 620)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (title, body) = root.split_vertically(60);
    title
        .draw_text(
            labels.title,
            &("sans-serif", 26).into_font().color(&BLACK),
            (20, 8),
        )
        .map_err(|e| err(&e))?;
    title
        .draw_text(
            subtitle,
            &("sans-serif", 15).into_font().color(&RGBColor(80, 80, 80)),
            (20, 38),
        )
        .map_err(|e| err(&e))?;
    let (left, right) = body.split_horizontally(700);

    let end = |l: &Timeline| l.points.last().map_or(0.0, |p| p.0);
    let max_pods = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .max()
        .unwrap_or(1)
        .max(1);
    let slowest = lines.iter().map(end).fold(0.0, f64::max).max(0.1);
    // Zoom on the creators that finish within a few seconds.
    let fast = lines
        .iter()
        .map(end)
        .filter(|t| *t < slowest * 0.5)
        .fold(0.0, f64::max);
    let zoom = if fast > 0.0 { fast * 1.15 } else { slowest };

    for (area, x_max, caption) in [
        (&left, zoom, "first seconds"),
        (&right, slowest * 1.02, "whole run"),
    ] {
        let mut chart = ChartBuilder::on(area)
            .caption(caption, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..x_max, 0f64..max_pods as f64 * 1.05)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc(labels.x_desc)
            .y_desc("pods created")
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(|e| err(&e))?;
        for (i, line) in lines.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let style = ShapeStyle::from(&color).stroke_width(2);
            chart
                .draw_series(LineSeries::new(
                    line.points
                        .iter()
                        .map(|(t, n)| (*t, *n as f64))
                        .filter(|(t, _)| *t <= x_max),
                    style,
                ))
                .map_err(|e| err(&e))?
                .label(line.label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font(("sans-serif", 13))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// One series of the latency chart: a label and (arrival rate, milliseconds) points.
pub struct RateSeries {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    /// Drawn dashed (the p50 beside its p99).
    pub dashed: bool,
    pub color: usize,
}

/// Latency against arrival rate (the open-loop phase): p50 and p99 per creator.
pub fn draw_rates(path: &Path, series: &[RateSeries], subtitle: &str) -> anyhow::Result<()> {
    register_font();
    let err = |e: &dyn std::fmt::Display| anyhow!("chart: {e}");
    let root = BitMapBackend::new(path, (900, 620)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (title, body) = root.split_vertically(60);
    title
        .draw_text(
            "Parent stored → all its pods created, against arrival rate",
            &("sans-serif", 24).into_font().color(&BLACK),
            (20, 8),
        )
        .map_err(|e| err(&e))?;
    title
        .draw_text(
            subtitle,
            &("sans-serif", 15).into_font().color(&RGBColor(80, 80, 80)),
            (20, 38),
        )
        .map_err(|e| err(&e))?;
    let points = || series.iter().flat_map(|s| s.points.iter());
    let max_rate = points().map(|p| p.0).fold(0.0, f64::max).max(1.0);
    let max_ms = points().map(|p| p.1).fold(0.0, f64::max).max(1.0);
    let mut chart = ChartBuilder::on(&body)
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..max_rate * 1.1, 0f64..max_ms * 1.1)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("parents arriving per second")
        .y_desc("milliseconds")
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(|e| err(&e))?;
    for line in series {
        let color = COLORS[line.color % COLORS.len()];
        let style = ShapeStyle::from(&color).stroke_width(if line.dashed { 1 } else { 3 });
        chart
            .draw_series(LineSeries::new(line.points.iter().copied(), style))
            .map_err(|e| err(&e))?
            .label(line.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        chart
            .draw_series(
                line.points
                    .iter()
                    .map(|p| Circle::new(*p, 4, ShapeStyle::from(&color).filled())),
            )
            .map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 13))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// The open-loop chart's series: p99 (solid) and p50 (dashed) per creator.
pub fn open_loop_series(rows: &[OpenLoop]) -> Vec<RateSeries> {
    let mut creators: Vec<&str> = rows.iter().map(|o| o.creator.as_str()).collect();
    creators.sort();
    creators.dedup();
    let mut series = Vec::new();
    for (i, creator) in creators.iter().enumerate() {
        let of_creator = || rows.iter().filter(|o| o.creator == *creator);
        for (quantile, dashed) in [("p99", false), ("p50", true)] {
            series.push(RateSeries {
                label: format!("{creator} {quantile}"),
                points: of_creator()
                    .map(|o| (o.rate, if dashed { o.p50_ms } else { o.p99_ms }))
                    .collect(),
                dashed,
                color: i + 2,
            });
        }
    }
    series
}

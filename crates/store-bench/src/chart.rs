//! The report's chart: one bar per workload and reference, the ratio of textstore's figure
//! to the reference's on a log scale, with the line of equality at 1.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::{Error, Result};
use crate::report::{Report, SUBJECT};

/// Colours of the references, in the order they first appear.
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

struct Bar {
    label: String,
    reference: String,
    ratio: f64,
}

/// Writes the chart of `report`'s ratios to `path` as SVG.
pub fn write_ratio_chart(report: &Report, path: &Path) -> Result<()> {
    let bars: Vec<Bar> = report
        .results
        .iter()
        .flat_map(|result| {
            result
                .rows
                .iter()
                .filter(|row| row.name != SUBJECT)
                .filter_map(move |row| {
                    let ratio = result.ratio(row)?;
                    (ratio.is_finite() && ratio > 0.0).then(|| Bar {
                        label: format!("{}: {}", result.title, row.name),
                        reference: row.name.clone(),
                        ratio,
                    })
                })
        })
        .collect();
    draw(&bars, path).map_err(|message| Error::Chart {
        path: path.to_path_buf(),
        message,
    })
}

fn draw(bars: &[Bar], path: &Path) -> Result<(), String> {
    let mut references: Vec<&str> = Vec::new();
    for bar in bars {
        if !references.contains(&bar.reference.as_str()) {
            references.push(&bar.reference);
        }
    }
    let lowest = bars.iter().map(|bar| bar.ratio).fold(1.0, f64::min) / 1.5;
    let highest = bars.iter().map(|bar| bar.ratio).fold(1.0, f64::max) * 1.5;
    let rows = bars.len().max(1) as f64;
    let height = 90 + 18 * bars.len() as u32;
    let root = SVGBackend::new(path, (1200, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|err| err.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "textstore's figure ÷ the reference's (above 1: textstore is better)",
            ("sans-serif", 18),
        )
        .margin(10)
        .margin_left(480)
        .x_label_area_size(30)
        .build_cartesian_2d((lowest..highest).log_scale(), 0.0..rows)
        .map_err(|err| err.to_string())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_desc("ratio (log scale)")
        .draw()
        .map_err(|err| err.to_string())?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, bar)| {
            let colour = references
                .iter()
                .position(|r| *r == bar.reference)
                .unwrap_or(0);
            let top = rows - i as f64;
            Rectangle::new(
                [(lowest, top - 0.85), (bar.ratio, top - 0.15)],
                PALETTE[colour % PALETTE.len()].filled(),
            )
        }))
        .map_err(|err| err.to_string())?;
    chart
        .draw_series(LineSeries::new([(1.0, 0.0), (1.0, rows)], BLACK))
        .map_err(|err| err.to_string())?;
    let label_style =
        TextStyle::from(("sans-serif", 12).into_font()).pos(Pos::new(HPos::Right, VPos::Center));
    for (i, bar) in bars.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(lowest, rows - i as f64 - 0.5));
        let text = format!("{}  {:.2}×", bar.label, bar.ratio);
        root.draw(&Text::new(text, (x - 6, y), label_style.clone()))
            .map_err(|err| err.to_string())?;
    }
    root.present().map_err(|err| err.to_string())
}

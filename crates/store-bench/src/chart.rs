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

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of attribute `name` in an SVG element's text.
    fn attribute<'e>(element: &'e str, name: &str) -> &'e str {
        let start = element
            .find(&format!(" {name}=\""))
            .unwrap_or_else(|| panic!("no {name} in {element}"))
            + name.len()
            + 3;
        &element[start..start + element[start..].find('"').unwrap()]
    }

    fn number(element: &str, name: &str) -> f64 {
        attribute(element, name).parse().unwrap()
    }

    /// The elements named `tag` of `svg`, each with the text up to the next element.
    fn elements<'s>(svg: &'s str, tag: &str) -> Vec<&'s str> {
        svg.split('<')
            .filter(|element| element.starts_with(&format!("{tag} ")))
            .collect()
    }

    /// A bar per ratio, top to bottom in order, each as long as its ratio on the log scale
    /// from the lowest ratio's two thirds, the same colour for the same reference, its label
    /// with the ratio beside its middle, and the line of equality at 1.
    #[test]
    fn bars_are_log_lengths_in_order_coloured_by_reference_and_labelled() {
        let bar = |label: &str, reference: &str, ratio: f64| Bar {
            label: label.to_owned(),
            reference: reference.to_owned(),
            ratio,
        };
        let bars = [
            bar("a: LMDB", "LMDB", 2.0),
            bar("b: redb", "redb", 0.5),
            bar("c: LMDB", "LMDB", 8.0),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chart.svg");
        draw(&bars, &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(
            svg.starts_with(r#"<svg width="1200" height="144""#),
            "{}",
            &svg[..80]
        );

        let rects: Vec<&str> = elements(&svg, "rect")
            .into_iter()
            .filter(|rect| attribute(rect, "fill") != "#FFFFFF")
            .collect();
        assert_eq!(rects.len(), 3, "{rects:?}");
        let fills: Vec<&str> = rects.iter().map(|rect| attribute(rect, "fill")).collect();
        assert_eq!(fills, ["#1F77B4", "#FF7F0E", "#1F77B4"]);
        let left = number(rects[0], "x");
        assert!(rects.iter().all(|rect| number(rect, "x") == left));
        let (ys, heights): (Vec<f64>, Vec<f64>) = rects
            .iter()
            .map(|rect| (number(rect, "y"), number(rect, "height")))
            .unzip();
        let row = ys[1] - ys[0];
        assert!(row > 10.0 && (ys[2] - ys[1] - row).abs() <= 1.0, "{ys:?}");
        for height in &heights {
            assert!(
                (height - 0.7 * row).abs() <= 1.5,
                "{heights:?} in rows of {row}"
            );
        }

        // The scale runs from 2/3 of the lowest ratio (or of 1) to 1.5 times the highest.
        let width = |i: usize| number(rects[i], "width");
        let lowest = 0.5 / 1.5;
        let length = |ratio: f64| (ratio / lowest).ln() / (8.0 / lowest).ln();
        for (i, ratio) in [(0, 2.0), (1, 0.5)] {
            let expected = length(ratio) * width(2);
            assert!((width(i) - expected).abs() <= 2.0, "bar {i}: {}", width(i));
        }
        let plot_width = width(2) / length(8.0) * (8.0 * 1.5 / lowest).ln() / (8.0 / lowest).ln();
        assert!(
            (plot_width - (1200.0 - 480.0 - 10.0)).abs() <= 3.0,
            "{plot_width}"
        );
        let equality = elements(&svg, "polyline")
            .into_iter()
            .map(|line| attribute(line, "points"))
            .find_map(|points| {
                let ends: Vec<(f64, f64)> = points
                    .split_whitespace()
                    .map(|point| {
                        let (x, y) = point.split_once(',').unwrap();
                        (x.parse().unwrap(), y.parse().unwrap())
                    })
                    .collect();
                (ends[0].0 == ends[1].0
                    && ends[0].0 > left
                    && (ends[0].1 - ends[1].1).abs() > 2.0 * row)
                    .then_some(ends[0].0)
            })
            .unwrap_or_else(|| {
                panic!(
                    "no vertical line across the bars: {:?}",
                    elements(&svg, "polyline")
                )
            });
        assert!(
            (equality - left - length(1.0) * width(2)).abs() <= 2.0,
            "{equality}"
        );

        let labels: Vec<(&str, f64, f64)> = elements(&svg, "text")
            .into_iter()
            .filter_map(|text| {
                let content = text.split_once('>')?.1.trim();
                content
                    .contains('×')
                    .then(|| (content, number(text, "x"), number(text, "y")))
            })
            .collect();
        let names: Vec<&str> = labels.iter().map(|&(name, _, _)| name).collect();
        assert_eq!(
            names,
            ["a: LMDB  2.00×", "b: redb  0.50×", "c: LMDB  8.00×"]
        );
        for (i, &(_, x, y)) in labels.iter().enumerate() {
            assert_eq!(x, left - 6.0);
            assert!(
                (y - (ys[i] + heights[i] / 2.0)).abs() <= 2.0,
                "{labels:?} {ys:?}"
            );
        }
    }
}

//! Inline SVG charts for the HTML report, drawn with `plotters`' SVG backend.
//!
//! Text is emitted as SVG `<text>` (plotters' font-less build), so the browser lays it out;
//! label widths are estimated, which is why long category names are shortened here.

use super::ReportError;
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

/// A value with an optional 95% interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub v: f64,
    pub lo: Option<f64>,
    pub hi: Option<f64>,
}

impl Point {
    fn lo(&self) -> f64 {
        self.lo.unwrap_or(self.v)
    }
    fn hi(&self) -> f64 {
        self.hi.unwrap_or(self.v)
    }
}

/// One heatmap cell: ASR with successes / scored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    pub asr: f64,
    pub successes: u64,
    pub scored: u64,
}

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

fn err<E: std::fmt::Display>(e: E) -> ReportError {
    ReportError::Chart(e.to_string())
}

/// Shorten a label to `max` characters (on a char boundary), marking the cut.
pub fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn seg_label(names: &[String], v: &SegmentValue<i32>, max: usize) -> String {
    match v {
        SegmentValue::CenterOf(i) => names
            .get(*i as usize)
            .map(|n| shorten(n, max))
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// Metric values (0–1 scale) across the pipeline's stages, one line per metric, with
/// interval whiskers. `series`: (metric label, value per stage).
pub fn stage_lines(
    stages: &[String],
    series: &[(String, Vec<Option<Point>>)],
) -> Result<String, ReportError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        // An i32 range includes its end: 0..last gives exactly one segment per stage.
        let last = stages.len().max(1) as i32 - 1;
        let mut chart = ChartBuilder::on(&root)
            .caption("Metrics by stage (95% CI)", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .right_y_label_area_size(0)
            // Headroom above 1.0 keeps the legend clear of the data.
            .build_cartesian_2d((0..last).into_segmented(), 0f64..1.3f64)
            .map_err(err)?;
        let fmt = |v: &SegmentValue<i32>| seg_label(stages, v, 18);
        chart
            .configure_mesh()
            .x_labels(stages.len() + 1)
            .x_label_formatter(&fmt)
            .y_desc("value")
            .y_label_formatter(&|y| {
                if *y <= 1.0 + 1e-9 {
                    format!("{y:.1}")
                } else {
                    String::new()
                }
            })
            .light_line_style(WHITE)
            .draw()
            .map_err(err)?;
        for (k, (label, values)) in series.iter().enumerate() {
            let c = colour(k);
            let pts: Vec<(SegmentValue<i32>, f64)> = values
                .iter()
                .enumerate()
                .filter_map(|(i, p)| p.map(|p| (SegmentValue::CenterOf(i as i32), p.v)))
                .collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                .map_err(err)?
                .label(shorten(label, 40))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2))
                });
            chart
                .draw_series(
                    pts.iter()
                        .map(|(x, y)| Circle::new((x.clone(), *y), 4, c.filled())),
                )
                .map_err(err)?;
            chart
                .draw_series(values.iter().enumerate().filter_map(|(i, p)| {
                    p.filter(|p| p.lo.is_some()).map(|p| {
                        ErrorBar::new_vertical(
                            SegmentValue::CenterOf(i as i32),
                            p.lo(),
                            p.v,
                            p.hi(),
                            c.stroke_width(1),
                            8,
                        )
                    })
                }))
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .position(SeriesLabelPosition::UpperRight)
            .label_font(("sans-serif", 12))
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// The trade-off: one point per stage (x, y both 0–1) with interval whiskers, joined in
/// pipeline order so the path shows where each stage moved the model.
pub fn tradeoff(
    points: &[(String, Point, Point)],
    x_desc: &str,
    y_desc: &str,
) -> Result<String, ReportError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (560, 460)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Trade-off by stage (95% CI)", ("sans-serif", 18))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(52)
            .build_cartesian_2d(-0.02f64..1.02f64, -0.02f64..1.02f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(shorten(x_desc, 60))
            .y_desc(shorten(y_desc, 50))
            .x_label_formatter(&|v| format!("{v:.1}"))
            .y_label_formatter(&|v| format!("{v:.1}"))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(err)?;
        let path: Vec<(f64, f64)> = points.iter().map(|(_, x, y)| (x.v, y.v)).collect();
        chart
            .draw_series(LineSeries::new(
                path,
                RGBColor(160, 160, 160).stroke_width(1),
            ))
            .map_err(err)?;
        for (k, (name, x, y)) in points.iter().enumerate() {
            let c = colour(k);
            chart
                .draw_series([ErrorBar::new_horizontal(
                    y.v,
                    x.lo(),
                    x.v,
                    x.hi(),
                    c.stroke_width(1),
                    8,
                )])
                .map_err(err)?;
            chart
                .draw_series([ErrorBar::new_vertical(
                    x.v,
                    y.lo(),
                    y.v,
                    y.hi(),
                    c.stroke_width(1),
                    8,
                )])
                .map_err(err)?;
            chart
                .draw_series([Circle::new((x.v, y.v), 6, c.filled())])
                .map_err(err)?;
            // Labels go left of points near the right edge so they stay inside the plot.
            let dx = if x.v > 0.75 {
                -0.02 - 0.012 * name.len() as f64
            } else {
                0.02
            };
            chart
                .draw_series([Text::new(
                    shorten(name, 24),
                    (x.v + dx, y.v + 0.035),
                    ("sans-serif", 13).into_font().color(&c),
                )])
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Background for an ASR cell: white at 0, saturated red at 1.
fn heat(asr: f64) -> RGBColor {
    let t = asr.clamp(0.0, 1.0);
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * t).round() as u8;
    RGBColor(mix(255, 200), mix(250, 30), mix(245, 40))
}

/// Red-team heatmap: rows = harm categories, columns = attacks, cell = ASR (text shows the
/// percentage and successes/scored; grey = no scored attempt).
pub fn heatmap(
    title: &str,
    rows: &[String],
    cols: &[String],
    cells: &[Vec<Option<Cell>>],
) -> Result<String, ReportError> {
    let mut svg = String::new();
    let cell_w = 96u32;
    let cell_h = 30u32;
    let w = 260 + cell_w * cols.len().max(1) as u32;
    let h = 110 + cell_h * rows.len().max(1) as u32;
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (nr, nc) = (rows.len().max(1) as i32, cols.len().max(1) as i32);
        // The y axis grows upwards; the first category goes on top, as in the tables.
        let flip = |r: i32| nr - 1 - r;
        let mut chart = ChartBuilder::on(&root)
            .caption(shorten(title, 80), ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(230)
            .build_cartesian_2d((0..nc - 1).into_segmented(), (0..nr - 1).into_segmented())
            .map_err(err)?;
        let xf = |v: &SegmentValue<i32>| seg_label(cols, v, 15);
        let yf = |v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(r) => seg_label(rows, &SegmentValue::CenterOf(flip(*r)), 36),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(cols.len() + 1)
            .y_labels(rows.len() + 1)
            .x_label_formatter(&xf)
            .y_label_formatter(&yf)
            .x_desc("attack")
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(err)?;
        for (r, row) in cells.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                let (r, c) = (flip(r as i32), c as i32);
                let fill = match cell {
                    Some(x) => heat(x.asr),
                    None => RGBColor(225, 225, 225),
                };
                chart
                    .draw_series([Rectangle::new(
                        [
                            (SegmentValue::Exact(c), SegmentValue::Exact(r)),
                            (SegmentValue::Exact(c + 1), SegmentValue::Exact(r + 1)),
                        ],
                        fill.filled(),
                    )])
                    .map_err(err)?;
                let label = match cell {
                    Some(x) => format!("{:.0}% ({}/{})", x.asr * 100.0, x.successes, x.scored),
                    None => "–".into(),
                };
                let ink = if cell.is_some_and(|x| x.asr > 0.55) {
                    WHITE
                } else {
                    BLACK
                };
                chart
                    .draw_series([Text::new(
                        label,
                        (SegmentValue::CenterOf(c), SegmentValue::CenterOf(r)),
                        ("sans-serif", 11).into_font().color(&ink).pos(
                            plotters::style::text_anchor::Pos::new(
                                plotters::style::text_anchor::HPos::Center,
                                plotters::style::text_anchor::VPos::Center,
                            ),
                        ),
                    )])
                    .map_err(err)?;
            }
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_svg_with_their_labels() {
        let p = |v| {
            Some(Point {
                v,
                lo: Some(v - 0.1),
                hi: Some(v + 0.1),
            })
        };
        let s = stage_lines(
            &["base".into(), "sft".into()],
            &[("world/helpfulness".into(), vec![p(0.2), p(0.6)])],
        )
        .unwrap();
        assert!(s.starts_with("<svg") && s.contains("sft") && s.contains("world/helpfulness"));
        // A single stage (one segment) must draw too.
        let one = stage_lines(&["only".into()], &[("m".into(), vec![p(0.5)])]).unwrap();
        assert!(one.contains("only"));
        let t = tradeoff(
            &[("base".into(), p(0.1).unwrap(), p(0.9).unwrap())],
            "harmless",
            "helpful",
        )
        .unwrap();
        assert!(t.contains("<circle") && t.contains("base"));
        let h = heatmap(
            "rt",
            &["S1".into()],
            &["direct".into(), "b64".into()],
            &[vec![
                Some(Cell {
                    asr: 0.5,
                    successes: 1,
                    scored: 2,
                }),
                None,
            ]],
        )
        .unwrap();
        assert!(h.contains("50% (1/2)") && h.contains("b64"), "{h}");
        assert_eq!(shorten("abcdef", 4), "abc…");
    }
}

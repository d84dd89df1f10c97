//! The report's plots, drawn with plotters into PNG and SVG: learning curves (mean line, std band)
//! of the losses and the primary metric, final metrics as bars with error bars, PSNR against
//! colorfulness, and the cumulative ab-accuracy curves (Zhang et al. 2016, figure 3).
//!
//! Readability with 2 or 30 variants: every variant keeps one colour in every figure (Tableau 10 up
//! to ten variants, then hues spread around the circle with alternating lightness, neighbours in rank
//! far apart in hue); legends and names sit in their own column beside the charts, never over the data,
//! and figures grow with the number of variants instead of crowding them.
//!
//! Text needs a font: plotters' `ab_glyph` backend has none of its own, so DejaVu Sans is compiled
//! in (`assets/DejaVuSans.ttf`) and registered before the first figure.

use std::path::Path;

use anyhow::{Context, Result};
use plotters::chart::MeshStyle;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::aggregate::{AccuracyStats, At, Stat, Variant};
use super::load::RunResult;
use super::{Figure, Report};
use crate::atomic::write_atomic;
use crate::metrics::Metric;
use crate::named::Named;
use crate::spec::search::DistributionKind;
use crate::store::curve_file::CURVE_FILE;

/// The family name the compiled-in font is registered under.
pub const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
/// Height of one legend line or bar row.
const ROW: i32 = 18;

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// A figure that draws itself on any plotters backend.
trait Plot {
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB>;
}

/// Registers the compiled-in font once.
pub fn register_font() -> Result<()> {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok());
    anyhow::ensure!(ok, "the compiled-in font assets/DejaVuSans.ttf is not a valid font");
    Ok(())
}

pub fn draw_error(e: impl std::fmt::Debug) -> anyhow::Error {
    anyhow::anyhow!("drawing a plot failed: {e:?}")
}

/// Draws `plot` into `<stem>.png` and `<stem>.svg` in `out`.
fn save(plot: &impl Plot, out: &Path, stem: &str) -> Result<()> {
    register_font()?;
    let (w, h) = plot.size();
    let mut pixels = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        plot.draw(&root).map_err(draw_error)?;
        root.present().map_err(draw_error)?;
    }
    let image = image::RgbImage::from_raw(w, h, pixels).context("plot buffer has the wrong size")?;
    write_atomic(&out.join(format!("{stem}.png")), &encode_png(image)?)?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        plot.draw(&root).map_err(draw_error)?;
        root.present().map_err(draw_error)?;
    }
    write_atomic(&out.join(format!("{stem}.svg")), svg.as_bytes())
}

/// PNG bytes of an image.
pub fn encode_png(image: image::RgbImage) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(image).write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)?;
    Ok(bytes)
}

/// The colour of the `i`-th of `n` variants.
pub fn color(i: usize, n: usize) -> RGBColor {
    const TABLEAU: [(u8, u8, u8); 10] = [
        (78, 121, 167),
        (242, 142, 43),
        (225, 87, 89),
        (118, 183, 178),
        (89, 161, 79),
        (237, 201, 72),
        (176, 122, 161),
        (255, 157, 167),
        (156, 117, 95),
        (186, 176, 172),
    ];
    if n <= TABLEAU.len() {
        let (r, g, b) = TABLEAU[i % TABLEAU.len()];
        return RGBColor(r, g, b);
    }
    // Step through the hues by about 3/8 of the circle so that neighbours in rank differ most.
    let step = (n * 3 / 8).max(1);
    let step = (step..n).find(|s| gcd(*s, n) == 1).unwrap_or(1);
    let hue = ((i * step) % n) as f64 / n as f64;
    let lightness = if i.is_multiple_of(2) { 0.42 } else { 0.62 };
    let (r, g, b) = hsl(hue, 0.65, lightness);
    RGBColor(r, g, b)
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn hsl(h: f64, s: f64, l: f64) -> (u8, u8, u8) {
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let x = c * (1.0 - ((h * 6.0) % 2.0 - 1.0).abs());
    let (r, g, b) = match (h * 6.0) as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = l - c / 2.0;
    let byte = |v: f64| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    (byte(r), byte(g), byte(b))
}

/// A variant as the figures show it.
struct Entry<'a> {
    variant: &'a Variant,
    label: String,
    color: RGBColor,
}

/// Width in pixels of `text` at `size`.
pub fn text_width(text: &str, size: u32) -> u32 {
    (FONT, size).into_font().box_size(text).map_or(text.chars().count() as u32 * size * 6 / 10, |(w, _)| w)
}

/// `text` cut with an ellipsis to fit `width` pixels.
pub fn fit(text: &str, size: u32, width: u32) -> String {
    if text_width(text, size) <= width {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    (1..chars.len())
        .rev()
        .map(|k| format!("{}…", chars[..k].iter().collect::<String>()))
        .find(|t| text_width(t, size) <= width)
        .unwrap_or_else(|| "…".into())
}

/// The legend column: a heading, then one coloured swatch and label per entry.
struct Legend {
    heading: String,
    lines: Vec<(String, RGBColor)>,
    width: u32,
}

impl Legend {
    const MAX_WIDTH: u32 = 360;

    fn new(heading: &str, lines: Vec<(String, RGBColor)>) -> Legend {
        let widest = lines.iter().map(|(l, _)| text_width(l, 13)).chain([text_width(heading, 13)]).max().unwrap_or(0);
        let width = (widest + 44).min(Self::MAX_WIDTH);
        let lines = lines.into_iter().map(|(l, c)| (fit(&l, 13, width - 44), c)).collect();
        Legend { heading: heading.to_string(), lines, width }
    }

    fn height(&self) -> u32 {
        (ROW * (self.lines.len() as i32 + 2) + 20) as u32
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let font = (FONT, 13).into_font();
        area.draw(&Text::new(self.heading.clone(), (10, 24), font.clone()))?;
        for (i, (label, color)) in self.lines.iter().enumerate() {
            let y = 24 + ROW * (i as i32 + 1) + 4;
            area.draw(&Rectangle::new([(10, y + 2), (30, y + 12)], color.filled()))?;
            area.draw(&Text::new(label.clone(), (36, y), font.clone()))?;
        }
        Ok(())
    }
}

/// A padded range around values.
fn span(values: impl IntoIterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    // Values equal up to rounding (the same judge on the same images in every run) get a range
    // around them, not one of 1e-14.
    let pad = if hi - lo > 1e-9 * hi.abs().max(lo.abs()) { 0.06 * (hi - lo) } else { 0.05 * lo.abs().max(1e-3) };
    (lo - pad, hi + pad)
}

/// Mean +/- std bounds of a statistic (the mean alone without a spread).
fn bounds(s: &Stat) -> (f64, f64) {
    let std = if s.std.is_finite() { s.std } else { 0.0 };
    (s.mean - std, s.mean + std)
}

fn axis_label(metric: &str, higher_is_better: Option<bool>) -> String {
    match higher_is_better {
        Some(true) => format!("{metric} (higher is better)"),
        Some(false) => format!("{metric} (lower is better)"),
        None => metric.to_string(),
    }
}

fn natural_direction(metric: &str) -> Option<bool> {
    Metric::parse(metric).map(Metric::higher_is_better)
}

/// Lines with bands over a shared x axis: one panel per series set, legend on the right.
struct Curves<'a> {
    panels: Vec<CurvePanel>,
    legend: Legend,
    entries: &'a [Entry<'a>],
}

struct CurvePanel {
    title: String,
    x_desc: String,
    y_desc: String,
    x_range: (f64, f64),
    /// At most this many x labels (plotters picks round steps; whole epochs for epochs).
    x_labels: usize,
    y_range: (f64, f64),
    /// Per entry: (x, stat) points.
    series: Vec<Vec<(f64, Stat)>>,
    /// Epochs: few enough points to mark each one.
    mark_points: bool,
}

impl Plot for Curves<'_> {
    fn size(&self) -> (u32, u32) {
        (self.panels.len() as u32 * 470 + self.legend.width, self.legend.height().max(420))
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (w, _) = self.size();
        let (charts, legend) = root.split_horizontally(w - self.legend.width);
        let panels = charts.split_evenly((1, self.panels.len()));
        for (panel, area) in self.panels.iter().zip(&panels) {
            let mut chart = ChartBuilder::on(area)
                .caption(&panel.title, (FONT, 17))
                .margin(12)
                .x_label_area_size(44)
                .y_label_area_size(64)
                .build_cartesian_2d(panel.x_range.0..panel.x_range.1, panel.y_range.0..panel.y_range.1)?;
            axes_style(&mut chart.configure_mesh())
                .x_desc(panel.x_desc.as_str())
                .y_desc(panel.y_desc.as_str())
                .x_labels(panel.x_labels)
                .y_labels(8)
                .x_label_formatter(&|x| if x.fract() == 0.0 { format!("{x:.0}") } else { String::new() })
                .y_label_formatter(&|y| round_label(*y, panel.y_range))
                .draw()?;
            // Bands first, lines on top, so that no band hides another variant's line; fainter bands
            // the more variants overlap.
            let alpha = (0.5 / self.entries.len() as f64).clamp(0.05, 0.16);
            for (points, entry) in panel.series.iter().zip(self.entries) {
                if points.len() > 1 {
                    let upper = points.iter().map(|(x, s)| (*x, bounds(s).1));
                    let lower = points.iter().rev().map(|(x, s)| (*x, bounds(s).0));
                    let band: Vec<(f64, f64)> = upper.chain(lower).collect();
                    chart.draw_series(std::iter::once(Polygon::new(band, entry.color.mix(alpha).filled())))?;
                }
            }
            for (points, entry) in panel.series.iter().zip(self.entries) {
                let style = entry.color.stroke_width(2);
                chart.draw_series(LineSeries::new(points.iter().map(|(x, s)| (*x, s.mean)), style))?;
                if points.len() == 1 || panel.mark_points && points.len() <= 20 {
                    chart
                        .draw_series(points.iter().map(|(x, s)| Circle::new((*x, s.mean), 3, entry.color.filled())))?;
                }
                if points.len() == 1 {
                    let (x, s) = points[0];
                    let (lo, hi) = bounds(&s);
                    chart.draw_series(std::iter::once(ErrorBar::new_vertical(x, lo, s.mean, hi, style, 8)))?;
                }
            }
        }
        self.legend.draw(&legend)
    }
}

/// The axes of the curve, scatter and search charts: 12 pt tick labels, 13 pt axis titles, major
/// grid lines in light grey and no minor ones.
fn axes_style<'m, 'a, 'b, X: Ranged, Y: Ranged, DB: DrawingBackend>(
    mesh: &'m mut MeshStyle<'a, 'b, X, Y, DB>,
) -> &'m mut MeshStyle<'a, 'b, X, Y, DB> {
    mesh.label_style((FONT, 12))
        .axis_desc_style((FONT, 13))
        .light_line_style(TRANSPARENT)
        .bold_line_style(RGBColor(215, 215, 215))
}

/// Axis tick labels rounded to the precision of ticks about an eighth of the span apart.
fn round_label(v: f64, range: (f64, f64)) -> String {
    let step = (range.1 - range.0).abs().max(1e-12) / 8.0;
    let decimals = (-step.log10().floor() as i32).clamp(0, 6) as usize;
    format!("{v:.decimals$}")
}

/// Final metrics as horizontal bars with error bars, one panel per metric, names on the left.
struct Bars<'a> {
    metrics: Vec<(&'static str, Vec<Option<Stat>>)>,
    entries: &'a [Entry<'a>],
    names_width: u32,
    title: String,
}

impl Bars<'_> {
    const PANEL: u32 = 240;
    const TOP: u32 = 60;
    const BOTTOM: u32 = 44;
}

impl Plot for Bars<'_> {
    fn size(&self) -> (u32, u32) {
        let rows = self.entries.len() as u32;
        (
            self.names_width + Self::PANEL * self.metrics.len() as u32,
            Self::TOP + Self::BOTTOM + (rows * 26).max(120) + 20,
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let n = self.entries.len();
        root.draw(&Text::new(self.title.clone(), (10, 8), (FONT, 16).into_font()))?;
        let (names, panels) = root.split_horizontally(self.names_width);
        let areas = panels.split_evenly((1, self.metrics.len()));
        let mut rows_y: Vec<i32> = Vec::new();
        for ((metric, stats), area) in self.metrics.iter().zip(&areas) {
            let (mut lo, hi) = span(stats.iter().flatten().flat_map(|s| [bounds(s).0, bounds(s).1]));
            // Bars start at zero when that leaves the differences visible; otherwise the axis is cut
            // and the panel says so.
            let positive = stats.iter().flatten().all(|s| bounds(s).0 >= 0.0);
            let cut = !(positive && lo < 0.6 * hi);
            if !cut {
                lo = 0.0;
            }
            let arrow = match natural_direction(metric) {
                Some(true) => " ↑",
                Some(false) => " ↓",
                None => "",
            };
            let title = format!("{metric}{arrow}{}", if cut { " (axis cut)" } else { "" });
            let mut chart = ChartBuilder::on(area)
                .caption(title, (FONT, 14))
                .margin_top(Self::TOP as i32 - 24)
                .margin_right(14)
                .margin_left(6)
                .x_label_area_size(Self::BOTTOM)
                .build_cartesian_2d(lo..hi, -0.5..(n as f64 - 0.5))?;
            chart
                .configure_mesh()
                .disable_y_mesh()
                .y_labels(0)
                .x_labels(4)
                .x_label_formatter(&|x| round_label(*x, (lo, hi)))
                .label_style((FONT, 11))
                .light_line_style(TRANSPARENT)
                .bold_line_style(RGBColor(220, 220, 220))
                .draw()?;
            // Rank 1 at the top.
            let y = |rank: usize| (n - 1 - rank) as f64;
            let thickness = 0.36;
            for (rank, (stat, entry)) in stats.iter().zip(self.entries).enumerate() {
                let Some(s) = stat else { continue };
                let rect = [(lo, y(rank) - thickness), (s.mean, y(rank) + thickness)];
                chart.draw_series(std::iter::once(Rectangle::new(rect, entry.color.filled())))?;
                if s.std.is_finite() {
                    let (a, b) = bounds(s);
                    let bar = ErrorBar::new_horizontal(y(rank), a.max(lo), s.mean, b, BLACK.stroke_width(1), 8);
                    chart.draw_series(std::iter::once(bar))?;
                }
            }
            if rows_y.is_empty() {
                rows_y = (0..n).map(|rank| chart.backend_coord(&(lo, y(rank))).1).collect();
            }
        }
        let font = (FONT, 13).into_font();
        for ((entry, y), rank) in self.entries.iter().zip(rows_y).zip(1..) {
            let label = fit(&format!("{rank}. {}", entry.label), 13, self.names_width - 16);
            let width = text_width(&label, 13) as i32;
            names.draw(&Text::new(label, (self.names_width as i32 - 8 - width, y - 7), font.clone()))?;
        }
        Ok(())
    }
}

/// PSNR against colorfulness: per variant the mean with error bars both ways and each seed faintly,
/// and the ground truth's colorfulness as a dashed line.
struct Scatter<'a> {
    points: Vec<ScatterPoints>,
    truth: Option<f64>,
    entries: &'a [Entry<'a>],
    legend: Legend,
    title: String,
}

/// One variant in the scatter: the (colorfulness, PSNR) means and each seed's point.
struct ScatterPoints {
    mean: Option<(Stat, Stat)>,
    seeds: Vec<(f64, f64)>,
}

impl Plot for Scatter<'_> {
    fn size(&self) -> (u32, u32) {
        (760 + self.legend.width, self.legend.height().max(560))
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (w, _) = self.size();
        let (area, legend) = root.split_horizontally(w - self.legend.width);
        let xs = self.points.iter().flat_map(|p| {
            let mean = p.mean.iter().flat_map(|(x, _)| [bounds(x).0, bounds(x).1]).collect::<Vec<_>>();
            mean.into_iter().chain(p.seeds.iter().map(|s| s.0))
        });
        let (x0, x1) = span(xs.chain(self.truth));
        let ys = self.points.iter().flat_map(|p| {
            let mean = p.mean.iter().flat_map(|(_, y)| [bounds(y).0, bounds(y).1]).collect::<Vec<_>>();
            mean.into_iter().chain(p.seeds.iter().map(|s| s.1))
        });
        let (y0, y1) = span(ys);
        let mut chart = ChartBuilder::on(&area)
            .caption(&self.title, (FONT, 17))
            .margin(14)
            .x_label_area_size(46)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        axes_style(&mut chart.configure_mesh())
            .x_desc("colorfulness (Hasler and Süsstrunk; higher is more colourful)")
            .y_desc("PSNR, dB (higher is closer to the truth)")
            .x_label_formatter(&|x| round_label(*x, (x0, x1)))
            .y_label_formatter(&|y| round_label(*y, (y0, y1)))
            .draw()?;
        if let Some(t) = self.truth {
            let dashes = (0..40).map(|k| {
                let (a, b) = (y0 + (y1 - y0) * k as f64 / 40.0, y0 + (y1 - y0) * (k as f64 + 0.5) / 40.0);
                PathElement::new(vec![(t, a), (t, b)], RGBColor(90, 90, 90).stroke_width(1))
            });
            chart.draw_series(dashes)?;
            let at = chart.backend_coord(&(t, y1));
            let label = "ground truth";
            let width = text_width(label, 12) as i32;
            // Keep the label inside the plot whichever side of it the line falls.
            let x = if at.0 + 6 + width < chart.backend_coord(&(x1, y1)).0 { at.0 + 6 } else { at.0 - 6 - width };
            root.draw(&Text::new(label, (x, at.1 + 4), (FONT, 12).into_font().color(&RGBColor(90, 90, 90))))?;
        }
        for (point, entry) in self.points.iter().zip(self.entries) {
            let faint = entry.color.mix(0.45);
            chart.draw_series(point.seeds.iter().map(|p| Circle::new(*p, 3, faint.stroke_width(1))))?;
            if let Some((x, y)) = &point.mean {
                let style = entry.color.stroke_width(2);
                if y.std.is_finite() {
                    let (a, b) = bounds(y);
                    chart.draw_series(std::iter::once(ErrorBar::new_vertical(x.mean, a, y.mean, b, style, 8)))?;
                }
                if x.std.is_finite() {
                    let (a, b) = bounds(x);
                    chart.draw_series(std::iter::once(ErrorBar::new_horizontal(y.mean, a, x.mean, b, style, 8)))?;
                }
                chart.draw_series(std::iter::once(Circle::new((x.mean, y.mean), 5, entry.color.filled())))?;
            }
        }
        self.legend.draw(&legend)
    }
}

/// Writes every plot the report's data allows and returns them.
pub fn write_all(report: &Report, out: &Path) -> Result<Vec<Figure>> {
    // Variants without numbers (every run failed or none has an epoch) rank last and are left out,
    // so that the others keep their colours.
    let plotted: Vec<&Variant> = report.variants.iter().filter(|v| !v.used.is_empty()).collect();
    let n = plotted.len();
    let entries: Vec<Entry> = plotted
        .iter()
        .enumerate()
        .map(|(i, v)| Entry { variant: v, label: v.label.clone(), color: color(i, n) })
        .collect();
    let at_words = format!("at each run's {} epoch", report.at.name());
    let figures = Figures { report, entries: &entries, out, at: report.at, at_words };
    let mut written = vec![figures.learning_curves()?, figures.final_metrics()?, figures.psnr_colorfulness()?];
    written.extend(figures.ab_accuracy()?);
    written.extend(search_plots(report, out)?);
    Ok(written)
}

/// One searched variant's trials: the metric against each searched key, one panel per key.
struct SearchPlot {
    title: String,
    metric: String,
    panels: Vec<SearchPanel>,
}

/// One searched key: its name, whether on a log axis, and each trial's (x, metric, stopped, best).
type SearchPanel = (String, bool, Vec<(f64, f64, bool, bool)>);

impl Plot for SearchPlot {
    fn size(&self) -> (u32, u32) {
        ((self.panels.len().max(1) as u32 * 440).max(620), 400)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (title_area, charts) = root.split_vertically(30);
        title_area.draw(&Text::new(self.title.clone(), (12, 8), (FONT, 16).into_font()))?;
        let areas = charts.split_evenly((1, self.panels.len().max(1)));
        let (y0, y1) = span(self.panels.iter().flat_map(|p| p.2.iter().map(|t| t.1)));
        for ((key, log, points), area) in self.panels.iter().zip(&areas) {
            let (x0, x1) = span(points.iter().map(|t| t.0));
            let mut chart = ChartBuilder::on(area)
                .margin(12)
                .x_label_area_size(44)
                .y_label_area_size(64)
                .build_cartesian_2d(x0..x1, y0..y1)?;
            let x_desc = if *log { format!("{key} (log scale)") } else { key.clone() };
            axes_style(&mut chart.configure_mesh())
                .x_desc(x_desc)
                .y_desc(self.metric.as_str())
                .x_labels(6)
                .x_label_formatter(&|x| {
                    if *log { format!("{:.1e}", 10f64.powf(*x)) } else { round_label(*x, (x0, x1)) }
                })
                .y_label_formatter(&|y| round_label(*y, (y0, y1)))
                .draw()?;
            let grey = RGBColor(150, 150, 150);
            let blue = RGBColor(31, 119, 180);
            chart.draw_series(points.iter().map(|&(x, y, stopped, _)| {
                if stopped {
                    Circle::new((x, y), 4, grey.stroke_width(1))
                } else {
                    Circle::new((x, y), 4, blue.filled())
                }
            }))?;
            let red = RGBColor(214, 39, 40);
            chart.draw_series(
                points.iter().filter(|t| t.3).map(|&(x, y, _, _)| Circle::new((x, y), 8, red.stroke_width(2))),
            )?;
        }
        Ok(())
    }
}

/// How `plan.json` names the distribution whose keys are plotted on a log axis.
const LOG_UNIFORM: &str = DistributionKind::LogUniform.name();

/// The search plots of every searched variant of the report's sweeps (see [`super::search`]).
fn search_plots(report: &Report, out: &Path) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    for set in &report.sets {
        let log_keys: Vec<&str> =
            set.index.searched.iter().filter(|k| k.distribution == LOG_UNIFORM).map(|k| k.key.as_str()).collect();
        for searched in &super::search::searched(set) {
            let Some(first) = searched.trials.first() else { continue };
            let panels = first
                .sampled
                .iter()
                .enumerate()
                .map(|(k, (key, _))| {
                    let log = log_keys.contains(&key.as_str());
                    let points = searched
                        .trials
                        .iter()
                        .filter_map(|t| {
                            let x = search_axis(&t.sampled.get(k)?.1, &searched.trials, k, log)?;
                            let best = searched.chosen.as_ref() == Some(&set.runs[t.run].planned.group);
                            Some((x, t.value?, t.stopped, best))
                        })
                        .collect();
                    (key.clone(), log, points)
                })
                .collect();
            let plot = SearchPlot {
                title: format!("{}: {} after each trial's last epoch", searched.name, set.index.metric),
                metric: set.index.metric.clone(),
                panels,
            };
            let stem = format!("{}{}", super::search::FIGURE_PREFIX, figures.len());
            save(&plot, out, &stem)?;
            let caption = "Each trial of the search: filled dots trained in full, open grey circles stopped early (at the epoch they reached), the red ring the trial the comparison uses.".to_string();
            let title = format!("Search of {}", searched.name);
            figures.push(Figure { stem, title, caption, svg: true, dir: out.to_path_buf() });
        }
    }
    Ok(figures)
}

/// Where a sampled value sits on its panel's axis: the number (its log10 on a log axis), or for a
/// choice that is no number, the position of the value among the trials' distinct values.
fn search_axis(value: &str, trials: &[super::search::TrialPoint], key: usize, log: bool) -> Option<f64> {
    match value.parse::<f64>() {
        Ok(x) if log && x > 0.0 => Some(x.log10()),
        Ok(x) => Some(x),
        Err(_) => {
            let mut distinct: Vec<&str> =
                trials.iter().filter_map(|t| t.sampled.get(key).map(|s| s.1.as_str())).collect();
            distinct.sort_unstable();
            distinct.dedup();
            distinct.iter().position(|v| *v == value).map(|p| p as f64)
        }
    }
}

/// What every figure of a report is drawn from.
struct Figures<'a> {
    report: &'a Report,
    /// The plotted variants, in rank order, with their colours.
    entries: &'a [Entry<'a>],
    out: &'a Path,
    at: At,
    /// "at each run's last epoch".
    at_words: String,
}

impl Figures<'_> {
    /// Draws `plot` into `<stem>.png` and `.svg` and describes it.
    fn save(&self, plot: &impl Plot, stem: &str, title: &str, caption: String) -> Result<Figure> {
        save(plot, self.out, stem)?;
        Ok(Figure { stem: stem.into(), title: title.into(), caption, svg: true, dir: self.out.to_path_buf() })
    }

    /// One legend line per variant: its label in its colour.
    fn names(&self) -> Vec<(String, RGBColor)> {
        self.entries.iter().map(|e| (e.label.clone(), e.color)).collect()
    }

    /// The runs behind a variant's numbers.
    fn runs_of(&self, e: &Entry) -> Vec<&RunResult> {
        e.variant.used.iter().map(|&i| &self.report.sets[e.variant.set].runs[i]).collect()
    }

    /// The losses and the primary metric per epoch, one panel each.
    fn learning_curves(&self) -> Result<Figure> {
        let report = self.report;
        let mut metrics = vec!["train_loss", "val_loss"];
        if !metrics.contains(&report.metric.as_str()) {
            metrics.push(report.metric.as_str());
        }
        let max_epoch = self
            .entries
            .iter()
            .flat_map(|e| self.runs_of(e))
            .filter_map(|r| r.rows.last().map(|row| row.epoch))
            .max()
            .unwrap_or(1) as f64;
        let panels: Vec<CurvePanel> = metrics
            .iter()
            .map(|m| {
                let series: Vec<Vec<(f64, Stat)>> = self
                    .entries
                    .iter()
                    .map(|e| {
                        let curve = e.variant.learning_curve(&report.sets[e.variant.set], m);
                        curve.into_iter().map(|(x, s)| (x as f64, s)).collect()
                    })
                    .collect();
                let y_range = span(series.iter().flatten().flat_map(|(_, s)| [bounds(s).0, bounds(s).1]));
                CurvePanel {
                    title: m.to_string(),
                    x_desc: "epoch".into(),
                    y_desc: axis_label(m, natural_direction(m)),
                    x_range: (0.7, max_epoch + 0.3),
                    x_labels: max_epoch.min(10.0) as usize + 1,
                    y_range,
                    series,
                    mark_points: true,
                }
            })
            .collect();
        let legend = Legend::new("variant (mean ± std band)", self.names());
        let curves = Curves { panels, legend, entries: self.entries };
        let caption = format!(
            "Per epoch, the mean over seeds (line) and ± one standard deviation (band) of the training loss, the validation loss and {}. Variants in rank order.",
            report.metric
        );
        self.save(&curves, "learning_curves", "Learning curves", caption)
    }

    /// Every measured metric at the report's epoch, as bars with error bars.
    fn final_metrics(&self) -> Result<Figure> {
        let (at, at_words) = (self.at, &self.at_words);
        let bar_metrics: Vec<&'static str> =
            self.report.measured_metrics().into_iter().filter(|m| *m != "train_loss").collect();
        let widest = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| text_width(&format!("{}. {}", i + 1, e.label), 13))
            .max()
            .unwrap_or(0);
        let bars = Bars {
            metrics: bar_metrics
                .iter()
                .map(|m| (*m, self.entries.iter().map(|e| e.variant.stat(at, m)).collect()))
                .collect(),
            entries: self.entries,
            names_width: (widest + 24).clamp(120, 340),
            title: format!("Final metrics {at_words}: mean over seeds, error bars ± one standard deviation"),
        };
        let caption = format!(
            "Each metric {at_words}, mean over seeds with ± one standard deviation; variants ranked by {}. Arrows give each metric's better direction; \"axis cut\" marks panels whose axis does not start at zero.",
            self.report.metric
        );
        self.save(&bars, "final_metrics", "Final metrics", caption)
    }

    /// PSNR against colorfulness: means, each seed, and the ground truth's colorfulness.
    fn psnr_colorfulness(&self) -> Result<Figure> {
        let at = self.at;
        let points = self
            .entries
            .iter()
            .map(|e| {
                let mean = e.variant.stat(at, "colorfulness").zip(e.variant.stat(at, "psnr"));
                let seeds = self
                    .runs_of(e)
                    .iter()
                    .filter_map(|r| at.row(r))
                    .filter_map(|row| row.get("colorfulness").zip(row.get("psnr")))
                    .collect();
                ScatterPoints { mean, seeds }
            })
            .collect();
        let truth = self.entries.iter().filter_map(|e| e.variant.stat(at, "colorfulness_gt").map(|s| s.mean));
        let scatter = Scatter {
            points,
            truth: Stat::of(truth).map(|s| s.mean),
            entries: self.entries,
            legend: Legend::new("variant (mean ± std; circles: seeds)", self.names()),
            title: format!("PSNR against colorfulness {}", self.at_words),
        };
        let caption = "The trade-off the literature argues about: regression towards the mean colour scores well on PSNR but desaturates; the dashed line is the ground truth's colorfulness. Filled dots are means over seeds with ± one standard deviation both ways, open circles single seeds.".into();
        self.save(&scatter, "psnr_colorfulness", "PSNR against colorfulness", caption)
    }

    /// The cumulative ab-accuracy curves, raw and rebalanced, where the runs wrote them.
    fn ab_accuracy(&self) -> Result<Option<Figure>> {
        let at = self.at;
        let accuracy: Vec<Option<AccuracyStats>> =
            self.entries.iter().map(|e| e.variant.accuracy_curve(&self.report.sets[e.variant.set], at)).collect();
        if accuracy.iter().all(Option::is_none) {
            return Ok(None);
        }
        let panel = |title: &str, pick: &dyn Fn(&AccuracyStats) -> Option<Vec<Stat>>| CurvePanel {
            title: title.into(),
            x_desc: "threshold: ab distance".into(),
            y_desc: "pixels within the threshold, %".into(),
            x_range: (0.0, 150.0),
            x_labels: 8,
            y_range: (0.0, 100.0),
            series: accuracy
                .iter()
                .map(|a| {
                    a.as_ref()
                        .and_then(pick)
                        .map_or(Vec::new(), |s| s.into_iter().enumerate().map(|(t, s)| (t as f64, s)).collect())
                })
                .collect(),
            mark_points: false,
        };
        let mut panels = vec![panel("raw accuracy", &|a| Some(a.raw.clone()))];
        if accuracy.iter().flatten().any(|a| a.rebalanced.is_some()) {
            panels.push(panel("class-rebalanced accuracy", &|a| a.rebalanced.clone()));
        }
        let legend_lines = self
            .entries
            .iter()
            .map(|e| {
                let auc = |m: &str| e.variant.stat(at, m).map_or("-".into(), |s| format!("{:.1}", s.mean));
                (format!("{} ({} / {})", e.label, auc("auc"), auc("auc_rebal")), e.color)
            })
            .collect();
        let legend = Legend::new("variant (AuC raw / rebalanced)", legend_lines);
        let curves = Curves { panels, legend, entries: self.entries };
        let missing = match accuracy.iter().filter(|a| a.is_none()).count() {
            0 => String::new(),
            n => format!(" {n} variant(s) have no {CURVE_FILE} at that epoch and are missing."),
        };
        let caption = format!(
            "Zhang et al. 2016, figure 3: the share of pixels whose predicted ab lies within each distance of the truth, thresholds 0 to 150, {}; raw and weighted by the inverse prior of the true colour's class. Mean over seeds with ± one standard deviation.{missing}",
            self.at_words
        );
        self.save(&curves, "ab_accuracy", "Cumulative ab accuracy", caption).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::fake_report;

    #[test]
    fn colours_are_distinct_for_many_variants() {
        for n in [2, 10, 11, 30] {
            let colours: Vec<RGBColor> = (0..n).map(|i| color(i, n)).collect();
            for i in 0..n {
                for j in 0..i {
                    assert_ne!(colours[i], colours[j], "{n} variants: {i} and {j}");
                }
            }
        }
    }

    #[test]
    fn figures_grow_with_the_number_of_variants_instead_of_crowding_them() {
        let mut heights = Vec::new();
        for n in [2, 30] {
            let dir = tempfile::tempdir().unwrap();
            let figures = write_all(&fake_report(n), dir.path()).unwrap();
            let stems: Vec<&str> = figures.iter().map(|f| f.stem.as_str()).collect();
            assert_eq!(stems, ["learning_curves", "final_metrics", "psnr_colorfulness", "ab_accuracy"]);
            for f in &figures {
                assert!(image::open(f.png()).is_ok() && dir.path().join(format!("{}.svg", f.stem)).is_file());
            }
            let height = |stem: &str| image::open(dir.path().join(format!("{stem}.png"))).unwrap().height();
            // Every legend line and every bar row has its own room.
            assert!(height("learning_curves") as usize >= n * ROW as usize, "{n} variants");
            assert!(height("final_metrics") as usize >= n * 24, "{n} variants");
            heights.push(height("final_metrics"));
        }
        assert!(heights[1] > heights[0]);
    }

    #[test]
    fn text_renders_with_the_compiled_in_font() {
        register_font().unwrap();
        assert!(text_width("colorfulness", 13) > 40);
        let long = fit("a very long variant name that cannot fit in a narrow legend", 13, 120);
        assert!(long.ends_with('…') && text_width(&long, 13) <= 120, "{long}");
        // Text must actually draw pixels in the PNG backend (no silent missing font).
        let (w, h) = (120u32, 30u32);
        let mut pixels = vec![255u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
            root.draw(&Text::new("psnr", (5, 5), (FONT, 16).into_font())).unwrap();
            root.present().unwrap();
        }
        assert!(pixels.iter().filter(|&&p| p < 128).count() > 20, "no text drawn");
    }
}

//! Pictures: per-GPU loads of one layer before and after placement, and per-layer balancedness
//! across layers — one chart per question, as SVG or PNG (pure Rust, font embedded).

use std::path::Path;
use std::sync::Once;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use eplb::{EplbError, Evaluation, Problem, Result};

/// One curve of a [`LoadPlot`]: a named placement's per-GPU loads on the chosen layer and its
/// balancedness on every layer.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotSeries {
    /// Legend name.
    pub name: String,
    /// Per-GPU loads on the chosen layer.
    pub gpu_loads: Vec<f64>,
    /// Balancedness (mean/max) of every layer.
    pub balancedness: Vec<f64>,
}

/// What [`draw`] draws.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadPlot {
    /// A line naming the data and cluster.
    pub title: String,
    /// The layer whose per-GPU loads are drawn.
    pub layer: usize,
    /// The best lower bound of that layer (drawn as a dashed line).
    pub lower_bound: f64,
    /// "Before" first, then one series per strategy.
    pub series: Vec<PlotSeries>,
}

impl LoadPlot {
    /// A plot with the identity placement as "before" (expert `e` on GPU `e * P / E`, one
    /// replica each — what a model loads without EPLB) and the given evaluated placements as
    /// "after".
    pub fn new(
        title: impl Into<String>,
        problem: &Problem,
        layer: usize,
        after: &[(&str, &Evaluation)],
    ) -> Self {
        let series = std::iter::once(identity_series(problem, layer))
            .chain(after.iter().map(|(name, e)| PlotSeries {
                name: (*name).to_string(),
                gpu_loads: e.layers[layer].gpu_loads.clone(),
                balancedness: e.layers.iter().map(|l| l.balancedness).collect(),
            }))
            .collect();
        let lower_bound = after
            .iter()
            .map(|(_, e)| e.layers[layer].lower_bound)
            .fold(0.0, f64::max);
        Self {
            title: title.into(),
            layer,
            lower_bound,
            series,
        }
    }
}

fn identity_series(problem: &Problem, layer: usize) -> PlotSeries {
    let gpus = problem.cluster().gpus;
    let experts = problem.num_experts();
    let loads_of = |w: &[f64]| {
        let mut g = vec![0.0; gpus];
        for (e, &x) in w.iter().enumerate() {
            g[e * gpus / experts] += x;
        }
        g
    };
    let balancedness = problem
        .loads()
        .rows()
        .map(|w| {
            let g = loads_of(w);
            let max = g.iter().copied().fold(0.0, f64::max);
            if max == 0.0 {
                1.0
            } else {
                g.iter().sum::<f64>() / gpus as f64 / max
            }
        })
        .collect();
    PlotSeries {
        name: "identity (no EPLB)".into(),
        gpu_loads: loads_of(problem.loads().layer(layer)),
        balancedness,
    }
}

static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        // DejaVu Sans (Bitstream Vera licence, see assets/DejaVuSans-LICENSE.txt).
        let bytes: &'static [u8] = include_bytes!("../assets/DejaVuSans.ttf");
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
            .map_err(|_| ())
            .expect("the embedded font is valid");
    });
}

/// A picture that draws on any plotters backend (so one function writes SVG and PNG).
pub(crate) trait Picture {
    /// Width and height in pixels.
    fn size(&self) -> (u32, u32);
    /// Draws the picture on `root`.
    fn paint<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String>;
}

impl Picture for LoadPlot {
    fn size(&self) -> (u32, u32) {
        (1100, 1000)
    }

    fn paint<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String> {
        charts(self, root)
    }
}

/// Draws `plot` to `path`: SVG for `.svg`, PNG for `.png`.
///
/// # Errors
/// [`EplbError::Format`] for another extension; [`EplbError::Plot`] when drawing or writing
/// fails.
pub fn draw(plot: &LoadPlot, path: &Path) -> Result<()> {
    render(plot, path)
}

/// Draws any [`Picture`] to `path`: SVG for `.svg`, PNG for `.png`.
///
/// # Errors
/// As [`draw`].
pub(crate) fn render(picture: &impl Picture, path: &Path) -> Result<()> {
    register_font();
    let size = picture.size();
    let fail = |e: String| EplbError::Plot {
        path: path.into(),
        message: e,
    };
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("svg") => {
            let root = SVGBackend::new(path, size).into_drawing_area();
            picture.paint(&root).map_err(fail)?;
            root.present().map_err(|e| fail(e.to_string()))
        }
        Some("png") => {
            let root = BitMapBackend::new(path, size).into_drawing_area();
            picture.paint(&root).map_err(fail)?;
            root.present().map_err(|e| fail(e.to_string()))
        }
        _ => Err(EplbError::Format {
            path: path.into(),
            message: "unknown picture format: use a file name ending in .svg or .png".into(),
        }),
    }
}

/// One polyline with dot markers and a legend entry.
fn draw_curve<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    values: &[f64],
    colour: RGBColor,
    dot: i32,
    label: String,
) -> std::result::Result<(), String> {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    let points: Vec<(f64, f64)> = values
        .iter()
        .enumerate()
        .map(|(i, &y)| (i as f64, y))
        .collect();
    chart
        .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
        .map_err(e)?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(3)));
    chart
        .draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, dot, colour.filled())),
        )
        .map_err(e)?;
    Ok(())
}

/// The legend box, in the house style.
fn draw_legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    position: SeriesLabelPosition,
) -> std::result::Result<(), String> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(|x| x.to_string())
}

/// `12.3M`, `45k`, `7.5`: tick labels people can read.
fn human(x: f64) -> String {
    let a = x.abs();
    if a >= 1e9 {
        format!("{:.1}G", x / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", x / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", x / 1e3)
    } else {
        format!("{x:.1}")
    }
}

/// Series colours: "before" in grey, strategies in distinct colours.
fn colour(i: usize) -> RGBColor {
    const PALETTE: [RGBColor; 6] = [
        RGBColor(150, 150, 150),
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
        RGBColor(255, 127, 14),
    ];
    PALETTE[i % PALETTE.len()]
}

fn charts<DB: DrawingBackend>(
    plot: &LoadPlot,
    root: &DrawingArea<DB, Shift>,
) -> std::result::Result<(), String> {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    root.fill(&WHITE).map_err(e)?;
    let root = root.titled(&plot.title, ("sans-serif", 22)).map_err(e)?;
    let (top, bottom) = root.split_vertically(480);

    // Chart 1: per-GPU loads of the chosen layer.
    let gpus = plot.series.first().map_or(0, |s| s.gpu_loads.len());
    let ymax = plot
        .series
        .iter()
        .flat_map(|s| s.gpu_loads.iter().copied())
        .fold(plot.lower_bound, f64::max)
        * 1.3; // headroom for the legend
    let mut chart = ChartBuilder::on(&top)
        .caption(
            format!(
                "Layer {}: load of each GPU before and after placement",
                plot.layer
            ),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.5f64..(gpus as f64 - 0.5), 0f64..ymax.max(1.0))
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("GPU")
        .y_desc("load (tokens)")
        .y_label_formatter(&|y| human(*y))
        .x_labels(gpus.min(32))
        .x_label_formatter(&|x| format!("{}", x.round() as i64))
        .axis_desc_style(("sans-serif", 15))
        .draw()
        .map_err(e)?;
    for (i, s) in plot.series.iter().enumerate() {
        let max = s.gpu_loads.iter().copied().fold(0.0, f64::max);
        let label = format!("{} (max {})", s.name, human(max));
        draw_curve(&mut chart, &s.gpu_loads, colour(i), 3, label)?;
    }
    let bound = plot.lower_bound;
    chart
        .draw_series(DashedLineSeries::new(
            vec![(-0.5, bound), (gpus as f64 - 0.5, bound)],
            8,
            5,
            BLACK.stroke_width(1),
        ))
        .map_err(e)?
        .label(format!("lower bound on the optimum ({})", human(bound)))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;

    // Chart 2: balancedness of every layer.
    let layers = plot.series.first().map_or(0, |s| s.balancedness.len());
    let ymin = plot
        .series
        .iter()
        .flat_map(|s| s.balancedness.iter().copied())
        .fold(1.0, f64::min);
    let mut chart = ChartBuilder::on(&bottom)
        .caption(
            "Balancedness (mean / max GPU load) of every layer",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(80)
        // The lowest third is left free for the legend.
        .build_cartesian_2d(
            -0.5f64..(layers as f64 - 0.5).max(0.5),
            (ymin - 0.5 * (1.0 - ymin) - 0.01).max(0.0)..1.005f64,
        )
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("layer")
        .y_desc("balancedness (1 = perfect)")
        .x_label_formatter(&|x| format!("{}", x.round() as i64))
        .axis_desc_style(("sans-serif", 15))
        .draw()
        .map_err(e)?;
    for (i, s) in plot.series.iter().enumerate() {
        let mean = s.balancedness.iter().sum::<f64>() / s.balancedness.len().max(1) as f64;
        let label = format!("{} (mean {mean:.4})", s.name);
        draw_curve(&mut chart, &s.balancedness, colour(i), 2, label)?;
    }
    draw_legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    Ok(())
}

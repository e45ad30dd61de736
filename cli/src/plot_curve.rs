//! `rebalance --plot`: one layer's max-load-versus-transfers trade-off curve.

use std::path::Path;

use eplb::live::LayerRebalance;
use eplb::{EplbError, Result};
use plotters::prelude::*;

/// Draws the curve of `layer` (the search's points, the fresh placement's point, the chosen
/// point and the lower bound) to `path` (`.svg` or `.png`).
///
/// # Errors
/// [`EplbError::Format`] for another extension; [`EplbError::Plot`] when drawing fails.
pub(crate) fn draw(title: &str, layer: &LayerRebalance, path: &Path) -> Result<()> {
    super::plot::register_font();
    let fail = |e: String| EplbError::Plot {
        path: path.into(),
        message: e,
    };
    let size = (900, 600);
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("svg") => {
            let root = SVGBackend::new(path, size).into_drawing_area();
            chart(title, layer, &root).map_err(fail)?;
            root.present().map_err(|e| fail(e.to_string()))
        }
        Some("png") => {
            let root = BitMapBackend::new(path, size).into_drawing_area();
            chart(title, layer, &root).map_err(fail)?;
            root.present().map_err(|e| fail(e.to_string()))
        }
        _ => Err(EplbError::Format {
            path: path.into(),
            message: "unknown picture format: use a file name ending in .svg or .png".into(),
        }),
    }
}

fn chart<DB: DrawingBackend>(
    title: &str,
    layer: &LayerRebalance,
    root: &DrawingArea<DB, plotters::coord::Shift>,
) -> std::result::Result<(), String> {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    root.fill(&WHITE).map_err(e)?;
    let points: Vec<(f64, f64)> = layer
        .curve
        .iter()
        .map(|p| (p.transfers as f64, p.max_load))
        .collect();
    let fresh = layer.fresh.map(|p| (p.transfers as f64, p.max_load));
    let chosen = (layer.count.transfers as f64, layer.new_max);
    let all: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .chain(fresh)
        .chain([chosen, (0.0, layer.lower_bound)])
        .collect();
    let x_max = all.iter().map(|p| p.0).fold(1.0, f64::max) * 1.05;
    let y_min = all.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let y_max = all.iter().map(|p| p.1).fold(0.0, f64::max);
    let pad = ((y_max - y_min) * 0.05).max(y_max * 1e-6).max(1e-9);
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(90)
        .build_cartesian_2d(0.0..x_max, (y_min - pad)..(y_max + pad))
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("transfers")
        .y_desc("max GPU load")
        .draw()
        .map_err(e)?;
    // The search's path, step by step (a step may give transfers back).
    chart
        .draw_series(LineSeries::new(points.clone(), BLUE.stroke_width(2)))
        .map_err(e)?
        .label("budgeted search")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(3)));
    chart
        .draw_series(points.iter().map(|&p| Circle::new(p, 3, BLUE.filled())))
        .map_err(e)?;
    if let Some(p) = fresh {
        chart
            .draw_series([Circle::new(p, 6, RED.filled())])
            .map_err(e)?
            .label("fresh placement, aligned")
            .legend(|(x, y)| Circle::new((x + 10, y), 5, RED.filled()));
    }
    chart
        .draw_series([TriangleMarker::new(chosen, 9, GREEN.filled())])
        .map_err(e)?
        .label("chosen")
        .legend(|(x, y)| TriangleMarker::new((x + 10, y), 6, GREEN.filled()));
    chart
        .draw_series(LineSeries::new(
            [(0.0, layer.lower_bound), (x_max, layer.lower_bound)],
            BLACK.stroke_width(1),
        ))
        .map_err(e)?
        .label("lower bound")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(1)));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(e)?;
    Ok(())
}

//! `rebalance --plot`: one layer's max-load-versus-transfers trade-off curve.

use std::path::Path;

use eplb::live::LayerRebalance;
use eplb::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::plot::Picture;

/// Draws the curve of `layer` (the search's points, the fresh placement's point, the chosen
/// point and the lower bound) to `path` (`.svg` or `.png`).
///
/// # Errors
/// [`EplbError::Format`](eplb::EplbError::Format) for another extension;
/// [`EplbError::Plot`](eplb::EplbError::Plot) when drawing fails.
pub(crate) fn draw(title: &str, layer: &LayerRebalance, path: &Path) -> Result<()> {
    super::plot::render(&Curve { title, layer }, path)
}

/// One layer's trade-off curve as a picture.
struct Curve<'a> {
    title: &'a str,
    layer: &'a LayerRebalance,
}

impl Picture for Curve<'_> {
    fn size(&self) -> (u32, u32) {
        (900, 600)
    }

    fn paint<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String> {
        chart(self.title, self.layer, root)
    }
}

fn chart<DB: DrawingBackend>(
    title: &str,
    layer: &LayerRebalance,
    root: &DrawingArea<DB, Shift>,
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

//! Scaling of `greedy` and `refine`: one-thread time of a 64-layer solve (synthetic
//! log-normal loads, `sigma = 0.8`) against experts, GPUs and layers, and the large shapes of
//! issue 16; a Markdown table on standard output, a CSV and a log-log plot (PNG).
//!
//! ```text
//! cargo run --release -p eplb-lab --bin scaling                       # table only
//! cargo run --release -p eplb-lab --bin scaling -- docs/scaling.png   # and the plot
//! cargo run --release -p eplb-lab --bin scaling -- --grid             # the whole grid
//! cargo run --release -p eplb-lab --bin scaling -- --grid-gaps        # its quality, P >= 128
//! cargo run --release -p eplb-lab --bin scaling -- --shape E R P [N G]  # one shape, quality
//! ```
//!
//! `--grid` sweeps every shape users run: E in 64..1024, P in 8..512, R/P from 2 to 9 (R at
//! least E), global and hierarchical (8 GPUs per node, max(N, 8) groups), one solve per
//! shape and strategy, and prints the shapes where `refine` took more than 50 ms.
//!
//! Each cell is the median of 5 solves (the strategies interleaved), so that a busy machine
//! shows up as spread, not as a wrong ratio. The criterion group `cargo bench --bench
//! scaling` measures the same axes with statistics.

#![forbid(unsafe_code)]

use std::path::Path;
use std::time::Instant;

use eplb::strategies::{Greedy, Refine};
use eplb::synthetic::lognormal_loads;
use eplb::{solve, Cluster, PlacementStrategy, PolicyChoice, Problem, SolveOptions};
use plotters::prelude::*;

/// One cluster shape and the axis it belongs to.
#[derive(Debug, Clone, Copy)]
struct Shape {
    axis: &'static str,
    layers: usize,
    experts: usize,
    replicas: usize,
    gpus: usize,
    nodes: usize,
    groups: usize,
}

const fn global(axis: &'static str, experts: usize, replicas: usize, gpus: usize) -> Shape {
    Shape {
        axis,
        layers: 64,
        experts,
        replicas,
        gpus,
        nodes: 1,
        groups: 1,
    }
}

/// The axes: experts (R = 5E/4 on 16 GPUs), GPUs (E = 256, the fewest slots >= 320 that
/// the GPUs divide), layers (E = 256, R = 320, P = 64), and the issue's large shapes.
fn shapes() -> Vec<Shape> {
    let mut v: Vec<Shape> = [64, 128, 256, 384, 512, 1024]
        .iter()
        .map(|&e| global("experts", e, e + e / 4, 16))
        .collect();
    v.extend(
        [8, 16, 32, 64, 128, 256, 512]
            .iter()
            .map(|&p: &usize| global("gpus", 256, 320usize.div_ceil(p) * p, p)),
    );
    v.extend([1, 8, 256].iter().map(|&layers| Shape {
        layers,
        ..global("layers", 256, 320, 64)
    }));
    v.extend([
        global("large", 384, 448, 64),
        global("large", 1024, 1536, 256),
        global("large", 1024, 1536, 512),
        Shape {
            nodes: 16,
            groups: 64,
            ..global("large", 1024, 1280, 128)
        },
    ]);
    v
}

const REPS: usize = 5;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The 64-layer (or `shape.layers`) synthetic problem of `shape`: hierarchical when it has
/// several nodes.
fn problem(shape: Shape) -> Result<Problem, eplb::EplbError> {
    let loads = lognormal_loads(shape.layers, shape.experts, 0.8, 1_000_000, 7);
    let cluster = Cluster::new(shape.replicas, shape.gpus)
        .with_nodes(shape.nodes)
        .with_groups(shape.groups);
    let policy = if shape.nodes > 1 {
        PolicyChoice::Hierarchical
    } else {
        PolicyChoice::Global
    };
    Problem::new(loads, cluster, policy)
}

/// Median milliseconds of `greedy` and `refine` on `shape` (interleaved repetitions).
fn time(shape: Shape) -> Result<(f64, f64), eplb::EplbError> {
    let problem = problem(shape)?;
    let options = SolveOptions::new().with_threads(Some(1));
    let refine = Refine::default();
    let strategies: [&dyn PlacementStrategy; 2] = [&Greedy, &refine];
    let mut times = [Vec::new(), Vec::new()];
    for _ in 0..REPS {
        for (s, t) in strategies.iter().zip(&mut times) {
            let start = Instant::now();
            std::hint::black_box(solve(&problem, *s, &options)?);
            t.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    let [g, r] = times;
    Ok((median(g), median(r)))
}

/// A log-log chart of time against `x` for one axis.
fn chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    points: &[(f64, f64, f64)],
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let (x0, x1) = (points[0].0 / 1.5, points[points.len() - 1].0 * 1.5);
    let lo = points.iter().map(|p| p.1.min(p.2)).fold(f64::MAX, f64::min) / 2.0;
    let hi = points.iter().map(|p| p.1.max(p.2)).fold(0.0, f64::max) * 2.0;
    let mut c = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((x0..x1).log_scale(), (lo..hi).log_scale())
        .map_err(e)?;
    c.configure_mesh()
        .y_desc("ms (64 layers, one core)")
        .draw()
        .map_err(e)?;
    for (i, (name, colour)) in [("greedy", BLUE), ("refine", RED)].into_iter().enumerate() {
        let series: Vec<(f64, f64)> = points
            .iter()
            .map(|p| (p.0, if i == 0 { p.1 } else { p.2 }))
            .collect();
        c.draw_series(LineSeries::new(series.clone(), colour.stroke_width(2)))
            .map_err(e)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
        c.draw_series(series.iter().map(|&p| Circle::new(p, 3, colour.filled())))
            .map_err(e)?;
    }
    c.configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()
        .map_err(e)
}

fn plot(path: &Path, rows: &[(Shape, f64, f64)]) -> Result<(), String> {
    // DejaVu Sans, the command line's embedded font (see cli/assets/DejaVuSans-LICENSE.txt).
    let font: &'static [u8] = include_bytes!("../../../cli/assets/DejaVuSans.ttf");
    plotters::style::register_font("sans-serif", FontStyle::Normal, font)
        .map_err(|_| "the embedded font is invalid".to_string())?;
    let root = BitMapBackend::new(path, (1200, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let areas = root.split_evenly((1, 2));
    let axis = |name: &str, x: fn(&Shape) -> usize| -> Vec<(f64, f64, f64)> {
        rows.iter()
            .filter(|r| r.0.axis == name)
            .map(|r| (x(&r.0) as f64, r.1, r.2))
            .collect()
    };
    chart(
        &areas[0],
        "experts E (R = 5E/4, P = 16)",
        &axis("experts", |s| s.experts),
    )?;
    chart(
        &areas[1],
        "GPUs P (E = 256, R >= 320)",
        &axis("gpus", |s| s.gpus),
    )?;
    root.present().map_err(|e| e.to_string())
}

/// Every shape of the grid (see the module docs).
fn grid() -> Vec<Shape> {
    let mut v = Vec::new();
    for experts in [64, 128, 256, 384, 512, 1024] {
        for gpus in [8, 16, 32, 64, 128, 256, 512] {
            for per_gpu in 2..=9 {
                let replicas = gpus * per_gpu;
                if replicas < experts {
                    continue;
                }
                v.push(global("grid", experts, replicas, gpus));
                let nodes = (gpus / 8).max(2);
                let groups = nodes.max(8);
                if experts % groups == 0 {
                    v.push(Shape {
                        nodes,
                        groups,
                        ..global("grid", experts, replicas, gpus)
                    });
                }
            }
        }
    }
    v
}

/// One solve of `strategy` on `shape`, milliseconds.
fn once(shape: Shape, strategy: &dyn PlacementStrategy) -> Result<f64, eplb::EplbError> {
    let problem = problem(shape)?;
    let options = SolveOptions::new().with_threads(Some(1));
    let start = Instant::now();
    std::hint::black_box(solve(&problem, strategy, &options)?);
    Ok(start.elapsed().as_secs_f64() * 1e3)
}

fn print_row(shape: Shape, g: f64, r: f64) {
    println!(
        "| {} | {} | {} | {} | {} | {} | {} | {g:.2} | {r:.2} |",
        shape.axis,
        shape.layers,
        shape.experts,
        shape.replicas,
        shape.gpus,
        shape.nodes,
        shape.groups
    );
}

/// The grid sweep: one solve of each strategy per shape; prints every shape where `refine`
/// took more than 50 ms, slowest first.
fn sweep_grid() -> Result<(), Box<dyn std::error::Error>> {
    let refine = Refine::default();
    let mut rows = Vec::new();
    for shape in grid() {
        rows.push((shape, once(shape, &Greedy)?, once(shape, &refine)?));
    }
    rows.sort_by(|a, b| b.2.total_cmp(&a.2));
    let slow = rows.iter().filter(|r| r.2 > 50.0).count();
    println!(
        "{} shapes, {slow} where refine took more than 50 ms (one solve each):",
        rows.len()
    );
    println!("| axis | layers | E | R | P | N | G | greedy ms | refine ms |");
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    for &(shape, g, r) in rows.iter().take(slow.max(5)) {
        print_row(shape, g, r);
    }
    Ok(())
}

/// Mean and worst of a layer's gaps, in percent.
fn gap_stats(v: &[f64]) -> (f64, f64) {
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    (mean * 100.0, v.iter().copied().fold(0.0, f64::max) * 100.0)
}

/// The quality over the grid's global shapes with 128 GPUs or more and more replicas than
/// experts (where `refine`'s search is wide, and there is a choice of counts): each shape's
/// mean and worst gap of `greedy` and `refine` over the 64 layers, and how many times farther
/// from the bound `greedy` is; prints them all, those where `refine` is least ahead (on the
/// mean gap) first, and the least ratio on the worst layer.
fn grid_gaps() -> Result<(), Box<dyn std::error::Error>> {
    let refine = Refine::default();
    let mut rows = Vec::new();
    let wide = |s: &Shape| s.gpus >= 128 && s.nodes == 1 && s.replicas > s.experts;
    for shape in grid().into_iter().filter(wide) {
        let problem = problem(shape)?;
        let (gm, gx) = gap_stats(&gaps(&problem, &Greedy)?);
        let (rm, rx) = gap_stats(&gaps(&problem, &refine)?);
        rows.push((shape, gm, gx, rm, rx));
    }
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::INFINITY };
    rows.sort_by(|a, b| ratio(a.1, a.3).total_cmp(&ratio(b.1, b.3)));
    println!(
        "{} global shapes with 128 GPUs or more and R > E; greedy's mean gap / refine's, least first:",
        rows.len()
    );
    println!("| E | R | P | N | greedy gap mean / worst | refine gap mean / worst | ratio mean / worst |");
    println!("|--:|--:|--:|--:|--:|--:|--:|");
    for &(s, gm, gx, rm, rx) in &rows {
        println!(
            "| {} | {} | {} | {} | {gm:.3}% / {gx:.3}% | {rm:.3}% / {rx:.3}% | {:.1} / {:.1} |",
            s.experts,
            s.replicas,
            s.gpus,
            s.nodes,
            ratio(gm, rm),
            ratio(gx, rx)
        );
    }
    let worst = rows
        .iter()
        .map(|r| ratio(r.2, r.4))
        .fold(f64::INFINITY, f64::min);
    let below = |x: f64| rows.iter().filter(|r| ratio(r.1, r.3) < x).count();
    println!(
        "least ratio on the worst layer: {worst:.2}; shapes with a mean ratio below 2: {}, below 3: {}",
        below(2.0),
        below(3.0)
    );
    Ok(())
}

/// Gap of a layer's largest GPU load to the evaluator's lower bound, `max / bound - 1`.
fn gaps(problem: &Problem, strategy: &dyn PlacementStrategy) -> Result<Vec<f64>, eplb::EplbError> {
    let options = SolveOptions::new().with_threads(Some(1));
    let solution = solve(problem, strategy, &options)?;
    let report = eplb::evaluate(problem, &solution.placement, &[])?;
    Ok(report
        .layers
        .iter()
        .map(|l| l.max_load / l.lower_bound - 1.0)
        .collect())
}

/// One shape in detail: the times of `greedy` and `refine` (medians of 5) and each one's gap
/// to the lower bound, mean and max over the layers, in percent.
fn one_shape(args: &[usize]) -> Result<(), Box<dyn std::error::Error>> {
    let &[experts, replicas, gpus, ..] = args else {
        return Err("--shape needs E R P [N G]".into());
    };
    let (nodes, groups) = match args {
        [_, _, _, n, g] => (*n, *g),
        _ => (1, 1),
    };
    let shape = Shape {
        nodes,
        groups,
        ..global("shape", experts, replicas, gpus)
    };
    let problem = problem(shape)?;
    let (g, r) = time(shape)?;
    let (gm, gx) = gap_stats(&gaps(&problem, &Greedy)?);
    let (rm, rx) = gap_stats(&gaps(&problem, &Refine::default())?);
    println!(
        "E={experts} R={replicas} P={gpus} N={nodes} G={groups}: greedy {g:.2} ms, gap mean {gm:.4}% max {gx:.4}%; refine {r:.2} ms, gap mean {rm:.4}% max {rx:.4}%"
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args().nth(1);
    if out.as_deref() == Some("--grid") {
        return sweep_grid();
    }
    if out.as_deref() == Some("--grid-gaps") {
        return grid_gaps();
    }
    if out.as_deref() == Some("--shape") {
        let args = std::env::args()
            .skip(2)
            .map(|a| a.parse::<usize>())
            .collect::<Result<Vec<_>, _>>()?;
        return one_shape(&args);
    }
    println!("| axis | layers | E | R | P | N | G | greedy ms | refine ms |");
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    let mut rows = Vec::new();
    for shape in shapes() {
        let (g, r) = time(shape)?;
        print_row(shape, g, r);
        rows.push((shape, g, r));
    }
    if let Some(path) = out {
        plot(Path::new(&path), &rows)?;
        println!("plot: {path}");
    }
    Ok(())
}

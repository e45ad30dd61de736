//! Human-readable tables shared by the commands.

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};
use eplb::objective::StepEvaluation;
use eplb::{Evaluation, Solution};

/// A table with the house style.
pub(crate) fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(header.iter().map(Cell::new));
    t
}

/// A right-aligned numeric cell.
pub(crate) fn num(text: String) -> Cell {
    Cell::new(text).set_alignment(CellAlignment::Right)
}

/// Formats a load with enough precision to compare strategies.
pub(crate) fn load(x: f64) -> String {
    if x.abs() >= 1e6 {
        format!("{x:.0}")
    } else {
        format!("{x:.3}")
    }
}

/// Formats a ratio as a percentage.
pub(crate) fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{:.4}%", 100.0 * x)
    } else {
        "inf".into()
    }
}

/// Per-layer metrics (and status when a solution is given).
pub(crate) fn layer_table(evaluation: &Evaluation, solution: Option<&Solution>) -> Table {
    let mut header = vec![
        "layer",
        "max load",
        "mean load",
        "balancedness",
        "imbalance",
        "lower bound",
        "gap",
        "co-located",
        "violations",
    ];
    if solution.is_some() {
        header.push("status");
    }
    let mut t = table(&header);
    for (l, r) in evaluation.layers.iter().enumerate() {
        let mut row = vec![
            num(r.layer.to_string()),
            num(load(r.max_load)),
            num(load(r.mean_load)),
            num(format!("{:.4}", r.balancedness)),
            num(pct(r.imbalance)),
            num(load(r.lower_bound)),
            num(pct(r.gap)),
            num(r.colocated_replicas.to_string()),
            num(r.violations.len().to_string()),
        ];
        if let Some(s) = solution {
            row.push(Cell::new(s.layers[l].status.to_string()));
        }
        t.add_row(row);
    }
    t
}

/// Per-layer objectives over the steps of per-step loads.
pub(crate) fn step_table(steps: &StepEvaluation) -> Table {
    let mut t = table(&[
        "layer",
        "max of mean loads",
        "mean_step_max",
        "worst_step_max",
        "sum of step maxes",
        "worst step",
    ]);
    for r in &steps.layers {
        t.add_row(vec![
            num(r.layer.to_string()),
            num(load(r.mean_max)),
            num(load(r.mean_step_max)),
            num(load(r.worst_step_max)),
            num(load(r.sum_step_max)),
            num(r.worst_step.to_string()),
        ]);
    }
    t
}

/// One line summarising the per-step objectives.
pub(crate) fn step_summary_line(steps: &StepEvaluation) -> String {
    let s = &steps.summary;
    format!(
        "{} steps; over all layers: mean {}, sum-of-step-max {}, worst step {}",
        s.steps,
        load(s.mean_max),
        load(s.sum_step_max),
        load(s.worst_step_max)
    )
}

/// One line summarising an evaluation.
pub(crate) fn summary_line(evaluation: &Evaluation) -> String {
    let s = &evaluation.summary;
    format!(
        "{} layers, {} feasible; step balancedness {:.4} (worst layer {:.4}); max gap to bound {}, mean {}",
        s.layers,
        s.feasible_layers,
        s.balancedness,
        s.min_balancedness,
        pct(s.max_gap),
        pct(s.mean_gap)
    )
}

/// `R=.., P=.., N=.., G=.., policy` of a problem, for titles.
pub(crate) fn shape(problem: &eplb::Problem) -> String {
    let c = problem.cluster();
    format!(
        "{}x{} experts, R={}, P={}, N={}, G={}, {}",
        problem.num_layers(),
        problem.num_experts(),
        c.replicas,
        c.gpus,
        c.nodes,
        c.groups,
        problem.policy()
    )
}

/// The cells of one comparison row: strategy, step load, balancedness, gaps, proven, time.
pub(crate) fn comparison_cells(row: &eplb::compare::ComparisonRow) -> Vec<Cell> {
    vec![
        Cell::new(&row.strategy),
        num(load(row.summary.sum_max_load)),
        num(format!("{:.4}", row.summary.balancedness)),
        num(format!(
            "{} / {}",
            pct(row.max_gap_to_best_bound),
            pct(row.mean_gap_to_best_bound)
        )),
        num(format!("{}/{}", row.proven_optimal, row.summary.layers)),
        num(format!("{:.2} ms", row.seconds * 1e3)),
    ]
}

/// Headers matching [`comparison_cells`].
pub(crate) const COMPARISON_HEADER: [&str; 6] = [
    "strategy",
    "sum of layer max loads",
    "balancedness",
    "gap to best bound (max / mean)",
    "proven optimal",
    "time",
];

/// The notice for layers whose node bound's split search was cut short by its work budget
/// (`None` when there are none): their `lower_bound` holds the weaker closed-form node bound.
pub(crate) fn cut_short_bounds_notice(evaluation: &Evaluation) -> Option<String> {
    let n = evaluation.summary.node_bounds_cut_short;
    (n > 0).then(|| {
        format!(
            "{n} of {} layers: the node bound's split search was cut short by its work budget, so their lower bound uses the weaker closed-form node bound (valid; `node_bound: closed_form` in JSON)",
            evaluation.summary.layers
        )
    })
}

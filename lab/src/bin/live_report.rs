//! Live rebalancing on the DeepSeek-V3 traces in `../shared/data`: for every pair (current =
//! the `refine` placement of one trace, new loads = another), the transfers of vLLM's rule
//! (a fresh `refine` placement, experts staying on their GPU keep their slot) against the
//! optimal relabelling (`align`), the budgeted rebalance at 10% and 20% of the slots against
//! an unconstrained `refine`, and the transfer rounds against their lower bound; the timing
//! of `align` and of the heuristic search; the budgeted problem's lower bound
//! (`budgeted_lower_bound`) against the combinatorial one at a tight budget (2% of the slots)
//! and at the pair's budget; the per-step objective `sum-of-step-max` (steps: the old and the
//! new trace) against the mean objective's placement; failed GPUs against `refine` on the
//! live GPUs alone, budgeted and not.
//!
//! ```text
//! cargo run --release -p eplb-lab --bin live-report [DATA_DIR]  # default ../shared/data
//! ```
//!
//! Shapes: `R = 288, P = 32`; the hierarchical policy with 4 nodes and 8 groups.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::Instant;

use eplb::bounds::proven_lower_bound;
use eplb::evaluate::max_gpu_load;
use eplb::formats::read_loads;
use eplb::live::{
    align, budgeted_lower_bound, count_transfers, evaluate_live, place_on_live, rebalance,
    LiveGpus, MoveBudget, RebalanceOptions, TransferPlan,
};
use eplb::objective::{evaluate_steps, Objective, StepLoads};
use eplb::strategies::Refine;
use eplb::{solve, Cluster, Loads, Placement, PolicyChoice, Problem, SolveOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"),
        PathBuf::from,
    );
    let trace = |name: &str| -> Result<Loads, Box<dyn std::error::Error>> {
        Ok(read_loads(
            &dir.join(format!("deepseek-v3_sglang_{name}.json")),
            Default::default(),
        )?
        .loads)
    };
    if !dir.exists() {
        println!("skipped: {} is absent", dir.display());
        return Ok(());
    }
    let pairs = [
        ("prefill_in1024", "prefill_in512", 10),
        ("prefill_in512", "prefill_in2000out100", 10),
        ("prefill_in2000out100", "prefill_in1000out1000", 10),
        ("decode_in1000out1000", "decode_in1800out100", 10),
        ("decode_in1800out100", "decode_in1000out1000", 10),
        ("decode_in1000out1000", "prefill_in1024", 20),
        ("decode_in1800out100", "prefill_in2000out100", 20),
    ];
    let one = SolveOptions::new().with_threads(Some(1));
    for (policy, cluster) in [
        (PolicyChoice::Global, Cluster::new(288, 32)),
        (
            PolicyChoice::Hierarchical,
            Cluster::new(288, 32).with_nodes(4).with_groups(8),
        ),
    ] {
        println!("\n== policy {policy:?}, R=288 P=32 ==");
        println!(
            "{:<46} {:>6} {:>6} {:>6} {:>6} {:>6} {:>8} {:>8} {:>8} {:>7} {:>8} {:>9}",
            "current -> new",
            "vllm%",
            "align%",
            "vX-nd",
            "aX-nd",
            "budget",
            "within1%",
            "notworse",
            "meanGap",
            "rounds",
            "align_ms",
            "search_ms"
        );
        let mut bounds_rows = Vec::new();
        let mut steps_rows = Vec::new();
        for (from, to, pct) in pairs {
            let old = Problem::new(trace(from)?, cluster, policy)?;
            let new = Problem::new(trace(to)?, cluster, policy)?;
            if old.num_layers() != new.num_layers() {
                println!("{from} -> {to}: layer counts differ, skipped");
                continue;
            }
            let current = solve(&old, &Refine::default(), &one)?.placement;
            let fresh = solve(&new, &Refine::default(), &one)?.placement;
            let t = Instant::now();
            let aligned = align(&new, &current, &fresh)?;
            let align_ms = t.elapsed().as_secs_f64() * 1e3;
            let (mut vllm, mut opt, mut vx, mut ox) = (0, 0, 0, 0);
            for l in 0..new.num_layers() {
                let v = count_transfers(new.cluster(), current.layer(l), fresh.layer(l));
                let a = count_transfers(new.cluster(), current.layer(l), aligned.layer(l));
                vllm += v.transfers;
                opt += a.transfers;
                vx += v.cross_node;
                ox += a.cross_node;
            }
            let slots = (new.num_layers() * cluster.replicas) as f64;
            let k = cluster.replicas * pct / 100;
            let options =
                RebalanceOptions::new(MoveBudget::PerLayer(k)).with_solve_options(one.clone());
            let t = Instant::now();
            let result = rebalance(&new, &current, None, &options)?;
            let search_ms = t.elapsed().as_secs_f64() * 1e3;
            let (mut within, mut not_worse, mut gap) = (0, 0, 0.0);
            for layer in new.layers() {
                let l = layer.index();
                let refine = max_gpu_load(&layer, fresh.layer(l));
                let got = max_gpu_load(&layer, result.placement.layer(l));
                let cur = max_gpu_load(&layer, current.layer(l));
                within += usize::from(got <= refine * 1.01);
                not_worse += usize::from(got <= cur);
                gap += (got - refine) / refine;
            }
            let plan = TransferPlan::new(&new, &current, &result.placement, 1)?;
            let rounds_ok = plan
                .layers
                .iter()
                .filter(|p| p.rounds == p.rounds_lower_bound)
                .count();
            let n = new.num_layers();
            println!("{:<46} {:>5.1}% {:>5.1}% {:>6} {:>6} {:>6} {:>5}/{:<2} {:>5}/{:<2} {:>7.3}% {:>4}/{:<2} {:>8.2} {:>9.2}",
                format!("{from} -> {to}"), 100.0 * vllm as f64 / slots, 100.0 * opt as f64 / slots, vx, ox,
                format!("{k}"), within, n, not_worse, n, 100.0 * gap / n as f64, rounds_ok, n, align_ms, search_ms);
            for budget in [cluster.replicas / 50, k] {
                bounds_rows.push(bound_row(
                    &new,
                    &current,
                    budget,
                    &one,
                    &format!("{from} -> {to}"),
                )?);
            }
            steps_rows.push(steps_row(
                &old,
                &new,
                &current,
                k,
                &one,
                &format!("{from} -> {to}"),
            )?);
        }
        println!(
            "\n-- lower bounds of the budgeted problem (heuristic search, no fresh placement) --"
        );
        println!(
            "{:<46} {:>6} {:>9} {:>11} {:>11} {:>9} {:>9}",
            "current -> new",
            "budget",
            "stronger",
            "gap(comb)",
            "gap(budg)",
            "opt(comb)",
            "opt(budg)"
        );
        bounds_rows.iter().for_each(|r| println!("{r}"));
        println!("\n-- per-step objective (steps: old trace, new trace): sum of step max, rebalanced for it vs for the mean --");
        println!(
            "{:<46} {:>6} {:>14} {:>10} {:>10}",
            "current -> new", "budget", "never above", "mean chg", "worst chg"
        );
        steps_rows.iter().for_each(|r| println!("{r}"));
    }
    failed_gpus(&dir, &trace, &one)?;
    Ok(())
}

/// One row of the bounds table: at `budget` transfers per layer, the layers whose budgeted
/// bound is above the combinatorial one, the mean gap of the heuristic's max load to each
/// bound, and the layers each bound proves optimal.
fn bound_row(
    new: &Problem,
    current: &Placement,
    budget: usize,
    one: &SolveOptions,
    name: &str,
) -> Result<String, Box<dyn std::error::Error>> {
    let options =
        RebalanceOptions::new(MoveBudget::PerLayer(budget)).with_solve_options(one.clone());
    let result = rebalance(new, current, None, &options)?;
    let (mut stronger, mut gap_c, mut gap_b, mut opt_c, mut opt_b) = (0, 0.0, 0.0, 0, 0);
    for (layer, r) in new.layers().zip(&result.layers) {
        let comb = proven_lower_bound(&layer);
        let budg = budgeted_lower_bound(&layer, current.layer(layer.index()), budget)?;
        assert!(
            budg <= r.new_max,
            "the budgeted bound is above a placement within the budget"
        );
        stronger += usize::from(budg > comb);
        gap_c += (r.new_max - comb) / comb;
        gap_b += (r.new_max - budg) / budg;
        opt_c += usize::from(r.new_max <= comb);
        opt_b += usize::from(r.new_max <= budg);
    }
    let n = new.num_layers();
    Ok(format!(
        "{name:<46} {budget:>6} {stronger:>6}/{n:<2} {:>10.3}% {:>10.3}% {opt_c:>6}/{n:<2} {opt_b:>6}/{n:<2}",
        100.0 * gap_c / n as f64,
        100.0 * gap_b / n as f64
    ))
}

/// One row of the per-step table: steps = the old and the new trace; the rebalance at `budget`
/// (with `refine` as the fresh candidate) for the mean loads and for `sum-of-step-max`; the
/// layers whose sum of step max is not above the mean objective's placement's, and the mean
/// and worst relative change of it.
fn steps_row(
    old: &Problem,
    new: &Problem,
    current: &Placement,
    budget: usize,
    one: &SolveOptions,
    name: &str,
) -> Result<String, Box<dyn std::error::Error>> {
    let rows = |p: &Problem| -> Result<Loads, Box<dyn std::error::Error>> {
        let rows: Vec<Vec<f64>> = p.layers().map(|l| l.loads().to_vec()).collect();
        Ok(Loads::from_rows(&rows)?)
    };
    let steps = StepLoads::new(vec![rows(old)?, rows(new)?])?;
    let total = Problem::new(steps.total(), *new.cluster(), policy_choice(new))?;
    let base = RebalanceOptions::new(MoveBudget::PerLayer(budget)).with_solve_options(one.clone());
    let refine = Refine::default();
    let mean = rebalance(&total, current, Some(&refine), &base)?;
    let per_step = base.with_steps(Objective::SumOfStepMax, steps.clone());
    let stepped = rebalance(&total, current, Some(&refine), &per_step)?;
    let a = evaluate_steps(&total, &steps, &mean.placement)?;
    let b = evaluate_steps(&total, &steps, &stepped.placement)?;
    let (mut never_above, mut change, mut worst) = (0, 0.0, f64::NEG_INFINITY);
    for (x, y) in a.layers.iter().zip(&b.layers) {
        let (x, y) = (x.sum_step_max, y.sum_step_max);
        never_above += usize::from(y <= x);
        change += (y - x) / x;
        worst = worst.max((y - x) / x);
    }
    let n = total.num_layers();
    Ok(format!(
        "{name:<46} {budget:>6} {never_above:>10}/{n:<3} {:>9.3}% {:>9.3}%",
        100.0 * change / n as f64,
        100.0 * worst
    ))
}

/// The policy choice that gives `problem`'s policy.
fn policy_choice(problem: &Problem) -> PolicyChoice {
    match problem.policy() {
        eplb::Policy::Hierarchical => PolicyChoice::Hierarchical,
        eplb::Policy::Global => PolicyChoice::Global,
    }
}

/// Reads a DeepSeek-V3 trace by its short name.
type Trace<'a> = dyn Fn(&str) -> Result<Loads, Box<dyn std::error::Error>> + 'a;

/// Failed GPUs, global policy: the rebalance (budget 10% of the slots, and unlimited) against
/// `refine` on the live GPUs alone.
fn failed_gpus(
    _dir: &std::path::Path,
    trace: &Trace<'_>,
    one: &SolveOptions,
) -> Result<(), Box<dyn std::error::Error>> {
    println!("\n== failed GPUs, global, R=288 P=32: rebalance vs refine on the live GPUs ==");
    let cluster = Cluster::new(288, 32);
    for (from, to, failed) in [
        ("prefill_in1024", "prefill_in512", vec![3usize, 17]),
        ("decode_in1000out1000", "decode_in1800out100", vec![5]),
        ("prefill_in512", "prefill_in2000out100", vec![0, 1, 2]),
    ] {
        let old = Problem::new(trace(from)?, cluster, PolicyChoice::Global)?;
        let new = Problem::new(trace(to)?, cluster, PolicyChoice::Global)?;
        let current = solve(&old, &Refine::default(), one)?.placement;
        let live = LiveGpus::with_failed(32, &failed)?;
        let reference = place_on_live(&new, &Refine::default(), &live, one)?;
        for budget in [MoveBudget::PerLayer(28), MoveBudget::Unlimited] {
            let options = RebalanceOptions::new(budget)
                .with_solve_options(one.clone())
                .with_live(live.clone());
            let result = rebalance(&new, &current, Some(&Refine::default()), &options)?;
            let got = evaluate_live(&new, &result.placement, &live)?;
            let (mut within, mut gap) = (0, 0.0);
            for (g, r) in got.layers.iter().zip(&reference.evaluation.layers) {
                within += usize::from(g.max_load <= r.max_load * 1.01);
                gap += (g.max_load - r.max_load) / r.max_load;
            }
            let n = got.layers.len();
            let plan = TransferPlan::with_live(&new, &current, &result.placement, 1, &live)?;
            let reloads: usize = plan.layers.iter().map(|p| p.host_reloads).sum();
            println!(
                "{from} -> {to}, failed {failed:?}, {budget:?}: within 1% {within}/{n}, mean gap {:.3}%, transfers {}, host reloads {reloads}, feasible {}",
                100.0 * gap / n as f64,
                plan.transfers(),
                got.is_feasible()
            );
        }
    }
    Ok(())
}

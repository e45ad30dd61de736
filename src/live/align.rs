//! Zero-regret alignment: relabel a new placement so that it needs the fewest transfers from
//! the current one, without changing any GPU's load.
//!
//! The algorithm is in [`align_layer`]'s docs.

use pathfinding::kuhn_munkres::kuhn_munkres_min;
use pathfinding::matrix::Matrix;

use super::holdings::{experts_bound, node_of, Holders};
use crate::error::Result;
use crate::placement::{LayerPlacement, Placement};
use crate::problem::{Cluster, Policy, Problem};

/// Relabels every layer of `new` to need the fewest transfers from `current` (see the
/// algorithm in [`align_layer`]): GPU loads are unchanged, up to the order in which a GPU's
/// slots are summed.
///
/// ```
/// use eplb::live::{align, count_transfers};
/// use eplb::{Cluster, Loads, Placement, PolicyChoice, Problem};
/// let loads = Loads::from_rows(&[vec![4.0, 3.0, 2.0, 1.0]])?;
/// let problem = Problem::new(loads, Cluster::new(4, 2), PolicyChoice::Global)?;
/// let current = Placement::from_phy2log(4, vec![vec![0, 1, 2, 3]])?;
/// let fresh = Placement::from_phy2log(4, vec![vec![3, 2, 0, 1]])?; // the GPUs swapped
/// let aligned = align(&problem, &current, &fresh)?;
/// assert_eq!(aligned.layer(0).phy2log(), &[0, 1, 2, 3]);
/// # Ok::<(), eplb::EplbError>(())
/// ```
///
/// # Errors
/// [`EplbError::InvalidPlacement`](crate::EplbError::InvalidPlacement) when either placement
/// does not fit the problem (layers, experts, slots, missing experts, group rules).
pub fn align(problem: &Problem, current: &Placement, new: &Placement) -> Result<Placement> {
    super::check_shape(problem, current, "the current placement")?;
    super::check_shape(problem, new, "the new placement")?;
    Ok(align_all(problem, current, new))
}

/// [`align_layer`] for every layer (shapes checked by the caller).
fn align_all(problem: &Problem, current: &Placement, new: &Placement) -> Placement {
    let layers = current
        .layers()
        .iter()
        .zip(new.layers())
        .map(|(c, n)| align_layer(problem.cluster(), problem.policy(), c, n))
        .collect();
    Placement::new(problem.num_experts(), layers)
}

/// [`align`] when only the `live` GPUs hold replicas (`new` placed on them, as
/// [`place_on_live`](super::place_on_live) does): both placements are relabelled on the live
/// cluster (its policy), so dead GPUs keep their filler slots and `current`'s slots on dead
/// GPUs count for nothing.
///
/// ```
/// use eplb::live::{align_live, count_transfers, LiveGpus};
/// use eplb::{Cluster, Loads, Placement, PolicyChoice, Problem};
/// let loads = Loads::from_rows(&[vec![4.0, 3.0, 2.0, 1.0]])?;
/// let problem = Problem::new(loads, Cluster::new(6, 3), PolicyChoice::Global)?;
/// let live = LiveGpus::with_failed(3, &[1])?;
/// let current = Placement::from_phy2log(4, vec![vec![0, 1, 0, 0, 2, 3]])?; // GPU 1: filler
/// let fresh = Placement::from_phy2log(4, vec![vec![2, 3, 0, 0, 0, 1]])?;
/// let aligned = align_live(&problem, &current, &fresh, &live)?;
/// assert_eq!(aligned.layer(0).phy2log(), &[0, 1, 0, 0, 2, 3]);
/// # Ok::<(), eplb::EplbError>(())
/// ```
///
/// # Errors
/// As [`align`] on the live cluster (`new`'s live part must be a placement there; `current`
/// must have the right dimensions and hold every expert somewhere), and [`LiveGpus::live_cluster`](super::LiveGpus::live_cluster)'s errors.
pub fn align_live(
    problem: &Problem,
    current: &Placement,
    new: &Placement,
    live: &super::LiveGpus,
) -> Result<Placement> {
    if live.all_live() {
        return align(problem, current, new);
    }
    super::check_with_failed(problem, current, "the current placement")?;
    let cluster = live.live_cluster(problem)?;
    let sub = cluster.problem(problem)?;
    let (current, new) = (cluster.restrict_all(current), cluster.restrict_all(new));
    super::check_shape(&sub, &new, "the new placement")?;
    Ok(cluster.expand_all(&align_all(&sub, &current, &new)))
}

/// Aligns one layer: `new` relabelled to need the fewest transfers from `current` under
/// `policy` (GPUs permuted freely under the global policy; nodes, and GPUs within a node,
/// under the hierarchical one; slots within a GPU under both).
///
/// Both placements must have `cluster.replicas` slots (the caller checks; [`align`] does).
///
/// Three nested assignment problems, each solved exactly with Kuhn–Munkres
/// ([`pathfinding::kuhn_munkres::kuhn_munkres_min`]), unless every new GPU's cheapest
/// physical GPU is its own (no relabelling beats the identity then: the answer of a search
/// that changed a few slots):
///
/// 1. GPUs to GPUs: the cost of putting new GPU `g`'s replicas on physical GPU `h` is the
///    number of them `h` did not hold, times `R + 1`, plus the number the node of `h` did not
///    hold (the cross-node tie-break: since a layer has at most `R` cross-node transfers, the
///    weighted sum orders relabellings by transfers first, then cross-node transfers).
///    The global policy solves one `P x P` problem.
/// 2. The hierarchical policy may only permute nodes and GPUs within a node: it solves the
///    `Q x Q` GPU problem of every (new node, old node) pair, then the `N x N` node problem
///    on their optimal costs.
/// 3. Slots within a GPU: each replica whose expert the slot already held keeps that slot
///    (exact by counting: each expert's kept slots are independent of the others').
///
/// # Complexity
/// `O(P^3 + P^2 S)` for the global policy, `O(N^2 Q^3 + N^3 + P^2 S)` for the hierarchical
/// one (`Q = P / N`, `S = R / P`); `O(P^2 + R H)` when the identity is optimal (`H` the most
/// GPUs holding one expert).
pub fn align_layer(
    cluster: &Cluster,
    policy: Policy,
    current: &LayerPlacement,
    new: &LayerPlacement,
) -> LayerPlacement {
    let experts = experts_bound(current, new);
    let s = cluster.slots_per_gpu();
    let new_gpu = |g: usize| &new.phy2log()[g * s..(g + 1) * s];
    // Weighted cost of new GPU g on physical GPU h: transfers first, cross-node second. It is
    // `S (weight + 1)` less `weight` per replica of g that h held and 1 per replica that h's
    // node held: those counts come from the holders of each replica's expert, not from a scan
    // of every (g, h) pair.
    let weight = (cluster.replicas + 1) as i64;
    let holders = Holders::new(cluster, experts, current);
    let (p, nodes) = (cluster.gpus, cluster.nodes);
    let mut on_gpu = vec![0i64; p * p];
    let mut on_node = vec![0i64; p * nodes];
    for g in 0..p {
        for &e in new_gpu(g).iter().filter(|&&e| e < experts) {
            for &h in holders.gpus(e) {
                on_gpu[g * p + h] += 1;
            }
            for &n in holders.nodes(e) {
                on_node[g * nodes + n] += 1;
            }
        }
    }
    let full = s as i64 * (weight + 1);
    let node = |h: usize| node_of(cluster, h);
    let cost = |g: usize, h: usize| -> i64 {
        full - weight * on_gpu[g * p + h] - on_node[g * nodes + node(h)]
    };
    // target[g] = the physical GPU that takes new GPU g's replicas.
    let target = if identity_is_optimal(p, &cost) {
        (0..p).collect()
    } else {
        match (policy, cluster.gpus_per_node()) {
            (Policy::Hierarchical, Some(q)) if cluster.nodes > 1 => {
                hierarchical_targets(cluster.nodes, q, &cost)
            }
            _ => square_assignment(cluster.gpus, cost),
        }
    };
    let mut phy2log = vec![0; cluster.replicas];
    let (mut taken, mut filled) = (Vec::with_capacity(s), Vec::with_capacity(s));
    for (g, &h) in target.iter().enumerate() {
        keep_slots(
            new_gpu(g),
            &current.phy2log()[h * s..(h + 1) * s],
            &mut phy2log[h * s..(h + 1) * s],
            &mut taken,
            &mut filled,
        );
    }
    LayerPlacement::from_phy2log(phy2log)
}

/// True when every row's smallest cost is on the diagonal: then the identity is an optimal
/// assignment of the `n x n` cost matrix (no assignment costs less than the sum of the row
/// minima), under either policy (it keeps every GPU on its node). This is the common case
/// when `new` is the current placement changed in a few slots (the budgeted search's
/// answer), and checking it costs `n^2` lookups instead of Kuhn–Munkres' `n^3`.
fn identity_is_optimal(n: usize, cost: &impl Fn(usize, usize) -> i64) -> bool {
    (0..n).all(|g| {
        let own = cost(g, g);
        (0..n).all(|h| cost(g, h) >= own)
    })
}

/// The optimal assignment of an `n x n` cost matrix: `result[row] = column`.
fn square_assignment(n: usize, cost: impl Fn(usize, usize) -> i64) -> Vec<usize> {
    if n == 0 {
        return Vec::new();
    }
    let matrix = Matrix::from_fn(n, n, |(r, c)| cost(r, c));
    kuhn_munkres_min(&matrix).1
}

/// Nodes to nodes on the optimal costs of their GPUs-to-GPUs problems.
fn hierarchical_targets(nodes: usize, q: usize, cost: &impl Fn(usize, usize) -> i64) -> Vec<usize> {
    // inner[a * nodes + b] = (cost, GPU assignment) of new node a's GPUs on old node b's.
    let inner: Vec<(i64, Vec<usize>)> = (0..nodes * nodes)
        .map(|ab| {
            let (a, b) = (ab / nodes, ab % nodes);
            let matrix = Matrix::from_fn(q, q, |(i, j)| cost(a * q + i, b * q + j));
            kuhn_munkres_min(&matrix)
        })
        .collect();
    let node_target = square_assignment(nodes, |a, b| inner[a * nodes + b].0);
    let mut target = vec![0; nodes * q];
    for (a, &b) in node_target.iter().enumerate() {
        for (i, &j) in inner[a * nodes + b].1.iter().enumerate() {
            target[a * q + i] = b * q + j;
        }
    }
    target
}

/// Writes the replicas `incoming` into `out` (one GPU's slots) so that every slot whose old
/// expert (`old`) is among them keeps it; the others fill the remaining slots in order.
/// `taken` and `filled` are scratch (reused over the GPUs of a layer: nothing is allocated
/// per GPU).
fn keep_slots(
    incoming: &[usize],
    old: &[usize],
    out: &mut [usize],
    taken: &mut Vec<bool>,
    filled: &mut Vec<bool>,
) {
    taken.clear();
    taken.resize(incoming.len(), false);
    filled.clear();
    filled.resize(out.len(), false);
    for (slot, &e) in old.iter().enumerate() {
        if let Some(i) = (0..incoming.len()).find(|&i| !taken[i] && incoming[i] == e) {
            taken[i] = true;
            out[slot] = e;
            filled[slot] = true;
        }
    }
    let mut rest = incoming
        .iter()
        .zip(taken.iter())
        .filter(|&(_, &t)| !t)
        .map(|(&e, _)| e);
    for (slot, &done) in filled.iter().enumerate() {
        if !done {
            out[slot] = rest.next().expect("as many replicas as slots");
        }
    }
}

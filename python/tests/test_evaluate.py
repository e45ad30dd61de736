"""The evaluator from Python, and place()'s metrics."""

import numpy as np
import pytest
import torch

import eplb

LOADS = [[3, 3, 2]]


def test_a_feasible_placement_and_its_metrics():
    e = eplb.evaluate(LOADS, [[0, 2, 1, 2]], 2, policy="global")
    assert e.feasible and e.violations == []
    m = e.layers[0]
    assert (m.max_load, m.mean_load, m.gpu_loads) == (4.0, 4.0, [4.0, 4.0])
    assert m.balancedness == 1.0 and m.imbalance == 0.0
    assert m.lower_bound == 4.0 and m.gap == 0.0
    assert m.status is None and m.solve_ms is None


def test_greedy_is_not_optimal_and_the_gap_says_so():
    # DESIGN.md's example: greedy replicates a big expert (4.5), the optimum is 4.0.
    greedy = eplb.place(LOADS, 4, 2, policy="global")
    assert greedy.layers[0].max_load == 4.5 and greedy.layers[0].status == "heuristic"
    assert greedy.layers[0].gap == pytest.approx(0.125)
    exact = eplb.place(LOADS, 4, 2, policy="global", strategy="exact")
    assert exact.layers[0].max_load == 4.0 and exact.layers[0].status == "optimal"
    assert exact.layers[0].solve_ms is not None and exact.max_loads == [4.0]


@pytest.mark.parametrize(
    "phy2log, fragment",
    [
        ([[0, 0, 1, 1]], "2"),  # expert 2 has no slot
        ([[0, 1, 2, 5]], "5"),  # no expert 5
    ],
)
def test_broken_placements_are_reported_not_raised(phy2log, fragment):
    e = eplb.evaluate(LOADS, phy2log, 2, policy="global")
    assert not e.feasible
    assert len(e.violations) == 1 and fragment in e.violations[0]
    assert e.violations[0].startswith("layer 0: ")


def test_hierarchical_checks_groups_stay_on_their_node():
    # 4 experts in 2 groups ({0,1}, {2,3}), 2 nodes of one GPU with 2 slots each.
    loads = [[1, 1, 1, 1]]
    assert eplb.evaluate(loads, [[0, 1, 2, 3]], 2, 2, 2).feasible
    split = eplb.evaluate(loads, [[0, 2, 1, 3]], 2, 2, 2)
    assert not split.feasible
    # The same placement is fine without the locality constraint.
    assert eplb.evaluate(loads, [[0, 2, 1, 3]], 2, 2, 2, policy="global").feasible


def test_place_result_object():
    w = torch.from_numpy(np.random.default_rng(1).integers(0, 100, (3, 16)))
    p = eplb.place(w, 24, 8, 2, 4, strategy="refine")
    assert isinstance(p.phy2log, torch.Tensor) and tuple(p.phy2log.shape) == (3, 24)
    assert len(p.layers) == 3 and [m.layer for m in p.layers] == [0, 1, 2]
    for m in p.layers:
        assert m.feasible and m.status == "heuristic"
        assert m.lower_bound <= m.max_load and m.mean_load <= m.max_load
        assert m.gap == pytest.approx((m.max_load - m.lower_bound) / m.lower_bound)
        assert len(m.gpu_loads) == 8 and max(m.gpu_loads) == m.max_load
    assert 0 < p.balancedness <= 1
    # The evaluator gives the same verdict on the arrays alone.
    again = eplb.evaluate(w, p.phy2log, 8, 2, 4)
    assert [m.max_load for m in again.layers] == p.max_loads

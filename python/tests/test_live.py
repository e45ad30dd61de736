"""Live rebalancing from Python: eplb.align, eplb.rebalance with its transfer plan, failed GPUs
(also on eplb.place and eplb.rebalance_experts). Every plan is checked move by move against
the two placements, counted here independently of the library."""

import numpy as np
import pytest
import torch

import eplb

R, G, N, P = 24, 4, 2, 8  # 16 experts, 3 slots per GPU, 4 GPUs per node
S, E = R // P, 16


def loads(seed, layers=3):
    return np.random.default_rng(seed).integers(1, 1000, (layers, E))


def greedy(w, failed=None):
    return eplb.rebalance_experts(w, R, G, N, P, failed_gpus=failed)[0]


def held(row, gpu):
    return {int(e) for e in row[gpu * S:(gpu + 1) * S] if e >= 0}


def needed_transfers(cur_row, new_row, dead=()):
    """The slots of new_row whose GPU did not hold their expert in cur_row."""
    return {
        s for s, e in enumerate(new_row)
        if e >= 0 and s // S not in dead and int(e) not in held(cur_row, s // S)
    }


def check_plan(current, new, plan, dead=()):
    """The plan of one layer is a valid, optimal schedule from current to new."""
    cur, nxt = np.asarray(current)[plan.layer], np.asarray(new)[plan.layer]
    assert plan.transfers == len(plan.moves)
    assert {m.to_slot for m in plan.moves} == needed_transfers(cur, nxt, dead)
    live_holders = lambda e: [g for g in range(P) if g not in dead and e in held(cur, g)]  # noqa: E731
    for m in plan.moves:
        assert nxt[m.to_slot] == m.expert and m.to_slot // S == m.to_gpu
        assert m.to_gpu not in dead and m.expert not in held(cur, m.to_gpu)
        if m.from_gpu is None:
            assert m.from_slot is None and not live_holders(m.expert)
        else:
            assert m.from_gpu not in dead and m.from_slot // S == m.from_gpu
            assert cur[m.from_slot] == m.expert
        node = lambda g: g // (P // N)  # noqa: E731
        assert m.cross_node == (m.from_gpu is None or node(m.from_gpu) != node(m.to_gpu))
    assert plan.host_reloads == sum(m.from_gpu is None for m in plan.moves)
    assert plan.cross_node == sum(m.cross_node for m in plan.moves)
    # Each GPU sends at most one and receives at most one expert per round.
    for r in range(plan.rounds):
        moves = [m for m in plan.moves if m.round == r]
        senders = [m.from_gpu for m in moves if m.from_gpu is not None]
        assert len(senders) == len(set(senders))
        assert len({m.to_gpu for m in moves}) == len(moves)
    # The rounds reach König's bound, the largest in- or out-degree.
    degree = max(
        [sum(m.to_gpu == g for m in plan.moves) for g in range(P)]
        + [sum(m.from_gpu == g for m in plan.moves) for g in range(P)]
    )
    assert plan.rounds == plan.rounds_lower_bound == degree
    assert plan.rounds == (max(m.round for m in plan.moves) + 1 if plan.moves else 0)


def shuffled(phy2log, seed):
    """phy2log with GPUs permuted within their node and slots permuted within each GPU."""
    rng = np.random.default_rng(seed)
    out = np.array(phy2log)
    q = P // N
    for layer in out:
        gpus = [layer[g * S:(g + 1) * S][rng.permutation(S)] for g in range(P)]
        order = [n * q + i for n in range(N) for i in rng.permutation(q)]
        layer[:] = np.concatenate([gpus[g] for g in order])
    return out


# align

def test_align_undoes_a_relabelling():
    w = loads(0)
    current = greedy(w)
    new = shuffled(current, 1)
    a = eplb.align(w, current, new, P, N, G)
    assert np.array_equal(a.phy2log, current)
    assert a.transfers == [0, 0, 0] and all(t > 0 for t in a.transfers_before)
    for plan in a.layers:
        check_plan(current, a.phy2log, plan)


def test_align_keeps_loads_and_never_adds_transfers():
    w_old, w_new = loads(1), loads(2)
    current = greedy(w_old)
    new = eplb.place(w_new, R, P, N, G, strategy="refine").phy2log
    a = eplb.align(w_new, current, new, P, N, G, expert_bytes=10)
    before = eplb.evaluate(w_new, new, P, N, G).layers
    after = eplb.evaluate(w_new, a.phy2log, P, N, G).layers
    for b, x, plan in zip(before, after, a.layers):
        assert x.feasible and sorted(x.gpu_loads) == pytest.approx(sorted(b.gpu_loads))
        check_plan(current, a.phy2log, plan)
        assert plan.bytes == 10 * plan.transfers
    for l, (t, t0) in enumerate(zip(a.transfers, a.transfers_before)):
        assert t == len(needed_transfers(current[l], a.phy2log[l]))
        assert t0 == len(needed_transfers(current[l], new[l])) and t <= t0
    # Every GPU holds what some GPU of the new placement holds.
    for l in range(3):
        assert sorted(sorted(held(a.phy2log[l], g)) for g in range(P)) == sorted(
            sorted(held(new[l], g)) for g in range(P)
        )


def test_align_torch_in_torch_out():
    w = loads(3)
    current = torch.from_numpy(greedy(w))
    a = eplb.align(torch.from_numpy(w), current, torch.from_numpy(shuffled(current.numpy(), 2)), P, N, G)
    assert isinstance(a.phy2log, torch.Tensor) and a.phy2log.dtype == torch.int64
    assert torch.equal(a.phy2log, current)


@pytest.mark.parametrize(
    "current, new, message",
    [
        (np.zeros((3, R), dtype=np.int64), None, "expert"),  # the current one lacks experts
        (None, np.zeros((3, R + P), dtype=np.int64), "slot"),  # the new one has other slots
        (None, -np.ones((3, R), dtype=np.int64), ">= 0"),
    ],
)
def test_align_bad_placements(current, new, message):
    w = loads(4)
    good = greedy(w)
    with pytest.raises(ValueError, match=message):
        eplb.align(w, good if current is None else current, good if new is None else new, P, N, G)


def test_align_float_ids_are_a_type_error():
    w = loads(4)
    with pytest.raises(TypeError, match="integer"):
        eplb.align(w, greedy(w), greedy(w).astype(float), P, N, G)


# rebalance

@pytest.mark.parametrize("kind", ["numpy", "torch", "list"])
def test_rebalance_contract(kind):
    current = greedy(loads(5))
    w = loads(6)
    arg = {"numpy": w, "torch": torch.from_numpy(w), "list": w.tolist()}[kind]
    r = eplb.rebalance(arg, current, R, G, N, P)
    array_type = torch.Tensor if kind == "torch" else np.ndarray
    for a, shape in ((r.phy2log, (3, R)), (r.logcnt, (3, E))):
        assert isinstance(a, array_type) and tuple(a.shape) == shape
    assert isinstance(r.log2phy, array_type) and tuple(r.log2phy.shape)[:2] == (3, E)
    phy2log, log2phy, logcnt = (np.asarray(a) for a in (r.phy2log, r.log2phy, r.logcnt))
    assert phy2log.dtype == np.int64
    # log2phy and logcnt describe phy2log.
    for l in range(3):
        assert logcnt[l].tolist() == np.bincount(phy2log[l], minlength=E).tolist()
        for e in range(E):
            slots = [s for s in log2phy[l, e] if s >= 0]
            assert sorted(slots) == [s for s in range(R) if phy2log[l, s] == e]
    evaluation = eplb.evaluate(w, phy2log, P, N, G).layers
    fresh = eplb.place(w, R, P, N, G, strategy="refine").layers
    for layer, m, f in zip(r.layers, evaluation, fresh):
        assert m.feasible and layer.new_max == pytest.approx(m.max_load)
        # Never worse than keeping the placement, nor (no budget) than refine aligned.
        assert layer.new_max <= layer.old_max and layer.new_max <= f.max_load + 1e-9
        assert layer.lower_bound <= layer.new_max + 1e-9
        assert layer.choice in ("current", "search", "fresh")
        check_plan(current, phy2log, layer.plan)
        assert layer.transfers == layer.plan.transfers and layer.moves is layer.plan.moves
    assert r.transfers == sum(len(x.moves) for x in r.layers) > 0
    assert r.bytes == r.transfers * eplb.DEFAULT_EXPERT_BYTES
    assert sorted(r.update_order) == [x.layer for x in r.layers if x.choice != "current"]
    assert r.failed_gpus == [] and r.policy == "hierarchical" and r.policy_fallback is None


def test_old_max_is_the_current_placements_max_load():
    current, w = greedy(loads(7)), loads(8)
    r = eplb.rebalance(w, current, R, G, N, P, max_moves=2, strategy=None)
    for layer, m in zip(r.layers, eplb.evaluate(w, current, P, N, G).layers):
        assert layer.old_max == pytest.approx(m.max_load)
        assert layer.transfers <= 2 and layer.choice != "fresh"
        check_plan(current, r.phy2log, layer.plan)


def test_zero_budgets_keep_the_current_placement():
    current, w = greedy(loads(9)), loads(10)
    for options in ({"max_moves": 0}, {"max_bytes": 0}, {"min_gain": 1.0}):
        r = eplb.rebalance(w, current, R, G, N, P, **options)
        assert np.array_equal(r.phy2log, current), options
        assert all(x.choice == "current" and x.moves == [] for x in r.layers)
        assert r.update_order == []


def test_a_byte_budget_is_kept():
    current, w = greedy(loads(11)), loads(12)
    unlimited = eplb.rebalance(w, current, R, G, N, P, expert_bytes=100)
    budget = 100 * (unlimited.transfers // 2)
    r = eplb.rebalance(w, current, R, G, N, P, max_bytes=budget, expert_bytes=100)
    assert 0 < r.bytes <= budget
    for x in r.layers:
        check_plan(current, r.phy2log, x.plan)


@pytest.mark.parametrize(
    "options, error, message",
    [
        ({"max_moves": 1, "max_bytes": 10}, ValueError, "max_moves and max_bytes"),
        ({"max_moves": -1}, ValueError, "max_moves = -1"),
        ({"max_moves": 1.5}, TypeError, "max_moves"),
        ({"min_gain": -0.1}, ValueError, "gain"),
        ({"max_bytes": 10, "expert_bytes": 0}, ValueError, "expert size"),
        ({"strategy": "nope"}, ValueError, "nope"),
        ({"failed_gpus": [8]}, ValueError, "GPU 8 does not exist"),
        ({"failed_gpus": [-1]}, ValueError, "failed_gpus\\[0\\] = -1"),
        ({"failed_gpus": ["a"]}, TypeError, "must be an integer"),
        ({"failed_gpus": [None]}, TypeError, "must be an integer"),
        ({"failed_gpus": 3}, TypeError, "list of GPU ids"),
        ({"failed_gpus": list(range(P))}, ValueError, "at least one"),
    ],
)
def test_rebalance_bad_options(options, error, message):
    w = loads(13)
    with pytest.raises(error, match=message):
        eplb.rebalance(w, greedy(w), R, G, N, P, **options)


def test_rebalance_bad_current_placements():
    w = loads(14)
    current = greedy(w)
    with pytest.raises(ValueError, match=r"shape \(3, 23\)"):
        eplb.rebalance(w, current[:, 1:], R, G, N, P)
    with pytest.raises(ValueError, match="current placement"):
        eplb.rebalance(w, np.zeros_like(current), R, G, N, P)  # every expert must be present
    holes = current.copy()
    holes[0, 0] = -1
    with pytest.raises(ValueError, match=r"current_phy2log\[0\]\[0\] = -1"):
        eplb.rebalance(w, holes, R, G, N, P)


# failed GPUs

def test_rebalance_around_a_failed_gpu():
    w = loads(15)
    current = eplb.rebalance_experts(w, R, G, N, P, policy="global")[0]
    dead = 5
    r = eplb.rebalance(w, current, R, G, N, P, failed_gpus=[dead], policy="global")
    dead_slots = range(dead * S, (dead + 1) * S)
    assert r.failed_gpus == [dead] and r.policy == "global"
    assert (r.phy2log[:, dead_slots] == -1).all()
    assert not np.isin(r.log2phy, list(dead_slots)).any()
    assert (r.logcnt.sum(axis=1) == R - S).all()
    only_on_dead = 0
    for x in r.layers:
        live = r.phy2log[x.layer][r.phy2log[x.layer] >= 0]
        assert set(live.tolist()) == set(range(E))  # every expert on a live GPU
        check_plan(current, r.phy2log, x.plan, dead={dead})
        lost = held(current[x.layer], dead) - {
            int(e) for g in range(P) if g != dead for e in held(current[x.layer], g)
        }
        only_on_dead += len(lost)
        assert {m.expert for m in x.moves if m.from_gpu is None} == lost
    assert only_on_dead > 0  # the test means something: some expert needed a host reload
    # The answer, with -1 in the dead slots, is a valid current placement for the next call.
    again = eplb.rebalance(w, r.phy2log, R, G, N, P, failed_gpus=[dead], policy="global")
    assert all(x.transfers == 0 and x.host_reloads == 0 for x in (y.plan for y in again.layers))
    # The evaluator judges it on the live GPUs.
    e = eplb.evaluate(w, r.phy2log, P, N, G, policy="global", failed_gpus=[dead])
    assert e.feasible
    for m, x in zip(e.layers, r.layers):
        assert len(m.gpu_loads) == P - 1 and m.max_load == pytest.approx(x.new_max)
    with pytest.raises(ValueError, match=">= 0"):
        eplb.evaluate(w, r.phy2log, P, N, G, policy="global")  # -1 on a GPU said to be live
    # An expert only the failed GPU held is missing from the live GPUs: reported, not raised.
    lost = eplb.evaluate(w, current, P, N, G, policy="global", failed_gpus=[dead])
    assert not lost.feasible and any("no replica" in v for v in lost.violations)


def test_a_node_short_of_a_gpu_falls_back_to_global():
    w = loads(16)
    r = eplb.rebalance(w, greedy(w), R, G, N, P, failed_gpus=np.array([1]))
    assert r.policy == "global" and "live GPUs" in r.policy_fallback


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_place_and_rebalance_experts_with_failed_gpus(kind):
    w = loads(17)
    arg = torch.from_numpy(w) if kind == "torch" else w
    failed = [2, 6]  # one per node: the hierarchical policy still holds
    phy2log, log2phy, logcnt = eplb.rebalance_experts(arg, R, G, N, P, failed_gpus=failed)
    p = eplb.place(arg, R, P, N, G, strategy="refine", failed_gpus=torch.tensor(failed))
    for a, b, c in ((phy2log, log2phy, logcnt), (p.phy2log, p.log2phy, p.logcnt)):
        a, b, c = (np.asarray(x) for x in (a, b, c))
        for l in range(3):
            for g in range(P):
                slots = a[l, g * S:(g + 1) * S]
                assert (slots == -1).all() if g in failed else (slots >= 0).all()
            assert c[l].tolist() == np.bincount(a[l][a[l] >= 0], minlength=E).tolist()
            for e in range(E):
                assert sorted(s for s in b[l, e] if s >= 0) == [s for s in range(R) if a[l, s] == e]
    assert isinstance(phy2log, torch.Tensor if kind == "torch" else np.ndarray)
    for m in p.layers:
        assert m.feasible and len(m.gpu_loads) == P - len(failed) and m.status is None
        assert sum(m.gpu_loads) == pytest.approx(w[m.layer].sum())


def test_a_newly_failed_gpu_given_as_minus_one_is_a_clear_error():
    """-1 in the slots of a GPU that failed since the last placement loses the experts only it
    held: the error names the missing expert instead of guessing."""
    w = loads(18)
    current = eplb.rebalance_experts(w, R, G, N, P, policy="global")[0]
    only = lambda g: held(current[0], g) - {  # noqa: E731
        int(e) for h in range(P) if h != g for e in held(current[0], h)
    }
    dead = next(g for g in range(P) if only(g))  # a GPU that alone holds some expert
    holes = current.copy()
    holes[:, dead * S:(dead + 1) * S] = -1
    with pytest.raises(ValueError, match="current placement, layer 0"):
        eplb.rebalance(w, holes, R, G, N, P, failed_gpus=[dead], policy="global")


def test_rebalance_with_distinct_replicas_never_colocates():
    w = loads(19)
    current = greedy(w)  # greedy co-locates replicas of hot experts
    assert any(len(set(row[g * S:(g + 1) * S])) < S for row in current for g in range(P))
    r = eplb.rebalance(w, current, R, G, N, P, max_moves=4, distinct_replicas=True)
    for row in r.phy2log:
        for g in range(P):
            assert len(set(row[g * S:(g + 1) * S].tolist())) == S
    for x in r.layers:
        check_plan(current, r.phy2log, x.plan)


def test_the_thorough_effort_is_never_higher_than_the_quick_one():
    w = loads(23)
    current = greedy(w)
    run = lambda effort: eplb.rebalance(  # noqa: E731
        w, current, R, G, N, P, max_moves=3, policy="global", strategy=None, effort=effort
    )
    quick, thorough = run("quick"), run("thorough")
    for q, t in zip(quick.layers, thorough.layers):
        assert t.new_max <= q.new_max <= q.old_max
        assert q.transfers <= 3 and t.transfers <= 3
    with pytest.raises(ValueError, match='valid efforts are "quick" and "thorough"'):
        run("fast")

"""SGLang's call: [steps, layers, experts] loads, its algorithm names, and the
--init-expert-location file."""

import enum
import json

import numpy as np
import pytest
import torch

import eplb
from eplb import sglang

# DeepSeek-V3-like shape, small: 3 recorder steps, 4 layers, 16 experts, 24 slots on 8 GPUs.
STEPS = torch.from_numpy(np.random.default_rng(0).integers(0, 500, (3, 4, 16)))
SLOTS, LOCAL, GROUPS, NODES = 24, 3, 4, 2


class EplbAlgorithm(enum.Enum):  # SGLang's enum, by name
    deepseek = enum.auto()
    deepseek_hierarchical = enum.auto()
    deepseek_vec = enum.auto()
    deepseek_vec_hierarchical = enum.auto()


def test_steps_are_summed_and_the_result_is_deepseeks():
    got = sglang.rebalance_experts(STEPS, SLOTS, LOCAL, GROUPS, NODES)
    want = eplb.rebalance_experts(STEPS.sum(dim=0), SLOTS, GROUPS, NODES, SLOTS // LOCAL)
    assert all(isinstance(a, torch.Tensor) and a.dtype == torch.int64 for a in got)
    for g, w in zip(got, want):
        assert torch.equal(g, w)
    assert tuple(got[0].shape) == (4, SLOTS) and tuple(got[2].shape) == (4, 16)


def test_numpy_and_lists_and_one_step():
    want = sglang.rebalance_experts(STEPS, SLOTS, LOCAL, GROUPS, NODES)[0].numpy()
    for x in (STEPS.numpy(), STEPS.tolist()):
        got = sglang.rebalance_experts(x, SLOTS, LOCAL, GROUPS, NODES)[0]
        assert isinstance(got, np.ndarray)
        np.testing.assert_array_equal(got, want)
    summed = STEPS.sum(dim=0)
    np.testing.assert_array_equal(
        sglang.rebalance_experts(summed, SLOTS, LOCAL, GROUPS, NODES)[0].numpy(), want
    )


@pytest.mark.parametrize(
    "algorithm, policy",
    [
        ("deepseek", "global"),
        (EplbAlgorithm.deepseek, "global"),
        ("deepseek_vec", "global"),
        ("deepseek_hierarchical", "hierarchical"),
        (EplbAlgorithm.deepseek_vec_hierarchical, "hierarchical"),
        ("auto", "hierarchical"),  # 4 groups % 2 nodes == 0
    ],
)
def test_algorithms_choose_the_policy(algorithm, policy):
    got = sglang.rebalance_experts(STEPS, SLOTS, LOCAL, GROUPS, NODES, algorithm)[0]
    want = eplb.rebalance_experts(STEPS.sum(dim=0), SLOTS, GROUPS, NODES, 8, policy=policy)[0]
    assert torch.equal(got, want)


def test_no_groups_means_global():
    got = sglang.rebalance_experts(STEPS, SLOTS, LOCAL, None, NODES)[0]
    want = eplb.rebalance_experts(STEPS.sum(dim=0), SLOTS, 1, 1, 8)[0]
    assert torch.equal(got, want)


def test_better_strategy_is_never_worse():
    w = STEPS.sum(dim=0)
    greedy = sglang.rebalance_experts(STEPS, SLOTS, LOCAL, GROUPS, NODES)[0]
    refine = sglang.rebalance_experts(STEPS, SLOTS, LOCAL, GROUPS, NODES, strategy="refine")[0]
    for g, r in zip(eplb.evaluate(w, greedy, 8, NODES, GROUPS).layers,
                    eplb.evaluate(w, refine, 8, NODES, GROUPS).layers):
        assert r.feasible and r.max_load <= g.max_load


def test_init_expert_location_file(tmp_path):
    phy2log = sglang.rebalance_experts(STEPS, SLOTS, LOCAL, GROUPS, NODES)[0]
    path = tmp_path / "location.json"
    sglang.write_init_expert_location(path, phy2log, 16, first_moe_layer=2)
    doc = json.loads(path.read_text())
    assert list(doc) == ["physical_to_logical_map"]
    rows = doc["physical_to_logical_map"]
    assert len(rows) == 2 + 4
    # Dense layers get SGLang's trivial mapping: slot s holds expert s % E.
    assert rows[0] == rows[1] == [s % 16 for s in range(SLOTS)]
    assert rows[2:] == phy2log.tolist()
    assert [p.name for p in tmp_path.iterdir()] == ["location.json"]  # no temporary left


def test_init_expert_location_rejects_bad_maps(tmp_path):
    path = tmp_path / "location.json"
    with pytest.raises(ValueError, match=">= 0"):
        sglang.write_init_expert_location(path, [[0, -1]], 2)
    with pytest.raises(TypeError):
        sglang.write_init_expert_location(path, [0, 1], 2)
    assert not path.exists()

"""Bit-exactness with DeepSeek's eplb.py: every golden case, through every kind of input."""

import numpy as np
import pytest
import torch

import eplb
from conftest import cluster_args, golden_weights


def expected(case):
    e = case["expected"]
    return (
        np.array(e["phy2log"], dtype=np.int64),
        np.array(e["log2phy"], dtype=np.int64),
        np.array(e["logcnt"], dtype=np.int64),
    )


def assert_same(got, want, name):
    for what, g, w in zip(("phy2log", "log2phy", "logcnt"), got, want):
        g = g.numpy() if isinstance(g, torch.Tensor) else g
        assert g.dtype == np.int64, f"{name}: {what} dtype {g.dtype}"
        assert g.shape == w.shape, f"{name}: {what} shape {g.shape} vs {w.shape}"
        np.testing.assert_array_equal(g, w, err_msg=f"{name}: {what}")


def test_there_are_29_cases(golden):
    assert len(golden["cases"]) == 29


@pytest.mark.parametrize("kind", ["numpy", "torch", "torch-float64", "lists", "threads=1"])
def test_every_case_is_bit_exact(golden, kind):
    for case in golden["cases"]:
        w = golden_weights(golden, case["weights"])
        kwargs = {}
        if kind == "torch":
            w = torch.from_numpy(w)
        elif kind == "torch-float64":
            w = torch.from_numpy(w.astype(np.float64))  # eplb.py casts to float32 itself
        elif kind == "lists":
            w = w.tolist()
        elif kind == "threads=1":
            kwargs["threads"] = 1
        got = eplb.rebalance_experts(w, *cluster_args(case), **kwargs)
        if kind.startswith("torch"):
            assert all(isinstance(a, torch.Tensor) and a.device.type == "cpu" for a in got)
        else:
            assert all(isinstance(a, np.ndarray) for a in got)
        assert_same(got, expected(case), case["name"])


def test_readme_output_is_reproduced(golden):
    case = golden["cases"][0]
    w = torch.from_numpy(golden_weights(golden, "readme"))
    phy2log, _, _ = eplb.rebalance_experts(w, *cluster_args(case))
    assert phy2log.tolist() == case["readme_printed_phy2log"]


def test_every_invalid_case_is_a_value_error(golden):
    assert golden["invalid_cases"]
    for case in golden["invalid_cases"]:
        w = torch.ones(case["weights_shape"])
        with pytest.raises(ValueError) as e:
            eplb.rebalance_experts(w, *cluster_args(case))
        assert str(e.value), case["name"]


def test_gpu_loads_agree_with_the_reference(golden):
    for case in golden["cases"]:
        w = golden_weights(golden, case["weights"])
        r, g, n, p = cluster_args(case)
        placed = eplb.place(w, r, p, n, g)
        want = case["expected"]["gpu_load_max"]
        for layer, m in enumerate(placed.layers):
            assert m.max_load == pytest.approx(want[layer], rel=1e-9), case["name"]
            assert m.lower_bound <= m.max_load * (1 + 1e-12)
            assert not m.violations

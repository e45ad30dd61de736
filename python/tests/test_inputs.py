"""Inputs and outputs: NumPy and torch dtypes, strides, devices, shapes and the -1 padding."""

import numpy as np
import pytest
import torch

import eplb

# The example of eplb.py's README and its published output (layer 0 and 1).
README = [
    [90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86],
    [20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27],
]
ARGS = (16, 4, 2, 8)  # replicas, groups, nodes, gpus
PHY2LOG = [
    [5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1],
    [7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1],
]

NUMPY_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
                np.uint64, np.float16, np.float32, np.float64]
TORCH_DTYPES = [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.float16,
                torch.bfloat16, torch.float32, torch.float64]

SMALL = [[9, 8, 7, 6, 5, 4, 3, 2, 1, 1]]  # fits every dtype exactly


def reference(loads, *args, **kwargs):
    return [a.tolist() for a in eplb.rebalance_experts(np.array(loads, np.int64), *args, **kwargs)]


def test_readme_example_as_published():
    phy2log, log2phy, logcnt = eplb.rebalance_experts(README, *ARGS)
    assert phy2log.tolist() == PHY2LOG
    assert logcnt.sum(axis=1).tolist() == [16, 16]
    # log2phy is padded with -1 to the largest replica count of all layers.
    assert log2phy.shape == (2, 12, int(logcnt.max()))
    for layer in range(2):
        for e in range(12):
            slots = log2phy[layer, e]
            n = int(logcnt[layer, e])
            assert (slots[n:] == -1).all()
            assert sorted(phy2log[layer, slots[:n]].tolist()) == [e] * n


@pytest.mark.parametrize("dtype", NUMPY_DTYPES, ids=lambda d: np.dtype(d).name)
def test_numpy_dtypes(dtype):
    got = eplb.rebalance_experts(np.array(SMALL, dtype=dtype), 12, 1, 1, 4)
    assert all(isinstance(a, np.ndarray) and a.dtype == np.int64 for a in got)
    assert [a.tolist() for a in got] == reference(SMALL, 12, 1, 1, 4)


@pytest.mark.parametrize("dtype", TORCH_DTYPES, ids=str)
def test_torch_dtypes(dtype):
    got = eplb.rebalance_experts(torch.tensor(SMALL, dtype=dtype), 12, 1, 1, 4)
    assert all(isinstance(a, torch.Tensor) for a in got)
    assert all(a.dtype == torch.int64 and a.device.type == "cpu" for a in got)
    assert [a.tolist() for a in got] == reference(SMALL, 12, 1, 1, 4)


def test_strided_and_transposed_inputs_are_read_in_logical_order():
    w = np.array(README, dtype=np.int64)
    fortran = np.asfortranarray(w)
    assert not fortran.flags.c_contiguous
    strided = np.zeros((2, 24), dtype=np.int64)
    strided[:, ::2] = w
    transposed = np.ascontiguousarray(w.T).T
    for x in (fortran, strided[:, ::2], transposed, torch.from_numpy(w.T.copy()).T):
        assert eplb.rebalance_experts(x, *ARGS)[0].tolist() == PHY2LOG


def test_the_input_is_not_modified():
    w = torch.tensor(README, dtype=torch.float32)
    before = w.clone()
    eplb.rebalance_experts(w, *ARGS)
    assert torch.equal(w, before)


def test_tensor_requiring_grad():
    w = torch.tensor(README, dtype=torch.float32, requires_grad=True)
    assert eplb.rebalance_experts(w, *ARGS)[0].tolist() == PHY2LOG


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_input_gives_cpu_output():
    w = torch.tensor(README, device="cuda")
    phy2log, _, _ = eplb.rebalance_experts(w, *ARGS)
    assert phy2log.device.type == "cpu" and phy2log.tolist() == PHY2LOG


def test_outputs_are_writable_and_shared_with_torch():
    phy2log, _, _ = eplb.rebalance_experts(torch.tensor(README), *ARGS)
    phy2log[0, 0] = 7  # a plain tensor the caller owns
    assert phy2log[0, 0] == 7


def test_strategies_and_policies():
    names = eplb.strategies()
    for name in ("greedy", "refine", "refine-deep", "exact", "ilp", "hierarchical"):
        assert name in names and names[name]
    w = np.array(README)
    greedy = eplb.place(w, 16, 8, 2, 4)
    for strategy in ("refine", "refine-deep", "exact"):
        better = eplb.place(w, 16, 8, 2, 4, strategy=strategy, time_limit=1.0)
        assert better.strategy == strategy
        for g, b in zip(greedy.layers, better.layers):
            assert b.max_load <= g.max_load  # never worse than greedy
            assert not b.violations
    for policy in ("hierarchical", "global"):
        phy2log, _, logcnt = eplb.rebalance_experts(w, *ARGS, policy=policy)
        assert phy2log.shape == (2, 16) and (logcnt >= 1).all()
    # Under the global policy the groups and nodes do not constrain the placement.
    assert eplb.rebalance_experts(w, *ARGS, policy="global")[0].tolist() == (
        eplb.rebalance_experts(w, 16, 1, 1, 8)[0].tolist()
    )

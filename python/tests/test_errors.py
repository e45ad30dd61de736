"""Every bad input is a ValueError or TypeError with a message naming the problem; none
crashes the interpreter."""

import math

import numpy as np
import pytest
import torch

import eplb
from eplb import sglang
from eplb.vllm import EplbPolicy

OK = [[1.0, 2.0, 3.0, 4.0]]


@pytest.mark.parametrize(
    "weight, fragment",
    [
        ([[1.0, math.nan, 3.0, 4.0]], "NaN"),
        ([[1.0, math.inf, 3.0, 4.0]], "infinite"),
        ([[1.0, -2.0, 3.0, 4.0]], "negative"),
        (np.array([[1, -2, 3, 4]], dtype=np.int32), "negative"),
        (torch.tensor([[1.0, float("nan"), 3.0, 4.0]]), "NaN"),
        ([[1, 2, 3], [1, 2]], "ragged"),
        (np.zeros((0, 4)), "empty"),
        (np.zeros((1, 0)), "empty"),
    ],
)
def test_bad_loads_are_value_errors(weight, fragment):
    with pytest.raises(ValueError, match=fragment):
        eplb.rebalance_experts(weight, 4, 1, 1, 2)


def test_a_bad_load_is_located():
    with pytest.raises(ValueError) as e:
        eplb.rebalance_experts([[1, 2, 3, 4], [1, 2, -3, 4]], 4, 1, 1, 2)
    assert "layer 1" in str(e.value) and "2" in str(e.value)


@pytest.mark.parametrize(
    "weight, fragment",
    [
        ([1.0, 2.0, 3.0, 4.0], "2 dimensions"),
        (np.ones((2, 2, 4)), "2 dimensions"),
        (torch.ones(4), "2 dimensions"),
        (np.array([["a", "b"]]), "integers or floats"),
        (np.array([[True, False]]), "integers or floats"),
        (np.array([[1 + 2j, 3]]), "integers or floats"),
        (torch.ones(1, 4, dtype=torch.bool), "integers or floats"),
        (torch.ones(1, 4, dtype=torch.complex64), "integers or floats"),
        ({"loads": OK}, "torch.Tensor, a NumPy array or nested lists"),
        ("1,2,3,4", "torch.Tensor, a NumPy array or nested lists"),
        (None, "torch.Tensor, a NumPy array or nested lists"),
    ],
)
def test_wrong_kinds_of_input_are_type_errors(weight, fragment):
    with pytest.raises(TypeError, match=fragment):
        eplb.rebalance_experts(weight, 4, 1, 1, 2)


@pytest.mark.parametrize(
    "args, fragment",
    [
        ((3, 1, 1, 1), "replicas"),  # fewer slots than experts
        ((6, 1, 1, 4), "divisible|multiple"),  # slots not a multiple of GPUs
        ((4, 1, 1, 0), "gpus"),
        ((0, 1, 1, 2), "replicas"),
        ((4, 3, 1, 2), "groups"),  # hierarchical: 4 experts in 3 groups
        ((6, 2, 2, 3), "nodes"),  # hierarchical: 3 GPUs on 2 nodes
    ],
)
def test_bad_counts_are_value_errors(args, fragment):
    with pytest.raises(ValueError, match=fragment):
        eplb.rebalance_experts(OK, *args)


@pytest.mark.parametrize("count", [-1, 2**70])
def test_counts_out_of_range_are_rejected(count):
    with pytest.raises((OverflowError, ValueError, TypeError)):
        eplb.rebalance_experts(OK, count, 1, 1, 2)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"strategy": "nope"}, "greedy"),  # the message lists the valid names
        ({"policy": "nope"}, "hierarchical"),
        ({"time_limit": -1.0}, "time_limit"),
        ({"time_limit": math.nan}, "time_limit"),
        ({"threads": 0}, "threads"),
    ],
)
def test_bad_options_are_value_errors(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        eplb.rebalance_experts(OK, 4, 1, 1, 2, **kwargs)


def test_bad_mip_gap_and_sub_strategy():
    with pytest.raises(ValueError, match="mip_gap"):
        eplb.place(OK, 4, 2, mip_gap=-0.1)
    with pytest.raises(ValueError, match="nope"):
        eplb.place(OK, 4, 2, strategy="hierarchical", sub_strategy="nope")


def test_bad_placements_for_the_evaluator():
    with pytest.raises(ValueError, match=">= 0"):
        eplb.evaluate(OK, [[0, 1, -2, 3]], 2)
    with pytest.raises(TypeError, match="integer"):
        eplb.evaluate(OK, [[0.0, 1.0, 2.0, 3.0]], 2)
    with pytest.raises(ValueError, match="layers"):
        eplb.evaluate(OK, [[0, 1, 2, 3], [0, 1, 2, 3]], 2)
    with pytest.raises(ValueError, match="divisible|multiple"):
        eplb.evaluate(OK, [[0, 1, 2, 3, 0]], 2)


def test_bad_vllm_and_sglang_inputs():
    with pytest.raises(ValueError, match="layers"):
        EplbPolicy.rebalance_experts(torch.tensor(OK), 4, 1, 1, 2, torch.zeros(2, 4, dtype=torch.int64))
    with pytest.raises(TypeError, match="integer"):
        EplbPolicy.rebalance_experts(torch.tensor(OK), 4, 1, 1, 2, torch.zeros(1, 4))
    with pytest.raises(ValueError, match="unknown strategy"):
        EplbPolicy.configured("nope")
    with pytest.raises(ValueError, match="num_local_physical_experts"):
        sglang.rebalance_experts(torch.ones(1, 1, 4), 4, 3, None, 1)
    with pytest.raises(ValueError, match="num_local_physical_experts"):
        sglang.rebalance_experts(torch.ones(1, 1, 4), 4, 0, None, 1)
    with pytest.raises(ValueError, match="algorithm"):
        sglang.rebalance_experts(torch.ones(1, 1, 4), 4, 2, None, 1, "nope")
    with pytest.raises(TypeError, match="steps, layers, experts"):
        sglang.rebalance_experts(torch.ones(4), 4, 2, None, 1)

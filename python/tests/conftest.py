"""Shared fixtures: the golden file of DeepSeek's eplb.py (in the repository's tests/data)."""

import json
from pathlib import Path

import numpy as np
import pytest

GOLDEN = Path(__file__).resolve().parents[2] / "tests" / "data" / "eplb_reference.json"


@pytest.fixture(scope="session")
def golden():
    """The golden file, parsed."""
    return json.loads(GOLDEN.read_text())


def golden_weights(g, name):
    """A named weight matrix of the golden file in the dtype eplb.py was given it: int64 for
    'int', float32 for the exact-f32 encodings (see the file's `conventions.weights`)."""
    w = g["weights"][name]
    if w["encoding"] == "int":
        return np.array(w["data"], dtype=np.int64)
    if w["encoding"] == "int_over_scale":
        return (np.array(w["data"], dtype=np.float64) / w["scale"]).astype(np.float32)
    if w["encoding"] == "f32":
        return np.array(w["data"], dtype=np.float64).astype(np.float32)
    raise AssertionError(f"unknown encoding {w['encoding']}")


def cluster_args(case):
    """eplb.py's positional arguments after the weights."""
    return (case["num_replicas"], case["num_groups"], case["num_nodes"], case["num_gpus"])

"""eplb: expert placement for Mixture-of-Experts serving, from Python.

- :func:`rebalance_experts` is DeepSeek's ``eplb.rebalance_experts``, bit-exact (same
  arguments, same ``(phy2log, log2phy, logcnt)``), about a thousand times faster; keywords pick
  a better strategy.
- :func:`place` returns a :class:`Placement` with the arrays and per-layer metrics (max, mean,
  balancedness, lower bound, gap, status); :func:`evaluate` judges a placement made anywhere;
  :func:`strategies` lists what this build has.
- :func:`align` and :func:`rebalance` are live rebalancing: from the placement the GPUs hold
  now to a better one at the fewest weight transfers, with the transfer plan in rounds, and
  failed GPUs left out (``failed_gpus=``, also on :func:`place` and :func:`rebalance_experts`).
- :mod:`eplb.vllm` is vLLM's EPLB policy hook, :mod:`eplb.sglang` SGLang's algorithm call.

Solving releases the GIL (a serving loop on another thread keeps running); bad input raises
``ValueError`` or ``TypeError`` with the library's message.

>>> import eplb
>>> phy2log, log2phy, logcnt = eplb.rebalance_experts([[90, 132, 40, 61]], 6, 1, 1, 2)
>>> phy2log.tolist()
[[1, 3, 2, 1, 0, 0]]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from . import _eplb
from ._convert import as_array, as_ids, gpu_ids, solve
from ._live import (
    DEFAULT_EXPERT_BYTES,
    Alignment,
    LayerPlan,
    LayerRebalance,
    Move,
    Rebalance,
    align,
    rebalance,
)

__all__ = [
    "DEFAULT_EXPERT_BYTES",
    "Alignment",
    "Evaluation",
    "LayerMetrics",
    "LayerPlan",
    "LayerRebalance",
    "Move",
    "Placement",
    "Rebalance",
    "align",
    "evaluate",
    "place",
    "rebalance",
    "rebalance_experts",
    "strategies",
]

__version__ = "0.1.0"


@dataclass(frozen=True)
class LayerMetrics:
    """How good one layer's placement is, as the shared evaluator measures it.

    Attributes:
        layer: index of the layer (row of the loads).
        max_load: load of the busiest GPU, the quantity every strategy minimises.
        mean_load: total load / GPUs.
        balancedness: ``mean_load / max_load`` (vLLM's and SGLang's number; 1 is perfect).
        imbalance: ``(max_load - mean_load) / mean_load`` (TensorRT-LLM's number).
        lower_bound: a proven lower bound on the optimal ``max_load``.
        gap: ``(max_load - lower_bound) / lower_bound``, an upper limit on the distance to
            optimal.
        status: ``"heuristic"``, ``"optimal"`` (proven), ``"gap_reached"`` or
            ``"time_limit"``; ``None`` for :func:`evaluate`.
        solve_ms: the strategy's time on the layer; ``None`` for :func:`evaluate`.
        colocated_replicas: extra replicas of an expert on a GPU that already holds it.
        gpu_loads: the load of every GPU.
        violations: broken constraints (empty when the placement is feasible).
        claim_violations: claims of the strategy that the evaluator refuted.
    """

    layer: int
    max_load: float
    mean_load: float
    balancedness: float
    imbalance: float
    lower_bound: float
    gap: float
    colocated_replicas: int
    gpu_loads: List[float]
    violations: List[str]
    claim_violations: List[str]
    status: Optional[str] = None
    solve_ms: Optional[float] = None

    @property
    def feasible(self) -> bool:
        """True when the layer breaks no constraint."""
        return not self.violations


@dataclass(frozen=True)
class Placement:
    """The answer of :func:`place`: DeepSeek's arrays and the evaluator's metrics.

    Attributes:
        phy2log: ``[layers, num_replicas]`` int64, the expert in each slot.
        log2phy: ``[layers, experts, X]`` int64, the slots of each expert's replicas, padded
            with ``-1`` to the largest replica count.
        logcnt: ``[layers, experts]`` int64, replicas per expert.
        layers: the metrics of every layer.
        strategy: the strategy that made it.

    The arrays are torch tensors when the loads were, NumPy arrays otherwise.
    """

    phy2log: Any
    log2phy: Any
    logcnt: Any
    layers: List[LayerMetrics]
    strategy: str

    @property
    def max_loads(self) -> List[float]:
        """The busiest GPU's load in every layer."""
        return [m.max_load for m in self.layers]

    @property
    def balancedness(self) -> float:
        """Mean over layers of ``mean_load / max_load``."""
        return float(np.mean([m.balancedness for m in self.layers]))


@dataclass(frozen=True)
class Evaluation:
    """The answer of :func:`evaluate`: per-layer metrics and violations.

    Attributes:
        layers: the metrics of every layer (``status`` and ``solve_ms`` are ``None``).
    """

    layers: List[LayerMetrics]

    @property
    def feasible(self) -> bool:
        """True when no layer breaks a constraint."""
        return all(m.feasible for m in self.layers)

    @property
    def violations(self) -> List[str]:
        """Every broken constraint, prefixed with its layer."""
        return [f"layer {m.layer}: {v}" for m in self.layers for v in m.violations]


def _metrics(rows: List[Dict[str, Any]]) -> List[LayerMetrics]:
    return [LayerMetrics(**row) for row in rows]


def strategies() -> Dict[str, str]:
    """The strategies of this build: name -> one-line description, in the library's order.

    >>> import eplb
    >>> list(eplb.strategies())[:2]
    ['greedy', 'refine']
    """
    return dict(_eplb.strategies())


def rebalance_experts(
    weight: Any,
    num_replicas: int,
    num_groups: int,
    num_nodes: int,
    num_gpus: int,
    *,
    strategy: str = "greedy",
    policy: str = "auto",
    time_limit: Optional[float] = None,
    threads: Optional[int] = None,
    failed_gpus: Optional[Any] = None,
) -> Tuple[Any, Any, Any]:
    """DeepSeek's ``eplb.rebalance_experts``: a placement of replicated experts on GPUs.

    With the defaults the result equals ``eplb.py``'s bit for bit (its float32 arithmetic,
    stable-sort tie order).

    Args:
        weight: ``[layers, experts]`` loads: a ``torch.Tensor`` (any device; computed on the
            CPU), a NumPy array or nested lists, of any integer or float dtype.
        num_replicas: physical expert slots, a multiple of ``num_gpus``.
        num_groups: expert groups (of consecutive ids).
        num_nodes: server nodes.
        num_gpus: GPUs, a multiple of ``num_nodes`` under the hierarchical policy.
        strategy: ``"greedy"`` (eplb.py), ``"refine"``, ``"refine-deep"``, ``"exact"``,
            ``"ilp"``, ``"hierarchical"`` (see :func:`strategies`).
        policy: ``"auto"`` (hierarchical when ``num_groups % num_nodes == 0``, as eplb.py),
            ``"hierarchical"`` or ``"global"``.
        time_limit: seconds per layer for ``exact`` and ``ilp`` (default 10).
        threads: worker threads over layers (``None``: all cores).
        failed_gpus: GPU ids that failed: the placement uses only the others, whose slots are
            ``-1`` in ``phy2log`` and in no ``log2phy`` row (the hierarchical policy falls
            back to global when the live GPUs no longer split evenly over the nodes).

    Returns:
        ``(phy2log [layers, num_replicas], log2phy [layers, experts, X], logcnt [layers,
        experts])``, int64; torch tensors (CPU) when ``weight`` is a tensor, NumPy arrays
        otherwise.

    Raises:
        ValueError: a count that does not fit (the message names it and what is valid), NaN,
            infinite or negative loads, an unknown strategy or policy.
        TypeError: ``weight`` is not a 2-D array of integers or floats.

    >>> import numpy as np, eplb
    >>> w = np.array([[90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86]])
    >>> phy2log, log2phy, logcnt = eplb.rebalance_experts(w, 16, 4, 2, 8)
    >>> phy2log.tolist()  # the output printed in eplb.py's README
    [[5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1]]
    >>> logcnt.tolist()
    [[1, 2, 1, 1, 2, 2, 1, 1, 1, 1, 2, 1]]
    """
    arrays, _ = solve(
        weight, "weight", num_replicas, num_gpus, num_nodes, num_groups,
        policy=policy, strategy=strategy, time_limit=time_limit, threads=threads,
        failed_gpus=gpu_ids(failed_gpus, "failed_gpus"),
    )
    return arrays


def place(
    loads: Any,
    num_replicas: int,
    num_gpus: int,
    num_nodes: int = 1,
    num_groups: int = 1,
    *,
    strategy: str = "greedy",
    policy: str = "auto",
    sub_strategy: Optional[str] = None,
    time_limit: Optional[float] = None,
    mip_gap: Optional[float] = None,
    threads: Optional[int] = None,
    failed_gpus: Optional[Any] = None,
) -> Placement:
    """Places ``loads`` with a strategy and measures the result.

    Args:
        loads: ``[layers, experts]`` loads (tensor, NumPy array or nested lists).
        num_replicas: physical expert slots, a multiple of ``num_gpus``.
        num_gpus: GPUs.
        num_nodes: server nodes.
        num_groups: expert groups (of consecutive ids).
        strategy: a name from :func:`strategies`.
        policy: ``"auto"``, ``"hierarchical"`` or ``"global"``.
        sub_strategy: the strategy inside each node of ``"hierarchical"``.
        time_limit: seconds per layer for ``exact`` and ``ilp``.
        mip_gap: relative gap at which ``exact`` and ``ilp`` may stop.
        threads: worker threads over layers (``None``: all cores).
        failed_gpus: GPU ids that failed, as in :func:`rebalance_experts`; the metrics are
            those of the live GPUs (``gpu_loads`` lists them in order) and ``status`` and
            ``solve_ms`` are ``None``.

    Returns:
        A :class:`Placement`.

    Raises:
        ValueError, TypeError: as :func:`rebalance_experts`.

    >>> import eplb
    >>> p = eplb.place([[9, 8, 7, 6, 5, 4, 3, 2, 1, 1]], 12, 4, strategy="exact")
    >>> p.layers[0].max_load, p.layers[0].status
    (11.5, 'optimal')
    """
    (phy2log, log2phy, logcnt), layers = solve(
        loads, "loads", num_replicas, num_gpus, num_nodes, num_groups,
        policy=policy, strategy=strategy, sub_strategy=sub_strategy, time_limit=time_limit,
        mip_gap=mip_gap, threads=threads, failed_gpus=gpu_ids(failed_gpus, "failed_gpus"), metrics=True,
    )
    return Placement(phy2log, log2phy, logcnt, _metrics(layers), strategy)


def evaluate(
    loads: Any,
    phy2log: Any,
    num_gpus: int,
    num_nodes: int = 1,
    num_groups: int = 1,
    *,
    policy: str = "auto",
    failed_gpus: Optional[Any] = None,
) -> Evaluation:
    """Judges a placement made anywhere (vLLM, SGLang, your own code) with the shared
    evaluator: constraint violations and per-layer metrics with lower bounds and gaps.

    Args:
        loads: ``[layers, experts]`` loads.
        phy2log: ``[layers, num_replicas]`` expert ids (``num_replicas`` is its width).
        num_gpus: GPUs.
        num_nodes: server nodes.
        num_groups: expert groups.
        policy: ``"auto"``, ``"hierarchical"`` (also checks that groups stay whole on
            their node) or ``"global"``.
        failed_gpus: GPU ids that failed: their slots (``-1`` or anything) carry nothing,
            every expert needs a replica on a live GPU, and the metrics are those of the live
            GPUs (``gpu_loads`` lists them in order; the hierarchical policy falls back to
            global when the live GPUs no longer split evenly over the nodes).

    Returns:
        An :class:`Evaluation`; an infeasible placement is reported, not raised.

    Raises:
        ValueError: shapes that do not fit, negative ids, bad loads.
        TypeError: not 2-D arrays of numbers (ids must be integers).

    >>> import eplb
    >>> e = eplb.evaluate([[3, 3, 2]], [[0, 2, 1, 2]], 2, policy="global")
    >>> e.feasible, e.layers[0].max_load, e.layers[0].gpu_loads
    (True, 4.0, [4.0, 4.0])
    """
    array, _ = as_array(loads, "loads", 2)
    ids = as_ids(phy2log, "phy2log")
    rows = _eplb.evaluate_placement(
        array, ids, num_gpus, num_nodes, num_groups, policy=policy,
        failed_gpus=gpu_ids(failed_gpus, "failed_gpus"),
    )
    return Evaluation(_metrics(rows))

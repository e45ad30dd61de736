"""Live rebalancing: from the placement the GPUs hold now to a better one, at the fewest weight
transfers (the library's ``eplb::live``).

- :func:`align` relabels any new placement (GPUs, and slots within a GPU) so that it needs the
  fewest transfers from the current one, without changing any GPU's load.
- :func:`rebalance` finds the best placement for new loads within a transfer budget, never
  worse than keeping the current one, with the transfer plan: per layer the moves, in rounds in
  which every GPU sends at most one and receives at most one expert.

A **transfer** is a replica of expert ``e`` on a GPU that held no replica of ``e``; the plan
takes it from a GPU of the same node when one holds ``e`` (else it is **cross-node**). A slot change inside a GPU that keeps the
expert is a local copy, not a transfer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from . import _eplb
from ._convert import as_array, as_ids, count, gpu_ids, is_tensor, to_caller

__all__ = [
    "DEFAULT_EXPERT_BYTES",
    "Alignment",
    "LayerPlan",
    "LayerRebalance",
    "Move",
    "Rebalance",
    "align",
    "rebalance",
]

#: Bytes of one expert's weights by default: DeepSeek-V3 in FP8, three 7168 x 2048 matrices.
DEFAULT_EXPERT_BYTES: int = _eplb.DEFAULT_EXPERT_BYTES


@dataclass(frozen=True)
class Move:
    """One expert's weights sent to a slot.

    Attributes:
        expert: the logical expert.
        from_gpu: the GPU that sends it (on the destination's node when one holds it);
            ``None`` for a reload from host memory (no live GPU holds it).
        from_slot: the sender's slot holding it; ``None`` for a host reload.
        to_gpu: the GPU that receives it.
        to_slot: the physical slot it goes to.
        round: the round it is sent in (from 0): in one round every GPU sends at most one and
            receives at most one expert.
        cross_node: the sender sits on another node, or the weights come from host memory.
    """

    expert: int
    from_gpu: Optional[int]
    from_slot: Optional[int]
    to_gpu: int
    to_slot: int
    round: int
    cross_node: bool


@dataclass(frozen=True)
class LayerPlan:
    """The transfers that turn one layer's current placement into the new one.

    Attributes:
        layer: layer index.
        transfers: replicas on a GPU that held no replica of their expert.
        cross_node: transfers from another node or from host memory.
        host_reloads: transfers no live GPU can send (from host memory).
        local_copies: slot changes inside a GPU that already held the expert.
        bytes: ``transfers * expert_bytes``.
        rounds: rounds of the schedule.
        rounds_lower_bound: the fewest rounds possible (the most transfers one GPU sends or
            receives); the schedule reaches it.
        moves: the transfers (local copies are not listed).
    """

    layer: int
    transfers: int
    cross_node: int
    host_reloads: int
    local_copies: int
    bytes: int
    rounds: int
    rounds_lower_bound: int
    moves: List[Move]


def _plan(row: Dict[str, Any]) -> LayerPlan:
    moves = [Move(**m) for m in row.pop("moves")]
    return LayerPlan(moves=moves, **row)


@dataclass(frozen=True)
class Alignment:
    """The answer of :func:`align`.

    Attributes:
        phy2log: ``[layers, num_replicas]`` int64, the new placement relabelled (a torch
            tensor when ``new_phy2log`` was one).
        layers: the transfer plan of every layer, from the current placement to ``phy2log``.
        transfers_before: per layer, the transfers the new placement needed as given.
    """

    phy2log: Any
    layers: List[LayerPlan]
    transfers_before: List[int]

    @property
    def transfers(self) -> List[int]:
        """Per layer, the transfers of the aligned placement (at most ``transfers_before``)."""
        return [p.transfers for p in self.layers]


@dataclass(frozen=True)
class LayerRebalance:
    """What :func:`rebalance` did to one layer.

    Attributes:
        layer: layer index.
        old_max: the max GPU load of the current placement under the new loads.
        new_max: the max GPU load of the new placement (``<= old_max``).
        gain: ``(old_max - new_max) / old_max``.
        lower_bound: a proven lower bound on the max GPU load of any placement of the layer.
        choice: ``"current"`` (kept), ``"search"`` (the budgeted search from the current
            placement) or ``"fresh"`` (the strategy's placement, aligned).
        plan: the layer's transfers and their schedule.
    """

    layer: int
    old_max: float
    new_max: float
    gain: float
    lower_bound: float
    choice: str
    plan: LayerPlan

    @property
    def transfers(self) -> int:
        """Transfers of the layer (``plan.transfers``)."""
        return self.plan.transfers

    @property
    def cross_node(self) -> int:
        """Cross-node transfers of the layer."""
        return self.plan.cross_node

    @property
    def rounds(self) -> int:
        """Rounds of the layer's schedule."""
        return self.plan.rounds

    @property
    def rounds_lower_bound(self) -> int:
        """The fewest rounds possible for the layer's transfers."""
        return self.plan.rounds_lower_bound

    @property
    def moves(self) -> List[Move]:
        """The layer's transfers."""
        return self.plan.moves


@dataclass(frozen=True)
class Rebalance:
    """The answer of :func:`rebalance`.

    Attributes:
        phy2log: ``[layers, num_replicas]`` int64, the new placement; ``-1`` in the slots of
            failed GPUs.
        log2phy: ``[layers, experts, X]`` int64, the (physical) slots of each expert's
            replicas, ``-1`` padded; never a failed GPU's slot.
        logcnt: ``[layers, experts]`` int64, live replicas per expert.
        layers: what happened to every layer, with its transfer plan.
        update_order: the layers that change, most gain per transfer first (the order to
            update them in a few at a time).
        failed_gpus: the failed GPUs, sorted.
        policy: the policy the placement follows (``"hierarchical"`` or ``"global"``).
        policy_fallback: why the hierarchical policy fell back to global on the live GPUs, if
            it did.

    The arrays are torch tensors when ``weight`` was one, NumPy arrays otherwise.
    """

    phy2log: Any
    log2phy: Any
    logcnt: Any
    layers: List[LayerRebalance]
    update_order: List[int]
    failed_gpus: List[int]
    policy: str
    policy_fallback: Optional[str]

    @property
    def transfers(self) -> int:
        """Transfers over all layers."""
        return sum(layer.plan.transfers for layer in self.layers)

    @property
    def bytes(self) -> int:
        """Bytes of the transfers over all layers."""
        return sum(layer.plan.bytes for layer in self.layers)


def align(
    loads: Any,
    current_phy2log: Any,
    new_phy2log: Any,
    num_gpus: int,
    num_nodes: int = 1,
    num_groups: int = 1,
    *,
    policy: str = "auto",
    expert_bytes: int = DEFAULT_EXPERT_BYTES,
) -> Alignment:
    """Relabels ``new_phy2log`` to need the fewest transfers from ``current_phy2log``.

    GPUs are permuted (any permutation under the global policy; nodes, and GPUs within a
    node, under the hierarchical one) and slots within a GPU, so every GPU's load is that of a
    GPU of the new placement: the relabelling costs nothing and is exact (assignment problems
    solved optimally).

    Args:
        loads: ``[layers, experts]`` loads (checked with the placements' rules).
        current_phy2log: ``[layers, num_replicas]`` the placement the GPUs hold now.
        new_phy2log: ``[layers, num_replicas]`` a placement made anywhere for these loads.
        num_gpus: GPUs.
        num_nodes: server nodes.
        num_groups: expert groups.
        policy: ``"auto"``, ``"hierarchical"`` or ``"global"``.
        expert_bytes: bytes of one expert's weights (for the plan's ``bytes``).

    Returns:
        An :class:`Alignment`: the relabelled ``phy2log`` and the transfer plan.

    Raises:
        ValueError: a placement of another shape, with ids outside ``0..experts``, missing an
            expert or breaking the policy's group rules (the message says which).
        TypeError: not 2-D arrays of numbers (ids must be integers).

    >>> import eplb
    >>> a = eplb.align([[4, 3, 2, 1]], [[0, 1, 2, 3]], [[3, 2, 0, 1]], 2, policy="global")
    >>> a.phy2log.tolist(), a.transfers_before, a.transfers
    ([[0, 1, 2, 3]], [4], [0])
    """
    array, _ = as_array(loads, "loads", 2)
    current = as_ids(current_phy2log, "current_phy2log")
    new = as_ids(new_phy2log, "new_phy2log")
    phy2log, plans, before = _eplb.align(
        array, current, new, num_gpus, num_nodes, num_groups,
        policy=policy, expert_bytes=count(expert_bytes, "expert_bytes"),
    )
    (phy2log,) = to_caller((phy2log,), is_tensor(new_phy2log))
    return Alignment(phy2log, [_plan(p) for p in plans], before)


def rebalance(
    weight: Any,
    current_phy2log: Any,
    num_replicas: int,
    num_groups: int,
    num_nodes: int,
    num_gpus: int,
    *,
    max_moves: Optional[int] = None,
    max_bytes: Optional[int] = None,
    expert_bytes: int = DEFAULT_EXPERT_BYTES,
    min_gain: float = 0.0,
    failed_gpus: Optional[Any] = None,
    distinct_replicas: bool = False,
    effort: str = "thorough",
    strategy: Optional[str] = "refine",
    policy: str = "auto",
    sub_strategy: Optional[str] = None,
    time_limit: Optional[float] = None,
    mip_gap: Optional[float] = None,
    threads: Optional[int] = None,
) -> Rebalance:
    """A better placement for new loads within a transfer budget, starting from the current
    one, and its transfer plan.

    Per layer the best of three candidates within the budget: the current placement, a
    budgeted local search from it, and ``strategy``'s fresh placement aligned to it (see
    :func:`align`). So no layer gets worse than keeping its placement, and with no budget no
    layer is worse than ``strategy`` followed by :func:`align`.

    Args:
        weight: ``[layers, experts]`` new loads (tensor, NumPy array or nested lists).
        current_phy2log: ``[layers, num_replicas]`` the placement the GPUs hold now: every
            expert present, the policy's group rules kept. The slots of ``failed_gpus`` may
            hold ``-1`` (as :func:`rebalance` returns them); give a GPU that failed since the
            last placement its old experts, so that those only it held are found missing and
            reloaded from host memory.
        num_replicas: physical expert slots, a multiple of ``num_gpus``.
        num_groups: expert groups.
        num_nodes: server nodes.
        num_gpus: GPUs.
        max_moves: at most this many transfers in every layer (0 keeps the current
            placement).
        max_bytes: at most this many bytes of transfers over all layers, spent where the gain
            per transfer is largest (not together with ``max_moves``; neither: no limit).
        expert_bytes: bytes of one expert's weights.
        min_gain: keep the current placement of every layer whose max load would improve by
            less than this fraction (e.g. ``0.02``).
        failed_gpus: GPU ids that failed: the new placement uses only the others (their
            slots are ``-1`` in ``phy2log``); experts only they held are reloaded from host
            memory (``from_gpu=None`` in the plan).
        distinct_replicas: no GPU of the new placement holds two replicas of one expert
            (vllm-ascend rejects such tables); a current placement that has some is separated
            first.
        effort: how much the budgeted search searches: ``"thorough"`` searches on in the
            layers its first rounds leave about 1% or more above their lower bound (lower max
            loads there, several times the time on those layers); ``"quick"`` stops after
            those rounds.
        strategy: the fresh placement's strategy (see :func:`eplb.strategies`); ``None``
            for the search alone (fast: no placement from scratch).
        policy: ``"auto"``, ``"hierarchical"`` or ``"global"``.
        sub_strategy: the strategy inside each node of ``"hierarchical"``.
        time_limit: seconds per layer for ``exact`` and ``ilp``.
        mip_gap: relative gap at which ``exact`` and ``ilp`` may stop.
        threads: worker threads over layers (``None``: all cores).

    Returns:
        A :class:`Rebalance`.

    Raises:
        ValueError: counts that do not fit, a current placement of another shape or breaking
            the rules, a bad budget, ``min_gain``, GPU id or ``effort`` (the message says
            which).
        TypeError: inputs that are not arrays of numbers.

    >>> import eplb
    >>> r = eplb.rebalance([[1, 1, 1, 9]], [[0, 0, 1, 2, 3, 3]], 6, 1, 1, 2, max_moves=1)
    >>> r.layers[0].old_max, r.layers[0].new_max, r.layers[0].transfers
    (10.0, 6.5, 1)
    >>> m = r.layers[0].moves[0]  # expert 3 from GPU 1 to GPU 0, in the first round
    >>> (m.expert, m.from_gpu, m.to_gpu, m.to_slot, m.round)
    (3, 1, 0, 1, 0)
    """
    array, tensor = as_array(weight, "weight", 2)
    current = as_ids(current_phy2log, "current_phy2log")
    arrays, layers, order, failed, used_policy, fallback = _eplb.rebalance(
        array, current, num_replicas, num_gpus, num_nodes, num_groups,
        policy=policy, strategy=strategy, sub_strategy=sub_strategy, time_limit=time_limit,
        mip_gap=mip_gap, threads=threads, max_moves=count(max_moves, "max_moves"),
        max_bytes=count(max_bytes, "max_bytes"), expert_bytes=count(expert_bytes, "expert_bytes"),
        min_gain=min_gain, failed_gpus=gpu_ids(failed_gpus, "failed_gpus"),
        distinct_replicas=bool(distinct_replicas), effort=effort,
    )
    phy2log, log2phy, logcnt = to_caller(arrays, tensor)
    rows = [
        LayerRebalance(plan=_plan(row.pop("plan")), **row)
        for row in layers
    ]
    return Rebalance(phy2log, log2phy, logcnt, rows, order, failed, used_policy, fallback)

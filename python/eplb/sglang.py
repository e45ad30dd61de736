"""SGLang's EPLB algorithm call and its ``--init-expert-location`` file.

:func:`rebalance_experts` takes the arguments of
``sglang.srt.eplb.eplb_algorithms.rebalance_experts`` (loads per recorder step, layer and
expert; slots; slots per GPU; groups; nodes; algorithm) and returns what it returns,
``(physical_to_logical_map, logical_to_physical_map, logical_count)``. The ``deepseek``
algorithms are bit-exact; the keyword ``strategy`` runs a better one.
:func:`write_init_expert_location` writes the file SGLang reads with
``--init-expert-location FILE``.
"""

from __future__ import annotations

import os
from typing import Any, Optional, Tuple, Union

from . import _eplb
from ._convert import as_array, as_ids, is_tensor, solve

__all__ = ["ALGORITHMS", "rebalance_experts", "write_init_expert_location"]

#: SGLang's algorithm names (``--eplb-algorithm``) and the policy each means; ``auto`` is
#: hierarchical when ``num_groups % num_nodes == 0``, as SGLang decides. The vectorised and
#: plain variants compute the same placement.
ALGORITHMS = {
    "auto": "auto",
    "deepseek": "global",
    "deepseek_hierarchical": "hierarchical",
    "deepseek_vec": "global",
    "deepseek_vec_hierarchical": "hierarchical",
}


def _policy(algorithm: Any, num_groups: Optional[int], num_nodes: int) -> str:
    name = getattr(algorithm, "name", algorithm)  # SGLang's EplbAlgorithm enum, or its name
    if name not in ALGORITHMS:
        raise ValueError(
            f"unknown SGLang algorithm {algorithm!r}: valid are {', '.join(ALGORITHMS)}"
        )
    if name == "auto":
        hierarchical = num_groups is not None and num_groups % num_nodes == 0
        return "hierarchical" if hierarchical else "global"
    return ALGORITHMS[name]


def rebalance_experts(
    tokens_per_expert: Any,
    num_physical_experts: int,
    num_local_physical_experts: int,
    num_groups: Optional[int],
    num_nodes: int,
    algorithm: Any = "auto",
    *,
    strategy: str = "greedy",
    time_limit: Optional[float] = None,
    threads: Optional[int] = None,
) -> Tuple[Any, Any, Any]:
    """SGLang's ``rebalance_experts``.

    Args:
        tokens_per_expert: ``[steps, layers, experts]`` loads (summed over steps, as SGLang
            does), a tensor, NumPy array or nested lists; a 2-D ``[layers, experts]`` is
            taken as one step.
        num_physical_experts: slots per layer.
        num_local_physical_experts: slots per GPU (GPUs = the quotient).
        num_groups: expert groups, or ``None`` (then the policy is global).
        num_nodes: server nodes.
        algorithm: ``"auto"``, ``"deepseek"``, ``"deepseek_hierarchical"``, the ``_vec``
            variants, or SGLang's ``EplbAlgorithm`` member of one of these names.
        strategy: eplb's strategy (``"greedy"`` is DeepSeek's algorithm).
        time_limit: seconds per layer for ``exact`` and ``ilp``.
        threads: worker threads over layers.

    Returns:
        ``(physical_to_logical_map [layers, slots], logical_to_physical_map [layers, experts,
        X] padded with -1, logical_count [layers, experts])``, int64; tensors when the input is
        one.

    Raises:
        ValueError, TypeError: bad counts or input, with the library's message.

    >>> from eplb import sglang
    >>> p2l, l2p, cnt = sglang.rebalance_experts([[[3, 1]], [[3, 1]]], 4, 2, None, 1)
    >>> p2l.tolist(), cnt.tolist()
    ([[0, 0, 1, 0]], [[3, 1]])
    """
    if num_local_physical_experts <= 0 or num_physical_experts % num_local_physical_experts:
        raise ValueError(
            f"num_physical_experts = {num_physical_experts} must be a positive multiple of "
            f"num_local_physical_experts = {num_local_physical_experts}"
        )
    if is_tensor(tokens_per_expert):
        steps = tokens_per_expert if tokens_per_expert.dim() != 2 else tokens_per_expert[None]
        if steps.dim() != 3:
            raise TypeError(
                "tokens_per_expert must be [steps, layers, experts]; "
                f"got shape {tuple(steps.shape)}"
            )
        weight = steps.sum(dim=0)  # as SGLang sums them
    else:
        steps, _ = as_array(tokens_per_expert, "tokens_per_expert", _ndim(tokens_per_expert))
        weight = steps.sum(axis=0) if steps.ndim == 3 else steps
    arrays, _ = solve(
        weight, "tokens_per_expert", num_physical_experts,
        num_physical_experts // num_local_physical_experts, num_nodes,
        num_groups if num_groups is not None else 1,
        policy=_policy(algorithm, num_groups, num_nodes), strategy=strategy,
        time_limit=time_limit, threads=threads,
    )
    return arrays


def _ndim(x: Any) -> int:
    """3 unless ``x`` is visibly 2-D (SGLang's input is 3-D; 2-D is one step)."""
    import numpy as np

    shape = np.shape(x)
    return 2 if len(shape) == 2 else 3


def write_init_expert_location(
    path: Union[str, "os.PathLike[str]"],
    physical_to_logical_map: Any,
    num_logical_experts: int,
    first_moe_layer: int = 0,
) -> None:
    """Writes SGLang's ``--init-expert-location`` file,
    ``{"physical_to_logical_map": [model layers][slots]}``: row ``l`` of the map is model layer
    ``first_moe_layer + l``; the dense layers before it get SGLang's trivial mapping
    (slot ``s`` holds expert ``s % num_logical_experts``). Written whole or not at all.

    Raises:
        ValueError: negative ids or an empty map.
        TypeError: not a 2-D array of integers.
    """
    ids = as_ids(physical_to_logical_map, "physical_to_logical_map")
    text = _eplb.sglang_location_json(ids, num_logical_experts, first_moe_layer)
    tmp = f"{os.fspath(path)}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)

"""Stubs of the native module ``eplb._eplb`` (Rust, PyO3): the building blocks of the
public functions in ``eplb``."""

from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import numpy.typing as npt

_Arrays = Tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]
# place's arrays: log2phy and logcnt are None when tables="phy2log".
_PlacedArrays = Tuple[
    npt.NDArray[np.int64], Optional[npt.NDArray[np.int64]], Optional[npt.NDArray[np.int64]]
]

def place(
    weight: npt.NDArray[Any],
    num_replicas: int,
    num_gpus: int,
    num_nodes: int,
    num_groups: int,
    *,
    policy: str,
    strategy: str,
    sub_strategy: Optional[str] = None,
    time_limit: Optional[float] = None,
    mip_gap: Optional[float] = None,
    threads: Optional[int] = None,
    old_phy2log: Optional[npt.NDArray[np.int64]] = None,
    failed_gpus: Optional[List[int]] = None,
    metrics: bool = False,
    tables: str = "all",
) -> Tuple[_PlacedArrays, Optional[List[Dict[str, Any]]]]:
    """Solves the 2-D loads ``weight`` (any integer or float dtype) with the GIL released:
    ``(phy2log, log2phy, logcnt)`` and, with ``metrics``, one dict of evaluator metrics per
    layer. ``old_phy2log`` aligns the answer to it (ids outside ``0..experts`` hold nothing);
    ``failed_gpus`` places on the other GPUs (their slots ``-1``). ``tables="phy2log"`` builds
    ``phy2log`` alone (``log2phy`` and ``logcnt`` are ``None``), what vLLM's
    ``rebalance_experts`` returns; ``"all"`` (the default) all three."""

def evaluate_placement(
    loads: npt.NDArray[Any],
    phy2log: npt.NDArray[np.int64],
    num_gpus: int,
    num_nodes: int,
    num_groups: int,
    *,
    policy: str,
    failed_gpus: Optional[List[int]] = None,
) -> List[Dict[str, Any]]:
    """The evaluator's metrics and violations of ``phy2log``, one dict per layer (of the live
    GPUs when some failed)."""

def strategies() -> List[Tuple[str, str]]:
    """``(name, description)`` of every built-in strategy."""

def sglang_location_json(
    phy2log: npt.NDArray[np.int64], num_experts: int, first_layer: int
) -> str:
    """SGLang's ``--init-expert-location`` JSON for ``phy2log``."""

#: Bytes of one expert's weights by default (DeepSeek-V3 in FP8).
DEFAULT_EXPERT_BYTES: int

def align(
    loads: npt.NDArray[Any],
    current: npt.NDArray[np.int64],
    new: npt.NDArray[np.int64],
    num_gpus: int,
    num_nodes: int,
    num_groups: int,
    *,
    policy: str,
    expert_bytes: int,
) -> Tuple[npt.NDArray[np.int64], List[Dict[str, Any]], List[int]]:
    """``new`` relabelled to need the fewest transfers from ``current`` (GIL released): the
    aligned ``phy2log``, one plan dict per layer (counts, rounds, ``moves``) and the transfers
    ``new`` needed before."""

def rebalance(
    weight: npt.NDArray[Any],
    current: npt.NDArray[np.int64],
    num_replicas: int,
    num_gpus: int,
    num_nodes: int,
    num_groups: int,
    *,
    policy: str,
    strategy: Optional[str],
    sub_strategy: Optional[str] = None,
    time_limit: Optional[float] = None,
    mip_gap: Optional[float] = None,
    threads: Optional[int] = None,
    max_moves: Optional[int] = None,
    max_bytes: Optional[int] = None,
    expert_bytes: int,
    min_gain: float,
    failed_gpus: Optional[List[int]] = None,
    distinct_replicas: bool = False,
    effort: str = "thorough",
) -> Tuple[_Arrays, List[Dict[str, Any]], List[int], List[int], str, Optional[str]]:
    """The budgeted rebalance of ``current`` for the loads ``weight`` (GIL released):
    DeepSeek's arrays (failed GPUs' slots ``-1``), one dict per layer (with its ``plan``), the
    update order, the failed GPUs, the policy used and why it fell back to global, if it
    did."""

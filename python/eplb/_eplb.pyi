"""Stubs of the native module ``eplb._eplb`` (Rust, PyO3): the building blocks of the
public functions in ``eplb``."""

from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import numpy.typing as npt

_Arrays = Tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]

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
    metrics: bool = False,
) -> Tuple[_Arrays, Optional[List[Dict[str, Any]]]]:
    """Solves the 2-D loads ``weight`` (any integer or float dtype) with the GIL released:
    ``(phy2log, log2phy, logcnt)`` and, with ``metrics``, one dict of evaluator metrics per
    layer."""

def evaluate_placement(
    loads: npt.NDArray[Any],
    phy2log: npt.NDArray[np.int64],
    num_gpus: int,
    num_nodes: int,
    num_groups: int,
    *,
    policy: str,
) -> List[Dict[str, Any]]:
    """The evaluator's metrics and violations of ``phy2log``, one dict per layer."""

def strategies() -> List[Tuple[str, str]]:
    """``(name, description)`` of every built-in strategy."""

def sglang_location_json(
    phy2log: npt.NDArray[np.int64], num_experts: int, first_layer: int
) -> str:
    """SGLang's ``--init-expert-location`` JSON for ``phy2log``."""

"""Inputs and outputs: torch tensors, NumPy arrays and nested lists in, the caller's kind out.

torch is never imported here: a tensor is recognised through ``sys.modules`` (if the caller
has a tensor, torch is already imported).
"""

from __future__ import annotations

import operator
import sys
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from . import _eplb


def torch_module() -> Any:
    """The imported ``torch`` module, or ``None`` when the program never imported it."""
    return sys.modules.get("torch")


def is_tensor(x: Any) -> bool:
    """True when ``x`` is a ``torch.Tensor``."""
    torch = torch_module()
    return torch is not None and isinstance(x, torch.Tensor)


def as_array(x: Any, name: str, ndim: int) -> Tuple[np.ndarray, bool]:
    """``x`` as a NumPy array of integers or floats with ``ndim`` dimensions, and whether it
    was a torch tensor.

    A CPU tensor is viewed without a copy; a tensor on another device is copied to the CPU
    (``eplb.py`` computes on the CPU too); half-precision floats become ``float32`` as
    ``eplb.py``'s ``weight.float()`` does. A NumPy array is used as it is (any strides);
    nested lists are converted once.

    Raises:
        TypeError: not an array of integers or floats, or the wrong number of dimensions.
        ValueError: ragged nested lists.
    """
    if is_tensor(x):
        torch = torch_module()
        t = x.detach()
        if t.dtype == torch.bool or t.is_complex():
            raise TypeError(f"{name} must hold integers or floats; got a tensor of {t.dtype}")
        if t.dtype in (torch.float16, torch.bfloat16):
            t = t.float()
        if t.device.type != "cpu":
            t = t.cpu()
        array, was_tensor = t.numpy(), True
    elif isinstance(x, np.ndarray):
        array, was_tensor = x, False
    elif isinstance(x, (list, tuple)):
        try:
            array = np.asarray(x)
        except ValueError as e:
            raise ValueError(f"{name} is ragged: every row needs the same length ({e})") from None
        was_tensor = False
    else:
        raise TypeError(
            f"{name} must be a torch.Tensor, a NumPy array or nested lists; got {type(x).__name__}"
        )
    if array.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold integers or floats; got dtype {array.dtype}")
    if array.dtype == np.float16:
        array = array.astype(np.float32)
    if array.ndim != ndim:
        raise TypeError(
            f"{name} must have {ndim} dimensions; got shape {tuple(array.shape)}"
        )
    return array, was_tensor


def as_ids(x: Any, name: str) -> np.ndarray:
    """A placement ``[layers, slots]`` of expert ids as ``int64`` (converted when needed)."""
    array, _ = as_array(x, name, 2)
    if array.dtype.kind == "f":
        raise TypeError(f"{name} must hold integer expert ids; got dtype {array.dtype}")
    return np.asarray(array, dtype=np.int64)


def solve(
    loads: Any,
    name: str,
    num_replicas: int,
    num_gpus: int,
    num_nodes: int,
    num_groups: int,
    **options: Any,
) -> Tuple[Tuple[Any, Any, Any], Optional[List[Dict[str, Any]]]]:
    """The native solve of the 2-D ``loads`` (called ``name`` in messages): DeepSeek's arrays
    in the caller's kind (torch for a tensor, NumPy otherwise; ``log2phy`` and ``logcnt`` are
    ``None`` with ``tables="phy2log"``) and, with ``metrics=True``, the per-layer metrics."""
    array, tensor = as_array(loads, name, 2)
    arrays, layers = _eplb.place(array, num_replicas, num_gpus, num_nodes, num_groups, **options)
    return to_caller(arrays, tensor), layers


def to_caller(arrays: Tuple[Optional[np.ndarray], ...], tensor: bool) -> Tuple[Any, ...]:
    """The arrays as CPU ``torch`` tensors (sharing memory, no copy) when ``tensor``; ``None``
    (a table not asked for) stays ``None``."""
    if not tensor:
        return arrays
    torch = torch_module()
    return tuple(None if a is None else torch.from_numpy(a) for a in arrays)


def gpu_ids(x: Any, name: str) -> Optional[List[int]]:
    """A list of GPU ids (integers >= 0) from any iterable of integers (a list, a NumPy array
    or a tensor); ``None`` for ``None``.

    Raises:
        TypeError: not an iterable of integers.
        ValueError: a negative id.
    """
    if x is None:
        return None
    try:
        items = list(x.tolist() if hasattr(x, "tolist") else x)
    except TypeError:
        raise TypeError(f"{name} must be a list of GPU ids; got {type(x).__name__}") from None
    return [index(g, f"{name}[{i}]") for i, g in enumerate(items)]


def count(x: Optional[int], name: str) -> Optional[int]:
    """``x`` checked to be ``None`` or an integer >= 0 (see :func:`index`)."""
    return None if x is None else index(x, name)


def index(x: Any, name: str) -> int:
    """``x`` checked to be an integer >= 0.

    Raises:
        TypeError: not an integer.
        ValueError: negative.
    """
    try:
        x = operator.index(x)
    except TypeError:
        raise TypeError(f"{name} = {x!r}: must be an integer") from None
    if x < 0:
        raise ValueError(f"{name} = {x}: must be >= 0")
    return x

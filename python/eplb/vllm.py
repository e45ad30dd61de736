"""vLLM's EPLB policy hook.

:class:`EplbPolicy` has the contract of vLLM's ``AbstractEplbPolicy``
(``vllm/distributed/eplb/policy/abstract.py``, v0.23 and later): a classmethod
``rebalance_experts(weight, num_replicas, num_groups, num_nodes, num_ranks,
old_global_expert_indices=None)`` returning ``phy2log`` ``[layers, num_replicas]`` (int64, CPU).
Given the current placement, the answer is relabelled with :func:`eplb.align`'s algorithm (the
library's ``eplb::live::align``): GPUs (within their node under the hierarchical policy) and
slots within a GPU are permuted to need the fewest weight transfers, which is never more than
vLLM's default rule (keep the experts that stay on a GPU in their slot) and usually fewer;
experts that stay on a GPU keep their slot there too.

Making a running vLLM use it. vLLM looks the policy up as ``EPLB_POLICIES[eplb_config.policy]``
(``vllm.distributed.eplb.policy``) when a worker builds its EPLB state, and validates
``eplb_config.policy`` against the ``Literal`` ``EPLBPolicyOption`` of ``vllm.config.parallel``
when the config is created. A new name would need that ``Literal`` *and* the pydantic config
class rebuilt, so :func:`install` replaces the class registered under an existing name
(``"default"`` unless told otherwise) instead, in the process that calls it:

.. code-block:: python

    import eplb.vllm; eplb.vllm.install(strategy="refine")   # before the engine starts

vLLM's workers are separate processes: for them, this package registers the vLLM plugin
``eplb`` (entry point ``vllm.general_plugins``), which vLLM runs in every process. It does
nothing unless the environment variable ``EPLB_VLLM_STRATEGY`` names a strategy:

.. code-block:: bash

    EPLB_VLLM_STRATEGY=refine vllm serve MODEL --enable-expert-parallel --enable-eplb

(``EPLB_VLLM_TIME_LIMIT`` sets the per-layer limit of ``exact``.) vLLM is never imported when
this module is.
"""

from __future__ import annotations

import importlib
import os
from typing import Any, Optional

from . import _eplb
from ._convert import as_ids, solve

__all__ = ["EplbPolicy", "install", "plugin"]

#: Where vLLM keeps its registry of policies.
VLLM_POLICY_MODULE = "vllm.distributed.eplb.policy"


class EplbPolicy:
    """vLLM's ``AbstractEplbPolicy`` on eplb's strategies (``greedy`` by default, which is
    DeepSeek's algorithm as vLLM's default policy runs it).

    Configure by subclassing or with :meth:`configured`; the class attributes are the
    keyword options of :func:`eplb.place`.
    """

    #: The strategy (see :func:`eplb.strategies`).
    strategy: str = "greedy"
    #: Seconds per layer for ``exact`` and ``ilp`` (``None``: 10).
    time_limit: Optional[float] = None
    #: Worker threads over layers (``None``: all cores).
    threads: Optional[int] = None

    @classmethod
    def configured(
        cls,
        strategy: str = "greedy",
        time_limit: Optional[float] = None,
        threads: Optional[int] = None,
    ) -> type:
        """A subclass with these options.

        >>> from eplb.vllm import EplbPolicy
        >>> EplbPolicy.configured("refine").strategy
        'refine'
        """
        if strategy not in dict(_eplb.strategies()):
            raise ValueError(
                f"unknown strategy {strategy!r}: valid strategies are "
                + ", ".join(n for n, _ in _eplb.strategies())
            )
        return type(
            f"EplbPolicy_{strategy.replace('-', '_')}",
            (cls,),
            {"strategy": strategy, "time_limit": time_limit, "threads": threads},
        )

    @classmethod
    def rebalance_experts(
        cls,
        weight: Any,
        num_replicas: int,
        num_groups: int,
        num_nodes: int,
        num_ranks: int,
        old_global_expert_indices: Any = None,
    ) -> Any:
        """A new placement for the loads ``weight``.

        Args:
            weight: ``[layers, num_logical_experts]`` load statistics (any device, integer or
                float).
            num_replicas: physical experts, a multiple of ``num_ranks``.
            num_groups: expert groups.
            num_nodes: server nodes.
            num_ranks: EP ranks (GPUs), a multiple of ``num_nodes`` under the hierarchical
                policy (used when ``num_groups % num_nodes == 0``).
            old_global_expert_indices: the current ``[layers, num_replicas]`` placement, or
                ``None``. The answer is aligned to it (fewest transfers; experts that stay on
                a rank keep their slot there). It need not be a complete placement: an id
                outside ``0..num_logical_experts`` (such as -1 for an empty slot) holds
                nothing; a placement of another width (ranks added or removed) is not
                aligned.

        Returns:
            ``phy2log`` ``[layers, num_replicas]``, int64 on the CPU (a torch tensor when
            ``weight`` is one).

        Raises:
            ValueError, TypeError: bad counts or input, with the library's message.
        """
        old = (
            None
            if old_global_expert_indices is None
            else as_ids(old_global_expert_indices, "old_global_expert_indices")
        )
        # vLLM builds log2phy and logcnt itself: phy2log alone is asked for.
        (phy2log, _, _), _ = solve(
            weight, "weight", num_replicas, num_ranks, num_nodes, num_groups,
            policy="auto", strategy=cls.strategy, time_limit=cls.time_limit,
            threads=cls.threads, old_phy2log=old, tables="phy2log",
        )
        return phy2log


def install(
    strategy: str = "greedy",
    *,
    name: str = "default",
    time_limit: Optional[float] = None,
    threads: Optional[int] = None,
) -> type:
    """Makes vLLM's policy ``name`` (``eplb_config.policy``, ``"default"`` unless told) run
    eplb's ``strategy``, in this process. Returns the installed class.

    Raises:
        ImportError: vLLM is not installed or has no policy registry.
        ValueError: ``name`` is not one of vLLM's policy names (its config would reject it),
            or ``strategy`` is unknown.
    """
    module = importlib.import_module(VLLM_POLICY_MODULE)
    registry = getattr(module, "EPLB_POLICIES", None)
    if registry is None:
        raise ImportError(f"{VLLM_POLICY_MODULE} has no EPLB_POLICIES: this vLLM is too old")
    if name not in registry:
        raise ValueError(
            f"vLLM has no EPLB policy {name!r} (its config accepts {sorted(registry)}): "
            "install replaces one of these"
        )
    policy = EplbPolicy.configured(strategy, time_limit=time_limit, threads=threads)
    abstract = getattr(module, "AbstractEplbPolicy", None)
    if abstract is not None and hasattr(abstract, "register"):
        abstract.register(policy)
    registry[name] = policy
    return policy


def plugin() -> None:
    """vLLM's ``vllm.general_plugins`` entry point: :func:`install` with the strategy named
    by ``EPLB_VLLM_STRATEGY`` (and ``EPLB_VLLM_TIME_LIMIT`` seconds), or nothing when it is
    unset."""
    strategy = os.environ.get("EPLB_VLLM_STRATEGY")
    if not strategy:
        return
    limit = os.environ.get("EPLB_VLLM_TIME_LIMIT")
    install(strategy, time_limit=float(limit) if limit else None)

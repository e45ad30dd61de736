"""vLLM's AbstractEplbPolicy contract: classmethod, phy2log [layers, num_replicas] int64 on the
CPU, the old placement aligned (eplb.align: fewest transfers, stayers keep their slots), and
installation into vLLM's registry (a stand-in module here: vLLM itself is not a test
dependency)."""

import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

import eplb
from eplb import vllm as eplb_vllm
from eplb.vllm import EplbPolicy

R, G, N, P = 24, 4, 2, 8  # 3 slots per GPU, 16 experts
DATA = Path(__file__).resolve().parents[2] / "tests" / "data"
S = R // P


def loads(seed, layers=4, experts=16):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 1000, (layers, experts)))


def gpu_contents(phy2log):
    """Per layer and GPU, the sorted experts it holds."""
    a = np.asarray(phy2log)
    return [[sorted(a[l, g * S:(g + 1) * S].tolist()) for g in range(P)] for l in range(len(a))]


def test_the_contract():
    w = loads(0)
    phy2log = EplbPolicy.rebalance_experts(w, R, G, N, P)
    assert isinstance(phy2log, torch.Tensor)
    assert phy2log.dtype == torch.int64 and phy2log.device.type == "cpu"
    assert tuple(phy2log.shape) == (4, R)
    # Without the old placement it is DeepSeek's placement.
    assert torch.equal(phy2log, eplb.rebalance_experts(w, R, G, N, P)[0])
    # Keyword call as vLLM makes it.
    again = EplbPolicy.rebalance_experts(
        weight=w, num_replicas=R, num_groups=G, num_nodes=N, num_ranks=P,
        old_global_expert_indices=None,
    )
    assert torch.equal(phy2log, again)


def transfers(old, new):
    """Per layer, the replicas of new on a GPU that held no replica of their expert in old."""
    return [
        sum(e not in set(o[l][g]) for g in range(P) for e in n[l][g])
        for o, n in [(gpu_contents(old), gpu_contents(new))]
        for l in range(len(o))
    ]


def test_old_placement_is_aligned():
    old = EplbPolicy.rebalance_experts(loads(1), R, G, N, P)
    plain = EplbPolicy.rebalance_experts(loads(2), R, G, N, P)
    aligned = EplbPolicy.rebalance_experts(loads(2), R, G, N, P, old)
    # GPUs (within their node) and slots were relabelled: the GPUs hold what the plain
    # placement's GPUs hold, so the loads and the verdict are those of the plain placement...
    assert [sorted(x) for x in gpu_contents(aligned)] == [sorted(x) for x in gpu_contents(plain)]
    w = loads(2)
    for a, p in zip(eplb.evaluate(w, aligned, P, N, G).layers, eplb.evaluate(w, plain, P, N, G).layers):
        assert a.feasible and a.max_load == p.max_load
        assert sorted(a.gpu_loads) == pytest.approx(sorted(p.gpu_loads))
    # ...at no more transfers than vLLM's rule (which keeps every GPU's experts where the
    # plain placement put them) and fewer here.
    ours, vllms = transfers(old, aligned), transfers(old, plain)
    assert all(a <= v for a, v in zip(ours, vllms)) and sum(ours) < sum(vllms)
    assert ours == [l.transfers for l in eplb.align(w, old, aligned, P, N, G).layers]
    kept = 0
    for l in range(4):
        for g in range(P):
            new_here = aligned[l, g * S:(g + 1) * S].tolist()
            old_here = old[l, g * S:(g + 1) * S].tolist()
            remaining = list(new_here)
            for j, e in enumerate(old_here):
                if e in remaining:
                    remaining.remove(e)
                    # An expert still on this GPU is still in its old slot.
                    assert new_here[j] == e, (l, g, old_here, new_here)
                    kept += 1
    assert kept > 0  # the test means something: some experts stayed
    # Rebalancing to the same placement moves nothing at all.
    same = EplbPolicy.rebalance_experts(loads(1), R, G, N, P, old)
    assert torch.equal(same, old)


@pytest.mark.parametrize("groups, nodes", [(4, 2), (1, 2)])  # hierarchical, global
def test_on_a_real_trace_align_beats_vllms_rule(groups, nodes):
    """ESFT-vanilla-lite (26 layers x 64 experts): placed for the intent workload, rebalanced
    for the law workload on 8 GPUs x 10 slots."""
    intent, law = (
        torch.tensor(json.loads((DATA / f"esft-vanilla-lite_esft-{t}.json").read_text())["loads"])
        for t in ("intent", "law")
    )
    r, p = 80, 8
    old = EplbPolicy.rebalance_experts(intent, r, groups, nodes, p)
    plain = EplbPolicy.rebalance_experts(law, r, groups, nodes, p)
    aligned = EplbPolicy.rebalance_experts(law, r, groups, nodes, p, old)
    ours = [x.transfers for x in eplb.align(law, old, aligned, p, nodes, groups).layers]
    # vLLM's rule keeps every GPU's experts where the plain placement put them.
    vllms = eplb.align(law, old, plain, p, nodes, groups).transfers_before
    assert all(a <= v for a, v in zip(ours, vllms)) and sum(ours) < sum(vllms)


def test_a_shuffled_old_placement_is_followed_slot_by_slot():
    plain = EplbPolicy.rebalance_experts(loads(3), R, G, N, P)
    # Permute the slots inside every GPU: the aligned answer must restore that permutation.
    rng = np.random.default_rng(0)
    old = plain.clone()
    for l in range(4):
        for g in range(P):
            old[l, g * S:(g + 1) * S] = old[l, g * S + rng.permutation(S)]
    assert torch.equal(EplbPolicy.rebalance_experts(loads(3), R, G, N, P, old), old)


@pytest.mark.parametrize("empty", [-1, 16, 99])
def test_old_placement_with_empty_slots(empty):
    old = EplbPolicy.rebalance_experts(loads(1), R, G, N, P)
    old[:, ::S] = empty  # the first slot of every GPU empty: matches no expert
    plain = EplbPolicy.rebalance_experts(loads(1), R, G, N, P)
    aligned = EplbPolicy.rebalance_experts(loads(1), R, G, N, P, old)
    assert gpu_contents(aligned) == gpu_contents(plain)
    kept = old != empty
    assert torch.equal(aligned[kept], old[kept])  # the same loads: every other slot kept


def test_old_placement_of_another_width_is_not_aligned():
    w = loads(4)
    plain = EplbPolicy.rebalance_experts(w, R, G, N, P)
    old = torch.zeros(4, R + P, dtype=torch.int64)  # one more slot per GPU than now
    assert torch.equal(EplbPolicy.rebalance_experts(w, R, G, N, P, old), plain)


def test_configured_strategies_are_never_worse():
    w = loads(5)
    refine = EplbPolicy.configured("refine")
    assert issubclass(refine, EplbPolicy) and refine.strategy == "refine"
    better = refine.rebalance_experts(w, R, G, N, P)
    worse = EplbPolicy.rebalance_experts(w, R, G, N, P)
    for b, g in zip(eplb.evaluate(w, better, P, N, G).layers, eplb.evaluate(w, worse, P, N, G).layers):
        assert b.feasible and b.max_load <= g.max_load


def test_numpy_in_numpy_out():
    phy2log = EplbPolicy.rebalance_experts(loads(6).numpy(), R, G, N, P)
    assert isinstance(phy2log, np.ndarray) and phy2log.dtype == np.int64


@pytest.fixture
def fake_vllm(monkeypatch):
    """A stand-in for vllm.distributed.eplb.policy: a registry and an ABC."""
    import abc

    class AbstractEplbPolicy(abc.ABC):
        @classmethod
        @abc.abstractmethod
        def rebalance_experts(cls, weight, num_replicas, num_groups, num_nodes, num_ranks,
                              old_global_expert_indices=None):
            ...

    class DefaultEplbPolicy(AbstractEplbPolicy):
        pass

    module = types.ModuleType(eplb_vllm.VLLM_POLICY_MODULE)
    module.AbstractEplbPolicy = AbstractEplbPolicy
    module.EPLB_POLICIES = {"default": DefaultEplbPolicy}
    for name in ("vllm", "vllm.distributed", "vllm.distributed.eplb"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, eplb_vllm.VLLM_POLICY_MODULE, module)
    return module


def test_install_replaces_the_default_policy(fake_vllm):
    installed = eplb_vllm.install("refine")
    policy = fake_vllm.EPLB_POLICIES["default"]
    assert policy is installed and policy.strategy == "refine"
    assert issubclass(policy, fake_vllm.AbstractEplbPolicy)
    assert tuple(policy.rebalance_experts(loads(7), R, G, N, P).shape) == (4, R)
    with pytest.raises(ValueError, match="default"):
        eplb_vllm.install("greedy", name="eplb")  # vLLM's config would reject the name


def test_plugin_does_nothing_unless_asked(fake_vllm, monkeypatch):
    before = dict(fake_vllm.EPLB_POLICIES)
    monkeypatch.delenv("EPLB_VLLM_STRATEGY", raising=False)
    eplb_vllm.plugin()
    assert fake_vllm.EPLB_POLICIES == before
    monkeypatch.setenv("EPLB_VLLM_STRATEGY", "exact")
    monkeypatch.setenv("EPLB_VLLM_TIME_LIMIT", "0.5")
    eplb_vllm.plugin()
    policy = fake_vllm.EPLB_POLICIES["default"]
    assert (policy.strategy, policy.time_limit) == ("exact", 0.5)


def test_install_without_vllm_is_an_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(ImportError):
        eplb_vllm.install()


def test_importing_the_package_imports_neither_vllm_nor_torch():
    code = "import sys, eplb, eplb.vllm, eplb.sglang; print('vllm' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("strategy", ["greedy", "refine"])
@pytest.mark.parametrize("threads", [1, None])
@pytest.mark.parametrize("groups, nodes", [(4, 2), (1, 2)])  # hierarchical, global
def test_phy2log_alone_is_the_full_tables_phy2log(strategy, threads, groups, nodes):
    """The adapter asks for phy2log alone (vLLM builds log2phy itself): the same phy2log as
    the three tables', fresh, aligned to a current placement, and on failed GPUs."""
    from eplb import _eplb

    intent, law = (
        np.array(json.loads((DATA / f"esft-vanilla-lite_esft-{t}.json").read_text())["loads"])
        for t in ("intent", "law")
    )
    r, p = 80, 8
    kw = dict(policy="auto", strategy=strategy, threads=threads)
    old = _eplb.place(intent, r, p, nodes, groups, **kw)[0][0]
    for extra in ({}, {"old_phy2log": old}, {"failed_gpus": [3]}, {"metrics": True}):
        (full, log2phy, logcnt), _ = _eplb.place(law, r, p, nodes, groups, **kw, **extra)
        (alone, none1, none2), _ = _eplb.place(
            law, r, p, nodes, groups, **kw, **extra, tables="phy2log"
        )
        assert none1 is None and none2 is None
        assert alone.dtype == np.int64 and alone.shape == full.shape == (26, r)
        assert np.array_equal(alone, full), extra
        assert log2phy.shape[:2] == (26, 64) and logcnt.sum() == (full >= 0).sum()
    # ... and through the adapter, as vLLM calls it.
    got = EplbPolicy.configured(strategy=strategy).rebalance_experts(law, r, groups, nodes, p, old)
    assert np.array_equal(got, _eplb.place(law, r, p, nodes, groups, old_phy2log=old, **kw)[0][0])


def test_unknown_tables_request_is_a_value_error():
    from eplb import _eplb

    with pytest.raises(ValueError, match="tables = \"log2phy\": must be \"all\""):
        _eplb.place(np.ones((1, 16)), R, P, N, G, policy="auto", strategy="greedy", tables="log2phy")

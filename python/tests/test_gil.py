"""The GIL is released while solving: another Python thread runs during a long solve (vLLM
rebalances on a background thread)."""

import threading
import time

import numpy as np
import pytest

import eplb

# Random non-integer loads: `exact` cannot prove the layer and searches until its limit.
W = np.random.default_rng(7).random((1, 256)) * 1000


def place():
    """A long solve: ``exact`` to its half-second limit (the status says it got there)."""
    placement = eplb.place(
        W, 288, 32, 4, 8, strategy="exact", policy="global", time_limit=0.5, threads=1
    )
    assert placement.layers[0].status == "time_limit"


def rebalance():
    """A long rebalance: its fresh placement is that ``exact`` solve."""
    current = eplb.rebalance_experts(W[:, ::-1], 288, 8, 4, 32, policy="global")[0]
    eplb.rebalance(
        W, current, 288, 8, 4, 32, strategy="exact", policy="global", time_limit=0.5, threads=1
    )


@pytest.mark.parametrize("call", [place, rebalance], ids=lambda f: f.__name__)
def test_another_thread_runs_during_a_long_exact_solve(call):
    started, done = threading.Event(), threading.Event()

    def solve():
        started.set()
        call()
        done.set()

    worker = threading.Thread(target=solve)
    worker.start()
    started.wait()
    # Sleeping releases the GIL, so the worker goes on into the solve. Had the solver kept
    # the GIL, this thread could only wake, and do the pure-Python work below, after the solve
    # returned; with the GIL released it does it while the solver still searches (it stops at
    # its half-second limit; the work takes a few tens of milliseconds: longer than the
    # interpreter's switch interval, so it cannot fit either in the moment between the end of
    # a GIL-holding solve and the worker's next statement).
    time.sleep(0.05)
    total = 0
    for i in range(300_000):
        total += i
    finished_during_solve = not done.is_set()
    worker.join()
    assert total == 300_000 * 299_999 // 2
    assert done.is_set()  # the call returned (its checks passed)
    assert finished_during_solve

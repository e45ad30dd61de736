"""Issue 16's side-by-side run: vLLM's default and batched policies against `eplb bench`.

usage: python drive.py NAME=BIN[,NAME=BIN...] TRACE ROUNDS NAME:STRATEGY[:TABLES][,...] [-- EXTRA BENCH FLAGS]

Run `bash lab/peer/fetch.sh` first (the peers live in $EPLB_PEER_DIR, default
/var/tmp/eplb-peer) and set OMP_NUM_THREADS=1 (one thread on both sides). Every round times,
for each of the five shapes of issue 16, the batched peer (median of 20 calls), then each
NAME:STRATEGY with `BIN bench ... --threads 1 --warmup 20 --iterations 200` (median: a
binary run right after the peer with fewer iterations read 8-10% fast or slow by its position;
TABLES, `all` by
default or `phy2log`, is passed as `--tables`: vLLM 0.34's policies return `phy2log` only, so
`phy2log` is the like-for-like comparison, `all` DeepSeek's three tables); the default policy is
timed in the first round only (it is ~10x slower). Before timing, the batched policy's placement
is checked equal to the default policy's on every shape. Prints the medians over the rounds and
each binary's ratio to the batched peer.
"""
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.environ.get("EPLB_PEER_DIR", "/var/tmp/eplb-peer"))
import torch  # noqa: E402
from vpolicy.batched import BatchedEplbPolicy  # noqa: E402
from vpolicy.default import DefaultEplbPolicy  # noqa: E402

args = sys.argv[1:]
extra = args[args.index("--") + 1:] if "--" in args else []
args = args[: args.index("--")] if "--" in args else args
if len(args) != 4:
    sys.exit(__doc__)
bins = dict(kv.split("=", 1) for kv in args[0].split(","))
trace, rounds = args[1], int(args[2])
runs = [(kv.split(":") + ["all"])[:3] for kv in args[3].split(",")]
with open(trace) as f:
    d = json.load(f)
w = torch.tensor(d["loads"] if isinstance(d, dict) and "loads" in d else d, dtype=torch.float64)
# (R, P, N, G): issue 16's shapes; N = 1 runs the global policy.
shapes = [(288, 32, 4, 8), (320, 64, 8, 8), (288, 32, 1, 1), (320, 64, 1, 1), (288, 144, 1, 1)]

for R, P, N, G in shapes:
    a = DefaultEplbPolicy.rebalance_experts(w, R, G, N, P)
    b = BatchedEplbPolicy.rebalance_experts(w, R, G, N, P)
    assert torch.equal(a, b), f"batched differs from default at R={R} P={P} N={N} G={G}"


def peer(policy, R, P, N, G, reps):
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        policy.rebalance_experts(w, R, G, N, P)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


res = {}
for r in range(rounds):
    for R, P, N, G in shapes:
        cols = res.setdefault((R, P, N, G), {})
        if r == 0:
            cols.setdefault("default", []).append(peer(DefaultEplbPolicy, R, P, N, G, 3))
        cols.setdefault("batched", []).append(peer(BatchedEplbPolicy, R, P, N, G, 20))
        for name, strategy, tables in runs:
            policy = ["--nodes", str(N), "--groups", str(G)] if N > 1 else ["--policy", "global"]
            out = subprocess.run(
                [bins[name], "bench", "--loads", trace, "--replicas", str(R), "--gpus", str(P),
                 *policy, "--strategy", strategy, "--threads", "1", "--warmup", "20", "--iterations", "200",
                 *([] if tables == "all" else ["--tables", tables]), *extra],
                capture_output=True, text=True, check=True)
            ns = json.loads(out.stdout.strip().splitlines()[-1])["median_ns"]
            label = f"{name}:{strategy}" + ("" if tables == "all" else f":{tables}")
            cols.setdefault(label, []).append(ns / 1e6)
for (R, P, N, G), cols in res.items():
    batched = statistics.median(cols["batched"])
    shape = f"R={R} P={P}" + (f" N={N} G={G}" if N > 1 else " global")
    print(shape, " ".join(
        f"{k}={statistics.median(v):.3f}ms"
        + ("" if k in ("default", "batched") else f"({batched / statistics.median(v):.1f}x)")
        for k, v in cols.items()))

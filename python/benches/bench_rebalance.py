"""Times the whole Python call eplb.rebalance_experts (torch tensor in, torch tensors out,
conversions included) on the 58x256 DeepSeek-V3 trace against the Rust `eplb bench` on the
same problem, and prints the ratio.

    python python/benches/bench_rebalance.py [--eplb target/release/eplb] [--loads FILE]

Defaults: the trace ../shared/data/deepseek-v3_sglang_decode_in1000out1000.json next to the
repository (the traces are read in place, never copied), R=288 slots, 32 GPUs, 4 nodes,
8 groups (hierarchical), one thread, greedy. DeepSeek's eplb.py takes about 300 ms for this
call on one core of the project's build machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

import eplb

REPO = Path(__file__).resolve().parents[2]
TRACE = REPO.parent / "shared" / "data" / "deepseek-v3_sglang_decode_in1000out1000.json"


def default_binary() -> str | None:
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    for candidate in (target / "release" / "eplb", shutil.which("eplb")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--loads", default=str(TRACE), help="JSON trace with a `loads` key")
    ap.add_argument("--eplb", default=default_binary(), help="the `eplb` binary (release build)")
    ap.add_argument("--strategy", default="greedy")
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds; best median wins")
    args = ap.parse_args()
    if not Path(args.loads).exists():
        print(f"trace {args.loads} not found: nothing to time", file=sys.stderr)
        return 1

    shape = dict(replicas=288, gpus=32, nodes=4, groups=8)
    weight = torch.tensor(json.loads(Path(args.loads).read_text())["loads"], dtype=torch.int64)

    def python_median() -> float:
        for _ in range(5):
            eplb.rebalance_experts(weight, 288, 8, 4, 32, strategy=args.strategy, threads=1)
        ns = []
        for _ in range(args.iterations):
            t = time.perf_counter_ns()
            out = eplb.rebalance_experts(weight, 288, 8, 4, 32, strategy=args.strategy, threads=1)
            ns.append(time.perf_counter_ns() - t)
        assert isinstance(out[0], torch.Tensor)
        return statistics.median(ns)

    def rust_median() -> float | None:
        if not args.eplb:
            return None
        cmd = [args.eplb, "bench", "--loads", args.loads, "--strategy", args.strategy,
               "--iterations", str(args.iterations), "--threads", "1", "--quiet"]
        for key, value in shape.items():
            cmd += [f"--{key}", str(value)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        return float(json.loads(out)["median_ns"])

    py, rs = [], []
    for _ in range(args.rounds):
        py.append(python_median())
        r = rust_median()
        if r is not None:
            rs.append(r)
    print(f"trace {Path(args.loads).name}: {tuple(weight.shape)}, {shape}, strategy {args.strategy}")
    print(f"python eplb.rebalance_experts (torch in/out): best median {min(py) / 1e6:.3f} ms "
          f"(medians {', '.join(f'{x / 1e6:.3f}' for x in py)})")
    if rs:
        print(f"rust eplb bench:                              best median {min(rs) / 1e6:.3f} ms "
              f"(medians {', '.join(f'{x / 1e6:.3f}' for x in rs)})")
        print(f"ratio python / rust: {min(py) / min(rs):.2f}")
    else:
        print("no `eplb` binary found (--eplb): Rust time not measured")
    return 0


if __name__ == "__main__":
    sys.exit(main())

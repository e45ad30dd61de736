#!/usr/bin/env bash
# Placement identity check for refactors: runs `eplb place` for every deterministic strategy on
# the real traces (../shared/data) and the ESFT traces (tests/data), three cluster shapes and
# the output formats, one thread, and writes the outputs with timings removed to OUTDIR.
# Run it with the binary before and after a change, then `diff -r OUT_BEFORE OUT_AFTER`
# (also with EPLB_DISABLE_AVX512=1 for the portable kernels). Failed runs are listed in
# OUTDIR/failures.txt.
#
# Usage: lab/place-identity.sh BIN OUTDIR [DATA_DIR]
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$1; OUT=$2; mkdir -p "$OUT"
D=${3:-$ROOT/../shared/data}
norm() { python3 -c '
import json,sys
d=json.load(open(sys.argv[1]))
def strip(x):
    if isinstance(x,dict):
        return {k:strip(v) for k,v in x.items() if k not in ("solve_ms","elapsed_ms","time_ms","total_ms")}
    if isinstance(x,list): return [strip(v) for v in x]
    return x
json.dump(strip(d),open(sys.argv[2],"w"),sort_keys=True)
' "$1" "$2"; }
run() { # name, args...
  local name=$1; shift
  if "$BIN" place "$@" --threads 1 --quiet --out "$OUT/$name.raw" >/dev/null 2>"$OUT/$name.err"; then
    rm -f "$OUT/$name.err"
    case "$name" in *.json) norm "$OUT/$name.raw" "$OUT/$name"; rm -f "$OUT/$name.raw";; *) mv "$OUT/$name.raw" "$OUT/$name";; esac
  else echo "FAILED: $name" >> "$OUT/failures.txt"; fi
}
for f in $D/deepseek-v3_*.json; do b=$(basename $f .json)
  for s in greedy refine refine-deep hierarchical; do
    run "$b.$s.h288.json" --loads $f --replicas 288 --gpus 32 --nodes 4 --groups 8 --strategy $s
    run "$b.$s.g288.json" --loads $f --replicas 288 --gpus 32 --policy global --strategy $s
    run "$b.$s.g320.json" --loads $f --replicas 320 --gpus 64 --policy global --strategy $s
  done
  run "$b.hier-refine.h288.json" --loads $f --replicas 288 --gpus 32 --nodes 4 --groups 8 --strategy hierarchical --sub-strategy refine
done
f=$D/qwen3-235b-a22b_oeplb-counts235b.json; b=qwen3
for s in greedy refine refine-deep hierarchical; do
  run "$b.$s.h144.json" --loads $f --replicas 144 --gpus 16 --nodes 2 --groups 8 --strategy $s
  run "$b.$s.g144.json" --loads $f --replicas 144 --gpus 16 --policy global --strategy $s
done
for f in "$ROOT"/tests/data/esft-*.json; do b=$(basename $f .json)
  for s in greedy refine refine-deep hierarchical exact; do
    run "$b.$s.h80.json" --loads $f --replicas 80 --gpus 8 --nodes 2 --groups 8 --strategy $s --time-limit 30
    run "$b.$s.g80.json" --loads $f --replicas 80 --gpus 8 --policy global --strategy $s --time-limit 30
  done
done
f=$D/deepseek-v3_sglang_decode_in1000out1000.json
run fmt.sglang.json --loads $f --replicas 288 --gpus 32 --nodes 4 --groups 8 --format sglang
run fmt.trtllm.yaml --loads $f --replicas 288 --gpus 32 --nodes 4 --groups 8 --format trtllm
run fmt.csv --loads $f --replicas 288 --gpus 32 --nodes 4 --groups 8 --format csv
run fmt.refine.csv --loads $f --replicas 288 --gpus 32 --nodes 4 --groups 8 --format csv --strategy refine
echo done

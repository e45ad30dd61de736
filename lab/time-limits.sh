#!/usr/bin/env bash
# Time-limit measurement (issue 15): runs the searching strategies (`exact`, `ilp`) at short
# per-layer limits on the shipped traces and on random problems, one worker thread, and reports
# for every (strategy, limit) the layers measured, the largest per-layer wall time
# (`solve_ms`, the runner's clock: seed, bounds, search and certificate) and how many layers
# exceeded the guarantee `limit * 1.1 + 50 ms`. Run it on an otherwise idle machine: a wall-
# clock limit cannot hold when other processes take the cores.
#
# Usage: lab/time-limits.sh BIN [DATA_DIR] [LIMITS]   (LIMITS default "0.05 0.2")
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$1
D=${2:-$ROOT/../shared/data}
LIMITS=${3:-0.05 0.2}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
python3 - "$TMP" <<'PY'
import json, random, sys
random.seed(15)
for i in range(40):
    e = random.choice([8, 16, 24, 32, 46, 64])
    big = random.random() < 0.5
    row = [random.randint(10**5, 10**9) if big else random.randint(0, 1000) for _ in range(e)]
    json.dump([row], open(f"{sys.argv[1]}/random-{i:02d}-{e}.json", "w"))
PY
measure() { # label limit args...
  local label=$1 limit=$2; shift 2
  "$BIN" place "$@" --time-limit "$limit" --threads 1 --quiet --json 2>/dev/null |
    python3 -c '
import json, sys
label, limit = sys.argv[1], float(sys.argv[2])
try:
    d = json.load(sys.stdin)
except Exception:
    print(f"{label}\tFAILED"); sys.exit()
t = [l["solve_ms"] for l in d["layers"]]
cap = limit * 1100 + 50
print(f"{label}\t{len(t)}\t{max(t):.1f}\t{sum(x > cap for x in t)}")
' "$label" "$limit"
}
printf 'run\tlayers\tmax_ms\tover\n'
for limit in $LIMITS; do
  for s in exact ilp; do
    for f in "$D"/*.json; do
      n=$(basename "$f" .json)
      measure "$s@$limit $n R320P64global" "$limit" --loads "$f" --replicas 320 --gpus 64 --policy global --strategy "$s"
      measure "$s@$limit $n R288P32N4G8" "$limit" --loads "$f" --replicas 288 --gpus 32 --nodes 4 --groups 8 --strategy "$s"
    done
    for f in "$ROOT"/tests/data/esft-*.json; do
      n=$(basename "$f" .json)
      measure "$s@$limit $n R80P8N2G4" "$limit" --loads "$f" --replicas 80 --gpus 8 --nodes 2 --groups 4 --strategy "$s"
    done
    for f in "$TMP"/random-*.json; do
      n=$(basename "$f" .json); e=${n##*-}
      measure "$s@$limit $n P2" "$limit" --loads "$f" --replicas $(((e + 5) / 2 * 2)) --gpus 2 --strategy "$s"
      measure "$s@$limit $n N2G${e}" "$limit" --loads "$f" --replicas $((e + 2)) --gpus 2 --nodes 2 --groups "$e" --policy hierarchical --strategy "$s"
    done
  done
done

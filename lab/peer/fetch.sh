#!/usr/bin/env bash
# The peers of issue 16, fetched from the package registry (their code is not in this
# repository): vLLM 0.34.0's default EPLB policy (`vllm/distributed/eplb/policy/default.py`
# and `abstract.py`, taken from the wheel) and, next to it, `batched.py` (this folder: the
# packing vectorised across layers as vLLM PR 52556 describes it).
#
# usage: bash lab/peer/fetch.sh [DIR]   (DIR: $EPLB_PEER_DIR or /var/tmp/eplb-peer)
# Needs python3 with pip (numpy and torch to run the policies); downloads one ~400 MB wheel once.
set -euo pipefail
dir="${1:-${EPLB_PEER_DIR:-/var/tmp/eplb-peer}}"
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$dir/wheel" "$dir/vpolicy"
if ! ls "$dir"/wheel/vllm-0.34.0-*.whl >/dev/null 2>&1; then
  python3 -m pip download --quiet --no-deps --only-binary=:all: vllm==0.34.0 -d "$dir/wheel"
fi
python3 - "$dir" <<'PY'
import glob, sys, zipfile
d = sys.argv[1]
with zipfile.ZipFile(glob.glob(f"{d}/wheel/vllm-0.34.0-*.whl")[0]) as z:
    for name in ("abstract.py", "default.py"):
        with open(f"{d}/vpolicy/{name}", "wb") as out:
            out.write(z.read(f"vllm/distributed/eplb/policy/{name}"))
PY
: >"$dir/vpolicy/__init__.py"
cp "$here/batched.py" "$dir/vpolicy/batched.py"
echo "peers in $dir/vpolicy (run lab/peer/drive.py with EPLB_PEER_DIR=$dir)"

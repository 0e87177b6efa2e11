#!/usr/bin/env bash
# Keel against PyTorch eager on the same machine, in one run: training tokens/s on configs A
# and B, and KV-cache generation tokens/s on A, each with the ratio Keel / PyTorch.
#   bash scripts/bench_vs_torch.sh [VENV] [REFERENCE]
# VENV: a Python venv with torch (default /work/torchenv); REFERENCE: torch_reference.py
# (default ../shared/bench/torch_reference.py). Run on a quiet machine: figures are wall-clock.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-/work/torchenv}"
ref="${2:-../shared/bench/torch_reference.py}"
[ -x "$venv/bin/python" ] || { echo "bench_vs_torch.sh: no Python venv at $venv (python3 -m venv $venv && $venv/bin/pip install torch)" >&2; exit 1; }
[ -f "$ref" ] || { echo "bench_vs_torch.sh: $ref not found" >&2; exit 1; }
# The dev profile builds dependencies and Keel's numeric crates at opt-level 3 (Cargo.toml), so
# it is the build the demo and tests use, and no second (release) compile is needed.
cargo build --locked -p keel-cli >&2
keel=target/debug/keel

field() { grep -o "$1 [0-9.]*" | head -1 | awk '{print $2}'; }
row() {
    local name="$1" k="$2" t="$3"
    awk -v n="$name" -v k="$k" -v t="$t" 'BEGIN { printf "| %s | %.0f | %.0f | %.2f× |\n", n, k, t, k / t }'
}
echo "| benchmark | Keel tokens/s | PyTorch tokens/s | Keel / PyTorch |"
echo "|---|---|---|---|"
for c in a b; do
    k=$("$keel" bench train --config "$c" --steps 8 2>&1 | tee /dev/stderr | grep RESULT | field tokens_per_s)
    t=$("$venv/bin/python" "$ref" bench "$c" 8 2>&1 | tee /dev/stderr | grep RESULT | field tokens_per_s)
    row "train $c" "$k" "$t"
done
k=$("$keel" bench generate --config a 2>&1 | tee /dev/stderr | grep RESULT | field tokens_per_s)
t=$("$venv/bin/python" "$ref" gen a 2>&1 | tee /dev/stderr | grep "kv_cache=True" | field tokens_per_s)
row "generate a (KV cache)" "$k" "$t"

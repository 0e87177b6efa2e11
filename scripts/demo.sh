#!/usr/bin/env bash
# The main job on the embedded default: the synthetic world through every stage Keel has,
# with a Markdown summary in runs/demo/summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "demo.sh: cargo not found: install Rust (https://rustup.rs)" >&2; exit 1; }
cargo run --locked -p keel-cli -- demo --out "${1:-runs/demo}"

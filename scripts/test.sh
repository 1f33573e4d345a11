#!/usr/bin/env bash
# Runs every test of imageplane: formatting and lints, the Rust unit and integration
# tests, then the conformance suite (the official yandexcloud Python SDK and grpcurl
# against the real binary), installing what it needs into .venv/ on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test"
cargo test --quiet

echo "== conformance suite (tests/conformance)"
venv=.venv
requirements=tests/conformance/requirements.txt
if [[ ! -x "$venv/bin/python" ]] || ! cmp -s "$requirements" "$venv/.requirements"; then
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -r "$requirements"
    cp "$requirements" "$venv/.requirements"
fi
IMAGEPLANE_BIN="$PWD/target/debug/imageplane" "$venv/bin/python" -m pytest tests/conformance -q -p no:cacheprovider

#!/usr/bin/env bash
# Runs every test of imageplane: formatting and lints, the Rust unit and integration
# tests, then the conformance suite (the official yandexcloud Python SDK, the official
# Node.js SDK and grpcurl against the real binary), installing what it needs into .venv/
# and tests/conformance/node/node_modules/ on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
# The import tests make their fixture images with qemu-img.
if ! command -v qemu-img >/dev/null; then
    if command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
        echo "== installing qemu-utils (qemu-img) for the import tests"
        apt-get install -y -qq qemu-utils >/dev/null
    else
        echo "qemu-img is missing: install Debian's qemu-utils (apt-get install qemu-utils)" >&2
        exit 1
    fi
fi

postgres_warning() {
    if [[ -z "${IMAGEPLANE_TEST_DATABASE_URL:-}" ]]; then
        echo
        echo "!!! WARNING: IMAGEPLANE_TEST_DATABASE_URL is not set: the PostgreSQL storage and"
        echo "!!! replica tests did NOT run. Point it at an empty-able database, e.g."
        echo "!!!   IMAGEPLANE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test ./scripts/test.sh"
        echo
    fi
}
postgres_warning
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
# The Node.js SDK tests (test_sdk_node.py) run tests/conformance/node/dropin.mjs with the
# packages that package-lock.json pins.
node_dir=tests/conformance/node
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "node and npm are missing: the Node.js SDK tests need Node.js 20 or later" >&2
    exit 1
fi
if [[ ! -d "$node_dir/node_modules" ]] || ! cmp -s "$node_dir/package-lock.json" "$node_dir/node_modules/.imageplane-package-lock.json"; then
    echo "== npm ci in $node_dir"
    (cd "$node_dir" && npm ci --no-audit --no-fund)
    cp "$node_dir/package-lock.json" "$node_dir/node_modules/.imageplane-package-lock.json"
fi
IMAGEPLANE_BIN="$PWD/target/debug/imageplane" "$venv/bin/python" -m pytest tests/conformance -q -p no:cacheprovider
postgres_warning

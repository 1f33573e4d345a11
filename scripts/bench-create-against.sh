#!/usr/bin/env bash
# Create throughput of this checkout against an earlier commit, in one run: builds that
# commit's create_load benchmark (in a git worktree under target/), builds this checkout's,
# then runs the two in alternation (one round each, ROUNDS times) on the same machine, so
# both see the same noise. Prints every line, then the mean throughput of each label
# (ceiling, memory, sqlite, ...) for both and their ratio, now / base.
#
#   scripts/bench-create-against.sh COMMIT [ROUNDS] [-- create_load options]
#   scripts/bench-create-against.sh b0dd8e2 4 -- --seconds 4 --only sqlite
#
# The ceiling is the same code in both, so its ratio shows how much of a difference is
# the machine. Benchmarks are run by hand, never in CI.
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

root=$(git rev-parse --show-toplevel)
cd "$root"
commit=$(git rev-parse --short "$base")
worktree=$root/target/baseline/$commit

if [[ ! -d $worktree ]]; then
    git worktree add --detach "$worktree" "$commit" >/dev/null
fi
newest_bench() {
    ls -t "$1"/release/deps/create_load-* | grep -v '\.d$' | head -1
}
echo "building create_load at $commit and at this checkout ..." >&2
(cd "$worktree" && CARGO_TARGET_DIR=$root/target/baseline-target \
    cargo build --release --bench create_load 2>&1 | tail -1 >&2)
cargo build --release --bench create_load 2>&1 | tail -1 >&2
base_bench=$(newest_bench "$root/target/baseline-target")
this_bench=$(newest_bench "$root/target")

results=$(mktemp)
trap 'rm -f "$results"' EXIT
for round in $(seq 1 "$rounds"); do
    for side in base now; do
        bench=$base_bench
        [[ $side == now ]] && bench=$this_bench
        # Lines such as "sqlite #1   19901 req/s   p50 ...": keep the label and req/s.
        "$bench" --rounds 1 "${options[@]}" | while IFS= read -r line; do
            if [[ $line =~ ^(.+)\ \#1\ +([0-9]+)\ req/s ]]; then
                label=${BASH_REMATCH[1]%"${BASH_REMATCH[1]##*[! ]}"}
                echo "$side round $round: $line"
                echo "$side|$label|${BASH_REMATCH[2]}" >>"$results"
            fi
        done
    done
done

echo
echo "mean over $rounds rounds (base: $commit, now: $(git rev-parse --short HEAD) + working tree)"
awk -F'|' '
    { sum[$1 "|" $2] += $3; count[$1 "|" $2] += 1; if (!seen[$2]++) labels[++n] = $2 }
    END {
        for (i = 1; i <= n; i++) {
            label = labels[i]; b = "base|" label; t = "now|" label
            if (count[b] && count[t]) {
                printf "%-14s base %7.0f req/s   now %7.0f req/s   now/base %.2f\n",
                    label, sum[b] / count[b], sum[t] / count[t], (sum[t] / count[t]) / (sum[b] / count[b])
            }
        }
    }' "$results"

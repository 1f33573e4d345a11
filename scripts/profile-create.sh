#!/usr/bin/env bash
# Instructions per ImageService.Create, by function, from valgrind's callgrind: a count
# that is the same from run to run whatever else the machine does (seconds are not).
# Starts the release imageplane binary under callgrind with instrumentation off, makes a disk
# and WARMUP creates, switches it on for CALLS creates (and the background work
# they start), dumps, and prints the total per create and the costliest functions
# (inclusive, per create). The full profile is kept for callgrind_annotate or kcachegrind.
#
#   scripts/profile-create.sh [STORE] [CALLS] [-- imageplane serve flags]
#   STORE: memory (default), sqlite, or a postgres:// URL
#   scripts/profile-create.sh sqlite 2000
#
# Benchmarks and profiles are run by hand, never in CI.
set -euo pipefail

store=${1:-memory}
calls=${2:-2000}
shift $(( $# < 2 ? $# : 2 ))
[[ ${1:-} == -- ]] && shift
flags=("$@")
warmup=300
shape=4x4

root=$(git rev-parse --show-toplevel)
cd "$root"
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 2; }
cargo build --release --bin imageplane --bench create_load 2>&1 | tail -1 >&2
bench=$(ls -t target/release/deps/create_load-* | grep -v '\.d$' | head -1)
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
case $store in
    memory) store_flags=(--database-url memory:) ;;
    sqlite) store_flags=() ;;
    postgres://*) store_flags=(--database-url "$store") ;;
    *) echo "STORE: memory, sqlite or a postgres:// URL" >&2; exit 2 ;;
esac
out=target/profile-create-${store%%:*}.callgrind
rm -f "$out"*
mkfifo "$work/ready"
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" \
    target/release/imageplane serve --listen 127.0.0.1:0 --data-dir "$work/data" \
    "${store_flags[@]}" "${flags[@]}" >"$work/ready" 2>"$work/server.log" &
server=$!
read -r line <"$work/ready"
address=${line#imageplane listening on }
disk=$("$bench" --drive "$address" --calls "$warmup" --shapes "$shape" | sed -E 's/^disk ([^:]+):.*/\1/')
sleep 1
callgrind_control -i on "$server" >/dev/null
"$bench" --drive "$address" --calls "$calls" --shapes "$shape" --disk-id "$disk"
# The background work the creates started ends within moments.
sleep 2
callgrind_control -i off "$server" >/dev/null
callgrind_control -d "$server" >/dev/null
kill "$server"
wait "$server" 2>/dev/null || true
# The dump holds the counts; the file written at exit holds nothing (instrumentation off).
dump=$(ls -S "$out"* | head -1)
total=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ && !seen++ { gsub(",", "", $1); print $1 }')
echo "store $store: $calls creates at $shape; $(( total / calls )) instructions per create (profile: $dump)"
callgrind_annotate --inclusive=yes --threshold=100 "$dump" 2>/dev/null \
    | awk -v calls="$calls" '/^ *[0-9,]+ .*[:(]/ { if (n++ >= 60) next;
        count = $1; gsub(",", "", count); $1 = ""; printf "%9.0f  %s\n", count / calls, substr($0, 1, 160) }'

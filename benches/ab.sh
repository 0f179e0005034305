#!/usr/bin/env bash
# benches/ab.sh A_BIN B_BIN [ROUNDS] — two tracer binaries in one sitting.
#
# Runs benches/proxy_bench.sh ROUNDS times for each binary, interleaved
# (A, B, A, B, ...), each run measuring the upstream direct, nginx and tracer against the same
# upstream, so a change of load on the machine hits both. Prints per run
# and as medians: tracer/nginx req/s and tracer's CPU time per request
# (the steadier figure on a shared machine), and the tracer/nginx ratio of
# CPU per request. The knobs of proxy_bench.sh apply (DURATION, REPS, ...);
# uploads are skipped unless UPLOAD_BYTES is given.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[[ $# -ge 2 ]] || { sed -n '2,12p' "$0"; exit 2; }
A=$(readlink -f "$1"); B=$(readlink -f "$2"); ROUNDS=${3:-3}
for bin in "$A" "$B"; do [[ -x $bin ]] || { echo "ab: $bin is not an executable" >&2; exit 2; }; done
export UPLOAD_NGINX=0 UPLOAD_REPS=${UPLOAD_REPS:-1} UPLOAD_BYTES=${UPLOAD_BYTES:-16M}
OUTDIR=$(mktemp -d /tmp/tracer-ab.XXXXXX)
# The upstream example once; then every run reuses it.
(cd "$ROOT" && cargo build --release --quiet --example bench_upstream)
declare -a rows
for ((r = 1; r <= ROUNDS; r++)); do
    for side in A B; do
        bin=$A; [[ $side == B ]] && bin=$B
        out=$OUTDIR/$side-$r.md
        echo "== round $r, $side ($bin)" >&2
        TRACER_BIN=$bin SKIP_BUILD=1 OUT=$out "$ROOT/benches/proxy_bench.sh" > "$OUTDIR/$side-$r.log" 2>&1 ||
            { echo "ab: run $side $r failed, see $OUTDIR/$side-$r.log" >&2; exit 1; }
        rps=$(grep -o 'tracer / nginx req/s: \*\*[0-9.na]*' "$out" | grep -o '[0-9.na]*$')
        cpu=$(grep -o 'CPU per request: [0-9.na]*' "$out" | head -1 | grep -o '[0-9.na]*$')
        # tracer's own CPU per request: the table row of tracer, its last column.
        tcpu=$(awk -F'|' '$2 ~ /tracer, capture on/ { gsub(/[^0-9.]/, "", $7); print $7; exit }' "$out")
        rows+=("$side $r $rps $cpu $tcpu")
    done
done
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
{
    echo "| run | round | tracer/nginx req/s | tracer/nginx CPU per request | tracer CPU per request (µs) |"
    echo "| --- | --- | ---: | ---: | ---: |"
    for row in "${rows[@]}"; do set -- $row; echo "| $1 | $2 | $3 | $4 | $5 |"; done
    for side in A B; do
        rps=$(printf '%s\n' "${rows[@]}" | awk -v s=$side '$1 == s { print $3 }' | median)
        cpu=$(printf '%s\n' "${rows[@]}" | awk -v s=$side '$1 == s { print $4 }' | median)
        tcpu=$(printf '%s\n' "${rows[@]}" | awk -v s=$side '$1 == s { print $5 }' | median)
        echo "| **$side median** | | **$rps** | **$cpu** | **$tcpu** |"
    done
    echo
    echo "A = $A"
    echo "B = $B"
    echo "reports: $OUTDIR"
}

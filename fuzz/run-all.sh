#!/usr/bin/env bash
# Runs fuzz targets one after another (or N at a time) for a fixed time each,
# merges the inputs that reached new code into corpus/<target>/ (-t 0 only
# minimises what is there), and prints
# one line per target: time, executions, corpus size before and after, and
# whether anything was found. Exits 1 if any target found a crash, a leak or
# a timeout (the input is in artifacts/<target>/).
#
#   bash fuzz/run-all.sh [-j JOBS] [-t SECONDS] [TARGET...]
#
# Needs cargo-fuzz; runs on the stable toolchain with RUSTC_BOOTSTRAP=1 when
# no nightly is installed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
seconds=600
jobs=1
while getopts "j:t:" opt; do
    case "$opt" in
        j) jobs="$OPTARG" ;;
        t) seconds="$OPTARG" ;;
        *) echo "usage: $0 [-j JOBS] [-t SECONDS] [TARGET...]" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
cd "$here"
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(ls fuzz_targets | sed 's/\.rs$//')
fi
export RUSTC_BOOTSTRAP="${RUSTC_BOOTSTRAP:-1}"
cargo fuzz build -O >/dev/null

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

run_one() {
    local target="$1" log="$work/$1.log" fresh="$work/$1.new"
    local before after status=ok
    mkdir -p "$fresh" "artifacts/$target"
    before=$(find "corpus/$target" -type f | wc -l)
    local start=$SECONDS
    # New inputs go to a scratch directory first; only those that add coverage
    # are merged into the committed corpus afterwards.
    : >"$log"
    if [ "$seconds" -gt 0 ] && ! cargo fuzz run -O "$target" "$fresh" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=25 -print_final_stats=1 >"$log" 2>&1; then
        status=FOUND
    fi
    local took=$((SECONDS - start))
    # The committed corpus is the named seeds (real inputs, never removed)
    # plus the smallest set of fuzzer-found inputs (`fuzz-*`) that keeps the
    # coverage of everything found so far and in this run.
    local seeds="$work/$target.seeds" found="$work/$target.found"
    mkdir -p "$seeds" "$found"
    find "corpus/$target" -maxdepth 1 -type f ! -name 'fuzz-*' -exec cp {} "$seeds/" \;
    find "corpus/$target" -maxdepth 1 -type f -name 'fuzz-*' -exec cp {} "$found/" \;
    cp "$fresh"/* "$found/" 2>/dev/null || true
    ls "$seeds" | sort >"$work/$target.seed-names"
    cargo fuzz run -O "$target" "$seeds" "$found" -- -merge=1 >>"$log" 2>&1 || status=FOUND
    if [ "$status" = ok ]; then
        find "corpus/$target" -maxdepth 1 -type f -name 'fuzz-*' -delete
        local file
        for file in "$seeds"/*; do
            if ! grep -qxF "$(basename "$file")" "$work/$target.seed-names"; then
                cp "$file" "corpus/$target/fuzz-$(basename "$file" | cut -c1-12)"
            fi
        done
    fi
    after=$(find "corpus/$target" -type f | wc -l)
    local execs
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
    printf '%-22s %6ss %12s execs  corpus %4s -> %4s  %s\n' \
        "$target" "$took" "${execs:-?}" "$before" "$after" "$status" | tee "$work/$target.row"
    cp "$log" "artifacts/$target/last-run.log"
    [ "$status" = ok ]
}

failed=0
running=0
for target in "${targets[@]}"; do
    run_one "$target" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n || failed=1
        running=$((running - 1))
    fi
done
while [ "$running" -gt 0 ]; do
    wait -n || failed=1
    running=$((running - 1))
done
exit "$failed"

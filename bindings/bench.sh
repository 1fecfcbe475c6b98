#!/usr/bin/env bash
# The boundary-cost benchmark (not a test), in one run, against the release
# build, printing one table:
#   - an empty UniFFI call, from Kotlin (a timed loop through JNA) and from
#     Python (timeit);
#   - SRTP protect of one RTP packet (12-byte header, 160-byte payload) per
#     call, from Rust straight through carevox-srtp and through the
#     bindings' SrtpSession (criterion), from Kotlin and from Python;
#   - the batch call with one second of audio (50 such packets at 20 ms)
#     per crossing, from Rust, Kotlin and Python, per packet;
#   - from Kotlin, the same batch through the direct-buffer path
#     (SrtpDirectBatch: JNA direct mapping, caller-owned direct buffers).
# Usage: bash bindings/bench.sh   (needs what bindings/run-tests.sh needs;
# the venv and the Maven downloads are made on the first run). The raw
# lines go to standard error; the table to standard output.
set -euo pipefail

# shellcheck source=bindings/lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

need java "install JDK 17 (Debian: openjdk-17-jdk-headless)"
need mvn "install Maven (Debian: maven)"
use_profile release
build_rust release
python_venv
python_wheel release
generate kotlin

results="$out/bench-results.tsv"
: > "$results"

step "Python: timeit"
"$venv/bin/python" "$bindings_dir/python/bench_boundary.py" | tee /dev/stderr | { grep '^bench' || true; } >> "$results"

step "Kotlin: timed loops"
mvn_run -q test-compile >&2
# Maven may wrap the program's output in terminal colour codes: only the
# result lines, cleaned, go into the results.
mvn_run -q org.codehaus.mojo:exec-maven-plugin:3.5.0:exec |
    sed 's/\x1b\[[0-9;]*m//g' | tee /dev/stderr | { grep '^bench' || true; } >> "$results"

step "Rust: criterion"
# criterion's bencher format: `test ID ... bench: 1,234 ns/iter (+/- 56)`.
cargo bench --locked --manifest-path "$root/Cargo.toml" -p carevox-ffi --bench boundary -- \
    --noplot --output-format bencher |
    tee /dev/stderr |
    awk '/^test .* bench: / {
            for (i = 1; i <= NF; i++) if ($i == "bench:") { ns = $(i + 1); unit = $(i + 2) }
            gsub(",", "", ns)
            if (unit != "ns/iter") { print "bench: unexpected unit " unit > "/dev/stderr"; exit 1 }
            if ($2 == "srtp/protect_rtp") what = "srtp"
            else if ($2 == "ffi/protect_rtp") what = "protect"
            else if ($2 == "ffi/protect_rtp_batch_x50") what = "batch"
            else next
            printf "bench\trust\t%s\t%s\n", what, ns
        }' >> "$results"

cpu="$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ //' || true)"
echo
echo "boundary cost, release build; $(nproc) cores, $(uname -m)${cpu:+, $cpu}"
echo "(ns; a packet is a 12-byte RTP header and 160 bytes of payload; AES_CM_128_HMAC_SHA1_80;"
echo " best of 5 timed loops for Kotlin and Python, criterion's median for Rust)"
awk -F'\t' '
    $1 == "bench" { v[$2 "," $3] = $4 }
    function cell(side, what, div) {
        if (!((side "," what) in v)) return "-"
        return sprintf("%.0f", v[side "," what] / div)
    }
    END {
        fmt = "%-50s %8s %8s %8s\n"
        printf fmt, "", "Rust", "Kotlin", "Python"
        printf fmt, "empty UniFFI call (per call)", "-", cell("kotlin", "noop", 1), cell("python", "noop", 1)
        printf fmt, "protect_rtp, carevox-srtp directly (per packet)", cell("rust", "srtp", 1), "-", "-"
        printf fmt, "protect_rtp, one packet per call (per packet)", cell("rust", "protect", 1), cell("kotlin", "protect", 1), cell("python", "protect", 1)
        printf fmt, "protect_rtp_batch, 50 per call (per packet)", cell("rust", "batch", 50), cell("kotlin", "batch", 50), cell("python", "batch", 50)
        printf fmt, "protect_rtp_batch, 50 per call (per call)", cell("rust", "batch", 1), cell("kotlin", "batch", 1), cell("python", "batch", 1)
        printf fmt, "SrtpDirectBatch.protect, 50 per call (per packet)", "-", cell("kotlin", "direct", 50), "-"
        printf fmt, "SrtpDirectBatch.protect, 50 per call (per call)", "-", cell("kotlin", "direct", 1), "-"
    }' "$results"
missing=$(awk -F'\t' '$1 == "bench" { n++ } END { print 10 - n }' "$results")
if [ "$missing" -ne 0 ]; then
    echo "bench: $missing of the 10 measurements are missing (see above)" >&2
    exit 1
fi

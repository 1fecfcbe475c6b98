#!/usr/bin/env bash
# Builds carevox-ffi, generates the bindings under the cargo target directory
# and runs the foreign test suites.
#
# Usage: bindings/run-tests.sh [python] [kotlin] [swift]   (no argument: all)
#   python  a venv under target/bindings/venv, maturin builds and installs
#           the wheel (uniffi mode), pytest runs bindings/python/tests;
#   kotlin  generated sources + `mvn test` (JUnit 5, JNA);
#   swift   generated sources and the package layout, checked without a
#           Swift compiler (see bindings/swift/generate.sh).
# `cargo xtask test` runs each as its own suite and reads its counts from
# the lines printed on standard output: pytest's closing summary
# (`18 passed in 0.91s`) and Surefire's totals, summed over its XML reports
# (`Surefire: Tests run: 9, Failures: 0, Errors: 0, Skipped: 0`). Everything
# else goes to standard error. Exits non-zero if any suite fails.
# Needs Rust, Python >= 3.9 (3.11 preferred) with venv, JDK 17 and Maven.
set -euo pipefail

# shellcheck source=bindings/lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

suites=("$@")
[ "${#suites[@]}" -eq 0 ] && suites=(python kotlin swift)
for s in "${suites[@]}"; do
    case "$s" in
        python | kotlin | swift) ;;
        *)
            echo "usage: bindings/run-tests.sh [python] [kotlin] [swift]" >&2
            exit 2
            ;;
    esac
done

use_profile debug
build_rust debug
status=0

run_python() {
    python_venv || return 1
    python_wheel debug || return 1
    step "Python: pytest"
    local log="$out/pytest.log" rc=0
    (cd "$bindings_dir/python" && "$venv/bin/python" -m pytest -q --color=no \
        -p no:cacheprovider tests) > "$log" 2>&1 || rc=$?
    # The details to standard error, pytest's closing summary to standard
    # output (`N passed, M failed, K skipped in T s`).
    sed '$d' "$log" >&2
    tail -n 1 "$log"
    return "$rc"
}

run_kotlin() {
    need java "install JDK 17 (Debian: openjdk-17-jdk-headless)" || return 1
    need mvn "install Maven (Debian: maven)" || return 1
    step "Kotlin: generate, mvn test"
    generate kotlin || return 1
    local reports="$out/maven/surefire-reports" rc=0
    rm -rf "$reports"
    mvn_run -q test >&2 || rc=$?
    if compgen -G "$reports/TEST-*.xml" > /dev/null; then
        # Surefire's totals, summed over its per-class XML reports (`mvn -q`
        # hides its own summary).
        awk '/<testsuite[ >]/ {
                for (i = 1; i <= NF; i++) {
                    if (split($i, kv, "=") == 2) {
                        gsub(/[">]/, "", kv[2])
                        if (kv[1] == "tests") r += kv[2]
                        else if (kv[1] == "failures") f += kv[2]
                        else if (kv[1] == "errors") e += kv[2]
                        else if (kv[1] == "skipped") s += kv[2]
                    }
                }
            }
            END { printf "Surefire: Tests run: %d, Failures: %d, Errors: %d, Skipped: %d\n", r, f, e, s }' \
            "$reports"/TEST-*.xml
    else
        echo "Surefire: no test reports (the Kotlin build failed)" >&2
        rc=1
    fi
    return "$rc"
}

run_swift() {
    step "Swift: sources and package layout"
    "$bindings_dir/swift/generate.sh" >&2
}

for s in "${suites[@]}"; do
    "run_$s" || status=1
done
exit "$status"

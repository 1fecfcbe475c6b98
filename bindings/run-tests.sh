#!/usr/bin/env bash
# Builds carevox-ffi, generates the Kotlin, Python and Swift bindings under
# the cargo target directory, and runs the foreign test suites:
#   1. cargo build of the cdylib and of the workspace's uniffi-bindgen;
#   2. Python: a venv under target/, maturin builds the wheel (uniffi mode),
#      pip installs it, pytest runs bindings/python/tests;
#   3. Kotlin: generated sources + `mvn -q -B test` (JUnit 5, JNA);
#   4. Swift: generated sources and the package layout, checked without a
#      Swift compiler (see bindings/swift/generate.sh).
# Prints pytest's and Surefire's summary lines; exits non-zero on any failure.
# Needs Rust, Python >= 3.9 (3.11 preferred), JDK 17 and Maven.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
target="$CARGO_TARGET_DIR"
out="$target/bindings"
libdir="$target/debug"
case "$(uname -s)" in
    Darwin) lib="$libdir/libcarevox_ffi.dylib" ;;
    *) lib="$libdir/libcarevox_ffi.so" ;;
esac
bindgen="$libdir/carevox-uniffi-bindgen"

step() { printf '\n== %s\n' "$*" >&2; }

step "cargo build (carevox-ffi, uniffi-bindgen)"
cargo build --manifest-path "$root/Cargo.toml" -p carevox-ffi -p carevox-uniffi-bindgen

step "generate Kotlin and Python bindings"
rm -rf "$out/kotlin" "$out/python"
mkdir -p "$out"
"$bindgen" generate --library "$lib" --language kotlin --no-format --out-dir "$out/kotlin"
"$bindgen" generate --library "$lib" --language python --no-format --out-dir "$out/python"

step "Python: wheel (maturin, uniffi bindings) and pytest"
python="$(command -v python3.11 || command -v python3)"
venv="$out/venv"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check \
    "maturin>=1.9,<2" "pytest>=8" "cryptography>=42"
rm -rf "$out/wheels"
# maturin runs `uniffi-bindgen` itself: the workspace's own generator comes
# first on PATH under that name, so that the generated Python matches the
# scaffolding's UniFFI version.
mkdir -p "$out/bin"
ln -sf "$bindgen" "$out/bin/uniffi-bindgen"
(cd "$here/python" && PATH="$out/bin:$venv/bin:$PATH" \
    "$venv/bin/maturin" build --profile dev --out "$out/wheels" >&2)
"$venv/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps \
    "$out"/wheels/carevox-*.whl
status=0
(cd "$here/python" && "$venv/bin/python" -m pytest -q -p no:cacheprovider tests) || status=1

step "Kotlin: mvn test"
reports="$out/maven/surefire-reports"
rm -rf "$reports"
(cd "$here/kotlin" && mvn -q -B test -Dcarevox.target="$target" -Dcarevox.libdir="$libdir") || status=1
if compgen -G "$reports/*.txt" > /dev/null; then
    # Surefire's totals, summed over its per-class reports (mvn -q hides them).
    awk -F'[:,]' '/^Tests run:/ { r += $2; f += $4; e += $6; s += $8 }
        END { printf "Surefire: Tests run: %d, Failures: %d, Errors: %d, Skipped: %d\n", r, f, e, s }' \
        "$reports"/*.txt
else
    echo "Surefire: no test reports" >&2
    status=1
fi

step "Swift: sources and package layout"
"$here/swift/generate.sh" || status=1

exit "$status"

#!/usr/bin/env bash
# The boundary-cost benchmark (not a test): SRTP protect of one packet
# (12-byte header + 160-byte payload) from Rust (criterion), from Kotlin (a
# timed loop through JNA) and from Python (timeit), beside an empty UniFFI
# call, and the per-packet cost of the 50-packet batch call, in one run, all
# against the release build. Run bindings/run-tests.sh once first (it makes
# the venv).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
target="$CARGO_TARGET_DIR"
out="$target/bindings"
libdir="$target/release"
case "$(uname -s)" in
    Darwin) lib="$libdir/libcarevox_ffi.dylib" ;;
    *) lib="$libdir/libcarevox_ffi.so" ;;
esac
venv="$out/venv"

cargo build --manifest-path "$root/Cargo.toml" --release -p carevox-ffi -p carevox-uniffi-bindgen
rm -rf "$out/kotlin"
"$libdir/carevox-uniffi-bindgen" generate --library "$lib" --language kotlin --no-format --out-dir "$out/kotlin"
rm -rf "$out/wheels-release"
mkdir -p "$out/bin-release"
ln -sf "$libdir/carevox-uniffi-bindgen" "$out/bin-release/uniffi-bindgen"
(cd "$here/python" && PATH="$out/bin-release:$venv/bin:$PATH" \
    "$venv/bin/maturin" build --release --out "$out/wheels-release" >&2)
"$venv/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps \
    "$out"/wheels-release/carevox-*.whl

echo "machine: $(nproc) cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ //')"
"$venv/bin/python" "$here/python/bench_boundary.py"
(cd "$here/kotlin" && mvn -q -B test-compile exec:exec -Dcarevox.target="$target" -Dcarevox.libdir="$libdir")
cargo bench --manifest-path "$root/Cargo.toml" -p carevox-ffi --bench boundary -- --noplot 2>&1 |
    grep -E '^rust|time:'

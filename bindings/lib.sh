# Shared steps of bindings/run-tests.sh and bindings/bench.sh (sourced, not
# run). Everything they write goes under the cargo target directory:
#   $CARGO_TARGET_DIR/bindings/{kotlin,python,swift}  generated sources
#   $CARGO_TARGET_DIR/bindings/venv                   the Python venv
#   $CARGO_TARGET_DIR/bindings/maven                  Maven's build directory
# Maven's downloads go to Maven's own local repository (~/.m2/repository,
# or what `-Dmaven.repo.local` / settings.xml say): fetched on the first run,
# reused by every later run, whatever happens to the target directory.

bindings_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$bindings_dir/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
target="$CARGO_TARGET_DIR"
out="$target/bindings"
venv="$out/venv"

step() { printf '\n== %s\n' "$*" >&2; }

# The tools a suite needs, with what to install when one is missing.
need() {
    local tool=$1 hint=$2
    if ! command -v "$tool" > /dev/null; then
        echo "bindings: \`$tool\` not found: $hint" >&2
        return 1
    fi
}

# Sets libdir, lib and bindgen for a cargo profile (`debug` or `release`).
use_profile() {
    libdir="$target/$1"
    case "$(uname -s)" in
        Darwin) lib="$libdir/libcarevox_ffi.dylib" ;;
        *) lib="$libdir/libcarevox_ffi.so" ;;
    esac
    # The generator is a build tool: its debug build serves every profile.
    bindgen="$target/debug/carevox-uniffi-bindgen"
}

# Builds the cdylib and the generator. Two cargo runs, not one: built
# together, the generator's features would be unified into the library's
# dependencies, and maturin (which builds the library alone) would then
# rebuild them, and the next run would rebuild them again.
build_rust() {
    local flag=()
    [ "$1" = release ] && flag=(--release)
    step "cargo build (carevox-ffi: $1; carevox-uniffi-bindgen: debug)"
    cargo build --locked --manifest-path "$root/Cargo.toml" "${flag[@]+"${flag[@]}"}" -p carevox-ffi
    cargo build --locked --manifest-path "$root/Cargo.toml" -p carevox-uniffi-bindgen
}

# Generates the bindings of one language into $out/<language>.
generate() {
    rm -rf "${out:?}/$1"
    mkdir -p "$out"
    "$bindgen" generate --library "$lib" --language "$1" --no-format --out-dir "$out/$1" >&2
}

# The venv under the target directory, with maturin, pytest and
# cryptography (the test suite's key store uses AES-GCM).
python_venv() {
    local python
    python="$(command -v python3.11 || command -v python3 || true)"
    if [ -z "$python" ]; then
        echo "bindings: no python3 found (Debian: apt-get install python3 python3-venv)" >&2
        return 1
    fi
    if [ ! -x "$venv/bin/python" ]; then
        step "Python: venv in $venv"
        "$python" -m venv "$venv" || {
            rm -rf "$venv"
            echo "bindings: \`$python -m venv\` failed (Debian: apt-get install python3-venv)" >&2
            return 1
        }
    fi
    "$venv/bin/python" -m pip install -q --disable-pip-version-check \
        "maturin>=1.9,<2" "pytest>=8" "cryptography>=42" >&2
}

# Builds the wheel with maturin (uniffi bindings mode) for a cargo profile
# and installs it into the venv.
python_wheel() {
    local wheels="$out/wheels-$1" bin="$out/bin-$1" flag=(--profile dev)
    [ "$1" = release ] && flag=(--release)
    step "Python: wheel ($1, maturin uniffi bindings)"
    rm -rf "$wheels"
    # maturin runs `uniffi-bindgen` itself: the workspace's own generator
    # comes first on PATH under that name, so that the generated Python
    # matches the scaffolding's UniFFI version.
    mkdir -p "$bin"
    ln -sf "$bindgen" "$bin/uniffi-bindgen"
    (cd "$bindings_dir/python" && PATH="$bin:$venv/bin:$PATH" \
        "$venv/bin/maturin" build --locked "${flag[@]}" --out "$wheels" >&2)
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps \
        "$wheels"/carevox-*.whl >&2
}

# Maven in batch mode, without download progress, retrying a failed
# download; its build directory and the generated sources are under the
# target directory (see pom.xml).
mvn_run() {
    (cd "$bindings_dir/kotlin" && mvn -B -ntp -Dstyle.color=never \
        -Dmaven.wagon.http.retryHandler.count=3 \
        -Dcarevox.target="$target" -Dcarevox.libdir="$libdir" "$@")
}

#!/usr/bin/env bash
# macOS with Xcode only: builds the static library of carevox-ffi for iOS
# devices, the iOS simulator and macOS, and assembles
# target/bindings/swift/Carevox/carevoxFFI.xcframework beside the package
# that generate.sh laid out. Run generate.sh first.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
pkg="$target/bindings/swift/Carevox"

if [ "$(uname -s)" != Darwin ] || ! command -v xcodebuild > /dev/null; then
    echo "build-xcframework.sh needs macOS and Xcode" >&2
    exit 2
fi
triples=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin x86_64-apple-darwin)
for t in "${triples[@]}"; do
    rustup target add "$t"
    cargo build --manifest-path "$root/Cargo.toml" -p carevox-ffi --release --target "$t"
done
mkdir -p "$target/bindings/swift/fat"
lipo -create "$target/aarch64-apple-ios-sim/release/libcarevox_ffi.a" \
    "$target/x86_64-apple-ios/release/libcarevox_ffi.a" \
    -output "$target/bindings/swift/fat/libcarevox_ffi-ios-sim.a"
lipo -create "$target/aarch64-apple-darwin/release/libcarevox_ffi.a" \
    "$target/x86_64-apple-darwin/release/libcarevox_ffi.a" \
    -output "$target/bindings/swift/fat/libcarevox_ffi-macos.a"
rm -rf "$pkg/carevoxFFI.xcframework"
xcodebuild -create-xcframework \
    -library "$target/aarch64-apple-ios/release/libcarevox_ffi.a" -headers "$pkg/headers" \
    -library "$target/bindings/swift/fat/libcarevox_ffi-ios-sim.a" -headers "$pkg/headers" \
    -library "$target/bindings/swift/fat/libcarevox_ffi-macos.a" -headers "$pkg/headers" \
    -output "$pkg/carevoxFFI.xcframework"
echo "built $pkg/carevoxFFI.xcframework"

#!/usr/bin/env bash
# Generates the Swift bindings and lays out the Swift package under the cargo
# target directory: target/bindings/swift/Carevox/{Package.swift,
# Sources/Carevox/Carevox.swift, headers/{carevoxFFI.h,module.modulemap}}.
#
# No Swift toolchain is needed or used: this checks what can be checked
# without a compiler (the files exist, the module map names the FFI module
# and its header, the public API names are declared). It does not compile
# the Swift code. Building the XCFramework needs macOS and Xcode
# (build-xcframework.sh).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
case "$(uname -s)" in
    Darwin) lib="$target/debug/libcarevox_ffi.dylib" ;;
    *) lib="$target/debug/libcarevox_ffi.so" ;;
esac
bindgen="$target/debug/carevox-uniffi-bindgen"
pkg="$target/bindings/swift/Carevox"
gen="$target/bindings/swift/generated"

rm -rf "$pkg" "$gen"
mkdir -p "$pkg/Sources/Carevox" "$pkg/headers" "$gen"
"$bindgen" generate --library "$lib" --language swift --no-format --out-dir "$gen"
cp "$gen/Carevox.swift" "$pkg/Sources/Carevox/Carevox.swift"
cp "$gen/carevoxFFI.h" "$pkg/headers/carevoxFFI.h"
cp "$gen/carevoxFFI.modulemap" "$pkg/headers/module.modulemap"
cp "$here/Package.swift" "$pkg/Package.swift"

fail=0
check() {
    if ! grep -Eq -- "$2" "$1"; then
        echo "swift: $(basename "$1") lacks: $2" >&2
        fail=1
    fi
}
check "$pkg/headers/module.modulemap" 'module carevoxFFI'
check "$pkg/headers/module.modulemap" 'header "carevoxFFI.h"'
check "$pkg/Sources/Carevox/Carevox.swift" 'import carevoxFFI'
# Objects are `open class`, their methods `open func`; the rest is `public`
# (unformatted output may break the line after `public`: check a flat copy).
flat="$gen/Carevox.flat"
tr '\n' ' ' < "$pkg/Sources/Carevox/Carevox.swift" > "$flat"
for name in 'class SrtpSession' 'class Vault' 'class AuditLog' 'class AuthzPolicy' \
    'class Authenticator' 'class DigestClient' 'class SipMessage' \
    'protocol VaultKeyProvider' 'protocol ByteSource' 'protocol ByteSink' \
    'func protectRtpBatch\(' 'func sdpAudioOffer\(' 'func auditVerifyLog\(' \
    'enum SrtpError' 'enum VaultError' 'enum AuditError' 'enum AuthzError' 'enum SipError'; do
    check "$flat" "(public|open) +$name"
done
# The declarations the Swift snippet of bindings/README.md calls, with its
# argument labels and types (checked as text: there is no compiler here).
for decl in 'func sdpAudioOffer\(address: String, port: UInt16, sessionId: String, codecs: \[String\], suite: String\)' \
    'func sdpAnswerCrypto\(answerSdp: String, localCrypto: String\)' \
    'static func fromSdes\(localCrypto: String, remoteCrypto: String\)' \
    'func addOutboundStream\(ssrc: UInt32\)' \
    'func protectRtp\(packet: Data\)' \
    'func protectRtpBatch\(packets: Data, lengths: \[UInt32\]\)' \
    'func unprotectRtp\(packet: Data\)' \
    'case AuthenticationFailed\(message: String\)' \
    'case Replay\(message: String\)' \
    'func currentVersion\(\) throws +-> UInt32' \
    'func wrap\(version: UInt32, dataKey: Data, context: Data\) throws +-> Data' \
    'func unwrap\(version: UInt32, wrapped: Data, context: Data\) throws +-> Data' \
    'static func `open`\(dir: String, keys: VaultKeyProvider\)' \
    'func getRange\(id: String, offset: UInt64, len: UInt32\)'; do
    check "$flat" "$decl"
done
check "$pkg/headers/carevoxFFI.h" 'uniffi_carevox_ffi_fn_method_srtpsession_protect_rtp_batch'
if [ "$fail" -ne 0 ]; then
    exit 1
fi
echo "swift: package generated at $pkg (sources, header, module map and public API checked; not compiled: no Swift toolchain)"

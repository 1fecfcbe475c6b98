// swift-tools-version:5.9
// The carevox Swift package. bindings/swift/generate.sh copies this file and
// the generated sources under the cargo target directory
// (target/bindings/swift/Carevox); bindings/swift/build-xcframework.sh (on
// macOS, with Xcode) builds carevoxFFI.xcframework beside it.
import PackageDescription

let package = Package(
    name: "Carevox",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "Carevox", targets: ["Carevox"]),
    ],
    targets: [
        // The Rust static library and its C header + module map, per platform.
        .binaryTarget(name: "carevoxFFI", path: "carevoxFFI.xcframework"),
        // The generated Swift API over it.
        .target(name: "Carevox", dependencies: ["carevoxFFI"], path: "Sources/Carevox"),
    ]
)

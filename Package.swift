// swift-tools-version:5.9
// The Tournée field SDK for iOS as a Swift package: the Swift bindings (target TourneeField) over
// the Rust library of mobile-ffi, shipped as an XCFramework (binary target TourneeFieldFFI).
// Build both first, on macOS with Xcode: bash mobile-ffi/apple/build-xcframework.sh
// Then add this repository (or its folder) as a package dependency and `import TourneeField`.
import PackageDescription

let package = Package(
    name: "TourneeField",
    platforms: [.iOS(.v15)],
    products: [
        .library(name: "TourneeField", targets: ["TourneeField"]),
    ],
    targets: [
        .binaryTarget(
            name: "TourneeFieldFFI",
            path: "mobile-ffi/apple/build/TourneeFieldFFI.xcframework"
        ),
        .target(
            name: "TourneeField",
            dependencies: ["TourneeFieldFFI"],
            path: "mobile-ffi/apple/Sources/TourneeField"
        ),
    ]
)

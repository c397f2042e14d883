// swift-tools-version: 6.0
import PackageDescription

// Examples of the MapCompiler library, built against this repository's package:
//
//   cd Examples && swift build && .build/debug/MapCompilerExamples ..
let package = Package(
    name: "MapCompilerExamples",
    dependencies: [
        .package(name: "swiftpostmap", path: "..")
    ],
    targets: [
        .executableTarget(
            name: "MapCompilerExamples",
            dependencies: [.product(name: "MapCompiler", package: "swiftpostmap")]
        )
    ],
    swiftLanguageModes: [.v6]
)

// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "swiftpostmap",
    products: [
        .executable(name: "swiftpostmap", targets: ["swiftpostmap"]),
        .library(name: "MapCompiler", targets: ["MapCompiler"]),
    ],
    targets: [
        .systemLibrary(
            name: "CBerkeleyDB",
            providers: [.apt(["libdb-dev"])]
        ),
        .target(
            name: "MapCompiler",
            dependencies: ["CBerkeleyDB"]
        ),
        .executableTarget(
            name: "swiftpostmap",
            dependencies: ["MapCompiler"]
        ),
        .testTarget(
            name: "MapCompilerTests",
            dependencies: ["MapCompiler"]
        ),
    ],
    swiftLanguageModes: [.v6]
)

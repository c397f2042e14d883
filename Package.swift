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
        .systemLibrary(
            name: "CLMDB",
            providers: [.apt(["liblmdb-dev"])]
        ),
        .systemLibrary(
            name: "CTinyCDB",
            providers: [.apt(["libcdb-dev"])]
        ),
        .systemLibrary(
            name: "CPostgreSQL",
            providers: [.apt(["libpq-dev"])]
        ),
        .target(
            name: "MapCompiler",
            dependencies: ["CBerkeleyDB", "CLMDB", "CTinyCDB", "CPostgreSQL"]
        ),
        .target(
            name: "PostmapCommandLine",
            dependencies: ["MapCompiler"]
        ),
        .executableTarget(
            name: "swiftpostmap",
            dependencies: ["PostmapCommandLine"]
        ),
        .testTarget(
            name: "MapCompilerTests",
            dependencies: ["MapCompiler", "PostmapCommandLine"]
        ),
    ],
    swiftLanguageModes: [.v6]
)

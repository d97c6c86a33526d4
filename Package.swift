// swift-tools-version:6.0
import PackageDescription

// Release builds must target Haswell (AVX2 + FMA); without it SIMD FMA becomes a libcall.
let fastMath: [SwiftSetting] = [
    .unsafeFlags(["-target-cpu", "haswell"], .when(configuration: .release)),
]

let package = Package(
    name: "vizlab",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "vizlab", targets: ["vizlab"]),
        .library(name: "Engine", targets: ["Engine"]),
        .library(name: "Models", targets: ["Models"]),
        .library(name: "Visualize", targets: ["Visualize"]),
        .library(name: "Adversarial", targets: ["Adversarial"]),
        .library(name: "Training", targets: ["Training"]),
        .library(name: "Similarity", targets: ["Similarity"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // SQLite for the dataset-examples index (system libsqlite3 on Linux).
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        // ONNX files are protobuf: onnx.proto's generated code (scripts/gen-onnx-proto) runs on this runtime.
        .package(url: "https://github.com/apple/swift-protobuf", exact: "1.39.0"),
    ],
    targets: [
        // System-library shims (Debian -dev packages, installed by scripts/setup).
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
        .systemLibrary(name: "CWebP", path: "Sources/CWebP"),
        .systemLibrary(name: "CCairo", path: "Sources/CCairo"),
        // zlib: deflated zip entries (PyPI wheels for `vizlab models fetch`, compressed .keras archives).
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        // libhdf5 (Keras weight files): headers under hdf5/serial, found by pkg-config; the shim silences the
        // library's stderr error printing and bounds sizes before allocating.
        .systemLibrary(name: "CHDF5", path: "Sources/CHDF5", pkgConfig: "hdf5"),
        .target(name: "CHDF5Shim", dependencies: ["CHDF5"], path: "Sources/CHDF5Shim"),
        // onnx.proto as Swift (generated once by scripts/gen-onnx-proto, committed).
        .target(name: "ONNXProto", dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")], path: "Sources/ONNXProto"),
        // libjpeg's default error handler calls exit() and libpng longjmps; these shims catch both with setjmp
        // and return an error code and message instead.
        // hnswlib (Debian libhnswlib-dev, header-only C++) behind an extern "C" shim: an opaque handle, every C++
        // exception turned into an error code, saved graphs validated before hnswlib reads them.
        .target(name: "CHNSW", path: "Sources/CHNSW"),
        // The micro-kernel's AVX-512 tile, compiled for AVX-512 per function and picked at run time (the Swift code
        // targets Haswell: AVX2 + FMA).
        .target(name: "CKernels", path: "Sources/CKernels"),
        .target(name: "CImageCodecs", path: "Sources/CImageCodecs",
                linkerSettings: [.linkedLibrary("jpeg"), .linkedLibrary("png16")]),

        .target(
            name: "Engine",
            dependencies: ["CBLAS", "CImageCodecs", "CWebP", "CKernels"],
            resources: [.copy("Resources/imagenet_classes.txt"), .copy("Resources/imagenet_wnids.txt")],
            swiftSettings: fastMath),
        // Networks as data: graphs, specs, the zoo of built-in architectures and the weight-file readers.
        .target(name: "Models", dependencies: ["Engine", "CHDF5Shim", "CZlib", "ONNXProto"], swiftSettings: fastMath),
        // Vector search over embeddings: exact (BLAS) and HNSW, the graph's file kept in step with an index, near-duplicates.
        .target(name: "Similarity", dependencies: ["Engine", "CBLAS", "CHNSW", "CZlib"], swiftSettings: fastMath),
        .target(name: "Visualize", dependencies: ["Engine", "Models", "Similarity", "CCairo", .product(name: "GRDB", package: "GRDB.swift")],
                swiftSettings: fastMath),
        .target(name: "Adversarial", dependencies: ["Engine", "Models", "Visualize"], swiftSettings: fastMath),
        // Transfer learning: folder-per-class data, augmentation, feature cache, optimizers, the trainer and its reports.
        .target(name: "Training", dependencies: ["Engine", "Models", "Visualize"], swiftSettings: fastMath),
        .executableTarget(
            name: "vizlab",
            dependencies: [
                "Engine", "Models", "Visualize", "Adversarial", "Training", "Similarity",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: fastMath),
        // Finite-difference gradient checks and a seeded generator, shared by the test targets.
        .target(name: "TestSupport", dependencies: ["Engine", "Models"], path: "Tests/TestSupport", swiftSettings: fastMath),
        .testTarget(
            name: "EngineTests",
            dependencies: ["Engine", "TestSupport", "CKernels"],
            resources: [.copy("Fixtures")],
            swiftSettings: fastMath),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "TestSupport"], resources: [.copy("Fixtures")], swiftSettings: fastMath),
        // The built binary, end to end (every command, bad input, reruns).
        .testTarget(name: "CLITests", dependencies: ["Engine", "Models", "TestSupport"], swiftSettings: fastMath),
        .testTarget(name: "VisualizeTests", dependencies: ["Visualize", "TestSupport"], swiftSettings: fastMath),
        .testTarget(name: "AdversarialTests", dependencies: ["Adversarial", "TestSupport"], swiftSettings: fastMath),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "TestSupport"], swiftSettings: fastMath),
        .testTarget(name: "SimilarityTests", dependencies: ["Similarity", "Visualize", "TestSupport"], swiftSettings: fastMath),
    ],
    // Numeric kernels pass raw buffers into DispatchQueue.concurrentPerform; Swift 5 mode keeps that
    // free of Sendable ceremony. Data races are avoided by construction (disjoint chunks).
    swiftLanguageModes: [.v5],
    cxxLanguageStandard: .cxx17
)

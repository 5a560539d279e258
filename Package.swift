// swift-tools-version:6.0
// HeatFront: in-situ STEM heating runs → aligned frames, column intensities, reaction-front kinetics.
import PackageDescription

let package = Package(
    name: "HeatFront",
    products: [
        .executable(name: "heatfront", targets: ["heatfront"]),
        .library(name: "HeatFrontKit", targets: ["FrameIO", "RunSettings", "Registration", "ColumnIntensities",
                                                 "FrontTracking", "Simulation", "Pipeline", "Cluster"]),
        // The decoders and input parsers alone, for the fuzzing harness in Fuzz/.
        .library(name: "HeatFrontFrameIO", targets: ["FrameIO", "RunSettings"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        // System libraries, found through pkg-config; scripts/install-deps.sh installs them.
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CTIFF", pkgConfig: "libtiff-4", providers: [.apt(["libtiff-dev"])]),
        .systemLibrary(name: "CFFTW", pkgConfig: "fftw3f", providers: [.apt(["libfftw3-dev"])]),
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CLibCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CMalloc"),   // glibc's malloc.h (mallopt)
        // HyperSpy ZSpy files: zip archives (libzip) of zarr chunks (Blosc, Zstandard, zlib).
        .systemLibrary(name: "CZip", pkgConfig: "libzip", providers: [.apt(["libzip-dev"])]),
        .systemLibrary(name: "CZarrCodecs", pkgConfig: "blosc", providers: [.apt(["libblosc-dev", "libzstd-dev", "zlib1g-dev"])]),
        // The image figures' title, scale bar and legend, drawn over their pictures.
        .systemLibrary(name: "CCairo", pkgConfig: "cairo", providers: [.apt(["libcairo2-dev"])]),

        // HeatFront's defences around HDF5: its read-only driver, the check of global heap
        // objects and the repair of HDF5's attribute table (it defines H5HG_read,
        // H5HG_get_obj_size and H5A__compact_build_table, so it must be linked into each
        // executable).
        .target(name: "CHDF5Guard", dependencies: ["CHDF5"]),

        // Pixels, FFTs and checksums every stage shares.
        .target(name: "FrameCore", dependencies: ["CFFTW", "CLibCrypto", "CMalloc"]),
        // Stage 1: decoders, writers, the run-folder reader.
        .target(name: "FrameIO", dependencies: ["FrameCore", "CPNG", "CTIFF", "CHDF5", "CHDF5Guard", "CZip", "CZarrCodecs"]),
        // The run's settings: the keys of heatfront.yaml, declared once, parsed and checked.
        .target(name: "RunSettings", dependencies: ["FrameCore", "FrameIO", .product(name: "Yams", package: "Yams")]),
        // Stage 2: rigid and non-rigid registration, resampling, averaging.
        .target(name: "Registration", dependencies: ["FrameCore"]),
        // Stage 3: lattice, column sites, intensities, line profiles.
        .target(name: "ColumnIntensities", dependencies: ["FrameCore"]),
        // Stage 4: order parameter, phase segmentation, front, kinetics.
        .target(name: "FrontTracking", dependencies: ["FrameCore", "ColumnIntensities"]),
        // Synthetic heating runs with ground truth.
        .target(name: "Simulation", dependencies: ["FrameCore", "FrameIO", "RunSettings"]),
        // Stage 5: the run, caching, outputs, plots, report.
        .target(name: "Pipeline", dependencies: ["FrameCore", "FrameIO", "RunSettings", "Registration",
                                                 "ColumnIntensities", "FrontTracking", "CCairo"]),
        // Many runs on a SLURM cluster: plans, job scripts, resource requests, tasks.
        .target(name: "Cluster", dependencies: ["FrameCore", "FrameIO", "RunSettings", "Pipeline"]),
        .executableTarget(name: "heatfront", dependencies: [
            "Pipeline", "FrameIO", "RunSettings", "Simulation", "Cluster",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // Timing and comparison helpers for the scripts in scripts/ (not a user command).
        .executableTarget(name: "heatfront-bench", dependencies: [
            "FrameCore", "FrameIO", "Registration", "ColumnIntensities", "Pipeline", "Simulation", "CFFTW",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "FrameCoreTests", dependencies: ["FrameCore"]),
        .testTarget(name: "FrameIOTests", dependencies: ["FrameIO", "RunSettings", "FrameCore", "CTIFF", "CPNG", "CHDF5", "CHDF5Guard", "CZarrCodecs"]),
        .testTarget(name: "RunSettingsTests", dependencies: ["TestSupport", "RunSettings", "FrameIO", "FrameCore"]),
        .testTarget(name: "RegistrationTests", dependencies: ["TestSupport", "Registration", "FrameCore", "Simulation"]),
        .testTarget(name: "ColumnIntensitiesTests", dependencies: ["TestSupport", "ColumnIntensities", "FrameCore", "FrameIO", "Simulation"]),
        .testTarget(name: "FrontTrackingTests", dependencies: ["TestSupport", "FrontTracking", "FrameCore", "Simulation"]),
        .testTarget(name: "SimulationTests", dependencies: ["Simulation", "FrameIO", "RunSettings", "FrameCore"]),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "FrameIO", "RunSettings", "Simulation"]),
        // `--help` of every command against Tests/HeatFrontCLITests/Snapshots/.
        .testTarget(name: "HeatFrontCLITests", dependencies: ["heatfront", "TestSupport"], exclude: ["Snapshots"]),
        .testTarget(name: "ClusterTests", dependencies: ["Cluster", "Pipeline", "FrameIO", "RunSettings", "Simulation"]),
    ],
    swiftLanguageModes: [.v6]
)

// Release builds use the build machine's AVX2 and FMA units when it has them (as C's
// `-march=native` would): the SIMD8 loops of registration and resampling then run in
// 256-bit registers instead of pairs of SSE ones. Swift never fuses a multiply and an add
// on its own, so outputs are byte-identical either way. Set
// HEATFRONT_PORTABLE=1 for binaries that run on any x86-64.
#if os(Linux) && arch(x86_64)
import Foundation
let buildsForHostVectorUnits: Bool = {
    guard ProcessInfo.processInfo.environment["HEATFRONT_PORTABLE"] == nil,
          let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
          let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return false }
    let flags = Set(line.split(separator: " ").map(String.init))
    // What the "haswell" target assumes.
    return ["avx", "avx2", "fma", "bmi1", "bmi2", "f16c", "movbe", "popcnt", "abm", "sse4_2"].allSatisfy(flags.contains)
}()
if buildsForHostVectorUnits {
    for target in package.targets where target.type != .system {
        target.swiftSettings = (target.swiftSettings ?? []) + [.unsafeFlags(["-target-cpu", "haswell"], .when(configuration: .release))]
    }
}
#endif

// swift-tools-version:6.0
// libFuzzer harness for HeatFront's inputs: every frame decoder, the heating-log and config
// parsers and the run-folder scan, one fuzz target per input kind (see README.md).
// Build and run it with `scripts/fuzz.sh` from the repository root; the script passes
// `-sanitize=fuzzer,address` to every Swift module so the decoders are instrumented.
import PackageDescription
import Foundation

// A path dependency's identity is its folder's name (`main`, a worktree's name, a clone's).
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()

let package = Package(
    name: "HeatFrontFuzz",
    dependencies: [.package(path: "..")],
    targets: [
        .target(name: "CFuzzerDriver"),
        // `main` hands over to libFuzzer's `LLVMFuzzerRunDriver` (SwiftPM renames an
        // executable's entry point, so libFuzzer's own `main` cannot be used).
        .executableTarget(
            name: "FrameFuzzer",
            dependencies: ["CFuzzerDriver", .product(name: "HeatFrontFrameIO", package: root.lastPathComponent)]
        ),
    ],
    swiftLanguageModes: [.v6]
)

import Foundation
import Testing
import CHDF5
import FrameIO

/// Berkeley EMD 0.2 and Prismatic files, written here in ncempy's and Prismatic's layouts.
@Suite struct BerkeleyEMDTests {
    /// An NCEM EMD 0.2 file: `/data/<name>` groups with `emd_group_type = 1`.
    static func writeNCEM(_ url: URL, signals: [(name: String, dims: [Int], units: String, step: Double)]) throws {
        let w = try HDF5Writer(url)
        defer { w.close() }
        w.string("/", "version_major", "0")
        w.string("/", "version_minor", "2")
        for s in signals {
            let g = "/data/" + s.name
            w.group(g)
            w.int(g, "emd_group_type", 1)
            let n = s.dims.reduce(1, *)
            w.dataset(g + "/data", dims: s.dims, type: chdf5_std_i32le(), values: (0..<n).map(Double.init))
            for (i, size) in s.dims.enumerated() {
                w.dataset(g + "/dim\(i + 1)", dims: [size], type: chdf5_ieee_f64le(), values: (0..<size).map { Double($0) * s.step })
                w.bytes(g + "/dim\(i + 1)", "name", "axis\(i + 1)")
                w.bytes(g + "/dim\(i + 1)", "units", s.units)
            }
        }
    }

    /// A group linked back to the root twice names 2^depth paths; each group is walked once,
    /// as h5py's `visititems` does. Walked by path, the listing went on until its cap of
    /// 100,000 visits and refused the file (a 17 kB fuzzed file took 14 s).
    @Test func groupsLinkedBackIntoTheTreeAreWalkedOnce() throws {
        let dir = ScratchFolder("emdb")
        let url = dir.file("loops.emd")
        try Self.writeNCEM(url, signals: [("image", [3, 2], "[n_m]", 0.5)])
        let w = try HDF5Writer(url, reopen: true)
        w.group("/loop")
        w.hardLink("/", "/loop/up")
        w.hardLink("/", "/loop/again")
        w.close()
        let r = try BerkeleyEMDReader(url: url)
        #expect(r.signals.map(\.name) == ["image"])
    }

    /// The stored (a, b) array is an image of b rows and a columns: pixel (r, c) = data[c][r].
    @Test func twoDimensionalDataAreTransposedAndCalibratedFromDim1() throws {
        let dir = ScratchFolder("emdb")
        let url = dir.file("image.emd")
        try Self.writeNCEM(url, signals: [("image", [3, 2], "[n_m]", 0.5)])
        let r = try FrameFiles.open(url)
        #expect(r.format == .emdBerkeley)
        let s = r.signals[0]
        #expect(s.name == "image" && s.frameCount == 1 && s.height == 2 && s.width == 3 && s.sampleType == .int32)
        // Stored row-major (3, 2): data[i][j] = 2i + j. Image (2, 3): pixel (r, c) = data[c][r] = 2c + r.
        #expect(try r.plane(signal: 0, frame: 0).doubleValues() == [0, 2, 4, 1, 3, 5])
        #expect(s.pixelSizeXNm == 0.5 && s.pixelSizeYNm == 0.5)
    }

    /// A stored (a, b, c) array is c frames of b × a: frame k, pixel (r, col) = data[col][r][k].
    @Test func threeDimensionalDataAreFramesAlongTheLastStoredAxis() throws {
        let dir = ScratchFolder("emdb")
        let url = dir.file("stack.emd")
        try Self.writeNCEM(url, signals: [("stack", [4, 3, 2], "[]", 1)])
        let r = try BerkeleyEMDReader(url: url)
        let s = r.signals[0]
        #expect(s.frameCount == 2 && s.height == 3 && s.width == 4)
        #expect(s.pixelSizeXNm == nil && s.pixelSizeYNm == nil)       // "[]": no unit
        for k in 0..<2 {
            let want = (0..<3).flatMap { row in (0..<4).map { col in Double(col * 6 + row * 2 + k) } }
            #expect(try r.plane(signal: 0, frame: k).doubleValues() == want, "frame \(k)")
        }
    }

    @Test(arguments: [("[n_m]", 2.0), ("nm", 2.0), ("[Å]", 0.2), ("[mrad]", nil), ("[1/n_m]", nil)] as [(String, Double?)])
    func units(_ units: String, _ nm: Double?) throws {
        let dir = ScratchFolder("emdb")
        let url = dir.file("u.emd")
        try Self.writeNCEM(url, signals: [("u", [3, 3], units, 2)])
        #expect(try BerkeleyEMDReader(url: url).signals[0].pixelSizeXNm.map { ($0 * 1e9).rounded() / 1e9 } == nm)
    }

    /// Prismatic output: `<name>_depthNNNN` groups stack along a new first axis; 4-D outputs
    /// are counted but not listed; `ppotential` is never stacked.
    @Test func prismaticDepthsStackIntoOneSignal() throws {
        let dir = ScratchFolder("emdb")
        let url = dir.file("prismatic.emd")
        do {
            let w = try HDF5Writer(url)
            defer { w.close() }
            let base = "/4DSTEM_simulation/data/realslices"
            w.group(base)
            func slice(_ name: String, _ dims: [Int], offset: Double) {
                let g = base + "/" + name
                w.group(g)
                w.int(g, "emd_group_type", 1)
                w.dataset(g + "/realslice", dims: dims, type: chdf5_ieee_f32le(),
                          values: (0..<dims.reduce(1, *)).map { Double($0) + offset })
                for (i, n) in dims.enumerated() {
                    w.dataset(g + "/dim\(i + 1)", dims: [n], type: chdf5_ieee_f32le(), values: (0..<n).map { Double($0) * 0.25 })
                    w.bytes(g + "/dim\(i + 1)", "units", "[n_m]")
                }
            }
            slice("DPC_CoM_depth0000", [4, 3, 2], offset: 0)
            slice("DPC_CoM_depth0001", [4, 3, 2], offset: 0)
            slice("annular_detector_depth0000", [4, 3], offset: 0)
            slice("annular_detector_depth0001", [4, 3], offset: 100)
            slice("ppotential", [4, 3, 5], offset: 0)
        }
        let r = try FrameFiles.open(url)
        #expect(r.format == .emdBerkeley)
        #expect(r.signals.map(\.index) == [1, 2])
        #expect(r.signals.map(\.name) == ["annular_detector", "ppotential"])
        let annular = r.signals[0]
        #expect(annular.frameCount == 2 && annular.height == 3 && annular.width == 4 && annular.pixelSizeXNm == 0.25)
        // Depth 1, pixel (r, c) = stored[c][r] + 100 = 3c + r + 100.
        #expect(try r.plane(signal: 0, frame: 1).doubleValues() == (0..<3).flatMap { row in (0..<4).map { c in Double(3 * c + row + 100) } })
        #expect(r.signals[1].frameCount == 5 && r.signals[1].height == 3 && r.signals[1].width == 4)
        #expect(try r.signalIndex(named: "ppotential") == 1)
    }

    @Test func veloxAndBerkeleyAreToldApartByLayout() throws {
        let dir = ScratchFolder("emdb")
        let berkeley = dir.file("b.emd")
        try Self.writeNCEM(berkeley, signals: [("x", [2, 2], "[n_m]", 1)])
        #expect(try FrameFiles.open(berkeley).format == .emdBerkeley)
        let velox = VeloxFixture.temporaryURL("v.emd")
        defer { try? FileManager.default.removeItem(at: velox) }
        try VeloxFixture.write(velox, signals: [VeloxFixture.Signal(
            uuid: "ab", height: 2, width: 2, frames: 1, type: chdf5_std_u16le(), value: { _, r, c in Double(r + c) },
            metadata: { _ in VeloxFixture.veloxJSON(detector: "HAADF", detectorIndex: 0, pixelSizeM: 1e-10, start: 1) })])
        #expect(try FrameFiles.open(velox).format == .emd)
        // An HDF5 file of neither layout: one line naming it.
        let other = dir.file("other.emd")
        do { let w = try HDF5Writer(other); w.group("/misc"); w.close() }
        let e = #expect(throws: FrameIOError.self) { try FrameFiles.open(other) }
        #expect(e?.file == other.path && e?.kind == .unsupported)
    }

    @Test(.enabled(if: Corpus.available, "../shared/corpus is not beside this checkout"))
    func corpusPrismaticSignals() throws {
        let r = try FrameFiles.open(Corpus.root.appendingPathComponent("emd-berkeley/Si100_2D_3D_DPC_potential_2slices.emd"))
        #expect(r.signals.map(\.name) == ["annular_detector", "ppotential"])
        #expect(r.signals.map(\.frameCount) == [2, 4])
    }
}

import Foundation
import Testing
import FrameCore
import FrameIO

/// Opens `url` and reads every frame's pixels and metadata, as the pipeline would.
@discardableResult
private func readAll(_ url: URL) throws -> Int {
    let r = try FrameFiles.open(url)
    var n = 0
    for s in r.signals.indices {
        for f in 0..<r.signals[s].frameCount {
            _ = try r.plane(signal: s, frame: f)
            _ = try r.metadata(signal: s, frame: f)
            n += 1
        }
    }
    return n
}

/// The `FrameIOError` reading `url` throws; records an issue for any other outcome.
private func failure(_ url: URL, _ comment: Comment? = nil) -> FrameIOError? {
    do {
        try readAll(url)
        Issue.record("\(url.lastPathComponent) was read without error \(comment.map { "\($0)" } ?? "")")
        return nil
    } catch let e as FrameIOError {
        #expect(e.file == url.path, "the error must name the file")
        return e
    } catch {
        Issue.record("\(url.lastPathComponent): not a FrameIOError: \(error)")
        return nil
    }
}

private func patch<T: FixedWidthInteger>(_ b: inout [UInt8], at o: Int, _ v: T, bigEndian: Bool) {
    withUnsafeBytes(of: bigEndian ? v.bigEndian : v.littleEndian) { b.replaceSubrange(o..<(o + $0.count), with: $0) }
}

private func find(_ needle: String, in b: [UInt8]) -> Int? {
    let n = Array(needle.utf8)
    guard n.count <= b.count else { return nil }
    for i in 0...(b.count - n.count) where b[i] == n[0] && Array(b[i..<(i + n.count)]) == n { return i }
    return nil
}

/// A small deterministic generator (SplitMix64), so failures reproduce.
private struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("DM/SER/MRC bad input")
struct DMBadInputTests {
    @Test(arguments: ["dm3", "dm4", "ser", "mrc", "emi"])
    func zeroBytes(_ ext: String) throws {
        let dir = ScratchFolder("bad")
        let url = dir.file("empty_1.\(ext)")
        try Data().write(to: url)
        if ext == "emi" { try Data().write(to: dir.file("empty_1_1.ser")) }
        let e = failure(url)
        #expect(e?.kind == .truncated)
    }

    /// Every truncation point before the end of the data must throw, never crash.
    @Test(.enabled(if: Corpus.available), arguments: [
        ("dm4/2D/test-1.dm4", 8), ("dm3/test_STEM_image.dm3", 8),
        ("dm4/3D/test-2.dm4", 8), ("ser/64x64x5_TEM_preview_1.ser", 0), ("mrc/HAADFscan.mrc", 0),
    ])
    func truncatedAtManyOffsets(_ path: String, _ trailer: Int) throws {
        let dir = ScratchFolder("trunc")
        let whole = try [UInt8](Data(contentsOf: Corpus.root.appendingPathComponent(path)))
        let end = whole.count - trailer
        // Every byte of the first 300 (headers), then ~150 points spread over the rest.
        var cuts = Array(stride(from: 1, to: min(300, end), by: 1))
        cuts += stride(from: 300, to: end, by: max(1, (end - 300) / 150)).map { $0 }
        cuts.append(end - 1)
        let url = dir.file("cut" + "." + (path as NSString).pathExtension)
        var kinds: [FrameIOError.Kind: Int] = [:]
        for cut in cuts {
            try Data(whole[0..<cut]).write(to: url)
            if let e = failure(url, "cut at \(cut)") { kinds[e.kind, default: 0] += 1 }
        }
        #expect(kinds.values.reduce(0, +) == cuts.count)
        // The intact file reads.
        try Data(whole).write(to: url)
        #expect(try readAll(url) > 0)
    }

    @Test func wrongMagic() throws {
        let dir = ScratchFolder("magic")
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + [UInt8](repeating: 7, count: 2000)
        for ext in ["dm3", "dm4", "ser"] {
            let url = dir.file("png.\(ext)")
            try Data(png).write(to: url)
            #expect(failure(url)?.kind == .badMagic)
        }
        let url = dir.file("neg.mrc")
        var mrc = [UInt8](repeating: 0, count: 2048)
        patch(&mrc, at: 0, Int32(-5), bigEndian: false)
        try Data(mrc).write(to: url)
        #expect(failure(url)?.kind == .badMagic)
    }

    /// Sizes, counts and offsets far beyond the file: refused before any allocation.
    @Test func absurdSizesInDM() throws {
        let dir = ScratchFolder("dmbad")
        let good = dir.file("good.dm4")
        try DM4Writer.write([Frame(image: Image(width: 8, height: 4) { x, y in Float(x + y) })], as: .uint16, to: good)
        let base = try [UInt8](Data(contentsOf: good))
        let url = dir.file("bad.dm4")
        func attempt(_ change: (inout [UInt8]) -> Void) -> FrameIOError? {
            var b = base
            change(&b)
            try? Data(b).write(to: url)
            return failure(url)
        }
        // Root tag count 2^40.
        #expect(attempt { patch(&$0, at: 18, UInt64(1) << 40, bigEndian: true) } != nil)
        // Byte-order flag 7.
        #expect(attempt { patch(&$0, at: 12, UInt32(7), bigEndian: true) }?.kind == .corrupt)
        // Dimensions[0] = 2^31 - 1: no longer matches the data array.
        let dims = find("Dimensions", in: base)!
        let dim0 = dims + 10 + 8 + 2 + 8 + 1 + 2 + 8 + 4 + 8 + 8
        #expect(base[dim0] == 8)
        #expect(attempt { patch(&$0, at: dim0, UInt32(Int32.max), bigEndian: false) }?.kind == .corrupt)
        // The pixel array claims 2^40 elements.
        let data = find("\u{0}\u{4}Data", in: base)! + 2      // name length 4, then "Data"
        let info = data + 4 + 8 + 4                            // after the tag length and %%%%
        let count = info + 8 + 16                              // info array: 20, element type, count
        #expect(base[count + 7] == 32)                         // 8×4 pixels
        #expect(attempt { patch(&$0, at: count, UInt64(1) << 40, bigEndian: true) } != nil)
        // Info array of 2^30 entries.
        #expect(attempt { patch(&$0, at: info, UInt64(1) << 30, bigEndian: true) }?.kind == .corrupt)
        // Unknown tag kind.
        let imageList = find("ImageList", in: base)!
        #expect(attempt { $0[imageList - 3] = 99 }?.kind == .corrupt)
    }

    /// 100 000 nested tag groups: the depth cap answers, not the stack.
    @Test func recursionBombInTagTree() throws {
        let dir = ScratchFolder("bomb")
        var b: [UInt8] = []
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.bigEndian) { b.append(contentsOf: $0) } }
        u32(3); u32(0); u32(1)
        b += [1, 0]; u32(1)
        for _ in 0..<100_000 { b += [20, 0, 0, 1, 0]; u32(1) }
        let url = dir.file("bomb.dm3")
        try Data(b).write(to: url)
        let e = failure(url)
        #expect(e?.kind == .corrupt)
        #expect(e?.detail.contains("nested") == true)
    }

    @Test func absurdSizesInSER() throws {
        let dir = ScratchFolder("serbad")
        let base = SERBuilder().bytes()
        let url = dir.file("bad_1.ser")
        func attempt(_ change: (inout [UInt8]) -> Void) -> FrameIOError? {
            var b = base
            change(&b)
            try? Data(b).write(to: url)
            return failure(url)
        }
        #expect(attempt { patch(&$0, at: 14, UInt32.max, bigEndian: false); patch(&$0, at: 18, UInt32.max, bigEndian: false) } != nil)
        #expect(attempt { patch(&$0, at: 18, UInt32(9), bigEndian: false) }?.kind == .corrupt)   // valid > total
        #expect(attempt { patch(&$0, at: 18, UInt32(0), bigEndian: false) }?.kind == .truncated) // nothing acquired
        #expect(attempt { patch(&$0, at: 22, UInt32.max, bigEndian: false) }?.kind == .truncated) // offset array
        #expect(attempt { patch(&$0, at: 26, UInt32(1 << 30), bigEndian: false) }?.kind == .corrupt) // dimensions
        // Element width 2^31: checked against the bytes left.
        let element = 30 + 4 + 8 + 8 + 4 + 4 + 6 + 4
        #expect(attempt { patch(&$0, at: element + 42, UInt32(1) << 31, bigEndian: false) } != nil)
        // Data offset past the end of the file.
        let arrays = Int(base[22]) | Int(base[23]) << 8
        #expect(attempt { patch(&$0, at: arrays, UInt32(1) << 30, bigEndian: false) } != nil)
        #expect(attempt { patch(&$0, at: 4, UInt16(0x0300), bigEndian: false) }?.kind == .unsupported)
    }

    @Test func absurdSizesInMRC() throws {
        let dir = ScratchFolder("mrcbad")
        let base = MRCBuilder().bytes()
        let url = dir.file("bad.mrc")
        func attempt(_ change: (inout [UInt8]) -> Void) -> FrameIOError? {
            var b = base
            change(&b)
            try? Data(b).write(to: url)
            return failure(url)
        }
        // A frame 2³¹ − 1 pixels wide is over FrameLimits.maxSide: a corrupt header.
        #expect(attempt { patch(&$0, at: 0, Int32.max, bigEndian: false) }?.kind == .corrupt)
        #expect(attempt { patch(&$0, at: 0, Int32(1000), bigEndian: false) }?.kind == .truncated)
        #expect(attempt { patch(&$0, at: 0, Int32.max, bigEndian: false); patch(&$0, at: 4, Int32.max, bigEndian: false); patch(&$0, at: 8, Int32.max, bigEndian: false) } != nil)
        #expect(attempt { patch(&$0, at: 92, Int32.max, bigEndian: false) }?.kind == .truncated)
        #expect(attempt { patch(&$0, at: 92, Int32(-4), bigEndian: false) }?.kind == .corrupt)
    }

    @Test func emiWithoutItsSeriesFiles() throws {
        let dir = ScratchFolder("emi")
        let url = dir.file("lonely.emi")
        try Data("<ObjectInfo><AcquireDate>x</AcquireDate></ObjectInfo>".utf8).write(to: url)
        #expect(failure(url)?.kind == .io)
    }

    /// Crash-safety: random byte corruptions of real files either read or throw a
    /// `FrameIOError`; neither a crash nor any other error is acceptable.
    @Test(.enabled(if: Corpus.available), arguments: [
        "dm3/test_stackbuilder_imagestack.dm3", "dm4/2D/test-2.dm4", "ser/16x16_STEM_BF_DF_acquire_1.ser",
        "mrc/20241021_00405_0_Virt 0_sum.mrc",
    ])
    func randomCorruptions(_ path: String) throws {
        let dir = ScratchFolder("mut")
        let whole = try [UInt8](Data(contentsOf: Corpus.root.appendingPathComponent(path)))
        let url = dir.file("m." + (path as NSString).pathExtension)
        var rng = SplitMix(state: 0x5EED)
        for _ in 0..<150 {
            var b = whole
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                let i = Int.random(in: 0..<b.count, using: &rng)
                b[i] = [0x00, 0xFF, 0x7F, 0x80, UInt8.random(in: 0...255, using: &rng)].randomElement(using: &rng)!
            }
            try Data(b).write(to: url)
            do { try readAll(url) } catch is FrameIOError {} catch { Issue.record("not a FrameIOError: \(error)") }
        }
    }
}

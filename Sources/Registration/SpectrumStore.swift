import Foundation
import FrameCore
#if canImport(Glibc)
import Glibc
#endif

/// The band spectra (with coarse images) of one registration call, indexed by frame.
///
/// Registration revisits every frame's spectrum several times (chain, neighbour pairs,
/// rounds against the average), and recomputing them would mean decoding every frame again
/// each time. So they are kept: in memory while they fit in `memoryBudgetBytes`, beyond
/// that in an unlinked temporary file of fixed-size records read back with `pread` (the
/// kernel's page cache holds them, not the process), so memory stays flat however many
/// frames a run has. All spectra of one call share one layout.
final class SpectrumStore: @unchecked Sendable {
    let count: Int
    /// Spectra beyond this many bytes go to disk.
    let memoryBudgetBytes: Int
    private let lock = NSLock()
    private var memory: [Int: BandSpectrum] = [:]
    private var onDisk = Set<Int>()
    private var layout: [Int] = []     // Float counts: values, coarse pixels, mask, then each coarse spectrum
    private var file: Int32 = -1
    private var recordFloats = 0

    init(count: Int, memoryBudgetBytes: Int) {
        self.count = count
        self.memoryBudgetBytes = memoryBudgetBytes
    }

    deinit { if file >= 0 { close(file) } }

    private static func layout(of s: BandSpectrum) -> [Int] {
        [s.values.count * 2, s.coarse.pixels.count, s.coarse.mask.count] + (s.coarse.spectra ?? []).map { $0.count * 2 }
    }

    /// Stores frame `k`'s spectrum; nil (a frame that cannot be used) stores nothing. Safe
    /// from several threads for distinct `k`.
    func set(_ k: Int, _ s: BandSpectrum?) {
        guard let s else { return }
        let l = Self.layout(of: s)
        lock.lock()
        if layout.isEmpty {
            layout = l
            recordFloats = l.reduce(0, +)
            if recordFloats * 4 * count > memoryBudgetBytes {
                let path = FileManager.default.temporaryDirectory
                    .appendingPathComponent("heatfront-spectra-\(getpid())-\(UUID().uuidString)").path
                file = open(path, O_RDWR | O_CREAT | O_EXCL, 0o600)
                if file >= 0 { unlink(path) }
            }
        }
        let fd = file, sameLayout = l == layout, n = recordFloats
        lock.unlock()
        guard fd >= 0, sameLayout else {
            lock.lock(); memory[k] = s; lock.unlock()
            return
        }
        // Each part written straight from its array, as `subscript` reads it back.
        var at = off_t(k) * off_t(n * 4), written = true
        func part<T>(_ a: [T]) {
            a.withUnsafeBytes { b in
                if pwrite(fd, b.baseAddress, b.count, at) != b.count { written = false }
                at += off_t(b.count)
            }
        }
        part(s.values); part(s.coarse.pixels); part(s.coarse.mask)
        for a in s.coarse.spectra ?? [] { part(a) }
        lock.lock()
        if written { onDisk.insert(k) } else { memory[k] = s }   // a full disk: keep it here
        lock.unlock()
    }

    /// Whether frame `k` has a spectrum (without reading it).
    func has(_ k: Int) -> Bool {
        lock.lock(); defer { lock.unlock() }
        return memory[k] != nil || onDisk.contains(k)
    }

    subscript(k: Int) -> BandSpectrum? {
        lock.lock()
        let kept = memory[k], stored = onDisk.contains(k), fd = file, l = layout, n = recordFloats
        lock.unlock()
        if let kept { return kept }
        guard stored else { return nil }
        // Each part read straight into its array (Complex is two Floats in memory).
        var at = off_t(k) * off_t(n * 4), complete = true
        func part<T>(_ floats: Int, as _: T.Type) -> [T] {
            let count = floats * 4 / MemoryLayout<T>.stride
            let a = [T](unsafeUninitializedCapacity: count) { buffer, initialized in
                let got = pread(fd, buffer.baseAddress, floats * 4, at)
                if got != floats * 4, let base = buffer.baseAddress { complete = false; memset(base, 0, floats * 4) }
                initialized = count
            }
            at += off_t(floats * 4)
            return a
        }
        let values = part(l[0], as: Complex.self)
        let pixels = part(l[1], as: Float.self), mask = part(l[2], as: Float.self)
        let spectra = l.dropFirst(3).map { part($0, as: Complex.self) }
        guard complete else { return nil }
        return BandSpectrum(values: values, coarse: CoarseImage(pixels: pixels, mask: mask, spectra: spectra.isEmpty ? nil : spectra))
    }
}

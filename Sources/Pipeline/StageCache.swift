import Foundation
import FrameCore

/// Finished work kept in `OUT_DIR/.heatfront-cache/`, so an interrupted run resumes where
/// it stopped. Every entry is keyed by a digest of the inputs' checksums, the effective
/// config and the HeatFront version: change any of them and the cache is ignored. Entries
/// hold exact values (JSON numbers round-trip doubles; images are raw float32), so a
/// resumed run writes the same bytes as an uninterrupted one. Entries are written
/// atomically, so a kill leaves either a whole entry or none.
struct StageCache {
    let dir: URL
    let enabled: Bool

    init(outDir: URL, key: String, force: Bool) throws {
        let root = outDir.appendingPathComponent(".heatfront-cache")
        dir = root.appendingPathComponent(key)
        enabled = !force
        let fm = FileManager.default
        // Entries of other keys are stale: drop them (and everything on --force).
        if let old = try? fm.contentsOfDirectory(atPath: root.path) {
            for name in old where force || name != key { try? fm.removeItem(at: root.appendingPathComponent(name)) }
        }
        try fm.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    func load<T: Decodable>(_ type: T.Type, _ name: String) -> T? {
        guard enabled, let data = try? Data(contentsOf: dir.appendingPathComponent(name + ".json")) else { return nil }
        return try? JSONDecoder().decode(T.self, from: data)
    }

    /// Keys sorted, so that two runs that compute the same values write the same bytes.
    func store<T: Encodable>(_ value: T, _ name: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        try AtomicFile.write(try encoder.encode(value), to: dir.appendingPathComponent(name + ".json"))
    }

    func loadImage(_ name: String) -> Image? {
        guard enabled, let data = try? Data(contentsOf: dir.appendingPathComponent(name + ".f32")), data.count >= 8
        else { return nil }
        let w = Int(data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 0, as: UInt32.self) })
        let h = Int(data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self) })
        guard data.count == 8 + 4 * w * h else { return nil }
        let px = [Float](unsafeUninitializedCapacity: w * h) { buf, n in
            _ = data.withUnsafeBytes { src in
                memcpy(buf.baseAddress!, src.baseAddress! + 8, 4 * w * h)
            }
            n = w * h
        }
        return Image(width: w, height: h, pixels: px)
    }

    /// Header (width, height as UInt32) and the pixels written straight from the image's
    /// buffer: no copy of a frame-sized file in memory.
    func storeImage(_ image: Image, _ name: String) throws {
        let url = dir.appendingPathComponent(name + ".f32")
        try AtomicFile.write(to: url) { tmp in
            let fd = open(tmp.path, O_WRONLY | O_TRUNC | O_CLOEXEC)
            guard fd >= 0 else { throw WriteError(path: url.path, errno: errno) }
            defer { close(fd) }
            let header = [UInt32(image.width), UInt32(image.height)]
            try header.withUnsafeBytes { try AtomicFile.writeAll(fd, $0, url) }
            try image.pixels.withUnsafeBytes { try AtomicFile.writeAll(fd, $0, url) }
        }
    }

    /// The cache key: SHA-256 over the version, the effective config and every input's checksum.
    static func key(version: String, config: String, inputs: [InputFile]) -> String {
        let h = SHA256Hasher()
        h.update(Array("heatfront \(version) \(build)\n\(config)\n".utf8))
        for f in inputs { h.update(Array("\(f.path)\t\(f.size)\t\(f.sha256)\n".utf8)) }
        return String(h.finalizeHex().prefix(32))
    }
}

extension StageCache {
    /// The running build: SHA-256 of the executable. Part of the key, so a rebuilt HeatFront
    /// (any change of code, not only of the version string) never reuses another build's
    /// results. Read once per process (17 MB: ~25 ms, which `RunPipeline` overlaps with the scan).
    static let build: String = {
        guard let url = Bundle.main.executableURL, let fh = try? FileHandle(forReadingFrom: url) else { return "unknown" }
        defer { try? fh.close() }
        let h = SHA256Hasher()
        while let block = try? fh.read(upToCount: 4 << 20), !block.isEmpty { block.withUnsafeBytes { h.update($0) } }
        return String(h.finalizeHex().prefix(16))
    }()
}

/// One input file of a run with its checksum, as `summary.json` lists it.
struct InputFile: Codable, Sendable, Equatable {
    var path: String
    var size: Int
    var sha256: String

    /// Checksums of `relativePaths` below `dir`, computed in parallel and streamed in 4 MiB
    /// blocks (a run may hold tens of gigabytes).
    static func checksums(_ relativePaths: [String], in dir: URL) -> [InputFile] {
        let results = ResultSlots<InputFile?>.map(relativePaths.count) { i -> InputFile? in
            let path = relativePaths[i]
            let url = path.hasPrefix("/") ? URL(fileURLWithPath: path) : dir.appendingPathComponent(path)
            let fd = open(url.path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
            guard fd >= 0 else { return nil }
            defer { close(fd) }
            // One block reused for the whole file: a fresh buffer per read costs page faults.
            let block = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 64)
            defer { block.deallocate() }
            let h = SHA256Hasher()
            var size = 0
            while true {
                let n = read(fd, block.baseAddress, block.count)
                if n < 0 && errno == EINTR { continue }
                if n < 0 { return nil }
                if n == 0 { break }
                size += n
                h.update(UnsafeRawBufferPointer(rebasing: block[..<n]))
            }
            return InputFile(path: path, size: size, sha256: h.finalizeHex())
        }
        return results.compactMap { $0 }
    }
}

/// The running build's digest (`StageCache.build`): records that must not outlive a rebuild
/// (a cluster submission's finished runs) are tied to it, as the cache is.
public enum RunningBuild {
    public static var digest: String { StageCache.build }
}

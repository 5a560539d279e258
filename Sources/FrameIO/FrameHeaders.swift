import Foundation
import FrameCore

/// One frame as the scan first sees it: file, page, size and what its metadata says.
struct RawFrame {
    var rel: String
    var url: URL
    var fileNo: Int
    var page: Int
    var signal: Int
    var width: Int
    var height: Int
    var absTime: Date?
    var relTime: Double?
    var midOffset: Double
    var temperature: Double?
    var pixelSize: Double?
    var status: FrameStatus
    /// Why an unreadable frame could not be read, for the terminal (`status` has the short reason).
    var problem: String? = nil
}

/// The frames of one file, with the image signals it offers (for the `signal:` key).
struct FileHeaders {
    var frames: [RawFrame]
    /// Names of the file's image signals when it has several, else empty.
    var signalNames: [String] = []
    /// Whether the signal the config names was found in this file (nil: not asked, or one signal).
    var signalFound: Bool? = nil
    /// The file's weight in the frame-size vote (see `FrameSizeVote`).
    var votes = 1
}

enum FrameHeaders {
    /// The most frames HeatFront reads from one file; a file that claims more is unreadable.
    static let maxFramesPerFile = 100_000
    /// The largest frame the size vote decodes to check a stack holds real frames, pixels.
    static let maxProbePixels = 1 << 26

    /// One entry per frame of a file; a file that cannot be opened is one unreadable frame.
    /// `signal`: the config's `signal:` (a name, or a position in the file's signals), used
    /// in files with several image signals.
    static func read(_ url: URL, rel: String, fileNo: Int, signal: String?,
                     open: (URL) throws -> any FrameFileReader) -> FileHeaders {
        func unreadable(_ error: Error, page: Int = 0) -> RawFrame {
            let e = error as? FrameIOError
            return RawFrame(rel: rel, url: url, fileNo: fileNo, page: page, signal: 0, width: 0, height: 0,
                            absTime: nil, relTime: nil, midOffset: 0, temperature: nil, pixelSize: nil,
                            status: .unreadable(e?.reason ?? FrameIOError.Kind.io.rawValue),
                            problem: e?.detail ?? "\(error)")
        }
        let reader: any FrameFileReader
        do { reader = try open(url) } catch { return FileHeaders(frames: [unreadable(error)]) }
        var headers = FileHeaders(frames: [])
        var s = reader.primarySignal
        if reader.signals.count > 1 {
            headers.signalNames = reader.signals.map(\.name)
            if let signal {
                do {
                    s = try reader.signalIndex(named: signal)
                    headers.signalFound = true
                } catch {
                    headers.signalFound = false
                    headers.frames = [unreadable(error)]
                    return headers
                }
            }
        }
        guard reader.signals.indices.contains(s) else {
            headers.frames = [unreadable(FrameIOError(.unsupported, url: url, "no image signal"))]
            return headers
        }
        let info = reader.signals[s]
        guard info.frameCount > 0, info.width > 0, info.height > 0 else {
            headers.frames = [unreadable(FrameIOError(.corrupt, url: url, "empty image signal"))]
            return headers
        }
        guard info.frameCount <= maxFramesPerFile else {
            headers.frames = [unreadable(FrameIOError(.corrupt, url: url,
                "claims \(info.frameCount) frames, more than the \(maxFramesPerFile) HeatFront reads from one file"))]
            return headers
        }
        headers.frames = pages(reader, url: url, signal: s, info: info, rel: rel, fileNo: fileNo, unreadable: unreadable)
        headers.votes = FrameSizeVote.weight(reader, signal: s, info: info)
        return headers
    }

    private static func pages(_ reader: any FrameFileReader, url: URL, signal s: Int, info: SignalInfo, rel: String, fileNo: Int,
                              unreadable: (Error, Int) -> RawFrame) -> [RawFrame] {
        var out: [RawFrame] = []
        out.reserveCapacity(info.frameCount)
        for page in 0..<info.frameCount {
            do {
                let m = try reader.metadata(signal: s, frame: page)
                let mid = m.dwellTime_s.map { $0 * Double(info.width * info.height) / 2 } ?? 0
                let pixel = (m.pixelSizeNm ?? info.pixelSizeXNm ?? info.pixelSizeYNm).flatMap { $0 > 0 && $0.isFinite ? $0 : nil }
                out.append(RawFrame(rel: rel, url: url, fileNo: fileNo, page: page, signal: s,
                                    width: info.width, height: info.height, absTime: m.acquisitionTime,
                                    relTime: m.relativeTime_s, midOffset: mid.isFinite ? mid : 0,
                                    temperature: m.temperatureC.flatMap { HeatingLog.plausibleC.contains($0) ? $0 : nil },
                                    pixelSize: pixel, status: .ok))
            } catch {
                out.append(unreadable(error, page))
            }
        }
        return out
    }

    /// A stack whose pages all carry the file's one acquisition time but distinct relative
    /// times: the pages' own times are the file time plus their offsets.
    static func spreadStackTimes(_ raws: inout [RawFrame]) {
        var byFile: [Int: [Int]] = [:]
        for (i, r) in raws.enumerated() where r.status.isOK { byFile[r.fileNo, default: []].append(i) }
        for idx in byFile.values where idx.count > 1 {
            guard let t0 = raws[idx[0]].absTime, idx.allSatisfy({ raws[$0].absTime == t0 }),
                  idx.allSatisfy({ raws[$0].relTime != nil }),
                  Set(idx.map { raws[$0].relTime! }).count == idx.count else { continue }
            let r0 = raws[idx[0]].relTime!
            for i in idx { raws[i].absTime = t0.addingTimeInterval(raws[i].relTime! - r0) }
        }
    }
}

/// The run's frame size (docs/user-guide.md, "The run folder": Frame size): the size most frames have, counted by frames that
/// are really there. A single-frame file is one vote; a stack's pages count when one page
/// from its middle decodes to an image that is not blank (a constant value), else the stack
/// counts as one file. So a file that only claims pages (a sparse MRC of 100,000 empty
/// pages) cannot outvote forty real frames, while a real stack still outvotes a few stray
/// files. Ties go to the size seen first.
enum FrameSizeVote {
    static func weight(_ reader: any FrameFileReader, signal s: Int, info: SignalInfo) -> Int {
        guard info.frameCount > 1 else { return 1 }
        guard info.width * info.height <= FrameHeaders.maxProbePixels,
              let plane = try? reader.plane(signal: s, frame: info.frameCount / 2) else { return 1 }
        let v = plane.image.pixels
        guard let first = v.first, v.contains(where: { $0 != first }) else { return 1 }
        return info.frameCount
    }

    /// Rejects (`rejected:size`) every ok frame whose size is not the winner's and returns
    /// the winner (0 × 0 when no frame is readable).
    static func decide(_ raws: inout [RawFrame], votes: [Int: Int]) -> (width: Int, height: Int, rejected: Int) {
        var pages: [Int: Int] = [:]
        for r in raws where r.status.isOK { pages[r.fileNo, default: 0] += 1 }
        var tally: [String: (w: Int, h: Int, n: Int, first: Int)] = [:]
        var counted = Set<Int>()
        for (i, r) in raws.enumerated() where r.status.isOK && counted.insert(r.fileNo).inserted {
            let k = "\(r.width)x\(r.height)"
            let e = tally[k] ?? (r.width, r.height, 0, i)
            tally[k] = (e.w, e.h, e.n + min(pages[r.fileNo]!, votes[r.fileNo] ?? 1), e.first)
        }
        let win = tally.values.max { ($0.n, -$0.first) < ($1.n, -$1.first) }
        let (w, h) = (win?.w ?? 0, win?.h ?? 0)
        var rejected = 0
        for i in raws.indices where raws[i].status.isOK && (raws[i].width != w || raws[i].height != h) {
            raws[i].status = .rejected("size")
            rejected += 1
        }
        return (w, h, rejected)
    }
}

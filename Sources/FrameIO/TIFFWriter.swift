import Foundation
import CTIFF
import FrameCore

/// Writes frames as a greyscale TIFF stack through libtiff, one page per frame, readable
/// with calibration by ImageJ/Fiji, RosettaSciIO/HyperSpy and `TIFFReader`.
///
/// Calibration is written the way ImageJ's `TiffEncoder` and RosettaSciIO's writer do:
/// an ImageJ description (`ImageJ=1.11a`, `images=N`, `unit=nm`, `finterval` when the
/// frames carry relative times) with X/YResolution in pixels per nm and ResolutionUnit
/// none, plus DigitalMicrograph tags 65003/65004 (unit "nm") and 65009/65010 (nm per pixel)
/// so HyperSpy reports the unit too. Each page's DateTime (306, UTC) and EXIF SubSecTime
/// (37520, microseconds) come from `metadata.acquisitionTime`.
public enum TIFFWriter {
    /// Writes `frames` as the pages of one TIFF in `type` (uint8, uint16 or float32; integers
    /// are rounded and clamped to the type's range, NaN becomes 0). Written atomically.
    public static func write(_ frames: [Frame], as type: SampleType, to url: URL) throws {
        let (w, h) = try checkFrames(frames, type: type, url: url)
        let first = frames[0]
        let total = Double(frames.count) * Double(w * h * type.byteCount)
        let pixelNm = first.metadata.pixelSizeXNm ?? first.metadata.pixelSizeYNm
        let layout = PageLayout(width: w, height: h, type: type, description: imageJDescription(frames, calibrated: pixelNm != nil),
                                pixelNm: pixelNm, pixelNmY: first.metadata.pixelSizeYNm ?? pixelNm)

        ctiff_install_handlers()
        try AtomicFile.write(to: url) { tmp in
            ctiff_clear_error()
            // BigTIFF only when classic TIFF's 4 GB offsets cannot hold the data.
            guard let t = TIFFOpen(tmp.path, total > 3.9e9 ? "w8" : "w") else {
                throw FrameIOError(.io, url: url, "cannot create: \(String(cString: ctiff_last_error_message()))")
            }
            defer { TIFFClose(t) }
            func fail(_ what: String) -> FrameIOError {
                FrameIOError(.io, url: url, "\(what): \(String(cString: ctiff_last_error_message()))")
            }
            _ = ctiff_register_dm_tags(t)
            for (k, frame) in frames.enumerated() {
                var exifOffset: UInt64 = 0
                if let date = frame.metadata.acquisitionTime {
                    let (_, sub) = TIFFMetadata.tiffDateStrings(date)
                    guard ctiff_write_exif_subsec(t, sub, &exifOffset) == 1 else { throw fail("EXIF directory") }
                    _ = ctiff_register_dm_tags(t)
                }
                layout.setTags(t, page: k, date: frame.metadata.acquisitionTime, exifOffset: exifOffset)
                try layout.writeStrips(t, frame.image, fail: { fail("writing page \(k)") })
                guard TIFFWriteDirectory(t) == 1 else { throw fail("writing page \(k)'s directory") }
            }
        }
    }

    /// The frames' common size; throws for no frames, an unsupported type or mixed sizes.
    private static func checkFrames(_ frames: [Frame], type: SampleType, url: URL) throws -> (Int, Int) {
        guard let first = frames.first else { throw FrameIOError(.unsupported, url: url, "no frames to write") }
        guard [.uint8, .uint16, .float32].contains(type) else {
            throw FrameIOError(.unsupported, url: url, "TIFFWriter writes uint8, uint16 or float32, not \(type.rawValue)")
        }
        let w = first.image.width, h = first.image.height
        guard w > 0, h > 0 else { throw FrameIOError(.size, url: url, "empty image \(w)×\(h)") }
        for (i, f) in frames.enumerated() where f.image.width != w || f.image.height != h {
            throw FrameIOError(.size, url: url, "frame \(i) is \(f.image.width)×\(f.image.height), frame 0 is \(w)×\(h)")
        }
        return (w, h)
    }

    /// The ImageJ description of the first page (ImageJ reads its keys from there only).
    private static func imageJDescription(_ frames: [Frame], calibrated: Bool) -> String {
        var ij = "ImageJ=1.11a\nimages=\(frames.count)\n"
        if frames.count > 1 { ij += "slices=\(frames.count)\n" }
        if calibrated { ij += "unit=nm\n" }
        let times = frames.map { $0.metadata.relativeTime_s ?? $0.metadata.acquisitionTime?.timeIntervalSince1970 }
        if frames.count > 1, times.allSatisfy({ $0 != nil }) {
            let dt = (times.last!! - times.first!!) / Double(frames.count - 1)
            if dt > 0 { ij += "finterval=\(dt)\n" }
        }
        if frames.count > 1 { ij += "loop=false\n" }
        return ij
    }

    /// What every page shares: size, sample type, strips, the description and calibration.
    private struct PageLayout {
        var width: Int, height: Int, type: SampleType
        var description: String
        var pixelNm: Double?, pixelNmY: Double?
        var rowBytes: Int { width * type.byteCount }
        var rowsPerStrip: Int { max(1, min(height, (1 << 20) / rowBytes)) }

        /// The current page's tags: layout, description (first page), calibration, time.
        func setTags(_ t: OpaquePointer, page k: Int, date: Date?, exifOffset: UInt64) {
            _ = ctiff_set_u32(t, UInt32(TIFFTAG_IMAGEWIDTH), UInt32(width))
            _ = ctiff_set_u32(t, UInt32(TIFFTAG_IMAGELENGTH), UInt32(height))
            _ = ctiff_set_u16(t, UInt32(TIFFTAG_BITSPERSAMPLE), UInt16(type.byteCount * 8))
            _ = ctiff_set_u16(t, UInt32(TIFFTAG_SAMPLESPERPIXEL), 1)
            _ = ctiff_set_u16(t, UInt32(TIFFTAG_SAMPLEFORMAT), UInt16(type == .float32 ? SAMPLEFORMAT_IEEEFP : SAMPLEFORMAT_UINT))
            _ = ctiff_set_u16(t, UInt32(TIFFTAG_PHOTOMETRIC), UInt16(PHOTOMETRIC_MINISBLACK))
            _ = ctiff_set_u16(t, UInt32(TIFFTAG_PLANARCONFIG), UInt16(PLANARCONFIG_CONTIG))
            _ = ctiff_set_u16(t, UInt32(TIFFTAG_COMPRESSION), UInt16(COMPRESSION_NONE))
            _ = ctiff_set_u32(t, UInt32(TIFFTAG_ROWSPERSTRIP), UInt32(rowsPerStrip))
            _ = ctiff_set_u32(t, UInt32(TIFFTAG_SUBFILETYPE), 0)
            if k == 0 { _ = ctiff_set_string(t, UInt32(TIFFTAG_IMAGEDESCRIPTION), description) }
            _ = ctiff_set_string(t, UInt32(TIFFTAG_SOFTWARE), "HeatFront")
            if let px = pixelNm, let py = pixelNmY, px > 0, py > 0 {
                _ = ctiff_set_double(t, UInt32(TIFFTAG_XRESOLUTION), 1 / px)
                _ = ctiff_set_double(t, UInt32(TIFFTAG_YRESOLUTION), 1 / py)
                _ = ctiff_set_u16(t, UInt32(TIFFTAG_RESOLUTIONUNIT), UInt16(RESUNIT_NONE))
                _ = ctiff_set_string(t, 65003, "nm")
                _ = ctiff_set_string(t, 65004, "nm")
                _ = ctiff_set_double(t, 65009, px)
                _ = ctiff_set_double(t, 65010, py)
            }
            if let date {
                _ = ctiff_set_string(t, UInt32(TIFFTAG_DATETIME), TIFFMetadata.tiffDateStrings(date).dateTime)
                _ = ctiff_set_u64(t, UInt32(TIFFTAG_EXIFIFD), exifOffset)
            }
        }

        /// The image's pixels in the page's sample type, strip by strip.
        func writeStrips(_ t: OpaquePointer, _ image: Image, fail: () -> FrameIOError) throws {
            let w = width, rowsPerStrip = rowsPerStrip, rowBytes = rowBytes
            let strip = UnsafeMutableRawPointer.allocate(byteCount: rowsPerStrip * rowBytes, alignment: 16)
            defer { strip.deallocate() }
            var s = 0
            for row0 in stride(from: 0, to: height, by: rowsPerStrip) {
                let rows = min(rowsPerStrip, height - row0)
                image.pixels.withUnsafeBufferPointer { px in
                    let src = px.baseAddress! + row0 * w
                    let n = rows * w
                    switch type {
                    case .uint8:
                        let d = strip.bindMemory(to: UInt8.self, capacity: n)
                        for i in 0..<n { d[i] = TIFFWriter.roundClamped(src[i], max: 255) }
                    case .uint16:
                        let d = strip.bindMemory(to: UInt16.self, capacity: n)
                        for i in 0..<n { d[i] = TIFFWriter.roundClamped(src[i], max: 65535) }
                    default:
                        memcpy(strip, src, n * 4)
                    }
                }
                guard TIFFWriteEncodedStrip(t, UInt32(s), strip, tmsize_t(rows * rowBytes)) >= 0 else { throw fail() }
                s += 1
            }
        }
    }

    /// Rounds to nearest and clamps to 0…max (the integer sample types' range); NaN gives 0.
    @inline(__always)
    static func roundClamped<T: FixedWidthInteger & UnsignedInteger>(_ v: Float, max: Float) -> T {
        if !(v > 0) { return 0 }
        if v >= max { return T(max) }
        return T(v.rounded())
    }
}

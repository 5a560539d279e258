import Foundation

/// Reads FEI/Thermo TIA series files (`.ser`) holding 2-D images or series of them.
///
/// Layout after Dr Chris Boothroyd's "TIA SER file format" notes (as implemented by
/// RosettaSciIO `rsciio/tia/_api.py` and openNCEM `ncempy/io/ser.py`), all little-endian:
/// header (byte order 0x4949, series id 0x0197, version 0x0210 with 32-bit or 0x0220 with
/// 64-bit offsets, data type 0x4120 1-D / 0x4122 2-D, tag type 0x4152 time / 0x4142 time +
/// position, total and valid element counts, offset-array offset, dimension count),
/// dimension descriptions, then the data-offset and tag-offset arrays. Each 2-D element
/// starts with a 50-byte header (x and y calibration offset/delta/element, data type,
/// size x, size y) followed by row-major pixels stored bottom row first: rows are flipped
/// on read, as RosettaSciIO does, so row 0 is the top of the image.
///
/// Calibration deltas are metres (→ nm). Each element's time tag (seconds since 1970)
/// gives `acquisitionTime`. 1-D spectra, complex images and 2-D scans of images
/// (4-D data) are not listed.
public final class SERReader: FrameFileReader, Sendable {
    public let url: URL
    public var format: FrameFormat { .ser }
    public let signals: [SignalInfo]
    public let fileMetadata: [String: String]

    /// The element header is 50 bytes: 2×(f64 offset, f64 delta, u32 element) + u16 type + 2×u32 size.
    static let elementHeaderBytes = 50

    private let file: MappedFile
    private let dataOffsets: [Int]
    private let tagOffsets: [Int]
    private let elementType: SampleType?
    /// Set by `EMIReader` when the .emi says the image is a diffraction pattern (1/m units).
    private let reciprocal: Bool

    public convenience init(url: URL) throws {
        try self.init(url: url, signalIndex: 0, reciprocalUnits: false, allowEmpty: false)
    }

    /// Opens `url`; its image (if any) is listed with `SignalInfo.index == signalIndex`.
    /// A series with no valid element (acquisition stopped before the first) throws
    /// `.truncated` unless `allowEmpty` (the .emi reader skips such series, as RosettaSciIO).
    init(url: URL, signalIndex: Int, reciprocalUnits: Bool, allowEmpty: Bool) throws {
        self.url = url
        reciprocal = reciprocalUnits
        file = try MappedFile(url: url)
        guard file.count > 0 else { throw FrameIOError(.truncated, url: url, "the file is empty (0 bytes)") }
        var r = ByteReader(file, littleEndian: true)
        let header = try Self.readHeader(&r, url: url, allowEmpty: allowEmpty)
        let (data, tags) = try Self.readOffsets(&r, header, fileCount: file.count, url: url)
        dataOffsets = data
        tagOffsets = tags
        fileMetadata = header.metadata
        let valid = header.valid

        // The image: 2-D elements, as a single image or a 1-D series (time series or a
        // series of acquisitions); a 2-D scan of images is 4-D and not listed.
        guard header.dataTypeID == 0x4122, valid > 0,
              header.dimSizes.count <= 1 || header.dimSizes.dropFirst().allSatisfy({ $0 == 1 }) else {
            elementType = nil
            signals = []
            return
        }
        var e = ByteReader(file, offset: data[0], littleEndian: true)
        try e.seek(data[0], "SER first element")
        let (cal, type, w, h) = try Self.elementHeader(&e)
        elementType = type
        guard let type else { signals = []; return }
        for offset in data {
            try file.check(offset: offset, count: Self.elementHeaderBytes + w * h * type.byteCount, "SER element at \(offset)")
        }
        let px = reciprocal ? nil : Self.nanometres(cal.dx), py = reciprocal ? nil : Self.nanometres(cal.dy)
        signals = [SignalInfo(index: signalIndex, name: url.deletingPathExtension().lastPathComponent,
                              frameCount: valid, height: h, width: w, sampleType: type,
                              pixelSizeXNm: px, pixelSizeYNm: py)]
    }

    /// The series header: what the file holds, where its offset arrays are, its dimensions.
    struct Header {
        var wide: Bool
        var dataTypeID: UInt32
        var total: Int
        var valid: Int
        var offsetArray: UInt64
        var dimSizes: [Int] = []
        var metadata: [String: String]
    }

    private static func readHeader(_ r: inout ByteReader, url: URL, allowEmpty: Bool) throws -> Header {
        let byteOrder = try r.u16("SER byte order")
        let seriesID = try r.u16("SER series id")
        guard byteOrder == 0x4949, seriesID == 0x0197 else {
            throw FrameIOError(.badMagic, url: url, String(format: "not a TIA SER file (byte order 0x%04X, series id 0x%04X)", byteOrder, seriesID))
        }
        let version = try r.u16("SER version")
        guard version == 0x0210 || version == 0x0220 else {
            throw FrameIOError(.unsupported, url: url, String(format: "SER version 0x%04X (HeatFront reads 0x0210 and 0x0220)", version))
        }
        let wide = version == 0x0220
        let dataTypeID = try r.u32("SER data type id")
        let tagTypeID = try r.u32("SER tag type id")
        let total = Int(try r.u32("SER total element count"))
        let valid = Int(try r.u32("SER valid element count"))
        let offsetArray = wide ? try r.u64("SER offset-array offset") : UInt64(try r.u32("SER offset-array offset"))
        let ndim = Int(try r.u32("SER dimension count"))
        var h = Header(wide: wide, dataTypeID: dataTypeID, total: total, valid: valid, offsetArray: offsetArray, metadata: [
            "SeriesVersion": String(format: "0x%04X", version), "DataTypeID": String(format: "0x%04X", dataTypeID),
            "TagTypeID": String(format: "0x%04X", tagTypeID), "TotalNumberElements": String(total),
            "ValidNumberElements": String(valid), "NumberDimensions": String(ndim),
        ])
        // Each dimension takes at least 32 bytes: refuse counts the file cannot hold.
        guard ndim <= r.remaining / 32, valid <= total else {
            throw FrameIOError(.corrupt, url: url, "SER header claims \(ndim) dimensions and \(valid) of \(total) elements")
        }
        guard valid > 0 || allowEmpty else {
            throw FrameIOError(.truncated, url: url, "the series holds no acquired element (0 of \(total) valid)")
        }
        guard valid <= FrameLimits.maxFrames else {
            throw FrameIOError(.corrupt, url: url, "SER header claims \(valid) elements, more than HeatFront reads from one file (\(FrameLimits.maxFrames)); split the series into several files")
        }
        for d in 1...max(1, ndim) where d <= ndim {
            let size = Int(try r.u32("SER dimension size"))
            let off = try r.f64("SER dimension calibration offset")
            let delta = try r.f64("SER dimension calibration delta")
            _ = try r.u32("SER dimension calibration element")
            let desc = try r.string(Int(try r.u32("SER description length")), "SER dimension description")
            let units = try r.string(Int(try r.u32("SER units length")), "SER dimension units")
            h.dimSizes.append(size)
            h.metadata["Dim-\(d).DimensionSize"] = String(size)
            h.metadata["Dim-\(d).CalibrationOffset"] = String(off)
            h.metadata["Dim-\(d).CalibrationDelta"] = String(delta)
            h.metadata["Dim-\(d).Description"] = desc
            h.metadata["Dim-\(d).Units"] = units
        }
        return h
    }

    /// The valid elements' data and tag offsets: `total` entries each, checked against the
    /// file before reading.
    private static func readOffsets(_ r: inout ByteReader, _ h: Header, fileCount: Int, url: URL) throws -> (data: [Int], tags: [Int]) {
        let entry = h.wide ? 8 : 4
        guard h.offsetArray <= UInt64(fileCount), h.total <= (fileCount - Int(h.offsetArray)) / (2 * entry) else {
            throw FrameIOError(.truncated, url: url, "SER offset arrays (\(h.total) elements at \(h.offsetArray)) run past the end of the file")
        }
        r.offset = Int(h.offsetArray)
        var data: [Int] = [], tags: [Int] = []
        data.reserveCapacity(h.valid)
        tags.reserveCapacity(h.valid)
        for i in 0..<h.total {
            let v = h.wide ? try r.u64("SER data offset") : UInt64(try r.u32("SER data offset"))
            if i < h.valid { data.append(Int(clamping: v)) }
        }
        for i in 0..<h.total {
            let v = h.wide ? try r.u64("SER tag offset") : UInt64(try r.u32("SER tag offset"))
            if i < h.valid { tags.append(Int(clamping: v)) }
        }
        return (data, tags)
    }

    private static func nanometres(_ metres: Double) -> Double? {
        metres > 0 && metres.isFinite ? metres * 1e9 : nil
    }

    static func sampleType(serDataType t: UInt16) -> SampleType? {
        switch t {
        case 1: .uint8
        case 2: .uint16
        case 3: .uint32
        case 4: .int8
        case 5: .int16
        case 6: .int32
        case 7: .float32
        case 8: .float64
        default: nil                        // 9, 10: complex
        }
    }

    private static func elementHeader(_ e: inout ByteReader) throws -> (cal: (dx: Double, dy: Double), type: SampleType?, w: Int, h: Int) {
        _ = try e.f64("SER element x offset")
        let dx = try e.f64("SER element x delta")
        _ = try e.u32("SER element x element")
        _ = try e.f64("SER element y offset")
        let dy = try e.f64("SER element y delta")
        _ = try e.u32("SER element y element")
        let t = try e.u16("SER element data type")
        let w = Int(try e.u32("SER element width"))
        let h = Int(try e.u32("SER element height"))
        guard w > 0, h > 0, w <= e.remaining / h else {
            throw FrameIOError(.corrupt, url: e.url, "SER element claims \(w)×\(h) pixels")
        }
        try FrameLimits.checkShape(frames: 1, height: h, width: w, url: e.url, "SER element")
        return ((dx, dy), sampleType(serDataType: t), w, h)
    }

    public func plane(signal: Int, frame: Int) throws -> PixelPlane {
        let s = try check(signal, frame)
        var e = ByteReader(file, offset: dataOffsets[frame], littleEndian: true)
        let (_, type, w, h) = try Self.elementHeader(&e)
        guard type == s.sampleType, w == s.width, h == s.height else {
            throw FrameIOError(.corrupt, url: url, "SER element \(frame) differs in size or type from element 0")
        }
        let p = try file.plane(at: e.offset, type: s.sampleType, littleEndian: true, width: w, height: h, "SER element \(frame) pixels")
        return p.flippedVertically()
    }

    public func metadata(signal: Int, frame: Int) throws -> FrameMetadata {
        let s = try check(signal, frame)
        var m = FrameMetadata(pixelSizeXNm: s.pixelSizeXNm, pixelSizeYNm: s.pixelSizeYNm)
        if let t = try time(frame) {
            m.acquisitionTime = Date(timeIntervalSince1970: Double(t))
            if let t0 = try time(0) { m.relativeTime_s = Double(Int64(t) - Int64(t0)) }
        }
        return m
    }

    /// The element's time tag (whole seconds since 1970), when its tag holds one.
    private func time(_ frame: Int) throws -> UInt32? {
        guard frame < tagOffsets.count, tagOffsets[frame] > 0 else { return nil }
        var t = ByteReader(file, offset: tagOffsets[frame], littleEndian: true)
        try t.seek(tagOffsets[frame], "SER tag \(frame)")
        let id = try t.u16("SER tag type")
        guard id == 0x4152 || id == 0x4142 else { return nil }
        _ = try t.u16("SER tag reserved")
        return try t.u32("SER tag time")
    }

    private func check(_ signal: Int, _ frame: Int) throws -> SignalInfo {
        guard signals.indices.contains(signal), frame >= 0, frame < signals[signal].frameCount else {
            throw FrameIOError(.corrupt, url: url, "no signal \(signal) frame \(frame) in this file")
        }
        return signals[signal]
    }
}

extension PixelPlane {
    /// The same pixels with the row order reversed (files stored bottom row first).
    func flippedVertically() -> PixelPlane {
        func flip<T>(_ v: [T]) -> [T] {
            var out: [T] = []
            out.reserveCapacity(v.count)
            for r in stride(from: height - 1, through: 0, by: -1) { out.append(contentsOf: v[(r * width)..<((r + 1) * width)]) }
            return out
        }
        let values: Values
        switch self.values {
        case .uint8(let v): values = .uint8(flip(v))
        case .int8(let v): values = .int8(flip(v))
        case .uint16(let v): values = .uint16(flip(v))
        case .int16(let v): values = .int16(flip(v))
        case .uint32(let v): values = .uint32(flip(v))
        case .int32(let v): values = .int32(flip(v))
        case .uint64(let v): values = .uint64(flip(v))
        case .int64(let v): values = .int64(flip(v))
        case .float16(let v): values = .float16(flip(v))
        case .float32(let v): values = .float32(flip(v))
        case .float64(let v): values = .float64(flip(v))
        }
        return PixelPlane(width: width, height: height, values: values)
    }
}

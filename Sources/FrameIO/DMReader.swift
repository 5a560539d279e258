import Foundation

/// Reads Gatan DigitalMicrograph DM3 and DM4 images and stacks.
///
/// The tag tree is parsed by `DMTagTreeParser` (layout after Jefferis' DM3 notes,
/// RosettaSciIO `rsciio/digitalmicrograph/_api.py` and openNCEM `ncempy/io/dm.py`).
/// Images are the groups of `ImageList` minus those `Thumbnails` names; they are
/// numbered as RosettaSciIO numbers its signals, so 1-D plots, spectra, complex and RGB
/// images keep their index but are not listed. Pixels are read per frame from the
/// mapped file at the offset the `ImageData.Data` tag records.
///
/// Image data types: 1 int16, 2 float32, 6 uint8, 7 int32, 9 int8, 10 uint16, 11 uint32,
/// 12 float64. Complex (3, 5, 13, 27, 28), RGB (8, 23) and binary (14) images are not listed.
public final class DMReader: FrameFileReader, Sendable {
    public let url: URL
    public let format: FrameFormat
    public let signals: [SignalInfo]
    public let fileMetadata: [String: String]
    /// The parsed tag tree, for callers that want more than `fileMetadata`.
    public let tags: DMTagGroup

    private struct Layout {
        var dataOffset: Int
        var frameBytes: Int
        var littleEndian: Bool
        var metadata: FrameMetadata
        /// Seconds per frame when the stack's third axis is calibrated in time.
        var frameInterval_s: Double?
    }

    private let file: MappedFile
    private let layouts: [Layout]

    public init(url: URL) throws {
        self.url = url
        file = try MappedFile(url: url)
        var parser = try DMTagTreeParser(file: file)
        format = parser.version == 4 ? .dm4 : .dm3
        tags = try parser.parseRoot()
        fileMetadata = tags.flattened()

        var thumbnails = Set<Int>()
        if let t = tags.group(at: ["Thumbnails"]) {
            for tag in t.tags {
                if case .group(let g) = tag.value, let v = g["ImageIndex"]?.number, let i = Int(exactly: v) { thumbnails.insert(i) }
            }
        }
        var signals: [SignalInfo] = [], layouts: [Layout] = []
        var index = 0
        if let list = tags.group(at: ["ImageList"]) {
            for (position, tag) in list.tags.enumerated() {
                guard case .group(let image) = tag.value else { continue }
                if thumbnails.contains(position) { continue }
                defer { index += 1 }
                if let (info, layout) = try Self.describe(image, index: index, file: file, littleEndian: parser.dataLittleEndian) {
                    signals.append(info)
                    layouts.append(layout)
                }
            }
        }
        self.signals = signals
        self.layouts = layouts
    }

    public func plane(signal: Int, frame: Int) throws -> PixelPlane {
        let (s, l) = try lookup(signal, frame)
        return try file.plane(at: l.dataOffset + frame * l.frameBytes, type: s.sampleType, littleEndian: l.littleEndian,
                              width: s.width, height: s.height, "DM image \(s.index) frame \(frame)")
    }

    public func metadata(signal: Int, frame: Int) throws -> FrameMetadata {
        let (_, l) = try lookup(signal, frame)
        var m = l.metadata
        if let dt = l.frameInterval_s {
            m.relativeTime_s = Double(frame) * dt
            if let t0 = m.acquisitionTime { m.acquisitionTime = t0.addingTimeInterval(Double(frame) * dt) }
        }
        return m
    }

    private func lookup(_ signal: Int, _ frame: Int) throws -> (SignalInfo, Layout) {
        guard signals.indices.contains(signal), frame >= 0, frame < signals[signal].frameCount else {
            throw FrameIOError(.corrupt, url: url, "no signal \(signal) frame \(frame) in this file")
        }
        return (signals[signal], layouts[signal])
    }

    static func sampleType(dmDataType: Int) -> SampleType? {
        switch dmDataType {
        case 1: .int16
        case 2: .float32
        case 6: .uint8
        case 7: .int32
        case 9: .int8
        case 10: .uint16
        case 11: .uint32
        case 12: .float64
        default: nil
        }
    }

    /// The listed signal an `ImageList` entry makes, or nil for one that is not a 2-D image
    /// or stack of a real-valued type (RosettaSciIO still counts it).
    private static func describe(_ image: DMTagGroup, index: Int, file: MappedFile,
                                 littleEndian: Bool) throws -> (SignalInfo, Layout)? {
        let url = file.url
        guard let data = image.group(at: ["ImageData"]),
              let dataTypeValue = data["DataType"]?.number, let dataType = Int(exactly: dataTypeValue),
              let dims = data.group(at: ["Dimensions"]),
              case .array(_, let count, let offset, let byteCount, _, _)? = data["Data"]
        else { return nil }
        let shape = dims.tags.compactMap { $0.value.number }.map { Int(exactly: $0) ?? -1 }
        guard shape.count == 2 || shape.count == 3 else { return nil }
        // Spectra and spectrum images: the last axes are not spatial (RosettaSciIO `record_by`).
        let format = image.value(at: ["ImageTags", "Meta Data", "Format"])?.text
        if format == "Spectrum image" || format == "Spectrum" || image.value(at: ["ImageTags", "spim"]) != nil { return nil }
        guard let type = sampleType(dmDataType: dataType) else { return nil }
        guard shape.allSatisfy({ $0 > 0 }) else {
            throw FrameIOError(.corrupt, url: url, "DM image \(index) has dimensions \(shape)")
        }
        let width = shape[0], height = shape[1], frames = shape.count == 3 ? shape[2] : 1
        try FrameLimits.checkShape(frames: frames, height: height, width: width, url: url, "DM image \(index)")
        var total = 1
        for d in shape {
            let (r, o) = total.multipliedReportingOverflow(by: d)
            guard !o else { throw FrameIOError(.corrupt, url: url, "DM image \(index) dimensions \(shape) overflow") }
            total = r
        }
        let (needed, o) = total.multipliedReportingOverflow(by: type.byteCount)
        guard !o, total == count, needed <= byteCount else {
            throw FrameIOError(.corrupt, url: url, "DM image \(index): dimensions \(shape) do not match its \(count)-element data array")
        }
        try file.check(offset: offset, count: needed, "DM image \(index) pixel data")

        let (scales, units) = calibration(data)
        func scale(_ i: Int) -> Double? { i < scales.count ? scales[i] : nil }

        var md = FrameMetadata(pixelSizeXNm: scale(0), pixelSizeYNm: scale(1))
        let tags = image.group(at: ["ImageTags"]) ?? DMTagGroup()
        md.acquisitionTime = acquisitionTime(tags)
        if let t = tags.value(at: ["DigiScan", "Sample Time"])?.number, t > 0 { md.dwellTime_s = t * 1e-6 }
        // A camera's DataBar "Exposure Time (s)" is kept in `original`, not taken as a dwell.
        // Written by DM4Writer for simulated runs.
        if let t = tags.value(at: ["HeatFront", "Temperature (C)"])?.number, t.isFinite { md.temperatureC = t }
        for (k, v) in tags.flattened(prefix: "ImageTags") { md.original[k] = v }
        md.original["Name"] = image["Name"]?.text

        var interval: Double? = nil
        if shape.count == 3, units.count > 2, units[2] == "s", let s = (cal3Scale(data)), s > 0 { interval = s }
        let name = image["Name"]?.text ?? ""
        let info = SignalInfo(index: index, name: name, frameCount: frames, height: height, width: width,
                              sampleType: type, pixelSizeXNm: scale(0), pixelSizeYNm: scale(1))
        return (info, Layout(dataOffset: offset, frameBytes: width * height * type.byteCount,
                             littleEndian: littleEndian, metadata: md, frameInterval_s: interval))
    }

    /// Calibration: Calibrations.Dimension[i].Scale (nm, nil where the unit is not a length
    /// or the scale not positive) and Units, x first.
    private static func calibration(_ data: DMTagGroup) -> (scales: [Double?], units: [String]) {
        var scales: [Double?] = []
        var units: [String] = []
        if let cal = data.group(at: ["Calibrations", "Dimension"]) {
            for tag in cal.tags {
                guard case .group(let d) = tag.value else { continue }
                let unit = d["Units"]?.text ?? ""
                units.append(unit)
                if let s = d["Scale"]?.number, s > 0, s.isFinite, let k = nanometresPerUnit(unit) { scales.append(s * k) }
                else { scales.append(nil) }
            }
        }
        return (scales, units)
    }

    private static func cal3Scale(_ data: DMTagGroup) -> Double? {
        guard let cal = data.group(at: ["Calibrations", "Dimension"]), cal.tags.count > 2,
              case .group(let d) = cal.tags[2].value else { return nil }
        return d["Scale"]?.number
    }

    /// The acquisition time from the DataBar: the locale-free `Acquisition Time (OS)`
    /// (Windows FILETIME, 100 ns ticks since 1601 UTC) when present, else the date and time
    /// strings, which follow the acquiring PC's locale (US `M/D/YYYY h:mm:ss AM`, UK
    /// `DD/MM/YYYY HH:mm:ss`, ISO `YYYY-MM-DD`) and are taken as UTC.
    static func acquisitionTime(_ tags: DMTagGroup) -> Date? {
        if let ticks = tags.value(at: ["DataBar", "Acquisition Time (OS)"])?.number, ticks > 1e17, ticks < 1e18 {
            return Date(timeIntervalSince1970: ticks / 1e7 - 11_644_473_600)
        }
        guard let date = tags.value(at: ["DataBar", "Acquisition Date"])?.text,
              let time = tags.value(at: ["DataBar", "Acquisition Time"])?.text else { return nil }
        return parseLocaleDateTime(date: date, time: time)
    }

    /// Parses DigitalMicrograph's locale-formatted DataBar date and time.
    /// A day-first order is chosen when the first number exceeds 12, or when the time is
    /// 24-hour (no AM/PM marker), as UK/European Windows locales write both.
    public static func parseLocaleDateTime(date: String, time: String) -> Date? {
        let dparts = date.split(whereSeparator: { "/.-".contains($0) }).compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard dparts.count == 3 else { return nil }
        var t = time.uppercased()
        var pm = false, am = false
        if t.contains("PM") { pm = true; t = t.replacingOccurrences(of: "PM", with: "") }
        if t.contains("AM") { am = true; t = t.replacingOccurrences(of: "AM", with: "") }
        let tparts = t.split(separator: ":").map { $0.trimmingCharacters(in: .whitespaces) }
        guard tparts.count >= 2, var hour = Int(tparts[0]), let minute = Int(tparts[1]) else { return nil }
        let second = tparts.count > 2 ? (Double(tparts[2]) ?? -1) : 0
        guard second >= 0, second < 61, (0...59).contains(minute), (0...24).contains(hour) else { return nil }
        if pm && hour < 12 { hour += 12 }
        if am && hour == 12 { hour = 0 }
        var year: Int, month: Int, day: Int
        if dparts[0] > 31 {                     // ISO: year first
            (year, month, day) = (dparts[0], dparts[1], dparts[2])
        } else {
            year = dparts[2]
            let dayFirst: Bool
            if dparts[0] > 12 { dayFirst = true }
            else if dparts[1] > 12 { dayFirst = false }
            else { dayFirst = !(am || pm) }
            (day, month) = dayFirst ? (dparts[0], dparts[1]) : (dparts[1], dparts[0])
        }
        if year < 100 { year += 2000 }
        guard (1900...9999).contains(year) else { return nil }
        var c = DateComponents()
        c.year = year; c.month = month; c.day = day; c.hour = hour; c.minute = minute
        c.second = Int(second); c.nanosecond = Int((second - Double(Int(second))) * 1e9)
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = TimeZone(identifier: "UTC")!
        guard (1...12).contains(month), (1...31).contains(day), (0...23).contains(hour) else { return nil }
        return cal.date(from: c)
    }
}

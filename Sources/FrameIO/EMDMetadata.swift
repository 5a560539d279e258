import Foundation

/// One frame's Velox metadata: the JSON text Velox stores per frame in
/// `/Data/Image/<uuid>/Metadata`, flattened to `path.to.key → value`, with the fields
/// HeatFront needs read out of it.
///
/// Where Velox keeps what (schema "v1/2013/07", seen in Velox 2–3 files and read the same
/// way by RosettaSciIO's `rsciio/emd/_emd_velox.py` and ncempy's `emdVelox.py`):
/// - `BinaryResult.PixelSize.width/height` with `BinaryResult.PixelUnitX/Y` (SI metres);
/// - `BinaryResult.Detector`, or `Detectors.Detector-<BinaryResult.DetectorIndex>.DetectorName`;
/// - `Acquisition.AcquisitionStartDatetime.DateTime`: Unix seconds of the acquisition start,
///   the same for every frame of a series;
/// - `CustomProperties.Detectors[<detector>].TimeStamp.value`: the detector's per-frame
///   timestamp in microseconds since the Unix epoch (camera series);
/// - `Scan.FrameTime` (STEM) or `Detectors.Detector-<i>.ExposureTime` (camera): the frame
///   period RosettaSciIO uses as the time axis of a series;
/// - `Scan.DwellTime`: pixel dwell time, seconds.
struct VeloxFrameMetadata {
    /// The JSON, flattened; arrays get `.0`, `.1`, … path components.
    let flat: [String: String]

    /// Parses the NUL-padded JSON text of one frame.
    init(jsonBytes: [UInt8]) throws {
        let end = jsonBytes.firstIndex(of: 0) ?? jsonBytes.endIndex
        guard end > 0 else { throw VeloxMetadataError.empty }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: Data(jsonBytes[..<end])) }
        catch { throw VeloxMetadataError.notJSON }
        guard object is [String: Any] else { throw VeloxMetadataError.notJSON }
        var out: [String: String] = [:]
        Self.flatten(object, prefix: "", into: &out)
        flat = out
    }

    init(flat: [String: String]) { self.flat = flat }

    private static func flatten(_ value: Any, prefix: String, into out: inout [String: String]) {
        func key(_ k: String) -> String { prefix.isEmpty ? k : prefix + "." + k }
        switch value {
        case let d as [String: Any]:
            for (k, v) in d { flatten(v, prefix: key(k), into: &out) }
        case let a as [Any]:
            for (i, v) in a.enumerated() { flatten(v, prefix: key(String(i)), into: &out) }
        case let s as String:
            out[prefix] = s
        case let n as NSNumber:
            out[prefix] = n.stringValue
        case is NSNull:
            out[prefix] = ""
        default:
            out[prefix] = "\(value)"
        }
    }

    func string(_ key: String) -> String? { flat[key] }

    /// A finite number stored under `key` (Velox writes numbers as JSON strings).
    func number(_ key: String) -> Double? {
        guard let s = flat[key]?.trimmingCharacters(in: .whitespaces), let v = Double(s), v.isFinite else { return nil }
        return v
    }

    /// The detector that recorded this signal (`HAADF`, `DF2`, `BM-Ceta`, …).
    var detectorName: String? {
        if let d = string("BinaryResult.Detector"), !d.isEmpty { return d }
        if let i = string("BinaryResult.DetectorIndex"),
           let d = string("Detectors.Detector-\(i).DetectorName"), !d.isEmpty { return d }
        return nil
    }

    /// Pixel size in nm along x (width) and y (height); nil for reciprocal-space data
    /// (FFTs, diffraction: unit `1/m`) or a missing or non-positive value.
    var pixelSizeNm: (x: Double?, y: Double?) {
        func nm(_ valueKey: String, _ unitKey: String) -> Double? {
            guard let v = number(valueKey), v > 0 else { return nil }
            // Velox stores SI metres; an absent unit is read as metres too.
            guard let perUnit = Self.nanometres(per: string(unitKey) ?? "m") else { return nil }
            return v * perUnit
        }
        return (nm("BinaryResult.PixelSize.width", "BinaryResult.PixelUnitX"),
                nm("BinaryResult.PixelSize.height", "BinaryResult.PixelUnitY"))
    }

    static func nanometres(per unit: String) -> Double? {
        switch unit.trimmingCharacters(in: .whitespaces) {
        case "", "m": 1e9
        case "mm": 1e6
        case "um", "µm", "μm": 1e3
        case "nm": 1
        case "A", "Å": 0.1   // String equality also matches the Ångström sign U+212B
        case "pm": 1e-3
        default: nil   // `1/m` and other reciprocal or unknown units: not a real-space pixel
        }
    }

    /// Start of the acquisition (whole seconds); nil when Velox left it at 0.
    var acquisitionStart: Date? {
        guard let t = number("Acquisition.AcquisitionStartDatetime.DateTime"), t > 0 else { return nil }
        return Date(timeIntervalSince1970: t)
    }

    /// The detector's timestamp of this frame (µs since the Unix epoch in Velox), preferring
    /// the signal's own detector.
    func detectorTimeStamp(detector: String?) -> Date? {
        if let d = detector, let us = number("CustomProperties.Detectors[\(d)].TimeStamp.value"), us > 0 {
            return Date(timeIntervalSince1970: us / 1e6)
        }
        let keys = flat.keys.filter { $0.hasPrefix("CustomProperties.Detectors[") && $0.hasSuffix("].TimeStamp.value") }
        guard keys.count == 1, let us = number(keys[0]), us > 0 else { return nil }   // ambiguous when several
        return Date(timeIntervalSince1970: us / 1e6)
    }

    /// Time from one frame of a series to the next: `Scan.FrameTime` for STEM, the
    /// detector's exposure time for a camera (as RosettaSciIO's time axis).
    var framePeriod_s: Double? {
        if let t = number("Scan.FrameTime"), t > 0 { return t }
        if let i = string("BinaryResult.DetectorIndex"), let t = number("Detectors.Detector-\(i).ExposureTime"), t > 0 {
            return t
        }
        return nil
    }

    var dwellTime_s: Double? {
        guard let t = number("Scan.DwellTime"), t > 0 else { return nil }
        return t
    }

    /// A specimen temperature stored with the frame, °C. Velox itself records none; heating
    /// holders that write through Velox's custom properties put one under `Stage` or
    /// `CustomProperties` with "Temperature" in the key. Kelvin is converted when the key or
    /// a sibling `unit` says so; otherwise the value is taken as °C.
    var temperatureC: Double? {
        let named = ["Stage.Temperature", "Stage.HolderTemperature", "Stage.SpecimenTemperature",
                     "Sample.Temperature"]
        var candidates = named.filter { flat[$0] != nil }
        candidates += flat.keys.filter { k in
            k.hasPrefix("CustomProperties.") && k.hasSuffix(".value")
                && k.dropLast(6).split(separator: ".").last.map { $0.localizedCaseInsensitiveContains("temperature") } == true
        }.sorted()
        for key in candidates {
            guard let v = number(key) else { continue }
            let base = key.hasSuffix(".value") ? String(key.dropLast(6)) : key
            let unit = (string(base + ".unit") ?? string(base + ".Unit") ?? "").trimmingCharacters(in: .whitespaces)
            if unit == "K" || base.hasSuffix("Kelvin") { return v - 273.15 }
            return v
        }
        return nil
    }
}

enum VeloxMetadataError: Error {
    case empty, notJSON
    var detail: String {
        switch self {
        case .empty: "empty metadata text"
        case .notJSON: "metadata is not a JSON object"
        }
    }
}

import Foundation

/// Temperatures and times written into folder and file names (docs/user-guide.md, "The run folder": Temperature;
/// sources 4 and 5, time source 2). Plain string parsing, no guessing beyond the listed forms:
/// a bare number is never a temperature, and a token glued to letters (`NCM811C`) is a word.
public enum TemperatureTokens {
    /// Room temperature, the value of an `RT` folder or token.
    public static let roomTemperatureC = 25.0

    /// Unit suffixes, longest first so `175degC` is not read as `175deg` + `C`.
    private static let units = ["_degC", " degC", "degC", "_°C", " °C", "°C", "_C", " C", "C"]

    /// Reads `[T][=]<number><unit>` (unit optional only when `bareT` and the `T` is there).
    static func parseToken(_ token: Substring, bareT: Bool) -> Double? {
        var s = token
        var hasT = false
        if let f = s.first, f == "T" || f == "t" {
            hasT = true
            s = s.dropFirst()
            if s.first == "=" { s = s.dropFirst() }
        }
        var hasUnit = false
        for u in units where s.count > u.count && s.lowercased().hasSuffix(u.lowercased()) {
            s = s.dropLast(u.count)
            hasUnit = true
            break
        }
        guard hasUnit || (hasT && bareT) else { return nil }
        // A plain decimal: digits, at most one point, digits on both sides of it.
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count),
              parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } }),
              let t = Double(s), t < 3000 else { return nil }
        return t
    }

    /// The temperature a folder name states: `175C`, `175degC`, `175_C`, `175°C`, `T175`, `T175C`,
    /// `T=175C`, an ordinal prefix before one of those with a unit (`05_175C`, `3-200degC`), or `RT`.
    public static func folderTemperature(_ name: String) -> Double? {
        let n = Substring(name.trimmingCharacters(in: .whitespaces))
        if n.lowercased() == "rt" { return roomTemperatureC }
        if let t = parseToken(n, bareT: true) { return t }
        // `NN_<temperature>`: a sequence number, a separator, then a temperature with its unit.
        if let sep = n.firstIndex(where: { $0 == "_" || $0 == "-" || $0 == " " }),
           n[n.startIndex..<sep].allSatisfy({ $0.isASCII && $0.isNumber }), sep > n.startIndex {
            let rest = n[n.index(after: sep)...]
            if rest.lowercased() == "rt" { return roomTemperatureC }
            return parseToken(rest, bareT: false)
        }
        return nil
    }

    /// The temperature a file name states as a separate token: `_175C_`, `-175degC`, `T175C`,
    /// `T=175C`, `_RT_`. Tokens are split at `_`, `-`, spaces, brackets and commas, so a
    /// temperature inside a word (`NCM811C`) is not one. The extension is ignored. When the
    /// name holds several different temperatures it is ambiguous and nil is returned.
    public static func fileNameTemperature(_ fileName: String) -> Double? {
        let base = Substring((fileName as NSString).deletingPathExtension)
        let separators: Set<Character> = ["_", "-", " ", "(", ")", "[", "]", ",", "+", "&"]
        var found: [Double] = []
        for token in base.split(whereSeparator: { separators.contains($0) }) {
            if token.lowercased() == "rt" { found.append(roomTemperatureC); continue }
            if let t = parseToken(token, bareT: false) { found.append(t) }
        }
        guard let first = found.first, found.allSatisfy({ $0 == first }) else { return nil }
        return first
    }

    /// The temperature of the nearest enclosing folder of `relativePath` (components split at
    /// `/`, the file name itself excluded) whose name is a temperature.
    public static func enclosingFolderTemperature(_ relativePath: String) -> Double? {
        let parts = relativePath.split(separator: "/")
        for folder in parts.dropLast().reversed() {
            if let t = folderTemperature(String(folder)) { return t }
        }
        return nil
    }
}

/// The clock time a Gatan in-situ capture encodes in its folder tree:
/// `…/Hour_HH/Minute_MM/Second_SS/<name>_Frame_NNNN.dm4` (GMS 3 In-Situ Player export).
public struct GatanCapturePath: Sendable, Equatable {
    /// Seconds since midnight of the capture's whole second.
    public var second: Int
    /// The frame counter in the file name.
    public var frame: Int

    public init(second: Int, frame: Int) {
        self.second = second
        self.frame = frame
    }

    /// Parses a path relative to RUN_DIR, or nil when it is not in that layout.
    public init?(relativePath: String) {
        let c = relativePath.split(separator: "/")
        guard c.count >= 4 else { return nil }
        func number(_ s: Substring, _ prefix: String) -> Int? {
            guard s.lowercased().hasPrefix(prefix.lowercased()) else { return nil }
            let digits = s.dropFirst(prefix.count)
            guard !digits.isEmpty, digits.count <= 6, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
            return Int(digits)
        }
        guard let h = number(c[c.count - 4], "Hour_"), let m = number(c[c.count - 3], "Minute_"),
              let s = number(c[c.count - 2], "Second_"), m < 60, s < 61 else { return nil }
        let name = c[c.count - 1]
        guard let r = name.range(of: "Frame_", options: [.caseInsensitive, .backwards]) else { return nil }
        let digits = name[r.upperBound...].prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, digits.count <= 9, let f = Int(digits) else { return nil }
        self.second = h * 3600 + m * 60 + s
        self.frame = f
    }
}

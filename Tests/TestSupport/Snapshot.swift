import Foundation

/// Compares `actual` with the reference text `file` holds and, when they differ, returns a
/// failure message: a unified diff (reference → actual) and the command that regenerates
/// the reference. With HEATFRONT_UPDATE_SNAPSHOTS=1 in the environment the reference is
/// rewritten instead and nil returned.
///
/// `part` selects the lines between two marker lines (a generated table inside a document);
/// by default the whole file is the reference.
public func snapshotMismatch(_ actual: String, file: URL, regenerate: String,
                             part: (begin: String, end: String)? = nil) -> String? {
    let existing = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
    var reference = existing
    var range: Range<String.Index>?
    if let part {
        guard let b = existing.range(of: part.begin), let e = existing.range(of: part.end, range: b.upperBound..<existing.endIndex) else {
            return "\(file.path) has no part between '\(part.begin)' and '\(part.end)'"
        }
        let start = existing[b.upperBound...].firstIndex(of: "\n").map { existing.index(after: $0) } ?? b.upperBound
        range = start..<e.lowerBound
        reference = String(existing[start..<e.lowerBound])
    }
    guard reference != actual else { return nil }
    if ProcessInfo.processInfo.environment["HEATFRONT_UPDATE_SNAPSHOTS"] == "1" {
        var updated = existing
        if let range { updated.replaceSubrange(range, with: actual) } else { updated = actual }
        try? FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try? updated.write(to: file, atomically: true, encoding: .utf8)
        return nil
    }
    return "\(file.path) differs from what the code generates:\n" + unifiedDiff(reference, actual)
        + "\nIf the change is intended, regenerate with: HEATFRONT_UPDATE_SNAPSHOTS=1 \(regenerate)"
}

/// A line diff in unified style (`-` reference, `+` actual), from the longest common subsequence.
public func unifiedDiff(_ a: String, _ b: String) -> String {
    let x = a.components(separatedBy: "\n"), y = b.components(separatedBy: "\n")
    var lcs = [[Int]](repeating: [Int](repeating: 0, count: y.count + 1), count: x.count + 1)
    for i in stride(from: x.count - 1, through: 0, by: -1) {
        for j in stride(from: y.count - 1, through: 0, by: -1) {
            lcs[i][j] = x[i] == y[j] ? lcs[i + 1][j + 1] + 1 : max(lcs[i + 1][j], lcs[i][j + 1])
        }
    }
    var out = ["--- reference", "+++ actual"], i = 0, j = 0
    while i < x.count || j < y.count {
        if i < x.count, j < y.count, x[i] == y[j] { out.append("  " + x[i]); i += 1; j += 1 }
        else if j < y.count, i == x.count || lcs[i][j + 1] >= lcs[i + 1][j] { out.append("+ " + y[j]); j += 1 }
        else { out.append("- " + x[i]); i += 1 }
    }
    return out.joined(separator: "\n")
}

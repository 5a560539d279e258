import Foundation

/// Natural ("human") ordering of relative paths, so that `frame_2` comes before `frame_10`
/// (the ordering of Dave Koelle's "Alphanum" algorithm and of macOS Finder).
///
/// Paths are compared component by component (a folder's files stay together); inside a
/// component, runs of digits compare by numeric value and other text case-insensitively.
/// Ties are broken by fewer leading zeros, then by case-sensitive text, so the order is total
/// and stable across machines.
public enum NaturalSort {
    /// True when `a` sorts before `b`.
    public static func less(_ a: String, _ b: String) -> Bool {
        compare(a, b) == .orderedAscending
    }

    public static func compare(_ a: String, _ b: String) -> ComparisonResult {
        let ca = a.split(separator: "/", omittingEmptySubsequences: false)
        let cb = b.split(separator: "/", omittingEmptySubsequences: false)
        for (x, y) in zip(ca, cb) {
            let r = compareComponent(Substring(x), Substring(y))
            if r != .orderedSame { return r }
        }
        if ca.count != cb.count { return ca.count < cb.count ? .orderedAscending : .orderedDescending }
        return .orderedSame
    }

    private enum Chunk { case text(String), number(digits: Substring) }

    private static func chunks(_ s: Substring) -> [Chunk] {
        var out: [Chunk] = []
        var i = s.startIndex
        while i < s.endIndex {
            let isDigit = s[i].isASCII && s[i].isNumber
            var j = s.index(after: i)
            while j < s.endIndex, (s[j].isASCII && s[j].isNumber) == isDigit { j = s.index(after: j) }
            out.append(isDigit ? .number(digits: s[i..<j]) : .text(String(s[i..<j])))
            i = j
        }
        return out
    }

    private static func compareComponent(_ a: Substring, _ b: Substring) -> ComparisonResult {
        let xa = chunks(a), xb = chunks(b)
        var tieBreak = ComparisonResult.orderedSame
        for (p, q) in zip(xa, xb) {
            switch (p, q) {
            case (.number(let d1), .number(let d2)):
                let s1 = d1.drop { $0 == "0" }, s2 = d2.drop { $0 == "0" }
                if s1.count != s2.count { return s1.count < s2.count ? .orderedAscending : .orderedDescending }
                if s1 != s2 { return s1 < s2 ? .orderedAscending : .orderedDescending }
                if tieBreak == .orderedSame, d1.count != d2.count {
                    tieBreak = d1.count < d2.count ? .orderedAscending : .orderedDescending
                }
            case (.number, .text): return .orderedAscending     // digits before letters, as in ASCII
            case (.text, .number): return .orderedDescending
            case (.text(let t1), .text(let t2)):
                let l1 = t1.lowercased(), l2 = t2.lowercased()
                if l1 != l2 { return l1 < l2 ? .orderedAscending : .orderedDescending }
                if tieBreak == .orderedSame, t1 != t2 { tieBreak = t1 < t2 ? .orderedAscending : .orderedDescending }
            }
        }
        if xa.count != xb.count { return xa.count < xb.count ? .orderedAscending : .orderedDescending }
        return tieBreak
    }
}

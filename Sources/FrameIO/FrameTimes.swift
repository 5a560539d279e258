import Foundation

/// Frame order and `time_s` (docs/user-guide.md, "The run folder": Order and Time), decided on
/// the frames of the run's size only: an unreadable or rejected file never changes the
/// clock of the others.
///
/// Metadata times are used when most of those frames carry one (at least two, and more
/// than half): a frame that lacks one (re-saved by another program) gets a time
/// interpolated between its neighbours in file order, with a warning naming it, instead of
/// the whole run falling back to frame-index times.
struct FrameTimes {
    var times: [Double]
    var source: TimeSource
    /// Whether the times are absolute clock times (a heating log with absolute times can then be matched on them).
    var absolute: Bool

    /// Orders `raws` (in natural order on entry) and returns their times.
    static func assign(_ raws: inout [RawFrame], frameIntervalS: Double?, warnings: inout [String]) -> FrameTimes {
        let usable = raws.indices.filter { raws[$0].status.isOK }
        let timed = usable.filter { raws[$0].absTime != nil }
        let absolute = !usable.isEmpty && (timed.count == usable.count || (timed.count >= 2 && 2 * timed.count > usable.count))
        if absolute {
            let estimate = interpolated(raws, usable: usable, timed: timed)
            if timed.count < usable.count { warnings.append(untimedWarning(raws, usable: usable, estimate: estimate)) }
            let key = fillFromNeighbours(raws.indices.map { estimate[$0] })
            let order = raws.indices.sorted { (key[$0]!, $0) < (key[$1]!, $1) }
            raws = order.map { raws[$0] }
            let clock = order.map { estimate[$0] }
            if let gatan = gatanTimesForCoarseClock(&raws, clock: clock, warnings: &warnings) {
                return FrameTimes(times: gatan, source: .gatanFolderTree, absolute: true)
            }
            let t = fillFromNeighbours(clock).map { $0! }
            return FrameTimes(times: t.map { $0 - t[0] }, source: .frameMetadata, absolute: true)
        }
        let usableRelative = !usable.isEmpty && Set(raws.map(\.fileNo)).count == 1
            && usable.allSatisfy { raws[$0].relTime != nil }
        if usableRelative {
            let t = fillFromNeighbours(raws.map(\.relTime)).map { $0! }
            return FrameTimes(times: t.map { $0 - t[0] }, source: .frameMetadata, absolute: false)
        }
        let gatan = raws.map { GatanCapturePath(relativePath: $0.rel) }
        if !raws.isEmpty, gatan.allSatisfy({ $0 != nil }) {
            return FrameTimes(times: gatanTimes(gatan.map { $0! }, pages: raws.map(\.page)), source: .gatanFolderTree, absolute: false)
        }
        if let dt = frameIntervalS {
            return FrameTimes(times: raws.indices.map { Double($0) * dt }, source: .configFrameInterval, absolute: false)
        }
        if !raws.isEmpty {
            let some = timed.isEmpty ? "" : " (only \(timed.count) of \(usable.count) frames carry a time)"
            warnings.append("no frame times in the file metadata\(some), a Gatan capture folder tree or frame_interval_s: time_s is the frame index")
        }
        return FrameTimes(times: raws.indices.map(Double.init), source: .frameIndex, absolute: false)
    }

    /// Each frame's metadata time in seconds (reference date 2001), and for a frame of the
    /// run's size without one, the time interpolated from the nearest timed frames before
    /// and after it in file order (extrapolated with their median spacing at either end).
    /// Other frames without a time stay nil.
    static func interpolated(_ raws: [RawFrame], usable: [Int], timed: [Int]) -> [Double?] {
        var t: [Double?] = raws.map { $0.absTime?.timeIntervalSinceReferenceDate }
        guard timed.count < usable.count, let firstTimed = timed.first, let lastTimed = timed.last else { return t }
        let sortedTimes = timed.map { t[$0]! }.sorted()
        let gaps = zip(sortedTimes.dropFirst(), sortedTimes).map { $0 - $1 }.sorted()
        let spacing = gaps.isEmpty ? 0 : gaps[gaps.count / 2]
        var before = firstTimed, k = 0
        for i in usable where t[i] == nil {
            while k < timed.count, timed[k] < i { before = timed[k]; k += 1 }
            let after = k < timed.count ? timed[k] : nil
            if i < firstTimed {
                t[i] = t[firstTimed]! - Double(rank(firstTimed, usable) - rank(i, usable)) * spacing
            } else if let after {
                let w = Double(rank(i, usable) - rank(before, usable)) / Double(rank(after, usable) - rank(before, usable))
                t[i] = t[before]! + w * (t[after]! - t[before]!)
            } else {
                t[i] = t[lastTimed]! + Double(rank(i, usable) - rank(lastTimed, usable)) * spacing
            }
        }
        return t
    }

    /// Position of raw frame `i` among the usable frames (both sorted ascending).
    private static func rank(_ i: Int, _ usable: [Int]) -> Int {
        var lo = 0, hi = usable.count
        while lo < hi { let m = (lo + hi) / 2; if usable[m] < i { lo = m + 1 } else { hi = m } }
        return lo
    }

    private static func untimedWarning(_ raws: [RawFrame], usable: [Int], estimate: [Double?]) -> String {
        let missing = usable.filter { raws[$0].absTime == nil }.map { raws[$0].rel + (raws[$0].page > 0 ? " page \(raws[$0].page)" : "") }
        let shown = missing.prefix(5).joined(separator: ", ") + (missing.count > 5 ? ", … (\(missing.count - 5) more)" : "")
        return "\(missing.count) frame(s) carry no acquisition time (\(shown)): their times are interpolated between their neighbours in file order"
    }

    /// DM files of a Gatan in-situ capture often stamp whole seconds only: when several
    /// files share one time stamp and the capture tree is there, the tree is the finer clock.
    private static func gatanTimesForCoarseClock(_ raws: inout [RawFrame], clock: [Double?], warnings: inout [String]) -> [Double]? {
        guard raws.allSatisfy({ GatanCapturePath(relativePath: $0.rel) != nil }) else { return nil }
        var fileOfTime: [Double: Int] = [:]
        var coarse = false
        for (i, r) in raws.enumerated() where r.status.isOK && r.absTime != nil {
            if let other = fileOfTime[clock[i]!], other != r.fileNo { coarse = true; break }
            fileOfTime[clock[i]!] = r.fileNo
        }
        guard coarse else { return nil }
        raws.sort { NaturalSort.less($0.rel, $1.rel) || ($0.rel == $1.rel && $0.page < $1.page) }
        warnings.append("several files share one metadata time stamp: times come from the Gatan capture folder tree")
        return gatanTimes(raws.map { GatanCapturePath(relativePath: $0.rel)! }, pages: raws.map(\.page))
    }

    /// Fills nil entries (unreadable frames) with the previous known value, or the next one.
    static func fillFromNeighbours(_ v: [Double?]) -> [Double?] {
        var out = v
        var last: Double? = nil
        for i in out.indices { if let x = out[i] { last = x } else { out[i] = last } }
        var nextKnown: Double? = nil
        for i in out.indices.reversed() { if let x = v[i] { nextKnown = x } else if out[i] == nil { out[i] = nextKnown } }
        return out.map { $0 ?? 0 }
    }

    /// Times from a Gatan in-situ capture tree: the folder names give the whole second; the
    /// k frames saved within one second are spread evenly over it in frame-number order.
    static func gatanTimes(_ paths: [GatanCapturePath], pages: [Int]) -> [Double] {
        var bySecond: [Int: [Int]] = [:]
        for (i, p) in paths.enumerated() { bySecond[p.second, default: []].append(i) }
        var t = [Double](repeating: 0, count: paths.count)
        for (sec, idx) in bySecond {
            let sorted = idx.sorted { (paths[$0].frame, pages[$0], $0) < (paths[$1].frame, pages[$1], $1) }
            for (k, i) in sorted.enumerated() { t[i] = Double(sec) + Double(k) / Double(sorted.count) }
        }
        guard let first = t.first else { return t }
        let origin = min(first, t.min()!)
        return t.map { $0 - origin }
    }
}

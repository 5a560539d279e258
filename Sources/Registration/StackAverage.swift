import Dispatch
import FrameCore

/// Average of rigidly aligned frames on the reference frame, with a weight map.
///
/// Each used frame is moved by `(−dx, −dy)` (`Resampling.shifted`) and added only where
/// its interpolation is valid; the sum is divided per pixel by the number of frames that
/// cover it (the weight map), so the border strips that only some frames reach are not
/// darkened by missing data. Frames are streamed: memory is one accumulator per thread
/// plus one decoded frame per thread, whatever the number of frames. The move is
/// resampled straight into the accumulator over its valid rectangle
/// (`Resampling.accumulateShifted`: the same values, no moved image or mask per frame);
/// the weight map is counted from those rectangles at the end.
public enum StackAverage {
    /// Averages `frames[indices[i]]` aligned by `shifts[i]`, skipping rejected frames and
    /// frames whose size differs from the sequence's. Pixels no frame covers are 0 with
    /// weight 0.
    public static func average(_ frames: some ImageSequence, indices: [Int], shifts: [FrameShift],
                               interpolation: Interpolation) throws -> AlignedAverage {
        guard indices.count == shifts.count else {
            throw RegistrationError.shiftCountMismatch(indices: indices.count, shifts: shifts.count)
        }
        let w = frames.width, h = frames.height
        for i in indices where i < 0 || i >= frames.count {
            throw RegistrationError.groupIndexOutOfRange(group: 0, index: i, count: frames.count)
        }
        let used = zip(indices, shifts).filter { $0.1.isUsed }
        let chunks = Swift.max(1, Swift.min(used.count, 2))
        let (parts, covered) = try accumulate(frames, used: used, chunks: chunks, interpolation: interpolation)
        var sum = parts.first ?? [Float](repeating: 0, count: w * h)
        let count = covered.count
        let weight = divideByCoverage(&sum, second: parts.count > 1 ? parts[1] : nil, covered: covered,
                                      width: w, height: h, bands: chunks)
        return AlignedAverage(image: Image(width: w, height: h, pixels: sum),
                              weight: Image(width: w, height: h, pixels: weight), frameCount: count)
    }

    typealias Rectangle = (x0: Int, x1: Int, y0: Int, y1: Int)

    /// Each thread's sum of its share of the moved frames (frame k to thread k mod `chunks`),
    /// in thread order, and every averaged frame's valid rectangle.
    static func accumulate(_ frames: some ImageSequence, used: [(Int, FrameShift)], chunks: Int,
                           interpolation: Interpolation) throws -> (parts: [[Float]], covered: [Rectangle]) {
        let w = frames.width, h = frames.height
        let partial = ResultSlots<(sum: [Float], covered: [Rectangle])>(count: chunks)
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            var sum = [Float](repeating: 0, count: w * h)
            var row = [Float](repeating: 0, count: w + 8)
            var covered: [Rectangle] = []
            do {
                for k in stride(from: c, to: used.count, by: chunks) {
                    let (index, shift) = used[k]
                    let image = try frames.image(at: index)
                    guard image.width == w, image.height == h else { continue }
                    let rectangle = sum.withUnsafeMutableBufferPointer { s in
                        row.withUnsafeMutableBufferPointer { r in
                            Resampling.accumulateShifted(image, by: -shift.dx, -shift.dy, interpolation: interpolation,
                                                         sum: s, row: r)
                        }
                    }
                    // A frame whose move leaves no valid pixel still counts as averaged.
                    covered.append(rectangle ?? (0, 0, 0, 0))
                }
                partial.set(c, .success((sum, covered)))
            } catch {
                partial.set(c, .failure(error))
            }
        }
        var parts: [[Float]] = []
        var covered: [Rectangle] = []
        for c in 0..<chunks {
            guard let r = partial.get(c) else { continue }
            let part = try r.get()
            covered += part.covered
            parts.append(part.sum)
        }
        return (parts, covered)
    }

    /// The weight map, how many frames' valid rectangles cover each pixel, and `sum` (plus
    /// `second`, added as the accumulation order had it) turned into the mean, row by row on
    /// `bands` threads: each row counts the rectangles over it from their edges.
    static func divideByCoverage(_ sum: inout [Float], second: [Float]?, covered: [Rectangle],
                                 width w: Int, height h: Int, bands: Int) -> [Float] {
        let edges = covered.filter { $0.x1 > $0.x0 && $0.y1 > $0.y0 }
        var weight = [Float](repeating: 0, count: w * h)
        sum.withUnsafeMutableBufferPointer { s in
        weight.withUnsafeMutableBufferPointer { wt in
            let (sBox, wtBox) = (UncheckedSendable(s), UncheckedSendable(wt))
            let bands = Swift.max(1, Swift.min(h, bands))
            DispatchQueue.concurrentPerform(iterations: bands) { band in
                var steps = [Int32](repeating: 0, count: w + 1)
                for y in stride(from: band, to: h, by: bands) {
                    for x in 0...w { steps[x] = 0 }
                    for r in edges where r.y0 <= y && y < r.y1 { steps[r.x0] += 1; steps[r.x1] -= 1 }
                    var run: Int32 = 0
                    let row = y * w
                    for x in 0..<w {
                        run += steps[x]
                        wtBox.value[row + x] = Float(run)
                    }
                    if let second {
                        second.withUnsafeBufferPointer { t in
                            for x in row..<(row + w) { sBox.value[x] += t[x] }
                        }
                    }
                    for x in row..<(row + w) { let n = wtBox.value[x]; sBox.value[x] = n > 0 ? sBox.value[x] / n : 0 }
                }
            }
        }}
        return weight
    }
}

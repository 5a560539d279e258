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
        typealias Rectangle = (x0: Int, x1: Int, y0: Int, y1: Int)
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
        var sum: [Float] = []
        var covered: [Rectangle] = []
        for c in 0..<chunks {
            guard let r = partial.get(c) else { continue }
            let part = try r.get()
            covered += part.covered
            if sum.isEmpty { sum = part.sum; continue }
            sum.withUnsafeMutableBufferPointer { s in
                part.sum.withUnsafeBufferPointer { ps in for p in 0..<(w * h) { s[p] += ps[p] } }
            }
        }
        if sum.isEmpty { sum = [Float](repeating: 0, count: w * h) }
        // The weight map: how many frames' valid rectangles cover each pixel, from the
        // rectangles' corners (a 2-D difference array and its prefix sums).
        var corners = [Int32](repeating: 0, count: (w + 1) * (h + 1))
        for r in covered where r.x1 > r.x0 && r.y1 > r.y0 {
            corners[r.y0 * (w + 1) + r.x0] += 1; corners[r.y0 * (w + 1) + r.x1] -= 1
            corners[r.y1 * (w + 1) + r.x0] -= 1; corners[r.y1 * (w + 1) + r.x1] += 1
        }
        var weight = [Float](repeating: 0, count: w * h)
        var columnRun = [Int32](repeating: 0, count: w)
        for y in 0..<h {
            var run: Int32 = 0
            for x in 0..<w {
                columnRun[x] += corners[y * (w + 1) + x]
                run += columnRun[x]
                weight[y * w + x] = Float(run)
            }
        }
        let count = covered.count
        sum.withUnsafeMutableBufferPointer { s in
            weight.withUnsafeBufferPointer { wt in
                for p in 0..<(w * h) { s[p] = wt[p] > 0 ? s[p] / wt[p] : 0 }
            }
        }
        return AlignedAverage(image: Image(width: w, height: h, pixels: sum),
                              weight: Image(width: w, height: h, pixels: weight), frameCount: count)
    }
}

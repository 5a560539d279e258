import Dispatch
import FrameCore

/// Average of rigidly aligned frames on the reference frame, with a weight map.
///
/// Each used frame is moved by `(−dx, −dy)` (`Resampling.shifted`) and added only where
/// its interpolation is valid; the sum is divided per pixel by the number of frames that
/// cover it (the weight map), so the border strips that only some frames reach are not
/// darkened by missing data. Frames are streamed: memory is two accumulators per thread
/// plus one decoded frame per thread, whatever the number of frames. The move is
/// resampled straight into the accumulators over its valid rectangle
/// (`Resampling.accumulateShifted`: the same values, no moved image or mask per frame).
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
        let partial = ResultSlots<(sum: [Float], weight: [Float], count: Int)>(count: chunks)
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            var sum = [Float](repeating: 0, count: w * h)
            var weight = [Float](repeating: 0, count: w * h)
            var row = [Float](repeating: 0, count: w + 8)
            var count = 0
            do {
                for k in stride(from: c, to: used.count, by: chunks) {
                    let (index, shift) = used[k]
                    let image = try frames.image(at: index)
                    guard image.width == w, image.height == h else { continue }
                    sum.withUnsafeMutableBufferPointer { s in
                        weight.withUnsafeMutableBufferPointer { wt in
                            row.withUnsafeMutableBufferPointer { r in
                                _ = Resampling.accumulateShifted(image, by: -shift.dx, -shift.dy, interpolation: interpolation,
                                                                 sum: s, weight: wt, row: r)
                            }
                        }
                    }
                    count += 1
                }
                partial.set(c, .success((sum, weight, count)))
            } catch {
                partial.set(c, .failure(error))
            }
        }
        var sum = [Float](repeating: 0, count: w * h)
        var weight = [Float](repeating: 0, count: w * h)
        var count = 0
        for c in 0..<chunks {
            guard let r = partial.get(c) else { continue }
            let part = try r.get()
            sum.withUnsafeMutableBufferPointer { s in
                weight.withUnsafeMutableBufferPointer { wt in
                    part.sum.withUnsafeBufferPointer { ps in
                        part.weight.withUnsafeBufferPointer { pw in
                            for p in 0..<(w * h) { s[p] += ps[p]; wt[p] += pw[p] }
                        }
                    }
                }
            }
            count += part.count
        }
        sum.withUnsafeMutableBufferPointer { s in
            weight.withUnsafeBufferPointer { wt in
                for p in 0..<(w * h) { s[p] = wt[p] > 0 ? s[p] / wt[p] : 0 }
            }
        }
        return AlignedAverage(image: Image(width: w, height: h, pixels: sum),
                              weight: Image(width: w, height: h, pixels: weight), frameCount: count)
    }
}

import Foundation
import FrameCore
import FrameIO
import Registration

/// `stacks/step_<k>.hspy`: each hold's used frames aligned on the run's reference, as the
/// averages and the measurements see them (the same shifts and, in non-rigid mode, the same
/// fields, bicubic), so the alignment can be reused in HyperSpy, Fiji or Python. Frames are
/// decoded, aligned and written one batch at a time: memory holds `jobs` frames.
extension RunOutputs {
    func writeStacks(_ frames: RunFrames, ok: [Int], results: [FrameResult], shifts: [FrameShift],
                     fields: [Int: ScanDistortionField], jobs: Int, cancel: Cancellation) throws {
        let position = Dictionary(uniqueKeysWithValues: ok.enumerated().map { ($1, $0) })
        for (k, step) in table.steps.enumerated() {
            try cancel.throwIfCancelled()
            let members = step.frameIndices.filter { results[$0].status.isOK && position[$0] != nil }
            guard !members.isEmpty else { continue }
            try AtomicFile.write(to: url("stacks/step_\(k).hspy")) { tmp in
                let writer = try HyperSpyWriter(url: tmp, title: "aligned frames, " + RunReport.stepTitle(k, temperatureC: step.temperatureC),
                                                frames: members.count, width: table.frameWidth, height: table.frameHeight,
                                                axes: stackAxes(members))
                var b0 = 0
                while b0 < members.count {
                    try cancel.throwIfCancelled()
                    let batch = Array(members[b0..<min(members.count, b0 + max(1, jobs))])
                    let aligned = try ResultSlots<Image>.map(batch.count) { j in
                        let p = position[batch[j]]!, s = shifts[p]
                        let raw = try frames.image(at: p)
                        var (image, valid) = fields[p].map { NonrigidRegistration.apply($0, shift: (s.dx, s.dy), to: raw, interpolation: .bicubic) }
                            ?? Resampling.shifted(raw, by: -s.dx, -s.dy, interpolation: .bicubic)
                        for i in image.pixels.indices where !valid.bits[i] { image.pixels[i] = .nan }
                        return image
                    }
                    for image in aligned { try writer.append(image) }
                    b0 += batch.count
                }
                let records = members.map { table.records[$0] }
                writer.metadataArray("HeatFront", "frame_index", members.map(Double.init))
                writer.metadataArray("HeatFront", "time_s", records.map(\.timeS))
                writer.metadataArray("HeatFront", "temperature_C", records.map { $0.temperatureC ?? .nan })
                writer.metadataNumber("HeatFront", "step_index", Double(k))
                writer.metadataNumber("HeatFront", "step_temperature_C", step.temperatureC ?? .nan)
                writer.metadataString("HeatFront", "alignment", "shifted onto the run's reference frame, bicubic; NaN where the frame has no pixel")
                try writer.finish()
            }
        }
    }

    /// Navigation axis: time in s when the frames are evenly spaced (within 1 %), else the
    /// frame's number in the stack (times are in `metadata.HeatFront.time_s` either way);
    /// y and x in nm, or px without a pixel size.
    private func stackAxes(_ members: [Int]) -> [HyperSpyWriter.Axis] {
        let times = members.map { table.records[$0].timeS }
        let steps = zip(times.dropFirst(), times).map { $0 - $1 }.sorted()
        let median = steps.isEmpty ? 1 : steps[steps.count / 2]
        let even = median > 0 && steps.allSatisfy { abs($0 - median) <= 0.01 * median }
        let nav = even ? HyperSpyWriter.Axis(name: "time", units: "s", scale: median, offset: times[0], navigate: true)
                       : HyperSpyWriter.Axis(name: "frame", units: nil, scale: 1, navigate: true)
        let nm = table.pixelSizeNm
        return [nav,
                .init(name: "y", units: nm == nil ? "px" : "nm", scale: nm ?? 1, navigate: false),
                .init(name: "x", units: nm == nil ? "px" : "nm", scale: nm ?? 1, navigate: false)]
    }
}

import Foundation

/// The set-point history of a heating run: ramps at a fixed rate between holds.
///
/// Times are programme seconds (0 = start of the programme, at room temperature). The
/// simulated holder follows the programme exactly; the heating log adds read-out noise.
public struct TemperatureProgramme: Sendable {
    public struct Segment: Sendable, Equatable {
        public var startS: Double, endS: Double
        public var startC: Double, endC: Double
        /// Index of the hold, nil for a ramp or the room-temperature lead-in.
        public var hold: Int?
    }

    public let segments: [Segment]

    public init(startC: Double, preHeatS: Double, rampRateCPerS: Double, holds: [HoldSpec]) {
        var segs: [Segment] = []
        var t = 0.0, temp = startC
        if preHeatS > 0 {
            segs.append(Segment(startS: 0, endS: preHeatS, startC: startC, endC: startC, hold: nil))
            t = preHeatS
        }
        for (k, h) in holds.enumerated() {
            if abs(h.temperatureC - temp) > 1e-9 {
                let d = abs(h.temperatureC - temp) / rampRateCPerS
                segs.append(Segment(startS: t, endS: t + d, startC: temp, endC: h.temperatureC, hold: nil))
                t += d
            }
            segs.append(Segment(startS: t, endS: t + h.durationS, startC: h.temperatureC, endC: h.temperatureC, hold: k))
            t += h.durationS
            temp = h.temperatureC
        }
        segments = segs
    }

    public var durationS: Double { segments.last?.endS ?? 0 }

    /// Set-point at programme time `t` (clamped to the programme).
    public func temperature(at t: Double) -> Double {
        guard let first = segments.first else { return 25 }
        if t <= first.startS { return first.startC }
        for s in segments where t <= s.endS {
            let d = s.endS - s.startS
            return d > 0 ? s.startC + (s.endC - s.startC) * (t - s.startS) / d : s.endC
        }
        return segments.last!.endC
    }

    public func holdSegment(_ k: Int) -> Segment? { segments.first { $0.hold == k } }

    /// The ramp leading into hold `k`, if the temperature changes there.
    public func rampInto(_ k: Int) -> Segment? {
        guard let i = segments.firstIndex(where: { $0.hold == k }), i > 0, segments[i - 1].hold == nil,
              segments[i - 1].startC != segments[i - 1].endC else { return nil }
        return segments[i - 1]
    }
}

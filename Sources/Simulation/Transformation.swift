import Foundation

/// The layered → rock-salt transformation: a front that leaves the boundary and moves into
/// the grain along the layers, plus an optional uniform rise of cation mixing.
///
/// Front kinetics follow an Arrhenius law, v = v0·exp(−Ea / kB·T) above an onset
/// temperature and 0 below (Sun et al., Cell Rep. Phys. Sci. 2021: oxygen-vacancy migration
/// with Ea ≈ 1.5 eV). The front position F(t) = ∫ v(T(s)) ds is integrated once over the
/// temperature programme. Across the front the rock-salt fraction follows a tanh profile,
/// s(δ) = ½·(1 − tanh((δ − F)/w)), δ = distance from the boundary along the propagation
/// direction, whose 10–90 % width is W = 2·atanh(0.8)·w. Rock salt here is the fully
/// cation-mixed state: half of the TM sits on former Li sites, so the two sites look alike.
public struct FrontKinetics: Sendable {
    public static let boltzmannEVPerK = 8.617333262e-5
    public static let widthFactor = 2 * atanh(0.8)   // 10–90 % width of ½(1 − tanh(x/w)) in units of w

    public let activationEnergyEV: Double
    public let v0NmPerS: Double
    public let onsetC: Double
    /// 10–90 % width; nil when the run has no front.
    public internal(set) var widthNm: Double?
    public let uniformMixingOnsetC: Double?
    public let uniformMixingPerC: Double

    /// F(t) sampled every `gridS` from programme time 0.
    private let gridS: Double
    private let positions: [Double]
    /// Programme time at which the temperature first reaches the onset (front born at δ = 0).
    public let startS: Double?

    init(options o: SimulationOptions, programme: TemperatureProgramme) {
        activationEnergyEV = o.activationEnergyEV
        let tRef = o.referenceTemperatureC + 273.15
        v0NmPerS = o.referenceVelocityNmPerS * exp(o.activationEnergyEV / (FrontKinetics.boltzmannEVPerK * tRef))
        onsetC = o.frontOnsetTemperatureC
        widthNm = o.frontWidthNm
        uniformMixingOnsetC = o.uniformMixingOnsetC
        uniformMixingPerC = o.uniformMixingPerC
        gridS = 0.01
        var pos: [Double] = [0]
        var start: Double?
        if o.frontWidthNm != nil {
            let n = Int((programme.durationS + 2) / gridS) + 1
            pos.reserveCapacity(n)
            var f = 0.0
            var vPrev = 0.0
            for j in 1..<n {
                let t = Double(j) * gridS
                let temp = programme.temperature(at: t)
                let v = FrontKinetics.velocity(temp, ea: activationEnergyEV, v0: v0NmPerS, onset: onsetC)
                if start == nil, temp >= onsetC { start = t }
                f += 0.5 * (v + vPrev) * gridS      // trapezoid: exact on holds
                vPrev = v
                pos.append(f)
            }
        }
        positions = pos
        startS = start
    }

    static func velocity(_ tempC: Double, ea: Double, v0: Double, onset: Double) -> Double {
        tempC < onset ? 0 : v0 * exp(-ea / (boltzmannEVPerK * (tempC + 273.15)))
    }

    /// Front velocity at a constant temperature (nm/s).
    public func velocity(atC tempC: Double) -> Double {
        widthNm == nil ? 0 : FrontKinetics.velocity(tempC, ea: activationEnergyEV, v0: v0NmPerS, onset: onsetC)
    }

    /// Distance of the front midpoint from the boundary at programme time `t`; nil before
    /// the front exists (no front in the run, or the onset not yet reached).
    public func position(at t: Double) -> Double? {
        guard widthNm != nil, let s = startS, t >= s else { return nil }
        let x = t / gridS
        let j = min(Int(x), positions.count - 2)
        let w = x - Double(j)
        return positions[j] * (1 - w) + positions[j + 1] * w
    }

    /// Rock-salt fraction at boundary distance `delta` for front position `front`.
    public func rockSaltFraction(delta: Double, front: Double?) -> Double {
        guard let f = front, let wNm = widthNm else { return 0 }
        let w = wNm / FrontKinetics.widthFactor
        return 0.5 * (1 - tanh((delta - f) / w))
    }

    /// Fraction of Li sites holding TM from the uniform (front-less) process at `tempC`.
    public func uniformMixing(atC tempC: Double) -> Double {
        guard let on = uniformMixingOnsetC, tempC > on else { return 0 }
        return min(0.5, (tempC - on) * uniformMixingPerC)
    }

    /// Cation mixing x (TM fraction on Li sites = Li fraction on TM sites): the uniform
    /// level, raised to ½ behind the front.
    public static func mixing(uniform: Double, rockSalt s: Double) -> Double {
        uniform + (0.5 - uniform) * s
    }
}

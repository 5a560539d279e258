import Foundation

/// The specimen a simulated run images: the grain under study (a `LayeredLattice` that
/// transforms behind the front), what lies beyond its boundary (another grain, amorphous
/// material or vacuum), a smooth thickness field and a diffuse background.
///
/// Intensities are in units of a TM column peak at unit thickness. Column heights scale as
/// Z^1.7 × occupancy (Co 271, Ni 290, Mn 237, O 34, Li 6.5); the whole crystal is multiplied
/// by the thickness field t(r) = 1 + A·Σ cos(k·r + φ) (mass-thickness contrast).
struct Specimen: Sendable {
    let lattice: LayeredLattice
    let profile: ColumnProfile
    /// Column weights relative to the TM weight.
    let tmWeight = 1.0
    let liWeight: Double
    let oWeight: Double
    /// A point on the boundary and the unit propagation direction (into the grain).
    let boundaryPointNm: SIMD2<Double>
    let propagation: SIMD2<Double>
    let neighbour: NeighbourRegion
    let neighbourLattice: LayeredLattice?
    let amorphous: AmorphousColumns?
    let thickness: ThicknessField
    let backgroundLevel: Double
    var contamination = ContaminationBlobs(blobs: [])

    /// The transformation state of the grain at one moment.
    struct State {
        var front: Double?
        var uniformMixing: Double
    }

    /// Signed distance from the boundary along the propagation direction (≥ 0 in the grain).
    func boundaryDistance(_ r: SIMD2<Double>) -> Double { ((r - boundaryPointNm) * propagation).sum() }

    /// Amplitude of a grain site of `species` at `pos` (0 outside the grain).
    func siteAmplitude(_ species: ColumnSpecies, at pos: SIMD2<Double>, state: State, kinetics: FrontKinetics) -> Double {
        let delta = boundaryDistance(pos)
        guard delta >= 0 else { return 0 }
        let t = thickness.value(pos)
        switch species {
        case .oxygen: return oWeight * t
        case .transitionMetal, .lithiumSite:
            let s = kinetics.rockSaltFraction(delta: delta, front: state.front)
            let x = FrontKinetics.mixing(uniform: state.uniformMixing, rockSalt: s)
            let onTM = (1 - x) * tmWeight + x * liWeight
            let onLi = x * tmWeight + (1 - x) * liWeight
            return (species == .transitionMetal ? onTM : onLi) * t
        }
    }

    struct Tables {
        let grain: SiteAmplitudes
        let other: SiteAmplitudes?
    }

    /// Amplitude tables covering the specimen rectangle a frame samples.
    func tables(state: State, kinetics: FrontKinetics, xMin: Double, xMax: Double, yMin: Double, yMax: Double) -> Tables {
        let cut = profile.cutoffNm
        let (m, i) = lattice.indexRange(xMin: xMin, xMax: xMax, yMin: yMin, yMax: yMax, margin: cut)
        let grain = SiteAmplitudes(layers: m, columns: i) { m, i in
            siteAmplitude(lattice.species(layer: m), at: lattice.position(layer: m, column: i), state: state, kinetics: kinetics)
        }
        var other: SiteAmplitudes?
        if let nl = neighbourLattice {
            let (m2, i2) = nl.indexRange(xMin: xMin, xMax: xMax, yMin: yMin, yMax: yMax, margin: cut)
            other = SiteAmplitudes(layers: m2, columns: i2) { m, i in
                let pos = nl.position(layer: m, column: i)
                // Keep the other grain's columns clear of the boundary plane.
                guard boundaryDistance(pos) < -0.12 else { return 0 }
                let w: Double
                switch nl.species(layer: m) {
                case .oxygen: w = oWeight
                case .transitionMetal: w = tmWeight
                case .lithiumSite: w = liWeight
                }
                return w * thickness.value(pos)
            }
        }
        return Tables(grain: grain, other: other)
    }

    /// Model intensity at specimen point `r`.
    func intensity(at r: SIMD2<Double>, tables: Tables) -> Double {
        let delta = boundaryDistance(r)
        let cut = profile.cutoffNm
        var sum = 0.0
        if delta > -cut { sum += tables.grain.intensity(at: r, lattice: lattice, profile: profile) }
        if delta < cut {
            if let other = tables.other, let nl = neighbourLattice {
                sum += other.intensity(at: r, lattice: nl, profile: profile)
            } else if let am = amorphous {
                sum += am.intensity(at: r, profile: profile)
            }
        }
        // Diffuse background: present over material, absent over vacuum (smooth 0.1 nm edge).
        let region: Double
        if case .vacuum = neighbour { region = 0.5 * (1 + tanh(delta / 0.1)) } else { region = 1 }
        return sum + backgroundLevel * region * thickness.value(r) + contamination.intensity(at: r)
    }
}

/// Diffuse contamination on the specimen (hydrocarbon deposits): Gaussian blobs of extra
/// intensity, attached to the specimen (they drift with it), over crystal and amorphous
/// material alike. Non-periodic content at low spatial frequencies.
struct ContaminationBlobs: Sendable {
    /// x, y (nm), σ (nm), peak height (TM column peaks).
    let blobs: [SIMD4<Double>]

    init(blobs: [SIMD4<Double>]) { self.blobs = blobs }

    /// `count` blobs centred uniformly in the rectangle, σ and height uniform in their ranges.
    init(count: Int, xMin: Double, xMax: Double, yMin: Double, yMax: Double,
         sigmaNm: ClosedRange<Double>, height: ClosedRange<Double>, rng: inout SeededRandom) {
        blobs = (0..<count).map { _ in
            let x = xMin + (xMax - xMin) * rng.uniform(), y = yMin + (yMax - yMin) * rng.uniform()
            let s = sigmaNm.lowerBound + (sigmaNm.upperBound - sigmaNm.lowerBound) * rng.uniform()
            let a = height.lowerBound + (height.upperBound - height.lowerBound) * rng.uniform()
            return SIMD4(x, y, s, a)
        }
    }

    func intensity(at r: SIMD2<Double>) -> Double {
        var sum = 0.0
        for b in blobs {
            let dx = r.x - b.x, dy = r.y - b.y, q = (dx * dx + dy * dy) / (b.z * b.z)
            if q < 32 { sum += b.w * exp(-0.5 * q) }
        }
        return sum
    }
}

/// Smooth relative thickness: 1 + amplitude·(mean of three long-wavelength cosines).
struct ThicknessField: Sendable {
    let amplitude: Double
    let k: [SIMD2<Double>]
    let phase: [Double]

    init(amplitude: Double, rng: inout SeededRandom) {
        self.amplitude = amplitude
        var ks: [SIMD2<Double>] = [], ph: [Double] = []
        for wavelength in [9.0, 15.0, 27.0] {
            let a = 2 * Double.pi * rng.uniform()
            ks.append(SIMD2(cos(a), sin(a)) * (2 * .pi / wavelength))
            ph.append(2 * .pi * rng.uniform())
        }
        k = ks; phase = ph
    }

    func value(_ r: SIMD2<Double>) -> Double {
        guard amplitude != 0 else { return 1 }
        var s = 0.0
        for j in 0..<k.count { s += cos((k[j] * r).sum() + phase[j]) }
        return 1 + amplitude * s / Double(k.count)
    }
}

/// Amorphous material: projected columns at random (Poisson) positions with random weights,
/// binned into cells of the profile's cutoff so a pixel looks at 3×3 cells.
struct AmorphousColumns: Sendable {
    let x0: Double, y0: Double, cell: Double
    let nx: Int, ny: Int
    let cellStart: [Int]
    let atoms: [SIMD3<Double>]   // x, y, weight

    init(xMin: Double, xMax: Double, yMin: Double, yMax: Double, cell: Double, densityPerNm2: Double,
         include: (SIMD2<Double>) -> Bool, thickness: ThicknessField, rng: inout SeededRandom) {
        x0 = xMin; y0 = yMin; self.cell = cell
        nx = max(1, Int(ceil((xMax - xMin) / cell))); ny = max(1, Int(ceil((yMax - yMin) / cell)))
        var buckets = [[SIMD3<Double>]](repeating: [], count: nx * ny)
        let n = Int(densityPerNm2 * (xMax - xMin) * (yMax - yMin))
        for _ in 0..<n {
            let p = SIMD2(xMin + rng.uniform() * (xMax - xMin), yMin + rng.uniform() * (yMax - yMin))
            let w = 0.04 + 0.22 * rng.uniform()
            guard include(p) else { continue }
            let cx = min(nx - 1, Int((p.x - xMin) / cell)), cy = min(ny - 1, Int((p.y - yMin) / cell))
            buckets[cy * nx + cx].append(SIMD3(p.x, p.y, w * thickness.value(p)))
        }
        var start = [0], flat: [SIMD3<Double>] = []
        for b in buckets { flat.append(contentsOf: b); start.append(flat.count) }
        cellStart = start; atoms = flat
    }

    func intensity(at r: SIMD2<Double>, profile: ColumnProfile) -> Double {
        let cx = Int(floor((r.x - x0) / cell)), cy = Int(floor((r.y - y0) / cell))
        let cut2 = profile.cutoffNm * profile.cutoffNm
        var sum = 0.0
        for y in (cy - 1)...(cy + 1) where y >= 0 && y < ny {
            for x in (cx - 1)...(cx + 1) where x >= 0 && x < nx {
                let c = y * nx + x
                for k in cellStart[c]..<cellStart[c + 1] {
                    let a = atoms[k]
                    let dx = r.x - a.x, dy = r.y - a.y
                    let r2 = dx * dx + dy * dy
                    if r2 < cut2 { sum += a.z * profile.value(r2: r2) }
                }
            }
        }
        return sum
    }
}

import Foundation
import Testing
import FrameCore
import Simulation

/// The rendered frames against the simulator's own analytic model.
@Suite struct SimulatorPhysicsTests {
    @Test func tmColumnsSitOnTheModelLattice() throws {
        var o = physicsOptions()
        o.boundaryOffsetNm = 6          // the whole field of view is the grain under study
        o.thicknessVariation = 0
        let sim = HeatingRunSimulator(o)
        let img = modelIntensity(sim.renderNoiseless(frame: 0, distortions: false), sim)
        let sites = sim.truth.tmLattice.tmPositions(width: img.width, height: img.height, margin: 6)
        #expect(sites.count > 150)
        var sq = 0.0, worst = 0.0
        var found: [SIMD2<Double>] = []
        for s in sites {
            let p = try #require(gaussianPeak(img, near: s))
            let d = ((p - s) * (p - s)).sum().squareRoot()
            sq += d * d; worst = max(worst, d)
            found.append(p)
        }
        let rms = (sq / Double(sites.count)).squareRoot()
        #expect(rms < 0.05)
        #expect(worst < 0.1)
        // Spacings: in-plane 0.244 nm and (003) 0.468 nm, from the measured columns.
        let a = SIMD2(sim.truth.tmLattice.alongBasisPx[0], sim.truth.tmLattice.alongBasisPx[1])
        let along = (a * a).sum().squareRoot() * o.pixelSizeNm
        #expect(abs(along - 0.244) < 1e-6)
        // Distance between TM planes = projection of the across basis on the layer normal.
        let th = o.layerAngleDeg * Double.pi / 180
        let normal = SIMD2(sin(th), cos(th))
        let b = SIMD2(sim.truth.tmLattice.acrossBasisPx[0], sim.truth.tmLattice.acrossBasisPx[1])
        #expect(abs((b * normal).sum() * o.pixelSizeNm - 0.468) < 1e-6)
        // Measured plane spacing: project found columns on the normal, mean gap of clusters.
        let proj = found.map { ($0 * normal).sum() * o.pixelSizeNm }.sorted()
        var planes: [[Double]] = [[proj[0]]]
        for v in proj.dropFirst() { if v - planes[planes.count - 1].last! > 0.1 { planes.append([v]) } else { planes[planes.count - 1].append(v) } }
        let centres = planes.map { $0.reduce(0, +) / Double($0.count) }
        let spacing = (centres.last! - centres.first!) / Double(centres.count - 1)
        #expect(abs(spacing - 0.468) < 0.002)
    }

    @Test func liTmRatioOfTheRenderMatchesTruth() throws {
        var o = physicsOptions(size: 256, pixel: 0.03)
        o.tailFraction = 0
        o.backgroundLevel = 0
        o.driftNmPerS = 0; o.driftRandomWalkNmPerRootS = 0   // sites of frame 0 = sites of every frame
        let sim = HeatingRunSimulator(o)
        // An early frame (front near the boundary) and the last one (front far in).
        for i in [0, sim.frameCount - 1] {
            let img = modelIntensity(sim.renderNoiseless(frame: i, distortions: false), sim)
            let lat = sim.truth.tmLattice
            func meanAt(_ sites: [SIMD2<Double>]) -> Double {
                let inGrain = sites.filter { boundaryDistanceNm($0, sim.truth) >= 0 }
                return inGrain.map { Double(img.bilinear($0.x, $0.y)!) }.reduce(0, +) / Double(inGrain.count)
            }
            let measured = meanAt(lat.liPositions(width: img.width, height: img.height, margin: 1))
                / meanAt(lat.tmPositions(width: img.width, height: img.height, margin: 1))
            let truth = sim.frameTruth(i).liTmRatio
            #expect(abs(measured - truth) < 0.01)
        }
    }

    @Test func frontPositionAndWidthFromTheRender() throws {
        var o = physicsOptions(size: 256, pixel: 0.025)
        o.boundaryOffsetNm = 2.5
        o.tailFraction = 0
        o.backgroundLevel = 0
        o.driftNmPerS = 0; o.driftRandomWalkNmPerRootS = 0   // sites of frame 0 = sites of every frame
        o.frontWidthNm = 2.5
        let sim = HeatingRunSimulator(o)
        // The frame whose front is nearest 3 nm from the boundary (0.5 nm past the centre).
        let i = (0..<sim.frameCount).min { abs((sim.frameTruth($0).frontPositionNm ?? -9) - 3) < abs((sim.frameTruth($1).frontPositionNm ?? -9) - 3) }!
        let front = try #require(sim.frameTruth(i).frontPositionNm)
        let img = modelIntensity(sim.renderNoiseless(frame: i, distortions: false), sim)
        let lat = sim.truth.tmLattice
        let wLi = o.liColumnWeight / o.tmColumnWeight
        let off = SIMD2(lat.liOffsetPx[0], lat.liOffsetPx[1])
        // Per cell: Li/TM ratio → cation mixing x → rock-salt fraction s = 2x → atanh(1 − 2s) = (δ − F)/w.
        var xs: [Double] = [], zs: [Double] = []
        for tm in lat.tmPositions(width: img.width, height: img.height, margin: 2) {
            let li = tm + off
            guard li.x > 2, li.y > 2, li.x < Double(img.width - 3), li.y < Double(img.height - 3) else { continue }
            let dTM = boundaryDistanceNm(tm, sim.truth), dLi = boundaryDistanceNm(li, sim.truth)
            guard dTM > 0.3, dLi > 0.3 else { continue }
            let r = Double(img.bilinear(li.x, li.y)!) / Double(img.bilinear(tm.x, tm.y)!)
            let x = (r - wLi) / ((1 + r) * (1 - wLi))
            let s = 2 * x
            guard s > 0.08, s < 0.92 else { continue }
            xs.append(0.5 * (dTM + dLi)); zs.append(atanh(1 - 2 * s))
        }
        #expect(xs.count > 40)
        let n = Double(xs.count)
        let mx = xs.reduce(0, +) / n, mz = zs.reduce(0, +) / n
        var sxz = 0.0, sxx = 0.0
        for (x, z) in zip(xs, zs) { sxz += (x - mx) * (z - mz); sxx += (x - mx) * (x - mx) }
        let slope = sxz / sxx
        let w = 1 / slope
        let f = mx - mz * w
        let width = 2 * atanh(0.8) * w
        #expect(abs(f - front) < 0.1)
        #expect(abs(width - 2.5) < 0.15)
    }

    @Test func driftShiftIsMeasuredByCrossCorrelation() throws {
        // Two grains of different orientation fill the view, so a lattice-period alias of
        // the shift cannot correlate as well as the true shift.
        var o = physicsOptions(.boundaryFront, size: 160, pixel: 0.05)
        o.boundaryOffsetNm = 0.5
        o.driftRandomWalkNmPerRootS = 0
        o.driftThermalGainPer100C = 0
        o.driftNmPerS = 0.0034
        o.driftAngleDeg = 250
        let sim = HeatingRunSimulator(o)
        let k = 3
        let t = sim.frameTruth(k)
        // Steady drift only: the truth is speed × time between mid-acquisitions.
        let dt = sim.frameStartS(k) - sim.frameStartS(0)
        let expected = SIMD2(cos(250 * Double.pi / 180), sin(250 * Double.pi / 180)) * (0.0034 * dt / 0.05)
        #expect(abs(t.shiftXPx - expected.x) < 0.02 && abs(t.shiftYPx - expected.y) < 0.02)
        let measured = crossCorrelationShift(sim.renderNoiseless(frame: 0, distortions: false),
                                             sim.renderNoiseless(frame: k, distortions: false))
        #expect(abs(measured.x - t.shiftXPx) < 0.1)
        #expect(abs(measured.y - t.shiftYPx) < 0.1)
        #expect((t.shiftXPx * t.shiftXPx + t.shiftYPx * t.shiftYPx).squareRoot() > 3)
    }

    /// A slow scan under fast steady drift: content that drifted Δ rows is scanned Δ line
    /// times later, so frames are displaced by more than the specimen's mean drift between
    /// them. The truth shift is the translation that aligns the frames, raster share included.
    @Test func truthShiftIncludesTheDriftDuringTheScan() throws {
        var o = physicsOptions(.boundaryFront, size: 160, pixel: 0.05)
        o.boundaryOffsetNm = 0.5
        o.driftRandomWalkNmPerRootS = 0
        o.driftThermalGainPer100C = 0
        o.jitterPx = 0; o.humAmplitudePx = 0; o.flybackAmplitudePx = 0
        o.dwellTimeS = 1e-3                      // a 26 s frame
        o.driftNmPerS = 0.0117                   // ≈ 6 px per frame
        o.driftAngleDeg = 70
        let sim = HeatingRunSimulator(o)
        let k = 1   // ≈ 10 px apart: no lattice alias for the plain cross-correlation
        let t = sim.frameTruth(k)
        let dt = sim.frameStartS(k) - sim.frameStartS(0)
        let meanDrift = SIMD2(cos(70 * Double.pi / 180), sin(70 * Double.pi / 180)) * (0.0117 * dt / 0.05)
        let measured = crossCorrelationShift(sim.renderNoiseless(frame: 0, distortions: true),
                                             sim.renderNoiseless(frame: k, distortions: true))
        let raster = SIMD2(t.shiftXPx, t.shiftYPx) - meanDrift
        #expect((raster * raster).sum().squareRoot() > 0.3)
        #expect(abs(measured.x - t.shiftXPx) < 0.1 && abs(measured.y - t.shiftYPx) < 0.1)
    }

    @Test func scanDistortionsMoveLinesAlongTheFastAxisOnly() throws {
        var o = physicsOptions(.scanDistortion, size: 128, pixel: 0.025)
        o.driftNmPerS = 0; o.driftRandomWalkNmPerRootS = 0
        o.humAmplitudePx = 0; o.flybackAmplitudePx = 0
        o.jitterPx = 0.5
        let sim = HeatingRunSimulator(o)
        let clean = sim.renderNoiseless(frame: 0, distortions: false)
        let jittered = sim.renderNoiseless(frame: 0, distortions: true)
        // Each line of the jittered frame is the clean line shifted sideways: find the
        // best sub-pixel shift per line and check the spread matches the jitter σ.
        var shifts: [Double] = []
        for y in 10..<118 {
            var best = (err: Double.infinity, s: 0.0)
            for k in -300...300 {
                let s = Double(k) / 100
                var e = 0.0
                for x in 10..<118 { let v = Double(clean.bilinear(Double(x) + s, Double(y))!) - Double(jittered[x, y]); e += v * v }
                if e < best.err { best = (e, s) }
            }
            shifts.append(best.s)
        }
        let m = shifts.reduce(0, +) / Double(shifts.count)
        let sd = (shifts.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(shifts.count - 1)).squareRoot()
        #expect(abs(sd - 0.5) < 0.1)
    }
}

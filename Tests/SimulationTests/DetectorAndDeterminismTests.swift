import Foundation
import Testing
import FrameCore
import Simulation

@Suite struct DetectorAndDeterminismTests {
    /// Mean and variance of counts on a flat exposure: offset + gain·λ and gain²·λ + σ_read² (+1/12 rounding).
    @Test(arguments: [0.8, 3.0, 40.0])
    func flatFieldCountStatistics(lambda: Double) {
        let det = DetectorModel(electronsPerUnitIntensity: lambda, gainADUPerElectron: 12, offsetADU: 200, readNoiseADU: 4)
        var rng = SeededRandom(seed: 99)
        let img = det.record(Image(width: 256, height: 256, fill: 1), rng: &rng)
        let n = Double(img.count)
        let mean = img.mean
        let variance = img.pixels.map { (Double($0) - mean) * (Double($0) - mean) }.reduce(0, +) / (n - 1)
        let expMean = 200 + 12 * lambda, expVar = 144 * lambda + 16 + 1.0 / 12
        #expect(abs(mean - expMean) < 4 * (expVar / n).squareRoot())
        #expect(abs(variance / expVar - 1) < 0.03)
    }

    /// Poisson sampler: mean and variance equal λ on both branches (Knuth, PTRS).
    @Test func poissonSampler() {
        for lambda in [0.3, 5.0, 11.9, 12.1, 150.0] {
            var rng = SeededRandom(seed: 7)
            let n = 200_000
            var s = 0.0, s2 = 0.0
            for _ in 0..<n { let k = Double(rng.poisson(lambda)); s += k; s2 += k * k }
            let m = s / Double(n), v = s2 / Double(n) - m * m
            #expect(abs(m - lambda) < 5 * (lambda / Double(n)).squareRoot(), "λ \(lambda): mean \(m)")
            #expect(abs(v / lambda - 1) < 0.02, "λ \(lambda): variance \(v)")
        }
    }

    /// Vacuum beyond a free surface records offset + read noise only.
    @Test func vacuumRegionOfARenderedFrame() {
        var o = SimulationOptions(preset: .gradualOnset, size: 160)
        o.framesPerStep = 2
        o.boundaryOffsetNm = 1
        let sim = HeatingRunSimulator(o)
        let img = sim.render(frame: 0)
        var v: [Double] = []
        for y in 0..<img.height { for x in 0..<img.width where boundaryDistanceNm(SIMD2(Double(x), Double(y)), sim.truth) < -0.8 {
            v.append(Double(img[x, y]))
        } }
        #expect(v.count > 2000)
        let m = v.reduce(0, +) / Double(v.count)
        let variance = v.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(v.count - 1)
        #expect(abs(m - 200) < 0.3)
        #expect(abs(variance / 16.083 - 1) < 0.1)
    }

    /// Mean counts at the TM columns follow the dose: dose × pixel area × detector fraction.
    @Test func doseSetsTheCountsAtColumns() {
        var o = physicsOptions(size: 128, pixel: 0.025)
        o.thicknessVariation = 0; o.boundaryOffsetNm = 6
        o.driftNmPerS = 0; o.driftRandomWalkNmPerRootS = 0
        let sim = HeatingRunSimulator(o)
        let electrons = o.dose * 0.0625 * o.detectorFraction
        #expect(abs(sim.detector.electronsPerUnitIntensity - electrons) < 1e-9)
        let img = sim.render(frame: 0)
        let clean = sim.renderNoiseless(frame: 0, distortions: false)
        // Per-pixel residuals normalised by the expected Poisson + read noise: unit variance.
        var z2 = 0.0
        for k in 0..<img.count {
            let e = Double(clean.pixels[k])
            let varExp = 12 * (e - 200) + 16 + 1.0 / 12
            z2 += (Double(img.pixels[k]) - e) * (Double(img.pixels[k]) - e) / varExp
        }
        // The noisy frame also carries jitter/flyback, so allow a little extra.
        let chi = z2 / Double(img.count)
        #expect(chi > 0.95 && chi < 1.3)
    }

    /// `doseScale` multiplies the electrons per unit intensity and is recorded in the truth
    /// only when set, so default runs keep their bytes.
    @Test func doseScaleScalesTheDoseAndIsRecorded() throws {
        var o = SimulationOptions(preset: .registrationStress, size: 96)
        o.framesPerStep = 2
        let plain = HeatingRunSimulator(o)
        o.doseScale = 20
        let scaled = HeatingRunSimulator(o)
        let ratio = scaled.detector.electronsPerUnitIntensity / plain.detector.electronsPerUnitIntensity
        #expect(abs(ratio - 20) < 1e-9)
        #expect(scaled.truth.doseScale == 20 && plain.truth.doseScale == nil)
        #expect(try plain.groundTruthJSON().contains("dose_scale") == false)
        let decoded = try JSONDecoder().decode(RunTruth.self, from: Data(scaled.groundTruthJSON().utf8))
        #expect(decoded.doseScale == 20)
        o.doseScale = 0
        #expect(throws: (any Error).self) { try o.validate() }
    }

    @Test func sameSeedSameFramesDifferentSeedDifferentFrames() throws {
        var o = SimulationOptions(preset: .registrationStress, size: 96)
        o.framesPerStep = 3
        let a = HeatingRunSimulator(o), b = HeatingRunSimulator(o)
        #expect(a.render(frame: 2) == b.render(frame: 2))
        #expect(a.renderNoiseless(frame: 1, distortions: true) == b.renderNoiseless(frame: 1, distortions: true))
        #expect(a.groundTruthCSV() == b.groundTruthCSV())
        #expect(try a.groundTruthJSON() == b.groundTruthJSON())
        #expect(a.heatingLogCSV() == b.heatingLogCSV())
        // Frames are independent of the order they are rendered in.
        let late = a.render(frame: 4)
        _ = b.render(frame: 0)
        #expect(b.render(frame: 4) == late)
        o.seed = 2
        let c = HeatingRunSimulator(o)
        #expect(c.render(frame: 2) != a.render(frame: 2))
        #expect(c.groundTruthCSV() != a.groundTruthCSV())
    }
}

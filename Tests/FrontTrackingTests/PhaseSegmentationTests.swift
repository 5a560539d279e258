import Foundation
import Testing
import FrameCore
import FrontTracking

@Suite("Phase segmentation")
struct PhaseSegmentationTests {
    @Test("rock-salt fraction within 0.03 of the truth over front positions, widths, mixing models, noise",
          arguments: [(2.0, 2.0), (4.0, 3.0), (6.0, 4.0)])
    func fraction(frontNm: Double, widthNm: Double) throws {
        for mixing in [SyntheticGrain.Mixing.swap, .fill] {
            for dose: Double? in [nil, 0.1] {
                var grain = SyntheticGrain()
                grain.frontNm = frontNm; grain.widthNm = widthNm; grain.mixing = mixing; grain.dose = dose
                let op = OrderParameter.map(grain.render(), gLayer: grain.gLayer, windowPx: grain.layerSpacingPx, region: nil)
                let phase = PhaseSegmentation.segment(op)
                let measured = try #require(phase.rocksaltFraction)
                let truth = grain.trueRocksaltFraction
                #expect(abs(measured - truth) < 0.03,
                        "front \(frontNm) nm W \(widthNm) nm \(mixing) dose \(String(describing: dose)): \(measured) vs \(truth)")
                #expect(phase.labels.count == grain.size * grain.size)
            }
        }
    }

    @Test("a noisy frame segmented with its average's β: the same cut for the same β, the fraction within 0.03")
    func knownHalfSpacingContrast() throws {
        var grain = SyntheticGrain()
        grain.frontNm = 4; grain.widthNm = 3
        let average = PhaseSegmentation.segment(OrderParameter.map(grain.render(), gLayer: grain.gLayer,
                                                                   windowPx: grain.layerSpacingPx, region: nil))
        grain.dose = 0.1
        let frame = OrderParameter.map(grain.render(), gLayer: grain.gLayer, windowPx: grain.layerSpacingPx, region: nil)
        let own = PhaseSegmentation.segment(frame)
        let sameBeta = PhaseSegmentation.segment(frame, halfSpacingContrast: own.halfSpacingContrast)
        #expect(sameBeta.threshold == own.threshold && sameBeta.labels == own.labels)
        let given = PhaseSegmentation.segment(frame, halfSpacingContrast: average.halfSpacingContrast)
        #expect(given.halfSpacingContrast == average.halfSpacingContrast)
        let fraction = try #require(given.rocksaltFraction)
        #expect(abs(fraction - grain.trueRocksaltFraction) < 0.03, "\(fraction) vs \(grain.trueRocksaltFraction)")
    }

    @Test("one phase only: all layered, or all rock salt by the absolute rule")
    func singlePhase() throws {
        var layered = SyntheticGrain(); layered.frontNm = nil; layered.dose = 0.1
        let opL = OrderParameter.map(layered.render(), gLayer: layered.gLayer, windowPx: layered.layerSpacingPx, region: nil)
        let phaseL = PhaseSegmentation.segment(opL)
        #expect(try #require(phaseL.rocksaltFraction) == 0)
        #expect(!phaseL.labels.contains(PhaseMap.rocksalt))

        var rocksalt = SyntheticGrain(); rocksalt.frontNm = 1000; rocksalt.dose = 0.1
        let opR = OrderParameter.map(rocksalt.render(), gLayer: rocksalt.gLayer, windowPx: rocksalt.layerSpacingPx, region: nil)
        let phaseR = PhaseSegmentation.segment(opR)
        #expect(try #require(phaseR.rocksaltFraction) == 1)
    }

    @Test("no crystal: nil fraction")
    func noCrystal() {
        let noise = Image(width: 64, height: 64) { x, y in Float((x * 7919 + y * 104_729) % 97) }
        let op = OrderParameter.map(noise, gLayer: SIMD2(0.1, 0.05), windowPx: 8, region: Mask(width: 64, height: 64, fill: false))
        let phase = PhaseSegmentation.segment(op)
        #expect(phase.rocksaltFraction == nil)
        #expect(phase.labels.allSatisfy { $0 == PhaseMap.notCrystal })
    }
}

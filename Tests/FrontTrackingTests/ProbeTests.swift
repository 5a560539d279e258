import Foundation
import Testing
import FrameCore
import FrontTracking

// Temporary exploration: prints what the stage measures on synthetic grains.
@Suite struct ProbeTests {
    @Test func probe() {
        for mixing in [SyntheticGrain.Mixing.swap, .fill] {
            for (f, wdt) in [(3.0, 2.0), (5.0, 4.0)] {
                for dose: Double? in [nil, 0.2] {
                    var g = SyntheticGrain()
                    g.frontNm = f; g.widthNm = wdt; g.mixing = mixing; g.dose = dose
                    let img = g.render()
                    let t0 = Date()
                    let op = OrderParameter.map(img, gLayer: g.gLayer, windowPx: g.layerSpacingPx, region: nil)
                    let t1 = Date()
                    let ph = PhaseSegmentation.segment(op)
                    let fm = FrontLocator.locate(op, phase: ph, boundary: g.boundary)
                    let fa = FrontLocator.locate(op, phase: ph, boundary: nil)
                    print("mix \(mixing) front \(f) W \(wdt) dose \(String(describing: dose)) map \(t1.timeIntervalSince(t0))s",
                          "frac \(ph.rocksaltFraction ?? -1) truth \(g.trueRocksaltFraction) thr \(ph.threshold) K \(ph.layeredRatio ?? -1) rs \(ph.rocksaltRatio ?? -1) beta \(ph.halfSpacingContrast)",
                          "pos \((fm.positionPx ?? -1) * g.pixelNm) width \((fm.widthPx ?? -1) * g.pixelNm)",
                          "auto pos \((fa.positionPx ?? -1) * g.pixelNm) width \((fa.widthPx ?? -1) * g.pixelNm) boundary \(fa.boundary) dir \(fa.direction)",
                          "crystal \(op.crystal.setCount)")
                }
            }
        }
    }
}

import Foundation
import Testing
import FrameCore
import FrontTracking

@Suite struct Probe2Tests {
    @Test func probe2() {
        var g = SyntheticGrain()
        g.frontNm = 6; g.widthNm = 2; g.mixing = .fill; g.thicknessRamp = 1
        let img = g.render()
        let op = OrderParameter.map(img, gLayer: g.gLayer, windowPx: g.layerSpacingPx, region: nil)
        let ph = PhaseSegmentation.segment(op)
        print("beta", ph.halfSpacingContrast, "K", ph.layeredRatio ?? -1, "r", ph.rocksaltRatio ?? -1)
        var sums = [Double](repeating: 0, count: 300), sg = sums, n = sums
        for y in 0..<g.size { for x in 0..<g.size where op.crystal[x, y] {
            let s = g.distanceAlongLayers(Double(x), Double(y))
            guard s >= 0 else { continue }
            let b = Int(s / 10)
            sums[b] += Double(op.amplitudeHalf[x, y]); sg[b] += Double(op.amplitudeLayer[x, y]); n[b] += 1
        } }
        for b in 0..<30 where n[b] > 0 { print(b * 10, sums[b] / n[b], sg[b] / n[b], g.progress(Double(b * 10 + 5))) }
    }
}

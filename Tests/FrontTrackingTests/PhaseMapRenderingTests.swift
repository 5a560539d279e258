import Foundation
import Testing
import FrameCore
import FrontTracking

@Suite("Phase map rendering")
struct PhaseMapRenderingTests {
    @Test("grey stretch, phase tints, boundary and front lines at the right pixels")
    func colours() {
        let w = 40, h = 30
        let average = Image(width: w, height: h) { x, _ in Float(x) }
        var labels = [UInt8](repeating: PhaseMap.notCrystal, count: w * h)
        for y in 0..<h { for x in 10..<w { labels[y * w + x] = x < 25 ? PhaseMap.rocksalt : PhaseMap.layered } }
        let phase = PhaseMap(width: w, height: h, labels: labels, threshold: 0.5, rocksaltFraction: 0.5)
        let front = FrontMeasurement(boundary: LineSegment(x0: 10, y0: 0, x1: 10, y1: 29), direction: SIMD2(1, 0),
                                     positionPx: 15, widthPx: 4, rocksaltFraction: 0.5)
        let rgba = PhaseMapRendering.rgba(average: average, phase: phase, front: front)
        #expect(rgba.count == w * h * 4)
        func px(_ x: Int, _ y: Int) -> [UInt8] { Array(rgba[(4 * (y * w + x))..<(4 * (y * w + x) + 4)]) }
        // Not crystal: plain grey, dark on the left.
        #expect(px(0, 5) == [0, 0, 0, 255])
        #expect(px(5, 5)[0] == px(5, 5)[1] && px(5, 5)[1] == px(5, 5)[2])
        // Rock salt is tinted orange (red > blue), layered blue (blue > red).
        let rs = px(18, 5), lay = px(32, 5)
        #expect(rs[0] > rs[2] + 40)
        #expect(lay[2] > lay[0] + 40)
        // Boundary (cyan) at x = 10, front (yellow) at x = 25.
        #expect(px(10, 15) == [0, 230, 230, 255])
        #expect(px(25, 15) == [255, 235, 0, 255])
        // Without a front only the tints.
        let plain = PhaseMapRendering.rgba(average: average, phase: phase, front: nil)
        #expect(Array(plain[(4 * (15 * w + 25))..<(4 * (15 * w + 25) + 4)]) != [255, 235, 0, 255])
        // A phase map of another size is ignored, not a crash.
        let other = PhaseMap(width: 3, height: 3, labels: [UInt8](repeating: 1, count: 9), threshold: 0.5, rocksaltFraction: 0)
        #expect(PhaseMapRendering.rgba(average: average, phase: other, front: nil).count == w * h * 4)
    }
}

import Testing
import FrameCore
import Foundation

@Suite("Linear least squares over one design")
struct LinearDesignTests {
    /// A plane c₀ + c₁x + c₂y with a small deterministic wobble: 200 rows.
    static func plane() -> (design: [Double], y: [Double], weights: [Double]) {
        var design = [Double](), y = [Double](), weights = [Double]()
        for i in 0..<200 {
            let x = Double(i % 20) / 20 - 0.5, z = Double(i / 20) / 10 - 0.5
            design += [1, x, z]
            y.append(1.5 + 2 * x - 3 * z + 1e-3 * sin(Double(i)))
            weights.append(1 + Double(i % 7))
        }
        return (design, y, weights)
    }

    @Test("recovers the plane and gives linear's numbers bit for bit, weighted or not")
    func matchesLinear() throws {
        let (design, y, weights) = Self.plane()
        for w in [nil, weights] as [[Double]?] {
            let reused = try #require(LeastSquares.LinearDesign(design: design, p: 3, weights: w))
            let c = try #require(reused.solve(y))
            #expect(abs(c[0] - 1.5) < 1e-3 && abs(c[1] - 2) < 1e-2 && abs(c[2] + 3) < 1e-2)
            #expect(c == LeastSquares.linear(design: design, p: 3, y: y, weights: w))
            // A second right-hand side through the same normal matrix.
            let y2 = y.map { 2 * $0 - 1 }
            #expect(reused.solve(y2) == LeastSquares.linear(design: design, p: 3, y: y2, weights: w))
        }
    }

    @Test("refuses too few rows and mismatched right-hand sides")
    func refusesBadShapes() {
        #expect(LeastSquares.LinearDesign(design: [1, 0, 0, 1, 1, 1], p: 3) == nil)
        #expect(LeastSquares.LinearDesign(design: [1, 2, 3, 4, 5], p: 3) == nil)
        let (design, y, _) = Self.plane()
        #expect(LeastSquares.LinearDesign(design: design, p: 3)?.solve(Array(y.dropLast())) == nil)
        #expect(LeastSquares.linear(design: design, p: 3, y: Array(y.dropLast())) == nil)
    }
}

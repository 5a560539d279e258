import Foundation
import Testing
import FrameCore
import FrontTracking

/// Medians of a map's values over the pixels a predicate picks.
func median(_ image: Image, where keep: (Int, Int) -> Bool) -> Double {
    var v = [Double]()
    for y in 0..<image.height { for x in 0..<image.width where keep(x, y) { v.append(Double(image[x, y])) } }
    v.sort()
    return v.isEmpty ? .nan : v[v.count / 2]
}

@Suite("Order parameter (lock-in amplitudes)")
struct OrderParameterTests {
    @Test("high in layered, low in rock salt, for both mixing models, with and without noise")
    func phasesSeparate() throws {
        for mixing in [SyntheticGrain.Mixing.swap, .fill] {
            for dose: Double? in [nil, 0.2] {
                var grain = SyntheticGrain()
                grain.frontNm = 5; grain.widthNm = 2; grain.mixing = mixing; grain.dose = dose
                let op = OrderParameter.map(grain.render(), gLayer: grain.gLayer, windowPx: grain.layerSpacingPx, region: nil)
                let front = try #require(grain.frontPx)
                // Away from the front (> 1.5 W incl. window) and from the crystal edge (> 2σ).
                let layered = median(op.layered) { x, y in
                    grain.distanceAlongLayers(Double(x), Double(y)) > front + 1.5 * grain.widthPx }
                let rocksalt = median(op.layered) { x, y in
                    let s = grain.distanceAlongLayers(Double(x), Double(y))
                    return s > 2 * grain.layerSpacingPx && s < front - 1.5 * grain.widthPx }
                // Layered: (F(g)/F(2g))·(271 − 6.5)/(271 + 6.5) ≥ 0.95; rock salt: ≈ 0.
                #expect(layered > 0.95, "\(mixing) dose \(String(describing: dose)): layered q = \(layered)")
                #expect(rocksalt < 0.15, "\(mixing) dose \(String(describing: dose)): rock-salt q = \(rocksalt)")
            }
        }
    }

    @Test("ratio cancels a 2× thickness ramp that the raw amplitude shows")
    func thicknessCancels() {
        var grain = SyntheticGrain()
        grain.frontNm = nil; grain.thicknessRamp = 2
        let op = OrderParameter.map(grain.render(), gLayer: grain.gLayer, windowPx: grain.layerSpacingPx, region: nil)
        // Thin (left) and thick (right) parts of the crystal, clear of its edges.
        let thin: (Int, Int) -> Bool = { x, y in
            grain.distanceAlongLayers(Double(x), Double(y)) > 25 && x < 110 && y > 25 && y < 230 }
        let thick: (Int, Int) -> Bool = { x, y in x > 200 && x < 230 && y > 25 && y < 230 }
        let ampRatio = median(op.amplitudeLayer, where: thick) / median(op.amplitudeLayer, where: thin)
        let qRatio = median(op.layered, where: thick) / median(op.layered, where: thin)
        #expect(ampRatio > 1.3, "the raw amplitude follows thickness: \(ampRatio)")
        #expect(abs(qRatio - 1) < 0.02, "the order parameter does not: \(qRatio)")
    }

    @Test("crystal mask matches the grain, against vacuum and amorphous material")
    func crystalMask() {
        for beyond in [SyntheticGrain.Beyond.vacuum, .amorphous] {
            var grain = SyntheticGrain()
            grain.frontNm = 3; grain.widthNm = 2; grain.beyond = beyond; grain.dose = 0.2
            let op = OrderParameter.map(grain.render(), gLayer: grain.gLayer, windowPx: grain.layerSpacingPx, region: nil)
            var wrong = 0, wrongFar = 0
            for y in 0..<grain.size { for x in 0..<grain.size {
                let s = grain.distanceAlongLayers(Double(x), Double(y))
                if op.crystal[x, y] != (s >= 0) {
                    wrong += 1
                    if abs(s) > 6 { wrongFar += 1 }
                }
            } }
            let fraction = Double(wrong) / Double(grain.size * grain.size)
            #expect(fraction < 0.02, "\(beyond): \(wrong) pixels misclassified")
            #expect(wrongFar < 100, "\(beyond): \(wrongFar) pixels misclassified > 6 px from the edge")
        }
    }

    @Test("region mask limits the analysis")
    func regionMask() {
        var grain = SyntheticGrain()
        grain.frontNm = nil
        var region = Mask(width: grain.size, height: grain.size, fill: false)
        for y in 0..<grain.size { for x in 150..<grain.size { region[x, y] = true } }
        let op = OrderParameter.map(grain.render(), gLayer: grain.gLayer, windowPx: grain.layerSpacingPx, region: region)
        var outside = 0, inside = 0
        for y in 0..<grain.size { for x in 0..<grain.size where op.crystal[x, y] { if x < 150 { outside += 1 } else { inside += 1 } } }
        #expect(outside == 0)
        #expect(Double(inside) > 0.97 * Double(106 * grain.size))
        // Normalised convolution: the ratio stays right up to the region's edge.
        let nearEdge = median(op.layered) { x, y in x >= 150 && x < 155 && y > 20 && y < 236 }
        let interior = median(op.layered) { x, y in x > 190 && x < 230 && y > 20 && y < 236 }
        #expect(abs(nearEdge / interior - 1) < 0.05, "edge \(nearEdge) vs interior \(interior)")
    }

    @Test("a region known to be crystal is the map's crystal, with the same ratio as when detected")
    func regionKnownToBeCrystal() throws {
        let grain = SyntheticGrain()
        let image = grain.render()
        let detected = OrderParameter.map(image, gLayer: grain.gLayer, windowPx: grain.layerSpacingPx, region: nil)
        // A region that is not what detection would find: a band of the crystal only.
        var region = detected.crystal
        for y in 0..<grain.size { for x in 0..<grain.size where x < 60 || x > 200 { region[x, y] = false } }
        let lockIn = try #require(OrderParameter.RegionLockIn(gLayer: grain.gLayer, windowPx: grain.layerSpacingPx,
                                                               region: region))
        let known = OrderParameter.map(image, on: lockIn)
        let banded = OrderParameter.map(image, gLayer: grain.gLayer, windowPx: grain.layerSpacingPx, region: region)
        #expect(known.crystal.bits == region.bits)
        // The same amplitudes (real-to-complex transforms against complex ones, in single
        // precision: within 10⁻³, 1.0·10⁻⁴ measured):
        // on the pixels detection keeps too, the same ratio.
        var compared = 0, worst = 0.0
        for i in region.bits.indices where banded.crystal.bits[i] {
            worst = max(worst, Double(abs(known.layered.pixels[i] - banded.layered.pixels[i]) / banded.layered.pixels[i]))
            compared += 1
        }
        #expect(compared > region.setCount / 2)
        #expect(worst < 1e-3, "largest relative difference \(worst)")
        // A frame with pixels it does not cover (NaN) is mapped on the rest of the region.
        var holed = image
        for y in 100..<120 { for x in 100..<120 { holed[x, y] = .nan } }
        let partial = OrderParameter.map(holed, on: lockIn)
        #expect(!partial.crystal[110, 110] && partial.crystal[90, 110] == known.crystal[90, 110])
        #expect(partial.layered.pixels.allSatisfy { $0.isFinite })
    }

    @Test("over the average's half-spacing amplitude: the frame's level, less noise, a brighter frame the same")
    func halfSpacingNormalised() throws {
        var grain = SyntheticGrain()
        grain.frontNm = nil; grain.dose = 0.2
        let average = { () -> Image in
            var clean = grain; clean.dose = nil
            return clean.render()
        }()
        let region = OrderParameter.map(average, gLayer: grain.gLayer, windowPx: grain.layerSpacingPx, region: nil).crystal
        let lockIn = try #require(OrderParameter.RegionLockIn(gLayer: grain.gLayer, windowPx: grain.layerSpacingPx,
                                                               region: region))
        let reference = OrderParameter.map(average, on: lockIn).amplitudeHalf
        let frame = OrderParameter.map(grain.render(), on: lockIn)
        let phase = PhaseSegmentation.segment(frame)
        let (fixed, levels) = frame.normalised(byHalfSpacing: reference, phase: phase)
        // Pixels 2σ inside the crystal, away from its edge.
        let inner = { (x: Int, y: Int) -> Bool in
            let s = grain.distanceAlongLayers(Double(x), Double(y))
            return region[x, y] && s > 2 * grain.layerSpacingPx && x > 20 && x < grain.size - 20 && y > 20 && y < grain.size - 20
        }
        func spread(_ image: Image) -> (median: Double, iqr: Double) {
            var v = [Double]()
            for y in 0..<image.height { for x in 0..<image.width where inner(x, y) { v.append(Double(image[x, y])) } }
            v.sort()
            return (v[v.count / 2], v[3 * v.count / 4] - v[v.count / 4])
        }
        let own = spread(frame.layered), normalised = spread(fixed.layered)
        // The same level within 5 % (0.03 % measured); the ratio's spread over the layered
        // crystal without the frame's own A(2g) noise smaller (0.78× measured).
        #expect(abs(normalised.median / own.median - 1) < 0.05, "levels \(normalised.median) vs \(own.median)")
        #expect(normalised.iqr < 0.85 * own.iqr, "interquartile ranges \(normalised.iqr) vs \(own.iqr)")
        #expect(abs(try #require(levels.layeredRatio) - normalised.median) < 0.05 * normalised.median)
        // A frame recorded 1.5× brighter gives the same profile: the frame's own level c scales with it.
        let brighter = OrderParameter.map(Image(width: grain.size, height: grain.size,
                                                pixels: grain.render().pixels.map { 1.5 * $0 }), on: lockIn)
        let scaled = brighter.normalised(byHalfSpacing: reference, phase: phase).map
        let worst = zip(scaled.layered.pixels, fixed.layered.pixels).map { abs(Double($0 - $1)) }.max() ?? .nan
        #expect(worst < 1e-3)
        // A reference of another size leaves the map as it was; pixels without one are not crystal.
        #expect(frame.normalised(byHalfSpacing: Image(width: 3, height: 3), phase: phase).map.layered.pixels
                == frame.layered.pixels)
        var holed = reference
        for x in 100..<110 { holed[x, 100] = 0 }
        let (partial, partialPhase) = frame.normalised(byHalfSpacing: holed, phase: phase)
        #expect(!partial.crystal[105, 100] && partialPhase[105, 100] == PhaseMap.notCrystal)
        // Nothing to scale by: no crystal left to profile.
        let blank = frame.normalised(byHalfSpacing: Image(width: grain.size, height: grain.size), phase: phase)
        #expect(blank.map.crystal.setCount == 0 && blank.phase.layeredRatio == nil)
    }

    @Test("bad input gives an empty map, not a crash")
    func badInput() {
        let image = Image(width: 64, height: 64) { x, y in Float(sin(Double(x + y))) }
        let zeroG = OrderParameter.map(image, gLayer: .zero, windowPx: 5, region: nil)
        #expect(zeroG.crystal.setCount == 0)
        let aliased = OrderParameter.map(image, gLayer: SIMD2(0.3, 0), windowPx: 5, region: nil)
        #expect(aliased.crystal.setCount == 0)
        let nanWindow = OrderParameter.map(image, gLayer: SIMD2(0.1, 0), windowPx: .nan, region: nil)
        #expect(nanWindow.crystal.setCount == 0)
        let wrongRegion = OrderParameter.map(image, gLayer: SIMD2(0.1, 0), windowPx: 5,
                                             region: Mask(width: 10, height: 10, fill: true))
        #expect(wrongRegion.crystal.setCount == 0)
        let tiny = OrderParameter.map(Image(width: 3, height: 3), gLayer: SIMD2(0.1, 0), windowPx: 5, region: nil)
        #expect(tiny.layered.width == 3 && tiny.crystal.setCount == 0)
        // Non-finite pixels are left out, the rest is still measured.
        var holes = SyntheticGrain(); holes.frontNm = nil
        var img = holes.render()
        for x in 100..<110 { img[x, 100] = .nan; img[x, 101] = .infinity }
        let op = OrderParameter.map(img, gLayer: holes.gLayer, windowPx: holes.layerSpacingPx, region: nil)
        #expect(op.layered.pixels.allSatisfy { $0.isFinite })
        #expect(op.crystal.setCount > 40_000)
    }
}

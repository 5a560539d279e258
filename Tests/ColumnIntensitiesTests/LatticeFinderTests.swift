import TestSupport
import Testing
import FrameCore
import ColumnIntensities
import Foundation

@Suite("LatticeFinder")
struct LatticeFinderTests {
    @Test("layer spacing (< 0.5 %) and angle (< 0.3°) of a layered lattice at 27°")
    func recoversSpacingAndAngle() throws {
        let model = SyntheticLattice()
        let lattice = try LatticeFinder.find(in: model.render(), pixelSizeNm: model.pixelSizeNm)
        let spacingError = abs(lattice.layerSpacingPx / model.layerSpacingPx - 1)
        let angleError = angleDifference(lattice.layerAngleDegrees, model.angleDegrees)
        #expect(spacingError < 0.005)
        #expect(angleError < 0.3)
        let gc = try #require(lattice.gColumn)
        #expect(abs(1 / abs((gc * lattice.layerDirection).sum()) / model.columnSpacingPx - 1) < 0.01)
        #expect(abs(lattice.columnSpacingPx / model.columnSpacingPx - 1) < 0.01)
        // ABC stacking: planes offset by a third of a column spacing.
        let offset = try #require(lattice.stackingOffset)
        #expect(abs(abs(offset) - 1.0 / 3) < 0.02)
        // The origin is a TM column.
        let nearest = model.tmPositions.map { (($0 - lattice.origin) * ($0 - lattice.origin)).sum().squareRoot() }.min()!
        #expect(nearest < 0.5)
    }

    @Test("10 % expanded lattice at another angle is still found", arguments: [-38.0, 63.0])
    func expandedLattice(angle: Double) throws {
        var model = SyntheticLattice()
        model.layerSpacingNm *= 1.1
        model.columnSpacingNm *= 1.1
        model.angleDegrees = angle
        let lattice = try LatticeFinder.find(in: model.render(), pixelSizeNm: model.pixelSizeNm)
        let spacingError = abs(lattice.layerSpacingPx / model.layerSpacingPx - 1)
        let angleError = angleDifference(lattice.layerAngleDegrees, angle)
        #expect(spacingError < 0.005)
        #expect(angleError < 0.3)
    }

    @Test("without a pixel size the longest strong periodicity (the layers) is taken",
          arguments: [0.05, 0.8])
    func withoutPixelSize(r: Double) throws {
        var model = SyntheticLattice()
        model.liRatio = { _, _ in r }
        let lattice = try LatticeFinder.find(in: model.render().withPoissonNoise(dose: 1, seed: 3), pixelSizeNm: nil)
        #expect(abs(lattice.layerSpacingPx / model.layerSpacingPx - 1) < 0.005)
        #expect(angleDifference(lattice.layerAngleDegrees, model.angleDegrees) < 0.3)
    }

    @Test("a half-transformed noisy frame still gives the layered lattice")
    func partlyTransformed() throws {
        var model = SyntheticLattice()
        model.liRatio = { x, _ in x < 128 ? 0.03 : 1.0 }
        let image = model.render().withPoissonNoise(dose: 0.3, seed: 7)
        let lattice = try LatticeFinder.find(in: image, pixelSizeNm: model.pixelSizeNm)
        #expect(abs(lattice.layerSpacingPx / model.layerSpacingPx - 1) < 0.005)
        #expect(angleDifference(lattice.layerAngleDegrees, model.angleDegrees) < 0.3)
    }

    @Test("odd, non-square frames")
    func oddSizes() throws {
        var model = SyntheticLattice()
        model.width = 201; model.height = 157; model.origin = SIMD2(99.7, 77.2)
        model.liRatio = { _, _ in 0.2 }
        let image = model.render()
        let lattice = try LatticeFinder.find(in: image, pixelSizeNm: model.pixelSizeNm)
        #expect(abs(lattice.layerSpacingPx / model.layerSpacingPx - 1) < 0.005)
        #expect(angleDifference(lattice.layerAngleDegrees, model.angleDegrees) < 0.3)
        let sites = ColumnFinder.sites(in: image, lattice: lattice, region: nil)
        let ratio = SiteIntensity.measure(image, sites: sites, region: nil).aggregate.ratio
        #expect(abs(ratio - 0.2) < 0.02)
    }

    @Test("fully rock salt or pure noise: a typed error, not a made-up lattice")
    func noLayerReflection() throws {
        var model = SyntheticLattice()
        model.liRatio = { _, _ in 1.0 }
        #expect(throws: LatticeFinderError.self) {
            try LatticeFinder.find(in: model.render(), pixelSizeNm: model.pixelSizeNm)
        }
        var rng = SplitMix64(seed: 3)
        let noise = Image(width: 128, height: 128) { _, _ in Float(rng.poisson(20)) }
        #expect(throws: LatticeFinderError.self) { try LatticeFinder.find(in: noise, pixelSizeNm: 0.025) }
        #expect(throws: LatticeFinderError.self) { try LatticeFinder.find(in: Image(width: 16, height: 16), pixelSizeNm: 0.025) }
        #expect(throws: LatticeFinderError.self) { try LatticeFinder.find(in: model.render(), pixelSizeNm: -1) }
    }
}

import Testing
import FrameCore
import ColumnIntensities
import Foundation

/// Distance from each found site to the nearest true column of the same kind.
func matchErrors(_ sites: [ColumnSite], truth: [SIMD2<Double>]) -> [SIMD2<Double>] {
    sites.map { s in
        var best = SIMD2<Double>(.infinity, .infinity), bestD = Double.infinity
        for t in truth {
            let d = ((s.position - t) * (s.position - t)).sum()
            if d < bestD { bestD = d; best = s.position - t }
        }
        return best
    }
}

@Suite("ColumnFinder")
struct ColumnSiteTests {
    @Test("TM positions refined to < 0.05 px RMS on a noiseless image; Li sites midway")
    func noiselessPositions() throws {
        let model = SyntheticLattice()
        let image = model.render()
        let lattice = try LatticeFinder.find(in: image, pixelSizeNm: model.pixelSizeNm)
        let sites = ColumnFinder.sites(in: image, lattice: lattice, region: nil)
        let tm = sites.tm
        // Sites whose fit disc is inside the image.
        let interior = tm.filter { $0.x > 6 && $0.y > 6 && $0.x < 249 && $0.y < 249 }
        let errors = matchErrors(interior, truth: model.tmPositions)
        let rms = (errors.map { ($0 * $0).sum() }.reduce(0, +) / Double(errors.count)).squareRoot()
        #expect(interior.count > 250)
        #expect(rms < 0.05)
        #expect(abs((sites.columnSigmaPx ?? 0) - model.sigmaPx) < 0.05)
        // Every TM column of the image found once.
        #expect(abs(tm.count - model.tmPositions.count) <= 4)
        // Li sites on the true Li columns (ABC stacking), not on the midpoint candidates.
        let liTruth = model.columns(margin: 0).filter { $0.kind == .li }.map { $0.position }
        let liErrors = matchErrors(sites.li.filter { $0.x > 6 && $0.y > 6 && $0.x < 249 && $0.y < 249 }, truth: liTruth)
        let liRMS = (liErrors.map { ($0 * $0).sum() }.reduce(0, +) / Double(liErrors.count)).squareRoot()
        #expect(liRMS < 0.1)
        // Refined lattice spacing.
        #expect(abs(sites.lattice.layerSpacingPx / model.layerSpacingPx - 1) < 0.001)
    }

    @Test("a smoothly distorted lattice: refined TM and Li sites follow the distortion")
    func distortedLattice() throws {
        var model = SyntheticLattice()
        model.liRatio = { _, _ in 0.4 }
        // Line-to-line wobble of the fast-scan axis and a slow stretch, up to ±1.5 px.
        model.displacement = { p in SIMD2(1.5 * sin(2 * .pi * p.y / 180), 0.004 * (p.y - 128)) }
        let image = model.render()
        let lattice = try LatticeFinder.find(in: image, pixelSizeNm: model.pixelSizeNm)
        let sites = ColumnFinder.sites(in: image, lattice: lattice, region: nil)
        let inner = { (s: ColumnSite) in s.x > 8 && s.y > 8 && s.x < 247 && s.y < 247 }
        let tmErrors = matchErrors(sites.tm.filter(inner), truth: model.tmPositions)
        let liTruth = model.columns(margin: 0).filter { $0.kind == .li }.map { $0.position }
        let liErrors = matchErrors(sites.li.filter(inner), truth: liTruth)
        let rms = { (e: [SIMD2<Double>]) in (e.map { ($0 * $0).sum() }.reduce(0, +) / Double(e.count)).squareRoot() }
        let agg = SiteIntensity.measure(image, sites: sites, region: nil).aggregate
        #expect(rms(tmErrors) < 0.05)
        // Li sites are midpoints of TM columns: the field's curvature over a layer spacing
        // (≈ 0.1 px here, a strong distortion) is their floor.
        #expect(rms(liErrors) < 0.2)
        #expect(abs(agg.ratio - 0.4) < 0.02)
    }

    @Test("any layer orientation, including along the scan axes", arguments: [0.0, 89.8, 90.0, -60.0])
    func anyOrientation(angle: Double) throws {
        var model = SyntheticLattice()
        model.angleDegrees = angle
        model.liRatio = { _, _ in 0.3 }
        let image = model.render()
        let lattice = try LatticeFinder.find(in: image, pixelSizeNm: model.pixelSizeNm)
        let sites = ColumnFinder.sites(in: image, lattice: lattice, region: nil)
        let inner = { (s: ColumnSite) in s.x > 8 && s.y > 8 && s.x < 247 && s.y < 247 }
        let rms = { (e: [SIMD2<Double>]) in (e.map { ($0 * $0).sum() }.reduce(0, +) / Double(e.count)).squareRoot() }
        let tmRMS = rms(matchErrors(sites.tm.filter(inner), truth: model.tmPositions))
        let liTruth = model.columns(margin: 0).filter { $0.kind == .li }.map { $0.position }
        let liRMS = rms(matchErrors(sites.li.filter(inner), truth: liTruth))
        let ratio = SiteIntensity.measure(image, sites: sites, region: nil).aggregate.ratio
        #expect(angleDifference(lattice.layerAngleDegrees, angle) < 0.3)
        #expect(tmRMS < 0.05 && liRMS < 0.05)
        #expect(abs(ratio - 0.3) < 0.02)
    }

    @Test("refined TM positions unbiased under Poisson noise")
    func noisyPositionsUnbiased() throws {
        let model = SyntheticLattice()
        // ≈ 40 counts at a TM column peak, 4 in the background.
        let image = model.render().withPoissonNoise(dose: 0.4, seed: 11)
        let lattice = try LatticeFinder.find(in: image, pixelSizeNm: model.pixelSizeNm)
        let sites = ColumnFinder.sites(in: image, lattice: lattice, region: nil)
        let interior = sites.tm.filter { $0.x > 6 && $0.y > 6 && $0.x < 249 && $0.y < 249 }
        let errors = matchErrors(interior, truth: model.tmPositions)
        let mean = errors.reduce(SIMD2<Double>.zero, +) / Double(errors.count)
        let rms = (errors.map { ($0 * $0).sum() }.reduce(0, +) / Double(errors.count)).squareRoot()
        #expect(interior.count > 250)
        #expect(abs(mean.x) < 0.03 && abs(mean.y) < 0.03)
        #expect(rms < 0.5)
    }

    @Test("sites outside the given region are excluded")
    func regionExcludesSites() throws {
        let model = SyntheticLattice()
        let image = model.render()
        let lattice = try LatticeFinder.find(in: image, pixelSizeNm: model.pixelSizeNm)
        // A disc of radius 70 px around the centre.
        var region = Mask(width: 256, height: 256, fill: false)
        for y in 0..<256 { for x in 0..<256 where (x - 128) * (x - 128) + (y - 128) * (y - 128) <= 4900 { region[x, y] = true } }
        let sites = ColumnFinder.sites(in: image, lattice: lattice, region: region)
        #expect(sites.sites.allSatisfy { region.contains($0.x, $0.y) })
        // π·70² px² over the TM cell area a·d ≈ 168 TM columns, as many Li sites.
        let cell = model.columnSpacingPx * model.layerSpacingPx
        let expected = Double.pi * 4900 / cell
        #expect(abs(Double(sites.tm.count) - expected) < 0.1 * expected)
        #expect(abs(Double(sites.li.count) - expected) < 0.1 * expected)
    }

    @Test("crystal detected next to vacuum when no region is given")
    func detectsCrystal() throws {
        var model = SyntheticLattice()
        model.liRatio = { _, _ in 0.05 }
        var image = model.render()
        // Vacuum (flat, dark) right of x = 170.
        for y in 0..<256 { for x in 170..<256 { image[x, y] = 2 } }
        let lattice = try LatticeFinder.find(in: image, pixelSizeNm: model.pixelSizeNm)
        let region = CrystalRegion.detect(in: image, lattice: lattice)
        var inCrystal = 0, inVacuum = 0
        for y in 0..<256 { for x in 0..<150 where region[x, y] { inCrystal += 1 } }
        for y in 0..<256 { for x in 190..<256 where region[x, y] { inVacuum += 1 } }
        #expect(Double(inCrystal) > 0.95 * 150 * 256)
        #expect(Double(inVacuum) < 0.02 * 66 * 256)
        let sites = ColumnFinder.sites(in: image, lattice: lattice, region: nil)
        #expect(sites.sites.allSatisfy { $0.x < 185 })
    }

    @Test("lattice, refined sites and intensities of a large frame")
    func largeFrame() throws {
        var model = SyntheticLattice()
        #if DEBUG
        model.width = 256; model.height = 256
        #else
        model.width = 1024; model.height = 1024; model.origin = SIMD2(500.3, 511.8)
        #endif
        let image = model.render().withPoissonNoise(dose: 2, seed: 4)
        let lattice = try LatticeFinder.find(in: image, pixelSizeNm: model.pixelSizeNm)
        let sites = ColumnFinder.sites(in: image, lattice: lattice, region: nil)
        let (_, agg) = SiteIntensity.measure(image, sites: sites, region: nil)
        #expect(abs(agg.ratio - 0.05) < 0.02, "Li/TM \(agg.ratio)")
    }

    @Test("fully cation-mixed rock salt between layered crystal and vacuum stays in the crystal")
    func rockSaltIsCrystal() throws {
        var model = SyntheticLattice()
        model.liRatio = { x, _ in x < 110 ? 0.05 : 1.0 }
        var image = model.render()
        for y in 0..<256 { for x in 200..<256 { image[x, y] = Float(model.background) } }
        let lattice = try LatticeFinder.find(in: image, pixelSizeNm: model.pixelSizeNm)
        let region = CrystalRegion.detect(in: image, lattice: lattice)
        var missed = 0, vacuum = 0
        for y in 0..<256 {
            for x in 130..<185 where !region[x, y] { missed += 1 }
            for x in 215..<256 where region[x, y] { vacuum += 1 }
        }
        #expect(Double(missed) < 0.02 * 55 * 256)
        #expect(Double(vacuum) < 0.02 * 41 * 256)
        let sites = ColumnFinder.sites(in: image, lattice: lattice, region: nil)
        let rockSaltLi = sites.li.filter { $0.x > 130 && $0.x < 185 }.count
        let layeredLi = sites.li.filter { $0.x > 30 && $0.x < 85 }.count
        #expect(abs(rockSaltLi - layeredLi) < layeredLi / 10)
    }

    @Test("another grain beyond a boundary is not part of the analysed crystal")
    func otherGrainExcluded() throws {
        var grain = SyntheticLattice()
        grain.liRatio = { _, _ in 0.1 }
        var other = SyntheticLattice()
        other.angleDegrees = -41
        other.origin = SIMD2(200.2, 60.9)
        other.liRatio = { _, _ in 0.6 }
        let a = grain.render(), b = other.render()
        // Boundary: the line x = 160 + 0.3·(y − 128); the other grain to its right.
        let isOther = { (x: Int, y: Int) in Double(x) > 160 + 0.3 * (Double(y) - 128) }
        let image = Image(width: 256, height: 256) { x, y in isOther(x, y) ? b[x, y] : a[x, y] }
        let lattice = try LatticeFinder.find(in: image, pixelSizeNm: grain.pixelSizeNm)
        #expect(angleDifference(lattice.layerAngleDegrees, grain.angleDegrees) < 0.3)
        let region = CrystalRegion.detect(in: image, lattice: lattice)
        var wrong = 0, missed = 0, otherCount = 0, grainCount = 0
        for y in 0..<256 {
            for x in 0..<256 {
                // Away from the boundary by more than a demodulation window.
                let d = (Double(x) - 160 - 0.3 * (Double(y) - 128)) / (1 + 0.09).squareRoot()
                if d > 20 { otherCount += 1; if region[x, y] { wrong += 1 } }
                if d < -20 { grainCount += 1; if !region[x, y] { missed += 1 } }
            }
        }
        #expect(Double(wrong) < 0.02 * Double(otherCount))
        #expect(Double(missed) < 0.02 * Double(grainCount))
        let sites = ColumnFinder.sites(in: image, lattice: lattice, region: nil)
        #expect(sites.sites.allSatisfy { !isOther(Int($0.x.rounded()) - 8, Int($0.y.rounded())) })
        // Ratio of the grain under study, inside its region away from the boundary.
        var inner = Mask(width: 256, height: 256, fill: false)
        for y in 0..<256 { for x in 0..<256 where !isOther(x + 12, y) { inner[x, y] = true } }
        let agg = SiteIntensity.measure(image, sites: sites, region: inner).aggregate
        #expect(abs(agg.ratio - 0.1) < 0.02)
    }

    @Test("crash safety: NaN pixels, absurd lattices and lines give empty results, not crashes")
    func badInput() throws {
        let model = SyntheticLattice()
        var image = model.render()
        let lattice = try LatticeFinder.find(in: image, pixelSizeNm: model.pixelSizeNm)
        for x in 0..<256 { image[x, 100] = .nan }          // a dead scan line
        let sites = ColumnFinder.sites(in: image, lattice: lattice, region: nil)
        #expect(sites.tm.count > 300)
        let measured = SiteIntensity.measure(image, sites: sites, region: nil)
        #expect(measured.sites.sites.count == sites.sites.count)
        #expect(throws: LatticeFinderError.self) { try LatticeFinder.find(in: image, pixelSizeNm: model.pixelSizeNm) }

        var absurd = lattice
        absurd.layerSpacingPx = 0.01; absurd.gLayer = SIMD2(100, 0); absurd.layerNormal = SIMD2(1, 0)
        #expect(!absurd.isUsable)
        #expect(ColumnFinder.sites(in: image, lattice: absurd, region: nil).sites.isEmpty)
        var nanOrigin = lattice
        nanOrigin.origin = SIMD2(.nan, 3)
        #expect(ColumnFinder.sites(in: image, lattice: nanOrigin, region: nil).sites.isEmpty)
        let agg = SiteIntensity.measure(image, sites: ColumnSites(sites: sites.sites, lattice: nanOrigin), region: nil).aggregate
        #expect(agg.tmCount == 0)
        let huge = LineSegment(x0: 0, y0: 0, x1: 1e15, y1: 0)
        #expect(LineProfile.profile(image, line: huge, widthPx: 4, sites: sites, region: nil).points.isEmpty)
        let nanLine = LineSegment(x0: .nan, y0: 0, x1: 10, y1: 0)
        #expect(LineProfile.profile(image, line: nanLine, widthPx: 4, sites: sites, region: nil).points.isEmpty)
        #expect(LineProfile.profile(image, line: LineSegment(x0: 1, y0: 1, x1: 50, y1: 1), widthPx: .infinity,
                                    sites: sites, region: nil).points.isEmpty)
        let empty = Image(width: 0, height: 0)
        #expect(ColumnFinder.sites(in: empty, lattice: lattice, region: nil).sites.isEmpty)
        #expect(LineProfile.profile(empty, line: nil, widthPx: 4, sites: sites, region: nil).points.isEmpty)
    }
}

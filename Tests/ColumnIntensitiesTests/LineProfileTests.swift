import Testing
import FrameCore
import ColumnIntensities
import Foundation

@Suite("LineProfile")
struct LineProfileTests {
    @Test("automatic line is perpendicular to the layers; its TM marks fall on intensity maxima",
          arguments: [0.1, 0.7])
    func automaticProfile(r: Double) throws {
        var model = SyntheticLattice()
        model.liRatio = { _, _ in r }
        let image = model.render()
        let lattice = try LatticeFinder.find(in: image, pixelSizeNm: model.pixelSizeNm)
        let sites = ColumnFinder.sites(in: image, lattice: lattice, region: nil)
        let (line, points) = LineProfile.profile(image, line: nil, widthPx: 16, sites: sites, region: nil)
        let dir = SIMD2(line.x1 - line.x0, line.y1 - line.y0) / line.length
        // Perpendicular to the layers: parallel to the true normal.
        let cross = abs(dir.x * model.normal.y - dir.y * model.normal.x)
        #expect(cross < 0.005)
        #expect(line.length > 200)
        let tmMarks = points.indices.filter { points[$0].site == .tm }
        let liMarks = points.indices.filter { points[$0].site == .li }
        let planes = line.length / model.layerSpacingPx
        #expect(abs(Double(tmMarks.count) - planes) <= 1.5)
        #expect(abs(Double(liMarks.count) - planes) <= 1.5)
        // A mark is on a maximum when no sample within ±¼ layer spacing is brighter (± one sample).
        // Li planes are maxima too once they hold more than the O layers beside them (r = 0.7);
        // dark Li planes (r = 0.1) are flanked by O layers and are not tested.
        let half = Int(model.layerSpacingPx / 4 / LineProfile.stepPx)
        func offsetToMaximum(_ k: Int) -> Int {
            var best = k
            for j in (k - half)...(k + half) where points[j].intensity > points[best].intensity { best = j }
            return abs(best - k)
        }
        let interior = { (k: Int) in k >= half && k < points.count - half }
        let tmWorst = tmMarks.filter(interior).map(offsetToMaximum).max() ?? 99
        let liWorst = liMarks.filter(interior).map(offsetToMaximum).max() ?? 99
        #expect(tmWorst <= 1)
        if r > 0.5 { #expect(liWorst <= 1) }
        // The profile's TM planes are brighter than its Li planes by the occupancy contrast.
        let tmMean = tmMarks.map { points[$0].intensity }.reduce(0, +) / Double(tmMarks.count)
        let liMean = liMarks.map { points[$0].intensity }.reduce(0, +) / Double(liMarks.count)
        #expect(tmMean > liMean)
    }

    @Test("automatic line through the middle of a given crystal region, clipped to it")
    func automaticLineInRegion() throws {
        let model = SyntheticLattice()
        let image = model.render()
        let lattice = try LatticeFinder.find(in: image, pixelSizeNm: model.pixelSizeNm)
        // A disc of radius 60 px centred at (90, 150).
        var region = Mask(width: 256, height: 256, fill: false)
        for y in 0..<256 { for x in 0..<256 where (x - 90) * (x - 90) + (y - 150) * (y - 150) <= 3600 { region[x, y] = true } }
        let sites = ColumnFinder.sites(in: image, lattice: lattice, region: region)
        let (line, points) = LineProfile.profile(image, line: nil, widthPx: 10, sites: sites, region: region)
        let mid = SIMD2((line.x0 + line.x1) / 2, (line.y0 + line.y1) / 2)
        #expect(((mid - SIMD2(90, 150)) * (mid - SIMD2(90, 150))).sum().squareRoot() < 1.5)
        #expect(abs(line.length - 120) < 3)
        #expect(region.contains(line.x0, line.y0) && region.contains(line.x1, line.y1))
        #expect(points.allSatisfy { $0.intensity.isFinite })
    }

    @Test("marks follow a distorted lattice")
    func distortedProfile() throws {
        var model = SyntheticLattice()
        model.liRatio = { _, _ in 0.1 }
        // Layers bowed by up to ±2 px across the field.
        model.displacement = { p in 2 * sin(2 * .pi * p.x / 300) * SIMD2(0.454, 0.891) }
        let image = model.render()
        let lattice = try LatticeFinder.find(in: image, pixelSizeNm: model.pixelSizeNm)
        let sites = ColumnFinder.sites(in: image, lattice: lattice, region: nil)
        // A user line across the layers, off-centre, where the bow is largest.
        let line = LineSegment(x0: 60, y0: 20, x1: 150, y1: 200)
        let (_, points) = LineProfile.profile(image, line: line, widthPx: 12, sites: sites, region: nil)
        let half = Int(model.layerSpacingPx / 4 / LineProfile.stepPx)
        let tmMarks = points.indices.filter { points[$0].site == .tm && $0 >= half && $0 < points.count - half }
        var worst = 0
        for k in tmMarks {
            var best = k
            for j in (k - half)...(k + half) where points[j].intensity > points[best].intensity { best = j }
            worst = max(worst, abs(best - k))
        }
        #expect(tmMarks.count >= 8)
        #expect(worst <= 1)
    }

    @Test("a given line is kept and sampled every half pixel with the mean across its width")
    func givenLine() throws {
        // A horizontal ramp: intensity = x, so the profile along x is the ramp itself.
        let image = Image(width: 64, height: 64) { x, _ in Float(x) }
        let lattice = Lattice(layerNormal: SIMD2(1, 0), layerSpacingPx: 8, columnSpacingPx: 4,
                              gLayer: SIMD2(0.125, 0), gColumn: nil, origin: SIMD2(4, 30))
        let sites = ColumnSites(sites: [], lattice: lattice)
        let line = LineSegment(x0: 10, y0: 30, x1: 50, y1: 30)
        let (used, points) = LineProfile.profile(image, line: line, widthPx: 6, sites: sites, region: nil)
        #expect(used == line)
        #expect(points.count == 81)
        for p in points { #expect(abs(p.intensity - (10 + p.distancePx)) < 1e-4) }
        // TM planes at x = 4 + 8n → 12, 20, …, 44 (distances 2, 10, …, 34); Li at 16, 24, … (6, 14, …).
        let tm = points.filter { $0.site == .tm }.map { $0.distancePx }
        let li = points.filter { $0.site == .li }.map { $0.distancePx }
        #expect(tm == [2, 10, 18, 26, 34])
        #expect(li == [6, 14, 22, 30, 38])
    }
}

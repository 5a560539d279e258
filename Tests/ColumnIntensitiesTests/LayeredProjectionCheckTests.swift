import TestSupport
import Testing
import FrameCore
import FrameIO
import ColumnIntensities
import Foundation

/// A cubic perovskite (SrTiO3-like, a = 0.3905 nm) seen along [001]: bright A columns on a
/// square lattice, B–O columns at the cell centres, weak O columns on the edges.
struct PerovskiteProjection {
    var width = 256, height = 256
    var pixelSizeNm = 0.025
    var angleDegrees = 12.0
    var sigmaPx = 2.0

    func render() -> Image {
        let a = 0.3905 / pixelSizeNm, t = angleDegrees * .pi / 180
        let u = SIMD2(cos(t), sin(t)) * a, v = SIMD2(-sin(t), cos(t)) * a
        let motif: [(SIMD2<Double>, Double)] = [(.zero, 100), (SIMD2(0.5, 0.5), 60), (SIMD2(0.5, 0), 12), (SIMD2(0, 0.5), 12)]
        var pix = [Double](repeating: 8, count: width * height)
        let n = Int(Double(width + height) / a) + 2
        for i in -n...n { for j in -n...n { for (m, h) in motif {
            let p = SIMD2(Double(width) / 2, Double(height) / 2) + (Double(i) + m.x) * u + (Double(j) + m.y) * v
            guard p.x > -8, p.y > -8, p.x < Double(width) + 8, p.y < Double(height) + 8 else { continue }
            for y in max(0, Int(p.y) - 8)...min(height - 1, Int(p.y) + 8) {
                for x in max(0, Int(p.x) - 8)...min(width - 1, Int(p.x) + 8) {
                    let d = SIMD2(Double(x), Double(y)) - p
                    pix[y * width + x] += h * exp(-(d * d).sum() / (2 * sigmaPx * sigmaPx))
                }
            }
        } } }
        return Image(width: width, height: height, pixels: pix.map { Float($0) })
    }
}

@Suite("Layered projection check")
struct LayeredProjectionCheckTests {
    /// The check as the pipeline runs it on an average: lattice, crystal, refined sites, intensities.
    func check(_ image: Image, pixelSizeNm: Double?) throws -> LayeredProjectionCheck {
        let lattice = try LatticeFinder.find(in: image, pixelSizeNm: pixelSizeNm)
        let region = CrystalRegion.detect(in: image, lattice: lattice)
        let sites = ColumnFinder.sites(in: image, lattice: lattice, region: region)
        let measured = SiteIntensity.measure(image, sites: sites, region: region)
        return LayeredProjectionCheck(image: image, sites: measured.sites, region: region, layered: nil)
    }

    @Test("a noisy layered HAADF image passes every criterion")
    func layeredApplies() throws {
        let model = SyntheticLattice()
        let c = try check(model.render().withPoissonNoise(dose: 0.5, seed: 3), pixelSizeNm: model.pixelSizeNm)
        #expect(c.applies, "\(c.failure ?? "")")
        #expect(c.contrast == .brightColumns)
        #expect(abs(abs(try #require(c.stackingOffset)) - 1.0 / 3) < 0.02)
        #expect(c.tmSitesOnColumns > 0.95)
        #expect(try #require(c.layeredLiTmRatio) < 0.2)
    }

    @Test("the same image inverted (dark columns, as in ABF) is refused for its contrast")
    func darkColumnsRefused() throws {
        let model = SyntheticLattice()
        let c = try check(model.render().negated, pixelSizeNm: model.pixelSizeNm)
        #expect(c.contrast == .darkColumns)
        #expect(c.failure?.contains("dark") == true)
    }

    @Test("a stated contrast is not second-guessed by the skewness")
    func statedContrast() throws {
        let model = SyntheticLattice()
        let image = model.render().negated
        let lattice = try LatticeFinder.find(in: image, pixelSizeNm: model.pixelSizeNm)
        let region = CrystalRegion.detect(in: image, lattice: lattice)
        let sites = SiteIntensity.measure(image, sites: ColumnFinder.sites(in: image, lattice: lattice, region: region),
                                          region: region).sites
        let c = LayeredProjectionCheck(image: image, sites: sites, region: region, layered: nil, contrastStated: true)
        #expect(c.failure?.contains("dark") != true)
    }

    @Test("a perovskite along [001] is not taken for the layered lattice", arguments: [0.025, 0.0125])
    func perovskiteRefused(pixelSizeNm: Double) throws {
        var model = PerovskiteProjection()
        model.pixelSizeNm = pixelSizeNm
        model.sigmaPx = 0.05 / pixelSizeNm
        let image = model.render()
        var checked = 0
        for px in [Double?.some(pixelSizeNm), nil] {
            guard let c = try? check(image, pixelSizeNm: px) else { continue }   // no lattice: nothing measured either
            checked += 1
            #expect(!c.applies, "pixel size \(String(describing: px)): \(c)")
        }
        #expect(checked > 0, "the finder took no lattice from the image: the check was never exercised")
    }

    @Test("the real SrTiO3 [001] HAADF frame of the corpus is refused (planes line up)",
          .enabled(if: FileManager.default.fileExists(atPath: LayeredProjectionCheckTests.strontiumTitanate.path),
                   "../shared/corpus is not beside this checkout"))
    func realStrontiumTitanate() throws {
        let reader = try FrameFiles.open(Self.strontiumTitanate)
        let frame = try reader.frame(signal: reader.primarySignal, frame: 0)
        let c = try check(frame.image, pixelSizeNm: frame.metadata.pixelSizeNm)
        #expect(!c.applies)
        #expect(abs(try #require(c.stackingOffset)) < 0.1)
    }

    static let strontiumTitanate = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("shared/corpus/formats/ser/16_STOimage_1.ser")

    @Test("the band's layered reflection comes only from a bright layered lattice")
    func highestLayeredReflection() throws {
        let model = SyntheticLattice()
        let image = model.render()
        let g = try #require(LayeredProjectionCheck.highestLayeredReflection(in: image, pixelSizeNm: model.pixelSizeNm,
                                                                              layerSpacingNm: 0.468))
        #expect(abs(g - 2 / model.layerSpacingPx) / g < 0.01 || abs(g - 1 / model.columnSpacingPx) / g < 0.01)
        #expect(LayeredProjectionCheck.highestLayeredReflection(in: image.negated, pixelSizeNm: model.pixelSizeNm,
                                                                layerSpacingNm: 0.468) == nil)
    }
}

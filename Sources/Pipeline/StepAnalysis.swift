import Foundation
import FrameCore
import FrameIO
import RunSettings
import Registration
import ColumnIntensities
import FrontTracking

/// What the pipeline learns from one step's aligned average: the lattice, the analysed
/// crystal, the column sites (refined on the average, where the signal allows it) and the
/// phase map. Single frames are then measured at these fixed sites, which keeps their
/// low-dose intensities unbiased.
struct StepAnalysis: Sendable {
    var lattice: Lattice
    /// The analysed crystal: lattice fringes present, covered by every frame, inside `roi`.
    var region: Mask
    var sites: ColumnSites
    var aggregate: SiteIntensities
    var orderParameter: OrderParameterMap
    var phase: PhaseMap
    /// Demodulation window of the order parameter, px.
    var windowPx: Double
    /// The front's boundary as detected on this average when it shows rock salt.
    var detectedBoundary: LineSegment?
    /// The front on this average from the run's one boundary (set by the pipeline once that
    /// boundary is known); its frames' moving-front fit starts from it.
    var front: FrontMeasurement?
    var columnPrecisionPx: Double?
    /// Column width σ (px) fitted on the average: single frames are measured with it, since
    /// refitting it on every noisy frame only adds noise (and costs 15× the fixed-width sum).
    var columnSigmaPx: Double?

    /// The average's half-spacing fringe amplitude A(2g) on the frames' binned grid and
    /// region (`StepPlan`): the fixed denominator of every frame's order-parameter profile
    /// (`OrderParameterMap.normalised(byHalfSpacing:phase:)`); nil without a lock-in there.
    var halfSpacingReference: Image?

    /// The model check of this step's average (`LayeredProjectionCheck`).
    var check: LayeredProjectionCheck
    /// Whether intensities are measured on the inverted image (`contrast: dark_columns`).
    var invertsContrast: Bool

    /// `previous`: the lattice of an earlier step, used when this one shows none (a fully
    /// rock-salt grain has lost the layer reflection but keeps its columns in place).
    /// Throws `StepSkipped` when the average shows no layered lattice, or one the Li/TM model
    /// does not apply to.
    static func analyse(average: AlignedAverage, config: RunConfig, pixelSizeNm: Double?,
                        previous: Lattice?) throws(StepSkipped) -> StepAnalysis {
        let inverts = config.contrast == .darkColumns
        let image = inverts ? average.image.negated : average.image
        guard let lattice = (try? LatticeFinder.find(in: image, pixelSizeNm: pixelSizeNm,
                                                     layerSpacingNm: config.layerSpacingNm)) ?? previous else {
            throw StepSkipped(reason: "no layered lattice found in the aligned average")
        }
        let covered = coveredRegion(average, roi: config.roi)
        // One layer spacing: narrow enough to keep a 2–6 nm front sharp (the front fit removes
        // the window's own blur), wide enough to average a few columns' noise.
        let windowPx = lattice.layerSpacingPx
        let op = OrderParameter.map(image, gLayer: lattice.gLayer, windowPx: windowPx, region: covered)
        var region = op.crystal
        for i in region.bits.indices { region.bits[i] = region.bits[i] && covered.bits[i] }
        guard region.setCount > 0 else {
            throw StepSkipped(reason: "no crystal covered by every frame", lattice: lattice)
        }
        let found = ColumnFinder.sites(in: image, lattice: lattice, region: region)
        let measured = SiteIntensity.measureWithWidth(image, sites: found, region: region)
        var phase = PhaseSegmentation.segment(op)
        let check = LayeredProjectionCheck(image: image, sites: measured.sites, region: region,
                                           layered: phase.mask(PhaseMap.layered), contrastStated: config.contrast != .auto)
        if let why = check.failure {
            throw StepSkipped(reason: "the Li/TM model does not apply: " + why, lattice: lattice, check: check)
        }
        let front = FrontLocator.locate(op, phase: phase, boundary: config.frontBoundary, analysed: covered)
        // With a front, the fitted midpoint defines the rock-salt area (boundary to midpoint).
        if front.positionPx != nil { phase.rocksaltFraction = front.rocksaltFraction }
        var analysis = StepAnalysis(lattice: lattice, region: region, sites: measured.sites, aggregate: measured.aggregate,
                                    orderParameter: op, phase: phase, windowPx: windowPx,
                                    detectedBoundary: front.positionPx != nil ? front.boundary : nil,
                                    columnPrecisionPx: LatticePrecision.rms(measured.sites.sites.filter { $0.sublattice == .tm },
                                                                            lattice: lattice),
                                    columnSigmaPx: measured.columnSigmaPx, check: check, invertsContrast: inverts)
        let binning = OrderParameter.binning(layerSpacingPx: lattice.layerSpacingPx)
        analysis.halfSpacingReference = StepPlan.lockIn(analysis, region: FrameMeasurement.bin(region, binning), binning: binning)
            .map { OrderParameter.map(FrameMeasurement.bin(image, binning), on: $0).amplitudeHalf }
        return analysis
    }

    /// Pixels every used frame covers, inside the user's roi.
    static func coveredRegion(_ average: AlignedAverage, roi: PixelRect?) -> Mask {
        let w = average.image.width, h = average.image.height
        var covered = Mask(width: w, height: h,
                           bits: average.weight.pixels.map { $0 >= Float(average.frameCount) - 0.5 && $0 > 0 })
        if let roi {
            for y in 0..<h { for x in 0..<w where !(x >= roi.x0 && x < roi.x1 && y >= roi.y0 && y < roi.y1) {
                covered[x, y] = false
            } }
        }
        return covered
    }
}

/// Why a step's average was not analysed, with what was found of it.
struct StepSkipped: Error {
    var reason: String
    var lattice: Lattice? = nil
    var check: LayeredProjectionCheck? = nil
}

/// Column sites of any aligned average, found as `heatfront run` finds those of a step.
public enum AverageColumns {
    /// The refined TM column sites of an aligned average, as `heatfront run` writes them to
    /// `columns/step_<k>.csv` (for scoring other averages the same way).
    public static func tmSites(of average: AlignedAverage, layerSpacingNm: Double, pixelSizeNm: Double?) -> [SIMD2<Double>] {
        var config = RunConfig()
        config.layerSpacingNm = layerSpacingNm
        guard let a = try? StepAnalysis.analyse(average: average, config: config, pixelSizeNm: pixelSizeNm, previous: nil)
        else { return [] }
        return a.sites.sites.filter { $0.sublattice == .tm }.map { SIMD2($0.x, $0.y) }
    }
}

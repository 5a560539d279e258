import FrameCore
import Foundation

/// The band of spatial frequencies registration correlates, chosen from one frame.
///
/// Method: the reflections of the frame's crystal are read off its Hann-windowed power
/// spectrum and indexed as a two-dimensional reciprocal lattice; the band then reaches
/// `reachFactor` (2.5)× the highest strong reflection (finer sampling only adds shot noise to
/// the correlation), at most `defaultHigh`, but always `minimumReachFactor` (1.5)× that
/// reflection, past the start of the cut-off's roll-off, so coarsely sampled lattices keep
/// their reflections. This holds for any crystal
/// and any column contrast, and does not depend on a pixel size.
///
/// Scan interference (mains pick-up, ground loops) adds stripes that are fixed in the scan,
/// not in the specimen: correlated, they pull every shift toward zero. Stripes varying from
/// line to line put their reflections on the slow-scan frequency axis (|fx| within a bin of 0),
/// where a crystal's reflections lie only if the lattice puts them there. Peaks on that axis
/// that the lattice does not index are notched out of the correlation. Peak finding follows
/// the usual lattice-indexing practice of crystallographic image processing (strong local
/// maxima over the radial noise floor, smallest basis that indexes them; e.g. Hovmöller,
/// Ultramicroscopy 41 (1992) 121).
public struct CorrelationBand: Sendable, Equatable, Codable {
    /// What set the band.
    public enum Source: String, Sendable, Codable {
        /// The layered lattice the caller confirmed (`layeredReflection`).
        case layeredLattice = "layered_lattice"
        /// The reflections indexed in the frame's spectrum.
        case lattice
        /// No lattice: the default cut-off.
        case none
        /// The user's `registration.band`.
        case config
    }

    /// Gaussian high-pass σ, cycles/px.
    public var low: Double
    /// Cut-off, cycles/px.
    public var high: Double
    /// Frequencies (cycles/px) removed from the correlation, with their mirror images.
    public var notches: [SIMD2<Double>]
    /// σ of each notch, cycles/px (a bin of the spectrum the interference was found in).
    public var notchWidth: Double
    /// The reciprocal basis found (one or two vectors, cycles/px); empty when no lattice.
    public var basis: [SIMD2<Double>]
    /// The highest strong lattice reflection, cycles/px; nil when no lattice.
    public var highestReflection: Double?
    public var source: Source

    public init(low: Double, high: Double, notches: [SIMD2<Double>] = [], notchWidth: Double = 1.0 / 256,
                basis: [SIMD2<Double>] = [], highestReflection: Double? = nil, source: Source = .none) {
        self.low = low
        self.high = high
        self.notches = notches
        self.notchWidth = notchWidth
        self.basis = basis
        self.highestReflection = highestReflection
        self.source = source
    }

    /// Relative power above which an indexed reflection counts as strong.
    static let strongFraction = 0.1
    /// Gaussian high-pass σ (cycles/px) of every chosen band: removes thickness gradients and
    /// slow contrast drifts that do not move with the specimen.
    public static let defaultLow = 0.01
    /// Cut-off (cycles/px) when the frame shows no lattice, and the most a lattice band reaches:
    /// beyond it a low-dose frame's correlation gains shot noise, not signal.
    public static let defaultHigh = 0.25
    /// Side (px) of the central crop the band is chosen from: a dozen lattice periods or more
    /// at typical sampling, and one 256² spectrum costs well under a millisecond.
    public static let spectrumCropPx = 256
    /// The band reaches this multiple of the highest strong reflection |g|: the correlation
    /// keeps the reflections and the roll-off past them, and no finer (noisier) frequencies.
    public static let reachFactor = 2.5
    /// The cut-off is never below this multiple of |g|: the cosine roll-off starts at 0.7× the
    /// cut-off, so 1.5|g| keeps the reflections of coarsely sampled lattices at full weight.
    public static let minimumReachFactor = 1.5
    /// The cut-off is never below this (cycles/px): a lattice of very long period still leaves
    /// enough Fourier modes in the band for a significant correlation peak.
    public static let minimumHigh = 0.05
    /// Peaks within this many spectrum bins of the slow-scan axis (|fx| ≈ 0) count as on it.
    static let slowScanAxisBins = 1.5

    /// The band for frames like `image`, from its central `crop`² (the whole frame if smaller).
    ///
    /// - Parameter layeredReflection: the highest strong reflection of a layered lattice the
    ///   caller has found and confirmed (`|2 g_layer|` or `|g_column|`, cycles/px); it sets
    ///   the band instead of the indexed peaks.
    public static func choose(for image: Image, layeredReflection: Double? = nil, low: Double = CorrelationBand.defaultLow,
                              defaultHigh: Double = CorrelationBand.defaultHigh,
                              crop: Int = CorrelationBand.spectrumCropPx) -> CorrelationBand {
        let c = min(crop, image.width, image.height)
        guard c >= 64 else { return CorrelationBand(low: low, high: defaultHigh) }
        let centre = image.cropped(x0: (image.width - c) / 2, y0: (image.height - c) / 2,
                                   x1: (image.width + c) / 2, y1: (image.height + c) / 2)
        let spectrum = PowerSpectrum(hannWindowed: centre)
        let peaks = SpectrumPeaks.find(in: spectrum)
        let bin = 1 / Double(c)
        let indexed = ReciprocalLattice.index(peaks, bin: bin, avoidingAxis: true)
        let onAxis = peaks.indices.filter { abs(peaks[$0].f.x) <= slowScanAxisBins * bin }
        let notches = indexed.basis.isEmpty ? [] : onAxis.filter { !indexed.members.contains($0) }.map { peaks[$0].f }
        let strongest = indexed.members.map { peaks[$0].power }.max() ?? 0
        let strong = indexed.members.filter { peaks[$0].power >= strongFraction * strongest }
        let g = layeredReflection ?? strong.map({ norm(peaks[$0].f) }).max()
        guard let g else { return CorrelationBand(low: low, high: defaultHigh, notches: notches, notchWidth: 4 * bin) }
        let nyquist = 0.5
        let high = min(nyquist, max(min(defaultHigh, max(minimumHigh, reachFactor * g)), minimumReachFactor * g))
        return CorrelationBand(low: low, high: high, notches: notches, notchWidth: 4 * bin, basis: indexed.basis,
                               highestReflection: g, source: layeredReflection != nil ? .layeredLattice : .lattice)
    }
}

/// Strong local maxima of a power spectrum, over the median of their frequency ring.
enum SpectrumPeaks {
    struct Peak: Sendable, Equatable {
        var f: SIMD2<Double>
        var power: Double
        /// Power over the median power of its ring (|f| to the nearest bin).
        var significance: Double
    }

    /// Peaks at least `significance`× their ring's median and `fraction` of the strongest,
    /// between 4 bins and Nyquist, one of each Friedel pair (the half plane kx ≥ 0 with
    /// ky > 0 on the kx = 0 column), strongest first.
    static func find(in p: PowerSpectrum, significance: Double = 25, fraction: Double = 0.002) -> [Peak] {
        let n = Double(min(p.width, p.height))
        let floor = ringMedians(p)
        func ring(_ f: SIMD2<Double>) -> Int { Int((norm(f) * n).rounded()) }
        func power(_ kx: Int, _ ky: Int) -> Double {
            // kx = −1 is the mirror of (1, −ky).
            let x = abs(kx), y = ((kx < 0 ? -ky : ky) % p.height + p.height) % p.height
            return x < p.spectrumWidth ? p.power[y * p.spectrumWidth + x] : 0
        }
        var out: [Peak] = []
        for ky in 0..<p.height {
            for kx in 0..<(p.spectrumWidth - 1) {
                if kx == 0 && !(ky > 0 && ky < p.height / 2) { continue }
                let f = p.frequency(kx, ky)
                let r = ring(f)
                guard r >= 4, r < floor.count, floor[r] > 0 else { continue }
                let v = power(kx, ky)
                guard v >= significance * floor[r] else { continue }
                var isMax = true
                for dy in -1...1 { for dx in -1...1 where (dx, dy) != (0, 0) && power(kx + dx, ky + dy) > v { isMax = false } }
                if isMax { out.append(Peak(f: f, power: v, significance: v / floor[r])) }
            }
        }
        let top = out.map(\.power).max() ?? 0
        return out.filter { $0.power >= fraction * top }.sorted { $0.power > $1.power }
    }

    /// Median power of each ring of bins |f|·N rounded, N the smaller side.
    static func ringMedians(_ p: PowerSpectrum) -> [Double] {
        let n = Double(min(p.width, p.height))
        var rings = [[Double]](repeating: [], count: Int(0.75 * n) + 2)
        for ky in 0..<p.height {
            for kx in 0..<p.spectrumWidth {
                let r = Int((norm(p.frequency(kx, ky)) * n).rounded())
                if r < rings.count { rings[r].append(p.power[ky * p.spectrumWidth + kx]) }
            }
        }
        return rings.map { v in v.isEmpty ? 0 : v.sorted()[v.count / 2] }
    }
}

/// The reciprocal lattice that indexes the most spectral power among a set of peaks.
enum ReciprocalLattice {
    struct Indexing {
        /// One vector (a one-dimensional lattice) or two; empty when none.
        var basis: [SIMD2<Double>]
        /// Indices of the peaks the basis indexes.
        var members: Set<Int>
    }

    /// Every pair of the 10 strongest peaks (one peak for a one-dimensional lattice) is tried
    /// as a basis; the one that indexes the most power wins (ties: the earlier, stronger pair).
    /// A peak is indexed when it lies within a bin, plus half a bin per basis step, of
    /// h·g1 + k·g2. `avoidingAxis`: peaks on the slow-scan axis (|fx| ≤ 1.5 bins) are not used
    /// as basis vectors while any other can be (scan interference sits there), but are indexed.
    static func index(_ peaks: [SpectrumPeaks.Peak], bin: Double, avoidingAxis: Bool) -> Indexing {
        let offAxis = peaks.indices.filter { !avoidingAxis || abs(peaks[$0].f.x) > CorrelationBand.slowScanAxisBins * bin }
        let candidates = Array((offAxis.isEmpty ? Array(peaks.indices) : offAxis).prefix(10))
        var best = Indexing(basis: [], members: [])
        var bestPower = 0.0
        func consider(_ basis: [SIMD2<Double>]) {
            let members = Set(peaks.indices.filter { isIndexed(peaks[$0].f, by: basis, bin: bin) })
            let power = members.reduce(0.0) { $0 + peaks[$1].power }
            if power > bestPower * (1 + 1e-9) { best = Indexing(basis: basis, members: members); bestPower = power }
        }
        for (a, i) in candidates.enumerated() {
            for j in candidates[(a + 1)...] {
                let g1 = peaks[i].f, g2 = peaks[j].f
                let sine = abs(g1.x * g2.y - g1.y * g2.x) / (norm(g1) * norm(g2))
                if sine > 0.25 { consider([g1, g2]) }
            }
        }
        if best.basis.isEmpty, let first = candidates.first { consider([peaks[first].f]) }
        guard !best.basis.isEmpty else { return best }
        // The basis refitted to every peak it indexes, then the peaks indexed again, within
        // 1.5 bins: high orders no longer get the loose tolerance of the bin-rounded basis.
        let basis = refit(best.basis, to: best.members.map { peaks[$0].f }, bin: bin)
        let members = Set(peaks.indices.filter { isIndexed(peaks[$0].f, by: basis, bin: bin, tight: true) })
        return Indexing(basis: basis, members: members)
    }

    /// Miller indices of `f` in `basis` (k = 0 for a one-vector basis).
    static func indices(_ f: SIMD2<Double>, in basis: [SIMD2<Double>]) -> (h: Double, k: Double) {
        if basis.count == 1 {
            let g = basis[0]
            return (((f * g).sum() / (g * g).sum()).rounded(), 0)
        }
        let g1 = basis[0], g2 = basis[1]
        let det = g1.x * g2.y - g1.y * g2.x
        return (((f.x * g2.y - f.y * g2.x) / det).rounded(), ((g1.x * f.y - g1.y * f.x) / det).rounded())
    }

    static func isIndexed(_ f: SIMD2<Double>, by basis: [SIMD2<Double>], bin: Double, tight: Bool = false) -> Bool {
        let (h, k) = indices(f, in: basis)
        guard h != 0 || k != 0 else { return false }
        let predicted = basis.count == 1 ? h * basis[0] : h * basis[0] + k * basis[1]
        return norm(f - predicted) <= bin * (tight ? 1.5 : 1 + 0.5 * (abs(h) + abs(k)))
    }

    /// Least-squares basis through the peaks at their Miller indices: f ≈ h·g1 + k·g2.
    static func refit(_ basis: [SIMD2<Double>], to peaks: [SIMD2<Double>], bin: Double) -> [SIMD2<Double>] {
        let hk = peaks.map { indices($0, in: basis) }
        if basis.count == 1 {
            let hh = hk.reduce(0.0) { $0 + $1.h * $1.h }
            guard hh > 0 else { return basis }
            return [zip(peaks, hk).reduce(SIMD2<Double>.zero) { $0 + $1.1.h * $1.0 } / hh]
        }
        var a = 0.0, b = 0.0, c = 0.0, u = SIMD2<Double>.zero, v = SIMD2<Double>.zero
        for (f, m) in zip(peaks, hk) {
            a += m.h * m.h; b += m.h * m.k; c += m.k * m.k; u += m.h * f; v += m.k * f
        }
        let det = a * c - b * b
        guard abs(det) > 1e-9 else { return basis }
        return [(c * u - b * v) / det, (a * v - b * u) / det]
    }
}

@inline(__always) private func norm(_ v: SIMD2<Double>) -> Double { (v * v).sum().squareRoot() }

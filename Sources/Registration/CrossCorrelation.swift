import Foundation
import FrameCore

/// The windowed spectrum of one frame, cropped to the correlation band.
///
/// `values` is in FFTW r2c layout on the `gridWidth × gridHeight` grid of a
/// `CorrelationGeometry`; frequencies are integers in cycles per frame. Cropping to the
/// band-pass support keeps registration memory at about a quarter of the frame's
/// spectrum (with the default 0.25 cycles/px cut-off) and shrinks every correlation FFT.
struct BandSpectrum: Sendable {
    var values: [Complex]
    /// The same frame for the coarse, lattice-free stage.
    var coarse: CoarseImage
}

/// Mean of the pixels, accumulated in Double over eight lanes (as `Image.mean`, to
/// rounding, several times faster).
func fastMean(_ pixels: [Float]) -> Double {
    guard !pixels.isEmpty else { return .nan }
    return pixels.withUnsafeBufferPointer { p in
        var acc = SIMD8<Double>(repeating: 0)
        var i = 0
        let n = p.count
        while i + 8 <= n {
            acc += SIMD8<Double>(UnsafeRawPointer(p.baseAddress! + i).loadUnaligned(as: SIMD8<Float>.self))
            i += 8
        }
        var sum = acc.sum()
        while i < n { sum += Double(p[i]); i += 1 }
        return sum / Double(n)
    }
}

/// Sizes, window and cropping shared by every frame of a run (one frame size).
///
/// Method: mean-subtracted frame × separable Tukey window (cosine taper over 10 % of
/// each edge) so the frame edges do not correlate, r2c FFT (FFTW), then only the
/// frequencies below the band-pass high cut-off are kept.
struct CorrelationGeometry: Sendable {
    let width: Int
    let height: Int
    let gridWidth: Int
    let gridHeight: Int
    let windowX: [Float]
    let windowY: [Float]
    let overlapX: [Double]
    let overlapY: [Double]

    var halfWidth: Int { gridWidth / 2 + 1 }
    var stepX: Double { Double(width) / Double(gridWidth) }
    var stepY: Double { Double(height) / Double(gridHeight) }

    init(width: Int, height: Int, options: RigidOptions) {
        self.width = width
        self.height = height
        let fh = Swift.min(0.5, Swift.max(options.bandPassHigh, 0.02))
        gridWidth = Self.gridSize(needed: 2 * fh * Double(width), limit: width)
        gridHeight = Self.gridSize(needed: 2 * fh * Double(height), limit: height)
        windowX = Self.tukey(width, taper: 0.1)
        windowY = Self.tukey(height, taper: 0.1)
        overlapX = Self.autocorrelation(windowX)
        overlapY = Self.autocorrelation(windowY)
    }

    /// The smallest even size ≥ `needed` with prime factors 2, 3, 5 (fast FFTs), at most `limit`.
    static func gridSize(needed: Double, limit: Int) -> Int {
        let cap = limit - (limit % 2)
        var n = Swift.max(16, Int(needed.rounded(.up)))
        n += n % 2
        while n < cap {
            var m = n
            for p in [2, 3, 5] { while m % p == 0 { m /= p } }
            if m == 1 { return n }
            n += 2
        }
        return cap
    }

    /// Tukey window: 1 in the middle, raised-cosine taper over `taper` of each edge.
    static func tukey(_ n: Int, taper: Double) -> [Float] {
        let m = Swift.max(1, Int(Double(n) * taper))
        return (0..<n).map { i in
            let d = Swift.min(i, n - 1 - i)
            guard d < m else { return 1 }
            return Float(0.5 - 0.5 * cos(Double.pi * (Double(d) + 0.5) / Double(m)))
        }
    }

    /// Overlap of the window with itself moved by `(x, y)` px, 1 at zero shift.
    ///
    /// Dividing a correlation by it removes the bias toward zero shift that the shrinking
    /// common area of two windowed frames causes (the first-order form of the masked,
    /// overlap-normalised correlation of Padfield, IEEE Trans. Image Process. 21, 2706 (2012));
    /// it matters for the broad peaks of the coarse stage.
    func windowOverlap(_ x: Double, _ y: Double) -> Double {
        Self.interpolate(overlapX, abs(x)) * Self.interpolate(overlapY, abs(y))
    }

    private static func interpolate(_ table: [Double], _ t: Double) -> Double {
        let i = Int(t)
        guard i + 1 < table.count else { return table.last ?? 0 }
        let f = t - Double(i)
        return table[i] * (1 - f) + table[i + 1] * f
    }

    /// Normalised 1-D window autocorrelation at integer lags.
    static func autocorrelation(_ w: [Float]) -> [Double] {
        let n = w.count
        var out = [Double](repeating: 0, count: n)
        for lag in 0..<n {
            var s = 0.0
            for i in 0..<(n - lag) { s += Double(w[i]) * Double(w[i + lag]) }
            out[lag] = s
        }
        let zero = out[0] > 0 ? out[0] : 1
        return out.map { Swift.max($0 / zero, 1e-3) }
    }

    /// Windowed, cropped spectrum of `image` (which must have the geometry's size);
    /// `mean`: the image's mean when already known (`fastMean`).
    func spectrum(of image: Image, workspace ws: FFTWorkspace, mean knownMean: Double? = nil) -> [Complex] {
        let mean = Float(knownMean ?? fastMean(image.pixels))
        image.pixels.withUnsafeBufferPointer { src in
            windowX.withUnsafeBufferPointer { wx in
                let m = SIMD8<Float>(repeating: mean)
                for y in 0..<height {
                    let wy = windowY[y], wyv = SIMD8<Float>(repeating: wy)
                    let row = src.baseAddress! + y * width, out = ws.real.baseAddress! + y * width
                    var x = 0
                    // (pixel − mean)·w_y·w_x, eight at a time (same operations as one at a time).
                    while x + 8 <= width {
                        let v = UnsafeRawPointer(row + x).loadUnaligned(as: SIMD8<Float>.self)
                        let w = UnsafeRawPointer(wx.baseAddress! + x).loadUnaligned(as: SIMD8<Float>.self)
                        UnsafeMutableRawPointer(out + x).storeBytes(of: (v - m) * wyv * w, as: SIMD8<Float>.self)
                        x += 8
                    }
                    while x < width { out[x] = (row[x] - mean) * wy * wx[x]; x += 1 }
                }
            }
        }
        ws.forward(columns: halfWidth)
        // Scale so spectra of large frames stay far from Float overflow in products.
        let scale = Float(1 / Double(width * height).squareRoot())
        let hw = halfWidth, columns = ws.columnSpectrum
        var out = [Complex](repeating: .zero, count: gridHeight * hw)
        // Column by column: the band's rows are the first and last gridHeight/2 of each column.
        let half = gridHeight / 2
        out.withUnsafeMutableBufferPointer { o in
            for c in 0..<hw {
                let column = columns.baseAddress! + c * height
                for r in 0...half { o[r * hw + c] = column[r] * scale }
                for r in (half + 1)..<gridHeight { o[r * hw + c] = column[r - gridHeight + height] * scale }
            }
        }
        return out
    }

    /// Frequency (cycles/px) of grid bin `(r, c)`.
    @inline(__always)
    func frequency(row r: Int, column c: Int, gridHeight gh: Int) -> Double {
        let ky = r <= gh / 2 ? r : r - gh
        let fx = Double(c) / Double(width), fy = Double(ky) / Double(height)
        return (fx * fx + fy * fy).squareRoot()
    }

    /// 1 except near `options.notches` (and their mirrors), where Gaussian notches take the bin out.
    func notchFactor(row r: Int, column c: Int, options: RigidOptions) -> Double {
        guard !options.notches.isEmpty else { return 1 }
        let ky = r <= gridHeight / 2 ? r : r - gridHeight
        let f = SIMD2(Double(c) / Double(width), Double(ky) / Double(height))
        var factor = 1.0
        for q in options.notches {
            for d in [f - q, f + q] {
                factor *= 1 - exp(-(d * d).sum() / (2 * options.notchWidth * options.notchWidth))
            }
        }
        return factor
    }
}

/// The spectral weights of the fine and coarse correlations and the aliasing guard.
///
/// Fine: band-pass `[1 − exp(−f²/2σ_l²)]² · cos²-roll-off²` (both frames filtered).
/// Coarse (`CoarseGeometry`): Gaussian low-pass with σ_c a fifth of the lowest lattice
/// frequency, so only non-periodic content (boundaries, thickness, contamination)
/// correlates and the coarse peak cannot jump by a unit cell. The fine peak is then
/// searched only within `aliasRadius` (0.45 × the shortest lattice vector) of it.
struct CorrelationFilters: Sendable {
    let fine: [Float]
    /// `fine` times the Hermitian multiplicity (1 for kx = 0 and the even-size Nyquist column,
    /// else 2), once for the real and once for the imaginary part of each bin (`Correlator.energy`).
    let energyWeights: [Float]
    /// Per band-grid row, the number of leading columns where `fine` is non-zero: the band
    /// is a disc, so every product weighted by `fine` is zero beyond them.
    let bandColumns: [Int]
    /// Gaussian low-pass σ (cycles/px) of the coarse stage: a fifth of the lowest lattice
    /// reflection, so the lattice is suppressed by e^−12.5.
    let coarseSigma: Double
    /// Effective number of independent Fourier modes: the NCC of a frame with unrelated
    /// noise has standard deviation ≤ 1/√neff.
    let fineModes: Double
    /// Largest distance (px) from the coarse estimate searched by the fine stage; ∞ when
    /// no lattice was found.
    let aliasRadius: Double

    init(geometry g: CorrelationGeometry, options: RigidOptions, lattice: LatticeEstimate?) {
        let fl = Swift.max(options.bandPassLow, 1e-6)
        let fh = Swift.min(0.5, Swift.max(options.bandPassHigh, 0.02))
        let hw = g.halfWidth
        var fine = [Float](repeating: 0, count: g.gridHeight * hw)
        for r in 0..<g.gridHeight {
            for c in 0..<hw {
                let f = g.frequency(row: r, column: c, gridHeight: g.gridHeight)
                let hp = 1 - exp(-f * f / (2 * fl * fl))
                var lp = 1.0
                if f >= fh { lp = 0 } else if f > 0.7 * fh {
                    lp = 0.5 + 0.5 * cos(Double.pi * (f - 0.7 * fh) / (0.3 * fh))
                }
                fine[r * hw + c] = Float(hp * hp * lp * lp * g.notchFactor(row: r, column: c, options: options))
            }
        }
        self.fine = fine
        bandColumns = (0..<g.gridHeight).map { r in
            ((0..<hw).last { fine[r * hw + $0] != 0 } ?? -1) + 1
        }
        fineModes = Self.modes(fine, gridWidth: g.gridWidth, gridHeight: g.gridHeight)
        energyWeights = (0..<(2 * fine.count)).map { i in
            let c = (i / 2) % hw
            return (c == 0 || c == g.gridWidth / 2 ? 1 : 2) * fine[i / 2]
        }

        if let lattice {
            aliasRadius = 0.45 * lattice.shortestVector
            coarseSigma = lattice.lowestFrequency / 5
        } else {
            aliasRadius = .infinity
            coarseSigma = 0.02
        }
    }

    /// Σw / max w over the full (Hermitian) spectrum.
    static func modes(_ w: [Float], gridWidth: Int, gridHeight: Int) -> Double {
        let hw = gridWidth / 2 + 1
        var sum = 0.0, top = 0.0
        for r in 0..<gridHeight {
            for c in 0..<hw {
                let m: Double = (c == 0 || c == gridWidth / 2) ? 1 : 2
                let v = Double(w[r * hw + c])
                sum += m * v; top = Swift.max(top, v)
            }
        }
        return top > 0 ? sum / top : 0
    }
}

/// The lattice seen in a few frames: its lowest reflection frequency (cycles/px) and its
/// shortest lattice vector (px), the shift by which it aliases.
struct LatticeEstimate: Sendable {
    var lowestFrequency: Double
    var shortestVector: Double

    /// A lattice is present when the strongest bin of the mean power spectrum above `fmin`
    /// exceeds 30× the median power of the band; its reflections are the bins within 10 %
    /// of that maximum (the lowest of them sets the coarse low-pass). The shortest lattice
    /// vector is the nearest strong local maximum of the band-passed autocorrelation
    /// (inverse FFT of the power spectrum), as lattice-aliased correlation peaks sit
    /// exactly at lattice vectors.
    static func estimate(_ spectra: [[Complex]], geometry g: CorrelationGeometry,
                         options: RigidOptions) -> LatticeEstimate? {
        if let d = options.latticePeriodPx, d > 0 {
            return LatticeEstimate(lowestFrequency: 1 / (2 * d), shortestVector: d)
        }
        guard !spectra.isEmpty else { return nil }
        let hw = g.halfWidth
        var power = [Double](repeating: 0, count: g.gridHeight * hw)
        for s in spectra { for i in 0..<power.count { let v = s[i]; power[i] += Double(v.x * v.x + v.y * v.y) } }
        let fmin = Swift.max(0.02, 6 / Double(Swift.min(g.width, g.height)))
        let fmax = Swift.min(0.5, options.bandPassHigh) * 0.95
        var band: [(f: Double, p: Double)] = []
        let ws = FFTWorkspace(width: g.gridWidth, height: g.gridHeight)
        for r in 0..<g.gridHeight {
            for c in 0..<hw {
                let f = g.frequency(row: r, column: c, gridHeight: g.gridHeight)
                let inBand = f >= fmin && f <= fmax && g.notchFactor(row: r, column: c, options: options) > 0.5
                if inBand { band.append((f, power[r * hw + c])) }
                ws.spectrum[r * hw + c] = Complex(inBand ? Float(power[r * hw + c]) : 0, 0)
            }
        }
        guard band.count > 16 else { return nil }
        let top = band.map(\.p).max()!
        let sorted = band.map(\.p).sorted()
        let median = sorted[sorted.count / 2]
        guard top > 30 * median else { return nil }
        let lowest = band.filter { $0.p >= 0.1 * top }.map(\.f).min()!

        // Autocorrelation on the grid; strong local maxima beyond the central lobe.
        ws.inverse()
        let gw = g.gridWidth, gh = g.gridHeight
        let maxLag = Double(Swift.min(g.width, g.height)) / 4
        func lag(_ n: Int, _ m: Int) -> (Double, Double) {
            (Double(n <= gw / 2 ? n : n - gw) * g.stepX, Double(m <= gh / 2 ? m : m - gh) * g.stepY)
        }
        var peaks: [(r: Double, v: Float)] = []
        for m in 0..<gh {
            for n in 0..<gw {
                let (x, y) = lag(n, m)
                let r = (x * x + y * y).squareRoot()
                guard r >= 2.5, r <= maxLag else { continue }
                let v = ws.real[m * gw + n]
                var isMax = true
                for dm in -1...1 { for dn in -1...1 where dm != 0 || dn != 0 {
                    if ws.real[((m + dm + gh) % gh) * gw + (n + dn + gw) % gw] > v { isMax = false }
                } }
                if isMax { peaks.append((r, v)) }
            }
        }
        guard let strongest = peaks.map(\.v).max(), strongest > 0 else { return nil }
        let shortest = peaks.filter { $0.v >= 0.5 * strongest }.map(\.r).min()!
        return LatticeEstimate(lowestFrequency: lowest, shortestVector: shortest)
    }
}

/// The lattice's reflections in a set of spectra, to leave out of the aperiodic correlation.
///
/// `weights` per band-grid bin: 0 on bins whose summed power exceeds `contrast` × the
/// median of their frequency ring, and on their neighbours within `dilation` bins; 1
/// elsewhere. The ring median is the diffuse (non-periodic and noise) background at that
/// frequency: reflections are sparse, so they do not move it. The notch is made from the
/// frames being correlated (a group, or the group averages), as reflections change when the
/// phase does (layered → rock salt).
struct ReflectionNotch: Sendable {
    let weights: [Float]

    init(_ spectra: [[Complex]], geometry g: CorrelationGeometry, contrast: Double = 8, dilation: Int = 1) {
        let hw = g.halfWidth, gh = g.gridHeight
        var power = [Double](repeating: 0, count: gh * hw)
        for s in spectra { for i in 0..<power.count { let v = s[i]; power[i] += Double(v.x * v.x + v.y * v.y) } }
        let scale = Double(Swift.min(g.width, g.height))
        var ring = [Int](repeating: 0, count: power.count)
        var rings: [[Double]] = Array(repeating: [], count: Int(0.75 * scale) + 2)
        for r in 0..<gh {
            for c in 0..<hw {
                let k = Swift.min(rings.count - 1, Int((g.frequency(row: r, column: c, gridHeight: gh) * scale).rounded()))
                ring[r * hw + c] = k
                rings[k].append(power[r * hw + c])
            }
        }
        let median = rings.map { v -> Double in
            guard !v.isEmpty else { return 0 }
            let s = v.sorted(); return s[s.count / 2]
        }
        var w = [Float](repeating: 1, count: power.count)
        for r in 0..<gh {
            for c in 0..<hw where ring[r * hw + c] >= 2 && power[r * hw + c] > contrast * median[ring[r * hw + c]] {
                for dr in -dilation...dilation {
                    for dc in -dilation...dilation where c + dc >= 0 && c + dc < hw {
                        w[((r + dr + gh) % gh) * hw + c + dc] = 0
                    }
                }
            }
        }
        weights = w
    }
}

/// One measured shift of a frame (`moving`) relative to a reference spectrum.
struct CorrelationPeak: Sendable {
    var dx: Double
    var dy: Double
    /// Normalised cross-correlation (fine band) at the peak, −1…1.
    var ncc: Double
    /// `ncc` in units of its noise standard deviation.
    var significance: Double
    /// How far (σ of the notched map) the non-periodic content favours the chosen lattice
    /// alias over the best other one; negative when it favours another but not by the
    /// required margin; nil when aliases were not compared.
    var aliasMargin: Double? = nil
}

/// Band-pass weighted FFT cross-correlation with a coarse non-periodic stage, an
/// aliasing-guarded fine stage and upsampled-DFT sub-pixel refinement.
///
/// Method: correlation in Fourier space, `C = IFFT(F_m · F_r* · W / |F_m F_r|^p)`
/// (band-pass `W`; optional partial phase correlation exponent `p`, Kuglin & Hines 1975),
/// divided by the window overlap, integer peak on the band-limited grid (log-parabola
/// start), refined to 1/U px by the matrix-multiply DFT of Guizar-Sicairos et al.,
/// Opt. Lett. 33, 156 (2008). On periodic lattices the shift is first measured on the
/// non-periodic content only (masked NCC of low-passed frames, `CoarseGeometry`), or taken
/// as ~0 by continuity in time when there is none, and the fine peak is searched within
/// 0.45 of the shortest lattice vector of it; given the frames' reflections, which of the
/// lattice aliases around it is taken is decided by the band's non-periodic content
/// (`aliasChoice`). The frame is accepted when the peak's NCC stands `minSignificance` noise σ above 0
/// (σ ≤ 1/√(effective Fourier modes in the band)). One `Correlator` per thread: it owns
/// its FFTW buffers and scratch; not thread-safe itself.
final class Correlator {
    let geometry: CorrelationGeometry
    let filters: CorrelationFilters
    let options: RigidOptions
    let coarseGeometry: CoarseGeometry
    private let fineFFT: FFTWorkspace
    private let masked: MaskedCorrelator
    private var product: [Complex]
    private var notchedMap: [Float]
    /// Rows of the fine map in `fineFFT.real` already transformed for the current product
    /// (`beginMap`, `ensureRows`).
    private var rowReady: [Bool]

    init(geometry: CorrelationGeometry, filters: CorrelationFilters, coarse: CoarseGeometry, options: RigidOptions) {
        self.geometry = geometry
        self.filters = filters
        self.options = options
        coarseGeometry = coarse
        fineFFT = FFTWorkspace(width: geometry.gridWidth, height: geometry.gridHeight)
        masked = MaskedCorrelator(geometry: coarse)
        product = [Complex](repeating: .zero, count: geometry.gridHeight * geometry.halfWidth)
        notchedMap = [Float](repeating: 0, count: geometry.gridWidth * geometry.gridHeight)
        rowReady = [Bool](repeating: false, count: geometry.gridHeight)
    }

    /// Starts the inverse transform of `product` (times `notch` when given) into the map in
    /// `fineFFT.real`, whose rows are then made as the searches reach them (`ensureRows`):
    /// a search near a prediction reads a few dozen of the grid's 288 rows (1024² frames).
    private func beginMap(notch: [Float]?) {
        let gh = geometry.gridHeight, hw = geometry.halfWidth, input = fineFFT.columnInput.baseAddress!
        // Transposed in tiles of 32 × 32: row by row, every store of a full map's transpose
        // would land on another page.
        let tile = 32
        product.withUnsafeBufferPointer { v in
            for r0 in stride(from: 0, to: gh, by: tile) {
                let r1 = Swift.min(r0 + tile, gh)
                for c0 in stride(from: 0, to: hw, by: tile) {
                    let c1 = Swift.min(c0 + tile, hw)
                    if let notch {
                        notch.withUnsafeBufferPointer { w in
                            for c in c0..<c1 { for r in r0..<r1 { input[c * gh + r] = v[r * hw + c] * w[r * hw + c] } }
                        }
                    } else {
                        for c in c0..<c1 { for r in r0..<r1 { input[c * gh + r] = v[r * hw + c] } }
                    }
                }
            }
        }
        fineFFT.inverseColumns()
        for y in rowReady.indices { rowReady[y] = false }
    }

    /// Makes map rows `lo...hi` (grid rows, wrapped around the grid).
    private func ensureRows(_ lo: Int, _ hi: Int) {
        let gh = geometry.gridHeight
        guard hi >= lo else { return }
        for y in lo...Swift.min(hi, lo + gh - 1) {
            let r = (y % gh + gh) % gh
            if !rowReady[r] { fineFFT.inverseRow(r); rowReady[r] = true }
        }
    }

    /// The map at grid sample `(nx, ny)` (wrapped), from a row already made.
    @inline(__always)
    private func mapValue(_ nx: Int, _ ny: Int) -> Float {
        let gw = geometry.gridWidth, gh = geometry.gridHeight
        let r = (ny % gh + gh) % gh
        assert(rowReady[r], "fine map row \(r) read before it was transformed")
        return fineFFT.real[r * gw + (nx % gw + gw) % gw]
    }

    /// Largest |shift| searched along each axis: the whole correlation map (less one grid
    /// step of wrap-around), not `maxShiftPx`: a frame beyond that limit must be found
    /// where it is and then rejected, not matched to a lattice-aliased peak inside it.
    var searchLimit: (x: Double, y: Double) {
        let g = geometry
        return (Swift.max(0, Double(g.width) / 2 - g.stepX), Swift.max(0, Double(g.height) / 2 - g.stepY))
    }

    /// Weighted energy Σ m·w·|F|² of a spectrum in the fine band (√ is its norm).
    func energy(_ s: BandSpectrum) -> Double {
        // Re² and Im² weighted alike: one flat dot product over the interleaved floats,
        // eight lanes at a time, each spectrum row summed in Float and the rows in Double.
        let n = 2 * geometry.halfWidth
        var e = 0.0
        s.values.withUnsafeBytes { raw in
            filters.energyWeights.withUnsafeBufferPointer { w in
                let v = raw.bindMemory(to: Float.self)
                for r in 0..<geometry.gridHeight {
                    var acc = SIMD8<Float>.zero, tail: Float = 0
                    var i = r * n
                    let end = i + n
                    while i + 8 <= end {
                        let z = UnsafeRawPointer(v.baseAddress! + i).loadUnaligned(as: SIMD8<Float>.self)
                        acc += z * z * UnsafeRawPointer(w.baseAddress! + i).loadUnaligned(as: SIMD8<Float>.self)
                        i += 8
                    }
                    while i < end { tail += v[i] * v[i] * w[i]; i += 1 }
                    e += Double(acc.sum() + tail)
                }
            }
        }
        return e
    }

    /// Shift of `moving` relative to `reference`: near `prediction` (within `radius` px)
    /// when given, else by the coarse-then-fine search over the whole map.
    /// `nil` when either spectrum has no energy in the band.
    /// `fallback`: a second candidate centre for the fine search besides the coarse stage's
    /// estimate (a velocity prediction from the previous frames: the coarse stage can lock onto
    /// content fixed to the scan, such as flyback distortion or detector background).
    /// `notch`: with a lattice, the reflections of the frames compared; the lattice alias is
    /// then chosen by the non-periodic content (`aliasChoice`), among the aliases within
    /// `aliasReach` lattice vectors of `prediction` or of the coarse candidates (frames that
    /// slipped by more are left to block checks: against the average of all others, a frame
    /// far from the rest in time can favour a far alias through content that changes, such
    /// as a moving front). `coarse`: the coarse stage's peak for these two frames when
    /// already measured (`coarsePeak`). `expected`: with a prediction and a notch, where the
    /// frame's neighbours in time put it; of the aliases scoring within `minAliasMargin` σ of
    /// the best, the one nearest it is taken.
    func measure(_ moving: BandSpectrum, against reference: BandSpectrum,
                 prediction: SIMD2<Double>? = nil, radius: Double = .infinity,
                 fallback: SIMD2<Double>? = nil, notch: ReflectionNotch? = nil,
                 aliasReach: Double = 2.2, coarse: CorrelationPeak? = nil,
                 expected: SIMD2<Double>? = nil) -> CorrelationPeak? {
        let em = energy(moving), er = energy(reference)
        guard em > 0, er > 0 else { return nil }
        var search = FineSearch(center: prediction, radius: radius)
        if prediction == nil, filters.aliasRadius.isFinite {
            search = unaliasedSearch(moving, reference, fallback: fallback, coarse: coarse)
        }
        // Fine product, kept for the DFT refinement (the map's transform works on a copy).
        formProduct(moving, reference, whitening: options.phaseCorrelationWeight)
        var mapReady = false
        if let notch, filters.aliasRadius.isFinite {
            mapReady = chooseAlias(&search, prediction: prediction, notch: notch, aliasReach: aliasReach, expected: expected)
        }
        if !mapReady { beginMap(notch: nil) }
        let g = geometry
        var found: (Double, Double, Float)? = nil
        for c in search.candidates.isEmpty ? [search.center] : search.candidates.map({ Optional($0) }) {
            if let f = bestSample(gridWidth: g.gridWidth, gridHeight: g.gridHeight,
                                  stepX: g.stepX, stepY: g.stepY, center: c, radius: search.radius),
               f.2 > (found?.2 ?? -.infinity) {
                found = f
            }
        }
        guard let (sx, sy, _) = found else { return nil }
        let peak = product.withUnsafeBufferPointer {
            UpsampledDFT.refinePeak($0, gridWidth: g.gridWidth, gridHeight: g.gridHeight,
                                    frameWidth: g.width, frameHeight: g.height, x0: sx, y0: sy,
                                    initialStep: 0.35 * Swift.max(g.stepX, g.stepY), upsampleFactor: options.upsampleFactor,
                                    rowLengths: filters.bandColumns, divideBy: g.windowOverlap)
        }
        var value = peak.value
        if options.phaseCorrelationWeight > 0 {
            // The score is always the plain (unwhitened) normalised correlation.
            formProduct(moving, reference, whitening: 0)
            value = product.withUnsafeBufferPointer {
                UpsampledDFT.evaluate($0, gridWidth: g.gridWidth, gridHeight: g.gridHeight, frameWidth: g.width,
                                      frameHeight: g.height, xs: [peak.x], ys: [peak.y], rowLengths: filters.bandColumns)[0]
            }
        }
        let ncc = value / (em * er).squareRoot()
        return CorrelationPeak(dx: peak.x, dy: peak.y, ncc: ncc, significance: ncc * filters.fineModes.squareRoot(),
                               aliasMargin: search.aliasMargin)
    }

    /// Where the fine peak is searched: around `center` within `radius`, or around each of
    /// `candidates` (the highest peak wins); with the alias margin found on the way.
    struct FineSearch {
        var center: SIMD2<Double>?
        var radius: Double
        var candidates: [SIMD2<Double>] = []
        var aliasMargin: Double? = nil
    }

    /// The search without a prediction when a lattice is present: the coarse (non-periodic)
    /// estimate when the low-pass content matches (z ≥ 3: the maximum of a noise-only coarse
    /// map sits at z ≈ 1.5–2.5, whatever its NCC over a small overlap); otherwise continuity
    /// in time: frames and references this is called on are neighbours or averages on the
    /// same gauge, so the shift is small. Either way the fine peak is searched within less
    /// than half the shortest lattice vector of it. Candidates for the true (unaliased) peak:
    /// the coarse estimate, the fallback prediction, no motion. Each is searched within the
    /// alias radius and the highest fine peak wins: non-periodic content and the finite
    /// overlap make the true peak stand above its lattice aliases.
    private func unaliasedSearch(_ moving: BandSpectrum, _ reference: BandSpectrum, fallback: SIMD2<Double>?,
                                 coarse: CorrelationPeak?) -> FineSearch {
        var candidates: [SIMD2<Double>] = []
        if let coarse = coarse ?? coarsePeak(moving, reference), coarse.significance >= 3 {
            candidates.append(SIMD2(coarse.dx, coarse.dy))
        }
        if let fallback { candidates.append(fallback) }
        if candidates.isEmpty { candidates.append(.zero) }
        return FineSearch(center: candidates[0], radius: filters.aliasRadius, candidates: candidates)
    }

    /// `product` = conj(F_ref)·F_moving·w over the fine band, whitened by |·|^−p (p =
    /// `whitening`, partial phase correlation) when p > 0.
    private func formProduct(_ moving: BandSpectrum, _ reference: BandSpectrum, whitening p: Double) {
        moving.values.withUnsafeBufferPointer { ma in
        reference.values.withUnsafeBufferPointer { rb in
        filters.fine.withUnsafeBufferPointer { w in
        product.withUnsafeMutableBufferPointer { out in
            for i in 0..<out.count {
                let a = ma[i], b = rb[i]
                var v = Complex(a.x * b.x + a.y * b.y, a.y * b.x - a.x * b.y) * w[i]
                if p > 0 {
                    let mag = Double((v.x * v.x + v.y * v.y).squareRoot())
                    v = mag > 0 ? v * Float(pow(mag / Double(w[i]), -p)) : .zero
                }
                out[i] = v
            }
        }}}}
    }

    /// Which lattice alias: the one where the non-periodic content correlates best
    /// (`aliasChoice`). Every alias within `aliasReach` lattice vectors of the prediction or
    /// of the coarse candidates competes: the coarse estimate can stay near zero while the
    /// specimen drifts 8 px per frame (a front moving against the drift keeps the low-passed
    /// image in place; scan-distortion at 256 px). Updates `search`; returns whether the
    /// fine map was begun.
    private func chooseAlias(_ search: inout FineSearch, prediction: SIMD2<Double>?, notch: ReflectionNotch,
                             aliasReach: Double, expected: SIMD2<Double>?) -> Bool {
        let centres = prediction.map { [$0] } ?? search.candidates
        let reach = aliasReach * filters.aliasRadius / 0.45
        let choice = aliasChoice(near: centres, radius: reach, notch: notch.weights)
        guard let choice else { return !centres.isEmpty }
        search.aliasMargin = choice.nearestIsBest ? choice.z - choice.zRunnerUp : choice.zNearest - choice.z
        if prediction == nil, choice.z >= Self.minAperiodicSignificance,
           choice.z - choice.zNearest >= Self.minAliasMargin {
            search.candidates = [choice.best]
            search.aliasMargin = choice.z - choice.zRunnerUp
        } else if let expected, prediction != nil,
                  let closest = choice.all.filter({ $0.z >= choice.z - Self.minAliasMargin })
                    .min(by: { (($0.p - expected) * ($0.p - expected)).sum() < (($1.p - expected) * ($1.p - expected)).sum() }) {
            // Aliases the non-periodic content cannot tell apart: the one nearest the
            // position its neighbours in time put the frame at.
            search.center = closest.p
            search.radius = Swift.min(search.radius, filters.aliasRadius)
        } else if prediction != nil, choice.z - choice.zNearest >= Self.minAliasMargin {
            search.center = choice.best
            search.radius = Swift.min(search.radius, filters.aliasRadius)
            search.aliasMargin = choice.z - choice.zRunnerUp
        }
        return !centres.isEmpty
    }

    /// The lattice alias of the fine peak favoured by the non-periodic content.
    ///
    /// On a lattice the fine correlation has a peak at every lattice vector from the true
    /// shift; only the non-periodic content (amorphous regions, edges, defects) tells them
    /// apart. The fine peaks within `radius` of the `centres` (the local
    /// maxima of at least a quarter of the strongest) are scored by the correlation with
    /// the lattice's reflections notched out (`ReflectionNotch`), in σ of that map. Unlike
    /// the coarse stage's low-passed image it uses every frequency of the band, so it is not
    /// misled by slow changes such as a front moving across the field. Cf. the separation
    /// of periodic and non-periodic content by Bragg filtering, R. Kilaas, J. Microsc. 190,
    /// 45 (1998). Reads `product`; leaves the fine map begun (`beginMap`) unless `centres` is
    /// empty. Nil without centres, peaks or spread in the notched map.
    private func aliasChoice(near centres: [SIMD2<Double>], radius: Double, notch: [Float]) -> AliasChoice? {
        guard let first = centres.first else { return nil }
        let windows = searchWindows(around: centres, radius: radius)
        beginMap(notch: notch)
        let (mean, sd) = notchedMapMoments()
        // The map rows each centre's search reads: its window, the peaks' neighbours and the
        // cubic interpolation's reach (two rows beyond).
        let gw = geometry.gridWidth, gh = geometry.gridHeight
        for w in windows {
            ensureRows(w.y0 - 2, w.y1 + 2)
            for y in (w.y0 - 2)...(w.y1 + 2) {
                let r = (y % gh + gh) % gh
                for x in 0..<gw { notchedMap[r * gw + x] = fineFFT.real[r * gw + x] }
            }
        }
        beginMap(notch: nil)
        guard sd > 0 else { return nil }
        return scoreAliases(fineMaxima(in: windows, radius: radius), nearest: first, mean: mean, sd: sd)
    }

    /// `aliasChoice`'s answer: the best peak and its z, the z of the peak nearest the first
    /// centre, the second-highest z, whether the nearest peak is the best, and every scored
    /// peak with its z.
    typealias AliasChoice = (best: SIMD2<Double>, z: Double, zNearest: Double, zRunnerUp: Double, nearestIsBest: Bool,
                             all: [(p: SIMD2<Double>, z: Double)])

    /// A block of fine-map samples around one search centre.
    private struct SearchWindow {
        var x0, x1, y0, y1: Int
        var centre: SIMD2<Double>
    }

    /// The sample window of each centre's disc of `radius`; centres whose window would wrap
    /// round the whole map are left out.
    private func searchWindows(around centres: [SIMD2<Double>], radius: Double) -> [SearchWindow] {
        let g = geometry
        var windows: [SearchWindow] = []
        for c in centres {
            let x0 = Int(((c.x - radius) / g.stepX).rounded(.down)), x1 = Int(((c.x + radius) / g.stepX).rounded(.up))
            let y0 = Int(((c.y - radius) / g.stepY).rounded(.down)), y1 = Int(((c.y + radius) / g.stepY).rounded(.up))
            if x1 - x0 < g.gridWidth - 2, y1 - y0 < g.gridHeight - 2 {
                windows.append(SearchWindow(x0: x0, x1: x1, y0: y0, y1: y1, centre: c))
            }
        }
        return windows
    }

    /// Mean and standard deviation of the whole notched map from its column transforms (the
    /// map begun with the notch): along each row, Σ_x v = w·Re Y₀ and Σ_x v² = w·(Re² Y₀ +
    /// 2 Σ|Y_k|² + Re² Y_{w/2}) (Parseval; the c2r reads only the real part of the zero and
    /// Nyquist bins; w is even).
    private func notchedMapMoments() -> (mean: Double, sd: Double) {
        let gw = geometry.gridWidth, gh = geometry.gridHeight, hw = geometry.halfWidth
        let columns = UnsafeBufferPointer(fineFFT.columnInput)
        var sum = 0.0, sum2 = 0.0
        for c in 0..<hw {
            var s1 = 0.0, s2 = 0.0
            for y in 0..<gh {
                let v = columns[c * gh + y]
                if c == 0 || c == hw - 1 { s1 += Double(v.x); s2 += Double(v.x * v.x) } else { s2 += Double(v.x * v.x + v.y * v.y) }
            }
            if c == 0 { sum = s1 }
            sum2 += c == 0 || c == hw - 1 ? s2 : 2 * s2
        }
        let count = Double(gw * gh)
        sum *= Double(gw); sum2 *= Double(gw)
        let mean = sum / count
        return (mean, Swift.max(0, sum2 / count - mean * mean).squareRoot())
    }

    /// Index in the fine map of grid sample `(nx, ny)`, wrapped.
    @inline(__always)
    private func wrappedIndex(_ nx: Int, _ ny: Int) -> Int {
        let gw = geometry.gridWidth, gh = geometry.gridHeight
        return ((ny % gh + gh) % gh) * gw + (nx % gw + gw) % gw
    }

    /// The positive local maxima of the (plain) fine map within `radius` of each window's
    /// centre, each sample once.
    private func fineMaxima(in windows: [SearchWindow], radius: Double) -> [(x: Int, y: Int, v: Float)] {
        let g = geometry
        var peaks: [(x: Int, y: Int, v: Float)] = []
        var seen = Set<Int>()
        for w in windows {
            ensureRows(w.y0 - 2, w.y1 + 2)
            let c = w.centre
            for ny in w.y0...w.y1 {
                for nx in w.x0...w.x1 {
                    let dx = Double(nx) * g.stepX - c.x, dy = Double(ny) * g.stepY - c.y
                    guard dx * dx + dy * dy <= radius * radius, seen.insert(wrappedIndex(nx, ny)).inserted else { continue }
                    let v = mapValue(nx, ny)
                    var isMax = v > 0
                    for j in -1...1 { for i in -1...1 where (i != 0 || j != 0) && isMax {
                        if mapValue(nx + i, ny + j) > v { isMax = false }
                    } }
                    if isMax { peaks.append((nx, ny, v)) }
                }
            }
        }
        return peaks
    }

    /// The fine peaks of at least a quarter of the strongest (at most `maxAliasCandidates`),
    /// each at its sub-sample vertex, scored by the notched map there in σ.
    private func scoreAliases(_ peaks: [(x: Int, y: Int, v: Float)], nearest first: SIMD2<Double>,
                              mean: Double, sd: Double) -> AliasChoice? {
        guard let strongest = peaks.map(\.v).max() else { return nil }
        let g = geometry
        var best: (p: SIMD2<Double>, z: Double)? = nil, nearest: (d: Double, z: Double, p: SIMD2<Double>)? = nil
        var runnerUp = -Double.infinity
        var all: [(p: SIMD2<Double>, z: Double)] = []
        let strong = peaks.filter { $0.v >= 0.25 * strongest }.sorted { $0.v > $1.v }.prefix(Self.maxAliasCandidates)
        for peak in strong {
            let (nx, ny) = (peak.x, peak.y)
            let ox = Self.parabolaVertex(mapValue(nx - 1, ny), peak.v, mapValue(nx + 1, ny))
            let oy = Self.parabolaVertex(mapValue(nx, ny - 1), peak.v, mapValue(nx, ny + 1))
            let z = (notchedValue(Double(nx) + ox, Double(ny) + oy) - mean) / sd
            let p = SIMD2((Double(nx) + ox) * g.stepX, (Double(ny) + oy) * g.stepY)
            all.append((p, z))
            if z > (best?.z ?? -.infinity) { runnerUp = best?.z ?? runnerUp; best = (p, z) } else { runnerUp = Swift.max(runnerUp, z) }
            let d = ((p - first) * (p - first)).sum()
            if d < (nearest?.d ?? .infinity) { nearest = (d, z, p) }
        }
        guard let best, let nearest else { return nil }
        return (best.p, best.z, nearest.z, runnerUp, nearest.p == best.p, all)
    }

    /// Offset (−½…½ sample) of the vertex of the parabola through three samples; 0 where
    /// they do not curve down.
    private static func parabolaVertex(_ l: Float, _ c: Float, _ r: Float) -> Double {
        let d = Double(l - 2 * c + r)
        return d < 0 ? Swift.max(-0.5, Swift.min(0.5, 0.5 * Double(l - r) / d)) : 0
    }

    /// The notched map at a sub-sample position, by Keys cubic convolution on the grid (the
    /// notched peak is as sharp as the grid step, so its nearest sample would understate it
    /// by an amount that differs between aliases).
    private func notchedValue(_ x: Double, _ y: Double) -> Double {
        let fx = x.rounded(.down), fy = y.rounded(.down)
        let ix = Int(fx), iy = Int(fy), tx = x - fx, ty = y - fy
        var v = 0.0
        for j in -1...2 {
            let wy = Resampling.Kernel.keys(Double(j) - ty)
            for i in -1...2 { v += wy * Resampling.Kernel.keys(Double(i) - tx) * Double(notchedMap[wrappedIndex(ix + i, iy + j)]) }
        }
        return v
    }

    /// The strongest fine peaks scored for their non-periodic content.
    static let maxAliasCandidates = 16

    /// Significance (σ of the notched map) for an alias chosen without a prediction: the
    /// maximum of noise over a few alias peaks sits below 2.5σ.
    static let minAperiodicSignificance = 4.0

    /// How much better (σ of the notched map) another alias must correlate than the one at
    /// the prediction to replace it.
    static let minAliasMargin = 2.0

    /// `image` with its masked-NCC spectra cached.
    func preparedCoarse(_ image: CoarseImage) -> CoarseImage {
        var out = image
        out.spectra = masked.spectra(of: image)
        return out
    }

    /// The coarse (low-pass, non-periodic) correlation peak.
    func coarsePeak(_ moving: BandSpectrum, _ reference: BandSpectrum) -> CorrelationPeak? {
        masked.measure(moving.coarse, against: reference.coarse)
    }

    /// The largest sample of the fine map (rows made as needed) within the search limits
    /// and, if `center` is given, within `radius` of it; returns its shift in px.
    private func bestSample(gridWidth gw: Int, gridHeight gh: Int,
                            stepX: Double, stepY: Double, center: SIMD2<Double>?, radius: Double) -> (Double, Double, Float)? {
        let limit = searchLimit
        var xRange = -Int(limit.x / stepX)...Int(limit.x / stepX)
        var yRange = -Int(limit.y / stepY)...Int(limit.y / stepY)
        if let c = center, radius.isFinite {
            let rx = Swift.max(radius, stepX), ry = Swift.max(radius, stepY)
            let x0 = Int(((c.x - rx) / stepX).rounded(.down)), x1 = Int(((c.x + rx) / stepX).rounded(.up))
            let y0 = Int(((c.y - ry) / stepY).rounded(.down)), y1 = Int(((c.y + ry) / stepY).rounded(.up))
            xRange = Swift.max(x0, -gw / 2 + 1)...Swift.max(Swift.min(x1, gw / 2 - 1), Swift.max(x0, -gw / 2 + 1))
            yRange = Swift.max(y0, -gh / 2 + 1)...Swift.max(Swift.min(y1, gh / 2 - 1), Swift.max(y0, -gh / 2 + 1))
        }
        ensureRows(yRange.lowerBound - 1, yRange.upperBound + 1)
        // Separable overlap normalisation, tabulated once per map.
        let normX = xRange.map { Float(1 / geometry.windowOverlap(Double($0) * stepX, 0)) }
        var best = -Float.infinity, bx = 0, by = 0
        func value(_ nx: Int, _ ny: Int) -> Float {
            mapValue(nx, ny) * Float(1 / geometry.windowOverlap(Double(nx) * stepX, Double(ny) * stepY))
        }
        for ny in yRange {
            let normY = Float(1 / geometry.windowOverlap(0, Double(ny) * stepY))
            for nx in xRange {
                if let c = center, radius.isFinite {
                    let dx = Double(nx) * stepX - c.x, dy = Double(ny) * stepY - c.y
                    if dx * dx + dy * dy > radius * radius + stepX * stepX + stepY * stepY { continue }
                }
                let v = mapValue(nx, ny) * normX[nx - xRange.lowerBound] * normY
                if v > best { best = v; bx = nx; by = ny }
            }
        }
        guard best > -Float.infinity else { return nil }
        // Sub-sample start: vertex of a log-parabola (Gaussian peak) through the three
        // samples on each axis, a plain parabola where a neighbour is not positive.
        func vertex(_ l: Float, _ c: Float, _ r: Float) -> Double {
            var (a, b, d) = (Double(l), Double(c), Double(r))
            if a > 0, b > 0, d > 0 { (a, b, d) = (log(a), log(b), log(d)) }
            let den = a - 2 * b + d
            return den < 0 ? Swift.max(-0.5, Swift.min(0.5, 0.5 * (a - d) / den)) : 0
        }
        let ox = vertex(value(bx - 1, by), best, value(bx + 1, by))
        let oy = vertex(value(bx, by - 1), best, value(bx, by + 1))
        return ((Double(bx) + ox) * stepX, (Double(by) + oy) * stepY, best)
    }
}

import CFFTW
import Foundation

/// A complex number as FFTW stores it: `(re, im)` in one 8-byte value.
public typealias Complex = SIMD2<Float>

/// FFTW plans, made once per size and shared by every thread.
///
/// FFTW's planner is process-global and not thread-safe, so this cache is the one piece
/// of shared state in HeatFront; executing a plan on new arrays is thread-safe.
/// Plans use `FFTW_ESTIMATE`: `FFTW_MEASURE` may pick a different algorithm on each run,
/// which changes the last bits of results and would break the promise of
/// byte-identical outputs for the same inputs (docs/outputs.md).
final class FFTPlanCache: @unchecked Sendable {
    static let shared = FFTPlanCache()

    enum Kind: Hashable {
        case r2c, c2r, c2cForward, c2cBackward
        /// 1-D r2c transforms of every row, then forward c2c transforms of the first
        /// `columns` columns only, each stored contiguously (`FFTWorkspace.forward(columns:)`).
        case rowsR2C, columnsForward(columns: Int)
        /// The two halves of `c2r`: backward c2c transforms of every column of the half
        /// spectrum, each stored contiguously, then one row's c2r.
        case columnsBackward, rowC2R
    }
    struct Key: Hashable { let kind: Kind; let width: Int; let height: Int }

    private let lock = NSLock()
    private var plans: [Key: OpaquePointer] = [:]

    func plan(_ kind: Kind, width: Int, height: Int) -> OpaquePointer {
        lock.lock(); defer { lock.unlock() }
        let key = Key(kind: kind, width: width, height: height)
        if let p = plans[key] { return p }
        // Planning with FFTW_ESTIMATE does not touch the arrays; fftwf_malloc gives them
        // the same alignment as every workspace buffer, as new-array execution requires.
        let n = width * height, nc = height * (width / 2 + 1)
        let real = fftwf_alloc_real(n)!
        let cplx = fftwf_alloc_complex(Swift.max(n, nc))!
        defer { fftwf_free(real); fftwf_free(cplx) }
        let flags = UInt32(FFTW_ESTIMATE)
        let p: OpaquePointer
        switch kind {
        case .r2c: p = fftwf_plan_dft_r2c_2d(Int32(height), Int32(width), real, cplx, flags)
        case .c2r: p = fftwf_plan_dft_c2r_2d(Int32(height), Int32(width), cplx, real, flags)
        case .c2cForward: p = fftwf_plan_dft_2d(Int32(height), Int32(width), cplx, cplx, FFTW_FORWARD, flags)
        case .c2cBackward: p = fftwf_plan_dft_2d(Int32(height), Int32(width), cplx, cplx, FFTW_BACKWARD, flags)
        case .rowsR2C:
            var n = Int32(width)
            p = fftwf_plan_many_dft_r2c(1, &n, Int32(height), real, nil, 1, Int32(width),
                                        cplx, nil, 1, Int32(width / 2 + 1), flags)
        case .columnsForward(let columns):
            var n = Int32(height)
            p = fftwf_plan_many_dft(1, &n, Int32(columns), cplx, nil, 1, Int32(height),
                                    cplx, nil, 1, Int32(height), FFTW_FORWARD, flags)
        case .columnsBackward:
            var n = Int32(height)
            p = fftwf_plan_many_dft(1, &n, Int32(width / 2 + 1), cplx, nil, 1, Int32(height),
                                    cplx, nil, 1, Int32(height), FFTW_BACKWARD, flags)
        case .rowC2R:
            var n = Int32(width)
            p = fftwf_plan_many_dft_c2r(1, &n, 1, cplx, nil, 1, Int32(width / 2 + 1), real, nil, 1, Int32(width), flags)
        }
        plans[key] = p
        return p
    }
}

/// Aligned buffers and cached plans for real 2-D FFTs of one size.
///
/// Create one workspace per thread and reuse it across frames: no allocation happens
/// on `forward()`/`inverse()`. The spectrum holds `height × (width/2 + 1)` values
/// (FFTW's half-complex layout, row-major). Transforms are unnormalised:
/// `inverse(forward(x)) = width·height·x`.
public final class FFTWorkspace {
    public let width: Int
    public let height: Int
    public var spectrumWidth: Int { width / 2 + 1 }
    /// Input of `forward()`, output of `inverse()`.
    public let real: UnsafeMutableBufferPointer<Float>
    /// Output of `forward()`, input of `inverse()` (which overwrites it).
    public let spectrum: UnsafeMutableBufferPointer<Complex>
    /// Made on first use: a workspace that only runs band-limited or row-wise transforms
    /// never plans the full ones (about 1 ms each at 1024² or 288², in a process's first run).
    private lazy var r2c = FFTPlanCache.shared.plan(.r2c, width: width, height: height)
    private lazy var c2r = FFTPlanCache.shared.plan(.c2r, width: width, height: height)

    public init(width: Int, height: Int) {
        precondition(width > 0 && height > 0)
        self.width = width
        self.height = height
        real = UnsafeMutableBufferPointer(start: fftwf_alloc_real(width * height)!, count: width * height)
        let nc = height * (width / 2 + 1)
        let raw = UnsafeMutableRawPointer(fftwf_alloc_complex(nc)!)
        spectrum = UnsafeMutableBufferPointer(start: raw.bindMemory(to: Complex.self, capacity: nc), count: nc)
    }

    deinit {
        fftwf_free(real.baseAddress)
        fftwf_free(UnsafeMutableRawPointer(spectrum.baseAddress))
        columnStorage.map { fftwf_free(UnsafeMutableRawPointer($0.baseAddress)) }
        rowPlans.map { fftwf_free(UnsafeMutableRawPointer($0.buffer)) }
    }

    private var spectrumFFTW: UnsafeMutablePointer<fftwf_complex> {
        UnsafeMutableRawPointer(spectrum.baseAddress!).assumingMemoryBound(to: fftwf_complex.self)
    }

    /// `spectrum = FFT(real)`.
    public func forward() { fftwf_execute_dft_r2c(r2c, real.baseAddress, spectrumFFTW) }

    /// `FFT(real)` in its first `columns` columns only, column by column in `columnSpectrum`
    /// (column `c`, frequency row `r` at `c·height + r`): a band-limited crop needs no more.
    /// The rows' 1-D transforms are left in `spectrum`. Each column is transformed in a
    /// contiguous copy: FFTW's estimated plans for columns strided across a frame's rows are
    /// slower than the copies. On a 1024² frame with 145 of 513 columns it takes 0.88–0.90 ms
    /// against `forward()`'s 1.96–2.03 ms (one core, `FFTW_ESTIMATE`; `heatfront-bench band-fft`).
    public func forward(columns: Int) {
        precondition(columns > 0 && columns <= spectrumWidth)
        if bandPlans?.columns != columns {
            bandPlans = (columns, FFTPlanCache.shared.plan(.rowsR2C, width: width, height: height),
                         FFTPlanCache.shared.plan(.columnsForward(columns: columns), width: width, height: height))
            reserveColumns(columns)
        }
        fftwf_execute_dft_r2c(bandPlans!.rows, real.baseAddress, spectrumFFTW)
        // Copied out in blocks of 16 rows, which stay in cache while their columns are read.
        let src = spectrum.baseAddress!, dst = columnStorage!.baseAddress!, sw = spectrumWidth
        var r0 = 0
        while r0 < height {
            let r1 = Swift.min(r0 + 16, height)
            for c in 0..<columns {
                for r in r0..<r1 { dst[c * height + r] = src[r * sw + c] }
            }
            r0 = r1
        }
        fftwf_execute_dft(bandPlans!.cols, UnsafeMutableRawPointer(dst).assumingMemoryBound(to: fftwf_complex.self),
                          UnsafeMutableRawPointer(dst).assumingMemoryBound(to: fftwf_complex.self))
    }

    /// The result of `forward(columns:)`.
    public var columnSpectrum: UnsafeBufferPointer<Complex> { UnsafeBufferPointer(columnStorage!) }
    /// Column-major spectra (`forward(columns:)`, `inverseColumns`), `columns × height` values.
    private var columnStorage: UnsafeMutableBufferPointer<Complex>?

    private func reserveColumns(_ columns: Int) {
        guard columnStorage?.count != columns * height else { return }
        columnStorage.map { fftwf_free(UnsafeMutableRawPointer($0.baseAddress)) }
        let raw = UnsafeMutableRawPointer(fftwf_alloc_complex(columns * height)!)
        columnStorage = UnsafeMutableBufferPointer(start: raw.bindMemory(to: Complex.self, capacity: columns * height),
                                                   count: columns * height)
    }

    /// The plans of `forward(columns:)`, fetched on its first call (a workspace serves one band).
    private var bandPlans: (columns: Int, rows: OpaquePointer, cols: OpaquePointer)?

    /// `real = IFFT(spectrum)`, unnormalised; destroys `spectrum`.
    public func inverse() { fftwf_execute_dft_c2r(c2r, spectrumFFTW, real.baseAddress) }

    /// `inverse()` in two halves, for callers that need a few rows of the result. The caller
    /// writes the half spectrum column by column into `columnInput` (column `c`, frequency
    /// row `r` at `c·height + r`); `inverseColumns` transforms every column, then
    /// `inverseRow(y)` makes row `y` of `real`. The columns are contiguous because FFTW's
    /// estimated plans for columns strided across rows are slow. On the 288² grid of a 1024²
    /// frame's band: 39–43 µs for the columns and 0.24 µs per row, against 114–120 µs for
    /// `inverse()` (`heatfront-bench band-fft`); the values agree with `inverse()` to rounding
    /// (a test).
    public var columnInput: UnsafeMutableBufferPointer<Complex> {
        reserveColumns(spectrumWidth)
        return columnStorage!
    }

    /// First half of the row-wise inverse: every column of `columnInput`, in place.
    public func inverseColumns() {
        if rowPlans == nil {
            reserveColumns(spectrumWidth)
            let raw = UnsafeMutableRawPointer(fftwf_alloc_complex(spectrumWidth)!)
            rowPlans = (FFTPlanCache.shared.plan(.columnsBackward, width: width, height: height),
                        FFTPlanCache.shared.plan(.rowC2R, width: width, height: height),
                        raw.bindMemory(to: Complex.self, capacity: spectrumWidth))
        }
        let columns = UnsafeMutableRawPointer(columnStorage!.baseAddress!).assumingMemoryBound(to: fftwf_complex.self)
        fftwf_execute_dft(rowPlans!.columns, columns, columns)
    }

    /// Row `y` of `real` from the column-transformed `columnInput` (`inverseColumns`), which it
    /// leaves as it is.
    public func inverseRow(_ y: Int) {
        precondition(rowPlans != nil && y >= 0 && y < height)
        let row = rowPlans!.buffer, columns = columnStorage!.baseAddress!
        for c in 0..<spectrumWidth { row[c] = columns[c * height + y] }
        fftwf_execute_dft_c2r(rowPlans!.row, UnsafeMutableRawPointer(row).assumingMemoryBound(to: fftwf_complex.self),
                              real.baseAddress! + y * width)
    }

    /// The plans of `inverseColumns` and `inverseRow` and the (aligned) row they gather into.
    private var rowPlans: (columns: OpaquePointer, row: OpaquePointer, buffer: UnsafeMutablePointer<Complex>)?

    /// Copies an image into `real`, which must have the workspace's size.
    public func load(_ image: Image) {
        precondition(image.width == width && image.height == height)
        image.pixels.withUnsafeBufferPointer { src in
            real.baseAddress!.update(from: src.baseAddress!, count: src.count)
        }
    }

    /// `real` as an image.
    public func realImage(scale: Float = 1) -> Image {
        Image(width: width, height: height, pixels: real.map { $0 * scale })
    }

    /// Signed spatial frequency (cycles per image) of spectrum row `ky`.
    @inlinable public func frequencyY(_ ky: Int) -> Int { ky <= height / 2 ? ky : ky - height }
}

/// Aligned buffer and cached plans for in-place complex 2-D FFTs of one size
/// (lock-in demodulation, where negative frequencies matter). Unnormalised, like
/// `FFTWorkspace`; one per thread.
public final class ComplexFFTWorkspace {
    public let width: Int
    public let height: Int
    public let data: UnsafeMutableBufferPointer<Complex>
    private let fwd: OpaquePointer
    private let bwd: OpaquePointer

    public init(width: Int, height: Int) {
        precondition(width > 0 && height > 0)
        self.width = width
        self.height = height
        let n = width * height
        let raw = UnsafeMutableRawPointer(fftwf_alloc_complex(n)!)
        data = UnsafeMutableBufferPointer(start: raw.bindMemory(to: Complex.self, capacity: n), count: n)
        fwd = FFTPlanCache.shared.plan(.c2cForward, width: width, height: height)
        bwd = FFTPlanCache.shared.plan(.c2cBackward, width: width, height: height)
    }

    deinit { fftwf_free(UnsafeMutableRawPointer(data.baseAddress)) }

    private var dataFFTW: UnsafeMutablePointer<fftwf_complex> {
        UnsafeMutableRawPointer(data.baseAddress!).assumingMemoryBound(to: fftwf_complex.self)
    }

    public func forward() { fftwf_execute_dft(fwd, dataFFTW, dataFFTW) }
    public func backward() { fftwf_execute_dft(bwd, dataFFTW, dataFFTW) }
}

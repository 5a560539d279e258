/// A 2-D image of 32-bit float pixels, row-major: `pixels[y * width + x]`.
///
/// Row 0 is the first scan line (top of the frame), column 0 the first pixel of a line.
/// Every stage after decoding works on this one value type.
public struct Image: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public var pixels: [Float]

    public init(width: Int, height: Int, pixels: [Float]) {
        precondition(width >= 0 && height >= 0 && pixels.count == width * height,
                     "Image: \(pixels.count) pixels for \(width)×\(height)")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    public init(width: Int, height: Int, fill: Float = 0) {
        self.init(width: width, height: height, pixels: [Float](repeating: fill, count: width * height))
    }

    /// Builds an image by evaluating `value(x, y)` at every pixel.
    public init(width: Int, height: Int, _ value: (Int, Int) -> Float) {
        var pixels = [Float]()
        pixels.reserveCapacity(width * height)
        for y in 0..<height { for x in 0..<width { pixels.append(value(x, y)) } }
        self.init(width: width, height: height, pixels: pixels)
    }

    public var count: Int { width * height }

    public subscript(x: Int, y: Int) -> Float {
        get { pixels[y * width + x] }
        set { pixels[y * width + x] = newValue }
    }

    /// Mean, computed in double precision so large frames do not lose digits.
    public var mean: Double {
        guard !pixels.isEmpty else { return .nan }
        var sum = 0.0
        for p in pixels { sum += Double(p) }
        return sum / Double(pixels.count)
    }

    public var minMax: (min: Float, max: Float) {
        guard var lo = pixels.first else { return (.nan, .nan) }
        var hi = lo
        for p in pixels { lo = Swift.min(lo, p); hi = Swift.max(hi, p) }
        return (lo, hi)
    }

    /// The image with every pixel's sign flipped: dark columns become bright ones.
    public var negated: Image { Image(width: width, height: height, pixels: pixels.map { -$0 }) }

    /// Bilinear sample at a fractional position; `nil` outside the image.
    @inlinable
    public func bilinear(_ x: Double, _ y: Double) -> Float? {
        guard x >= 0, y >= 0, x <= Double(width - 1), y <= Double(height - 1) else { return nil }
        let x0 = Swift.min(Int(x), width - 2 < 0 ? 0 : width - 2)
        let y0 = Swift.min(Int(y), height - 2 < 0 ? 0 : height - 2)
        let fx = Float(x - Double(x0)), fy = Float(y - Double(y0))
        let x1 = Swift.min(x0 + 1, width - 1), y1 = Swift.min(y0 + 1, height - 1)
        let a = pixels[y0 * width + x0], b = pixels[y0 * width + x1]
        let c = pixels[y1 * width + x0], d = pixels[y1 * width + x1]
        return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy
    }

    /// The sub-image `x0..<x1`, `y0..<y1` (clamped to the image).
    public func cropped(x0: Int, y0: Int, x1: Int, y1: Int) -> Image {
        let xa = Swift.max(0, x0), ya = Swift.max(0, y0)
        let xb = Swift.min(width, x1), yb = Swift.min(height, y1)
        guard xb > xa, yb > ya else { return Image(width: 0, height: 0) }
        var out = [Float]()
        out.reserveCapacity((xb - xa) * (yb - ya))
        for y in ya..<yb { out.append(contentsOf: pixels[(y * width + xa)..<(y * width + xb)]) }
        return Image(width: xb - xa, height: yb - ya, pixels: out)
    }
}

/// Frames a stage can read one at a time, as often as it needs, without holding them
/// all: the pipeline backs it with the run's files (decoded on demand), tests with arrays.
/// Stages stream over it (libvips-style) so memory grows with frame size, not frame count.
public protocol ImageSequence: Sendable {
    var count: Int { get }
    var width: Int { get }
    var height: Int { get }
    /// Decodes (or returns) image `index`; may be called from several threads at once.
    func image(at index: Int) throws -> Image
}

/// An in-memory `ImageSequence`, for tests and small stacks.
public struct ImageArray: ImageSequence {
    public let images: [Image]
    public init(_ images: [Image]) {
        precondition(!images.isEmpty && images.allSatisfy { $0.width == images[0].width && $0.height == images[0].height })
        self.images = images
    }
    public var count: Int { images.count }
    public var width: Int { images[0].width }
    public var height: Int { images[0].height }
    public func image(at index: Int) throws -> Image { images[index] }
}

/// A per-pixel yes/no map of an image's size (e.g. the analysed crystal region).
public struct Mask: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public var bits: [Bool]

    public init(width: Int, height: Int, bits: [Bool]) {
        precondition(bits.count == width * height)
        self.width = width
        self.height = height
        self.bits = bits
    }

    public init(width: Int, height: Int, fill: Bool) {
        self.init(width: width, height: height, bits: [Bool](repeating: fill, count: width * height))
    }

    public subscript(x: Int, y: Int) -> Bool {
        get { bits[y * width + x] }
        set { bits[y * width + x] = newValue }
    }

    /// Whether a fractional position lies on a set pixel (false outside the image).
    public func contains(_ x: Double, _ y: Double) -> Bool {
        let ix = Int(x.rounded()), iy = Int(y.rounded())
        guard ix >= 0, iy >= 0, ix < width, iy < height else { return false }
        return bits[iy * width + ix]
    }

    public var setCount: Int { bits.reduce(0) { $0 + ($1 ? 1 : 0) } }
}

/// A line segment in pixel coordinates (x to the right, y down), e.g. a profile line or
/// the boundary a reaction front starts from.
public struct LineSegment: Sendable, Equatable, Codable {
    public var x0, y0, x1, y1: Double
    public init(x0: Double, y0: Double, x1: Double, y1: Double) {
        self.x0 = x0; self.y0 = y0; self.x1 = x1; self.y1 = y1
    }
    public var length: Double { ((x1 - x0) * (x1 - x0) + (y1 - y0) * (y1 - y0)).squareRoot() }
}

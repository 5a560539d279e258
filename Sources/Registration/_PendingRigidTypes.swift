// TEMPORARY: the rigid helper's types, so non-rigid code builds before the merge. Deleted at merge.
import FrameCore
public struct FrameShift: Sendable, Equatable { public var dx: Double; public var dy: Double; public var score: Double; public var rejection: String?
    public init(dx: Double, dy: Double, score: Double, rejection: String?) { self.dx = dx; self.dy = dy; self.score = score; self.rejection = rejection } }
public enum Interpolation: Sendable { case bilinear, bicubic }
public struct AlignedAverage: Sendable { public var image: Image; public var weight: Image; public var frameCount: Int
    public init(image: Image, weight: Image, frameCount: Int) { self.image = image; self.weight = weight; self.frameCount = frameCount } }

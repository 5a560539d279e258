import Testing
import FrameIO

/// The vectorised integer → Float conversion of `PixelPlane.floatPixels` equals `Float(value)`
/// element by element (SIMD body and scalar tail, extreme values, every integer type).
@Suite("PixelPlane conversion")
struct PixelConversionTests {
    static func values<T: FixedWidthInteger>(_: T.Type, count: Int) -> [T] {
        var rng = UInt64(0x9E3779B97F4A7C15)
        var out: [T] = [T.min, T.max, 0, T.max - 1, T.min + 1]
        while out.count < count {
            rng = rng &* 6364136223846793005 &+ 1442695040888963407
            out.append(T(truncatingIfNeeded: rng >> 7))
        }
        return out
    }

    @Test("every integer type, lengths around the 16-lane body", arguments: [0, 1, 15, 16, 17, 1023])
    func integerTypes(count: Int) {
        func check<T: FixedWidthInteger>(_ v: [T], _ wrap: ([T]) -> PixelPlane.Values) {
            let plane = PixelPlane(width: v.count, height: 1, values: wrap(v))
            #expect(plane.floatPixels() == v.map { Float($0) }, "\(T.self) × \(v.count)")
        }
        check(Array(Self.values(UInt8.self, count: count).prefix(count))) { .uint8($0) }
        check(Array(Self.values(Int8.self, count: count).prefix(count))) { .int8($0) }
        check(Array(Self.values(UInt16.self, count: count).prefix(count))) { .uint16($0) }
        check(Array(Self.values(Int16.self, count: count).prefix(count))) { .int16($0) }
        check(Array(Self.values(UInt32.self, count: count).prefix(count))) { .uint32($0) }
        check(Array(Self.values(Int32.self, count: count).prefix(count))) { .int32($0) }
        check(Array(Self.values(UInt64.self, count: count).prefix(count))) { .uint64($0) }
        check(Array(Self.values(Int64.self, count: count).prefix(count))) { .int64($0) }
    }
}

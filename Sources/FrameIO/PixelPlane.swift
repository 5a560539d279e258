import Foundation
import FrameCore

/// One frame's pixels in their native type, before conversion to float.
///
/// Kept native so that fingerprints (sha256 of the values as float64) are exact for
/// 32- and 64-bit data that a float32 cannot hold.
public struct PixelPlane: Sendable {
    public enum Values: Sendable {
        case uint8([UInt8]), int8([Int8]), uint16([UInt16]), int16([Int16])
        case uint32([UInt32]), int32([Int32]), uint64([UInt64]), int64([Int64])
        /// Half-precision samples, widened exactly to `Float` (every binary16 value is a binary32 one).
        case float16([Float])
        case float32([Float]), float64([Double])
    }

    public let width: Int
    public let height: Int
    public let values: Values

    public init(width: Int, height: Int, values: Values) {
        self.width = width
        self.height = height
        self.values = values
    }

    public var sampleType: SampleType {
        switch values {
        case .uint8: .uint8
        case .int8: .int8
        case .uint16: .uint16
        case .int16: .int16
        case .uint32: .uint32
        case .int32: .int32
        case .uint64: .uint64
        case .int64: .int64
        case .float16: .float16
        case .float32: .float32
        case .float64: .float64
        }
    }

    public func floatPixels() -> [Float] {
        switch values {
        case .uint8(let v): Self.convert(v)
        case .int8(let v): Self.convert(v)
        case .uint16(let v): Self.convert(v)
        case .int16(let v): Self.convert(v)
        case .uint32(let v): Self.convert(v)
        case .int32(let v): Self.convert(v)
        case .uint64(let v): v.map { Float($0) }
        case .int64(let v): v.map { Float($0) }
        case .float16(let v): v
        case .float32(let v): v
        case .float64(let v): v.map { Float($0) }
        }
    }

    /// Integer samples to Float, sixteen at a time (the same rounding as `Float($0)`).
    static func convert<T: FixedWidthInteger & SIMDScalar>(_ v: [T]) -> [Float] {
        let n = v.count
        return [Float](unsafeUninitializedCapacity: n) { out, count in
            v.withUnsafeBufferPointer { src in
                var i = 0
                while i + 16 <= n {
                    let x = UnsafeRawPointer(src.baseAddress! + i).loadUnaligned(as: SIMD16<T>.self)
                    UnsafeMutableRawPointer(out.baseAddress! + i).storeBytes(of: SIMD16<Float>(x), as: SIMD16<Float>.self)
                    i += 16
                }
                while i < n { out[i] = Float(src[i]); i += 1 }
            }
            count = n
        }
    }

    public func doubleValues() -> [Double] {
        switch values {
        case .uint8(let v): v.map { Double($0) }
        case .int8(let v): v.map { Double($0) }
        case .uint16(let v): v.map { Double($0) }
        case .int16(let v): v.map { Double($0) }
        case .uint32(let v): v.map { Double($0) }
        case .int32(let v): v.map { Double($0) }
        case .uint64(let v): v.map { Double($0) }
        case .int64(let v): v.map { Double($0) }
        case .float16(let v): v.map { Double($0) }
        case .float32(let v): v.map { Double($0) }
        case .float64(let v): v
        }
    }

    public var image: Image { Image(width: width, height: height, pixels: floatPixels()) }

    /// Decodes `width × height` samples packed in `bytes` (exactly that many bytes or more).
    ///
    /// The caller has already checked that the bytes exist in the file; this only
    /// reinterprets them, swapping byte order when the file's differs from the host's.
    public static func decode(_ bytes: UnsafeRawBufferPointer, type: SampleType, littleEndian: Bool,
                              width: Int, height: Int) -> PixelPlane {
        let n = width * height
        precondition(bytes.count >= n * type.byteCount, "PixelPlane.decode: too few bytes")
        let swap = littleEndian != (1.littleEndian == 1)
        func read<T: FixedWidthInteger>(_: T.Type) -> [T] {
            [T](unsafeUninitializedCapacity: n) { buf, count in
                memcpy(buf.baseAddress!, bytes.baseAddress!, n * MemoryLayout<T>.size)
                if swap { for i in 0..<n { buf[i] = buf[i].byteSwapped } }
                count = n
            }
        }
        let values: Values
        switch type {
        case .uint8: values = .uint8(read(UInt8.self))
        case .int8: values = .int8(read(Int8.self))
        case .uint16: values = .uint16(read(UInt16.self))
        case .int16: values = .int16(read(Int16.self))
        case .uint32: values = .uint32(read(UInt32.self))
        case .int32: values = .int32(read(Int32.self))
        case .uint64: values = .uint64(read(UInt64.self))
        case .int64: values = .int64(read(Int64.self))
        case .float16: values = .float16(read(UInt16.self).map(halfToFloat))
        case .float32: values = .float32(read(UInt32.self).map { Float(bitPattern: $0) })
        case .float64: values = .float64(read(UInt64.self).map { Double(bitPattern: $0) })
        }
        return PixelPlane(width: width, height: height, values: values)
    }
}

/// IEEE 754 binary16 → binary32, exactly (subnormals, infinities and NaN included).
func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exp = Int((h >> 10) & 0x1F), frac = UInt32(h & 0x3FF)
    if exp == 0 {
        let v = Float(frac) * Float(sign: .plus, exponent: -24, significand: 1)
        return sign != 0 ? -v : v
    }
    if exp == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (frac << 13)) }
    return Float(bitPattern: sign | (UInt32(exp - 15 + 127) << 23) | (frac << 13))
}

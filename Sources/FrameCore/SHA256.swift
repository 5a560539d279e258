import CLibCrypto
import Foundation

/// Streaming SHA-256 (OpenSSL's libcrypto), for input checksums and pixel fingerprints.
public final class SHA256Hasher {
    private let ctx: OpaquePointer

    public init() {
        _ = Self.libraryReady
        ctx = EVP_MD_CTX_new()!
        EVP_DigestInit_ex(ctx, EVP_sha256(), nil)
    }

    deinit { EVP_MD_CTX_free(ctx) }

    /// libcrypto initialised without its exit-time cleanup: a run that stops early (an
    /// error) exits while another thread may still be hashing (the build digest is read in
    /// the background), and the cleanup would free what that thread is using.
    private static let libraryReady: Void = {
        OPENSSL_init_crypto(UInt64(OPENSSL_INIT_NO_ATEXIT), nil)
    }()

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        EVP_DigestUpdate(ctx, base, bytes.count)
    }

    public func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    /// Hashes values as little-endian float64, the corpus manifest's pixel fingerprint.
    public func updateFloat64LE(_ values: [Double]) {
        #if _endian(little)
        values.withUnsafeBytes { update($0) }
        #else
        update(values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian) { Array($0) } })
        #endif
    }

    /// The digest as lower-case hex. The hasher cannot be used afterwards.
    public func finalizeHex() -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        var len: UInt32 = 0
        EVP_DigestFinal_ex(ctx, &digest, &len)
        return digest.prefix(Int(len)).map { String(format: "%02x", $0) }.joined()
    }

    public static func hex(_ bytes: UnsafeRawBufferPointer) -> String {
        let h = SHA256Hasher(); h.update(bytes); return h.finalizeHex()
    }
}

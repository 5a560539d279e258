#include <blosc.h>
#include <zstd.h>
#include <zlib.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

// Decoders for zarr chunks (numcodecs' Blosc, Zstd, Zlib and GZip codecs), through the
// libraries themselves. Each writes exactly `dstsize` bytes into `dst` or fails: the
// caller knows a chunk's decoded size from the array's metadata and allocates that, never
// a size read from the compressed stream. Returns 0 on success, a negative code otherwise.

/// A Blosc 1 frame (numcodecs.Blosc, HyperSpy's ZSpy default: zstd inside, byte shuffle).
static inline int czarr_blosc(const void *src, size_t srcsize, void *dst, size_t dstsize) {
    size_t nbytes = 0, cbytes = 0, blocksize = 0;
    if (srcsize < BLOSC_MIN_HEADER_LENGTH) return -1;
    // Checks the header's sizes against the buffer before anything is decoded.
    if (blosc_cbuffer_validate(src, srcsize, &nbytes) != 0) return -2;
    blosc_cbuffer_sizes(src, &nbytes, &cbytes, &blocksize);
    if (nbytes != dstsize || cbytes > srcsize) return -3;
    int n = blosc_decompress_ctx(src, dst, dstsize, 1);
    return (n >= 0 && (size_t)n == dstsize) ? 0 : -4;
}

/// A Zstandard frame (numcodecs.Zstd).
static inline int czarr_zstd(const void *src, size_t srcsize, void *dst, size_t dstsize) {
    unsigned long long declared = ZSTD_getFrameContentSize(src, srcsize);
    if (declared == ZSTD_CONTENTSIZE_ERROR) return -2;
    if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != dstsize) return -3;
    size_t n = ZSTD_decompress(dst, dstsize, src, srcsize);
    return (!ZSTD_isError(n) && n == dstsize) ? 0 : -4;
}

/// A zlib (`gzip` = 0: numcodecs.Zlib) or gzip (`gzip` = 1: numcodecs.GZip) stream.
static inline int czarr_inflate(const void *src, size_t srcsize, void *dst, size_t dstsize, int gzip) {
    if (srcsize > 0xFFFFFFFFu || dstsize > 0xFFFFFFFFu) return -1;
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit2(&s, gzip ? 16 + MAX_WBITS : MAX_WBITS) != Z_OK) return -2;
    s.next_in = (Bytef *)src; s.avail_in = (uInt)srcsize;
    s.next_out = (Bytef *)dst; s.avail_out = (uInt)dstsize;
    int r = inflate(&s, Z_FINISH);
    size_t out = dstsize - s.avail_out;
    inflateEnd(&s);
    return (r == Z_STREAM_END && out == dstsize) ? 0 : -4;
}

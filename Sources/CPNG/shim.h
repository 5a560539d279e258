#include <png.h>
#include <zlib.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// libpng reports errors by longjmp-ing out of its calls, which must never cross Swift
// frames. So every libpng call happens in these C functions: errors are caught by the
// setjmp here, the message recorded in `err`, and a plain status returned to Swift.

typedef struct {
    uint32_t width, height;
    int bit_depth;        // of the pixels returned: 8 or 16
    int channels;         // 1 (grey) or 3 (RGB), alpha dropped
    int source_color_type, source_bit_depth;
    unsigned char *pixels; // rows packed, 16-bit samples in host order; free with cpng_free
    char *text;           // "key\0value\0key\0value\0…" of every tEXt/zTXt/iTXt chunk
    size_t text_size;
    char err[256];
} cpng_image;

typedef struct { char *err; } cpng_errctx;

// Largest ancillary chunk (text, ICC profile) libpng may allocate: 16 MiB, the metadata cap
// of every decoder (FrameLimits.maxMetadataBytes); and most ancillary chunks per file.
#define CPNG_MAX_CHUNK_BYTES ((size_t)1 << 24)
#define CPNG_MAX_ANCILLARY_CHUNKS 1000

static void cpng_error_fn(png_structp png, png_const_charp msg) {
    cpng_errctx *ctx = (cpng_errctx *)png_get_error_ptr(png);
    if (ctx && ctx->err) snprintf(ctx->err, 256, "%s", msg);
    png_longjmp(png, 1);
}
static void cpng_warning_fn(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

static void cpng_collect_text(png_structp png, png_infop info, cpng_image *out) {
    png_textp texts = NULL;
    int n = png_get_text(png, info, &texts, NULL);
    for (int i = 0; i < n; i++) {
        size_t klen = strlen(texts[i].key);
        size_t vlen = texts[i].text ? (texts[i].compression > 0 ? texts[i].itxt_length : texts[i].text_length) : 0;
        if (texts[i].text && vlen == 0) vlen = strlen(texts[i].text);
        char *grown = (char *)realloc(out->text, out->text_size + klen + vlen + 2);
        if (!grown) return;
        out->text = grown;
        memcpy(out->text + out->text_size, texts[i].key, klen + 1);
        out->text_size += klen + 1;
        if (vlen) memcpy(out->text + out->text_size, texts[i].text, vlen);
        out->text[out->text_size + vlen] = 0;
        out->text_size += vlen + 1;
    }
}

/// Checks a PNG's chunk structure without inflating the image: signature, IHDR first, every
/// chunk inside the file with a matching CRC-32, at least one IDAT, and IEND. Sets
/// `*text_after_image` when a text chunk (tEXt/zTXt/iTXt) follows the image data, which a
/// header-only read would miss. Returns 0 when the structure is sound; otherwise 1 when the
/// file ends early, 2 when a chunk is damaged or claims more than the file holds, 3 when it
/// is not a PNG, 4 when it cannot be read, with the reason in `err`. libpng never sees a file
/// that fails here: it takes chunk lengths on trust and allocates (and zero-fills) a text
/// chunk's claimed length before reading it, so a 4 KB file claiming a 2 GB text chunk
/// would cost 2 GB.
static int cpng_probe(const char *path, int *text_after_image, char err[256]) {
    *text_after_image = 0;
    err[0] = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) { snprintf(err, 256, "cannot open file"); return 4; }
    static const unsigned char signature[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    unsigned char head[8], block[1 << 16];
    int status = 1, chunks = 0, seen_idat = 0;
    fseek(fp, 0, SEEK_END);
    long file_size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    if (fread(head, 1, 8, fp) != 8) { snprintf(err, 256, "shorter than a PNG signature"); goto done; }
    if (memcmp(head, signature, 8) != 0) { snprintf(err, 256, "not a PNG file (bad signature)"); status = 3; goto done; }
    for (;;) {
        long at = ftell(fp);
        if (fread(head, 1, 8, fp) != 8) { snprintf(err, 256, "the file ends at byte %ld before IEND", at); goto done; }
        uint32_t len = ((uint32_t)head[0] << 24) | ((uint32_t)head[1] << 16) | ((uint32_t)head[2] << 8) | head[3];
        const unsigned char *type = head + 4;
        char name[5] = {0};
        for (int k = 0; k < 4; k++) name[k] = (type[k] >= 32 && type[k] < 127) ? (char)type[k] : '?';
        if (chunks++ == 0 && memcmp(type, "IHDR", 4) != 0) {
            snprintf(err, 256, "first chunk is '%s', not IHDR", name); status = 2; goto done;
        }
        long remaining = file_size - at - 12;
        if ((long)len > remaining) {
            // A claim far beyond the file is a damaged or hostile header; a short one, a cut file.
            status = ((double)len > 2.0 * (double)file_size + 65536.0) ? 2 : 1;
            snprintf(err, 256, "chunk %s at byte %ld claims %u bytes but the file has %ld after it",
                     name, at, len, remaining < 0 ? 0 : remaining);
            goto done;
        }
        // CRC over type and data, streamed through a fixed block: no allocation follows
        // from a length field.
        uLong crc = crc32(crc32(0L, Z_NULL, 0), type, 4);
        for (uint32_t left = len; left > 0;) {
            size_t n = left < sizeof block ? left : sizeof block;
            if (fread(block, 1, n, fp) != n) { snprintf(err, 256, "chunk %s at byte %ld is cut short", name, at); goto done; }
            crc = crc32(crc, block, (uInt)n);
            left -= (uint32_t)n;
        }
        unsigned char stored[4];
        if (fread(stored, 1, 4, fp) != 4) { snprintf(err, 256, "chunk %s at byte %ld is cut short", name, at); goto done; }
        if ((uint32_t)crc != (((uint32_t)stored[0] << 24) | ((uint32_t)stored[1] << 16) | ((uint32_t)stored[2] << 8) | stored[3])) {
            snprintf(err, 256, "chunk %s at byte %ld fails its CRC check", name, at); status = 2; goto done;
        }
        if (memcmp(type, "IDAT", 4) == 0) seen_idat = 1;
        else if (seen_idat && (!memcmp(type, "tEXt", 4) || !memcmp(type, "zTXt", 4) || !memcmp(type, "iTXt", 4)))
            *text_after_image = 1;
        else if (memcmp(type, "IEND", 4) == 0) {
            if (seen_idat) status = 0;
            else { snprintf(err, 256, "no image data (IDAT) before IEND"); status = 2; }
            goto done;
        }
    }
done:
    fclose(fp);
    return status;
}

/// Reads a PNG: greyscale (1–16 bit) as grey; palette and RGB(A) as RGB; alpha dropped.
/// `max_bytes` bounds the stored pixel bytes (checked from the header before any
/// allocation); the returned buffer is at most 24× that (1-bit palette → 8-bit RGB).
/// With `with_pixels` = 0 only the header and the text chunks before the image data are
/// read (size, layout and metadata; `pixels` stays NULL).
/// Returns 0 on success, 1 when the file cannot be opened, 2 when it is not a PNG,
/// 3 when it is too large for `max_bytes`, 4 on a libpng error (message in `err`).
static int cpng_read(const char *path, size_t max_bytes, int with_pixels, cpng_image *out) {
    memset(out, 0, sizeof *out);
    FILE *fp = fopen(path, "rb");
    if (!fp) { snprintf(out->err, 256, "cannot open file"); return 1; }
    unsigned char sig[8];
    size_t got = fread(sig, 1, 8, fp);
    if (got < 8 || png_sig_cmp(sig, 0, 8) != 0) {
        fclose(fp);
        snprintf(out->err, 256, got < 8 ? "shorter than a PNG signature" : "not a PNG file (bad signature)");
        return 2;
    }
    cpng_errctx ctx = { out->err };
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, cpng_error_fn, cpng_warning_fn);
    if (!png) { fclose(fp); return 4; }
    png_infop info = png_create_info_struct(png);
    volatile int status = 0;
    png_bytep *volatile rows = NULL;
    if (!info) { png_destroy_read_struct(&png, NULL, NULL); fclose(fp); return 4; }
    if (setjmp(png_jmpbuf(png))) {
        status = 4;
        goto done;
    }
    png_init_io(png, fp);
    png_set_sig_bytes(png, 8);
    // Keep libpng's own dimension limits sane; the byte bound below is the real guard.
    png_set_user_limits(png, 1u << 20, 1u << 20);
    // Ancillary chunks (text, ICC profiles, sPLT) are read whole into memory, and libpng
    // takes their length from the file: without a cap, a 4 KB file whose text chunk claims
    // 2 GB has libpng allocate 2 GB before its read fails. No chunk may hold, or inflate to,
    // more than the metadata cap or the file's size times deflate's ratio.
    png_set_chunk_malloc_max(png, max_bytes < CPNG_MAX_CHUNK_BYTES ? max_bytes : CPNG_MAX_CHUNK_BYTES);
    png_set_chunk_cache_max(png, CPNG_MAX_ANCILLARY_CHUNKS);
    png_read_info(png, info);
    {
        png_uint_32 w = 0, h = 0;
        int depth = 0, ctype = 0;
        png_get_IHDR(png, info, &w, &h, &depth, &ctype, NULL, NULL, NULL);
        out->source_color_type = ctype;
        out->source_bit_depth = depth;
        // Bound the stored (pre-expansion) size: deflate cannot expand more than ~1032:1.
        size_t stored_rowbytes = png_get_rowbytes(png, info);
        if (h == 0 || stored_rowbytes == 0 || (double)stored_rowbytes * (double)h > (double)max_bytes) {
            snprintf(out->err, 256, "header claims %ux%u pixels (%.0f bytes), more than the file can hold",
                     (unsigned)w, (unsigned)h, (double)stored_rowbytes * (double)h);
            status = 3; goto done;
        }
        if (ctype == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
        if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
        if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
        if (ctype & PNG_COLOR_MASK_ALPHA || png_get_valid(png, info, PNG_INFO_tRNS)) png_set_strip_alpha(png);
        if (depth == 16) {
            uint16_t probe = 1;
            if (*(unsigned char *)&probe == 1) png_set_swap(png);   // PNG is big-endian
        }
        png_read_update_info(png, info);
        int channels = png_get_channels(png, info);
        int bd = png_get_bit_depth(png, info);
        size_t rowbytes = png_get_rowbytes(png, info);
        if ((channels != 1 && channels != 3) || (bd != 8 && bd != 16)) {
            snprintf(out->err, 256, "unsupported layout after conversion: %d channels, %d bits", channels, bd);
            status = 4; goto done;
        }
        out->width = w; out->height = h; out->bit_depth = bd; out->channels = channels;
        if (!with_pixels) { cpng_collect_text(png, info, out); goto done; }
        out->pixels = (unsigned char *)malloc(rowbytes * h);
        rows = (png_bytep *)malloc(sizeof(png_bytep) * h);
        if (!out->pixels || !rows) { snprintf(out->err, 256, "out of memory"); status = 4; goto done; }
        for (png_uint_32 y = 0; y < h; y++) rows[y] = out->pixels + (size_t)y * rowbytes;
        png_read_image(png, rows);
        png_read_end(png, info);   // text chunks after the image data land in `info` too
        cpng_collect_text(png, info, out);
    }
done:
    if (status != 0) { free(out->pixels); out->pixels = NULL; }
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    fclose(fp);
    return status;
}

/// Decodes a PNG held in memory as 8-bit RGBA (libpng's simplified API; alpha kept, not
/// premultiplied), for pictures HeatFront or gnuplot drew. Fails with a message in `err`
/// when it holds more than `max_pixels` pixels. `*pixels` is malloc'ed; free it with `free`.
static int cpng_read_rgba8(const void *bytes, size_t size, size_t max_pixels, uint32_t *width, uint32_t *height,
                           unsigned char **pixels, char err[256]) {
    err[0] = 0;
    *pixels = NULL;
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&image, bytes, size)) { snprintf(err, 256, "%s", image.message); return 1; }
    image.format = PNG_FORMAT_RGBA;
    if ((size_t)image.width * image.height > max_pixels) {
        snprintf(err, 256, "%u × %u pixels, more than allowed", image.width, image.height);
        png_image_free(&image);
        return 2;
    }
    unsigned char *buffer = (unsigned char *)malloc(PNG_IMAGE_SIZE(image));
    if (!buffer) { png_image_free(&image); snprintf(err, 256, "out of memory"); return 3; }
    if (!png_image_finish_read(&image, NULL, buffer, 0, NULL)) {
        snprintf(err, 256, "%s", image.message);
        free(buffer);
        return 1;
    }
    *width = image.width; *height = image.height; *pixels = buffer;
    return 0;
}

static inline void cpng_free(cpng_image *img) {
    free(img->pixels); img->pixels = NULL;
    free(img->text); img->text = NULL;
}

// A growable buffer libpng writes into (`cpng_encode`); free `bytes` with free(), also on
// failure.
typedef struct { unsigned char *bytes; size_t size, capacity; } cpng_buffer;

static void cpng_buffer_write(png_structp png, png_bytep data, png_size_t length) {
    cpng_buffer *b = (cpng_buffer *)png_get_io_ptr(png);
    if (b->size + length > b->capacity) {
        size_t capacity = b->capacity ? b->capacity : 65536;
        while (capacity < b->size + length) capacity *= 2;
        unsigned char *grown = (unsigned char *)realloc(b->bytes, capacity);
        if (!grown) png_error(png, "out of memory");
        b->bytes = grown; b->capacity = capacity;
    }
    memcpy(b->bytes + b->size, data, length);
    b->size += length;
}
static void cpng_buffer_flush(png_structp png) { (void)png; }

/// Encodes a PNG into `mem`. `color_type` is PNG_COLOR_TYPE_GRAY, _RGB or _RGBA; `data` holds
/// packed rows, 16-bit samples in host order. When `text_key` is non-NULL an iTXt chunk
/// (compressed) with that key and UTF-8 `text` is written before the image data.
/// `scaled_picture`: every row filtered against the one above (PNG filter Up) instead of
/// libpng trying every filter on every row: a picture scaled up by nearest neighbour repeats
/// rows, which Up turns into runs of zeros. `pixels_per_metre` > 0 adds a pHYs chunk
/// (physical pixel density). Returns 0 on success, otherwise an error message is in `err`.
static int cpng_encode(cpng_buffer *mem, uint32_t width, uint32_t height, int bit_depth, int color_type,
                       const void *data, const char *text_key, const char *text, int level, int scaled_picture,
                       uint32_t pixels_per_metre, char err[256]) {
    err[0] = 0;
    cpng_errctx ctx = { err };
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, cpng_error_fn, cpng_warning_fn);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    volatile int status = 0;
    if (!png || !info) { snprintf(err, 256, "libpng init failed"); status = 4; goto done; }
    if (setjmp(png_jmpbuf(png))) { status = 4; goto done; }
    png_set_write_fn(png, mem, cpng_buffer_write, cpng_buffer_flush);
    png_set_IHDR(png, info, width, height, bit_depth, color_type, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(png, level);
    if (scaled_picture) png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_UP);
    if (pixels_per_metre > 0) png_set_pHYs(png, info, pixels_per_metre, pixels_per_metre, PNG_RESOLUTION_METER);
    if (text_key) {
        png_text t;
        memset(&t, 0, sizeof t);
        t.compression = PNG_ITXT_COMPRESSION_zTXt;
        t.key = (png_charp)text_key;
        t.text = (png_charp)text;
        t.itxt_length = strlen(text);
        t.lang = NULL; t.lang_key = NULL;
        png_set_text(png, info, &t, 1);
    }
    png_write_info(png, info);
    if (bit_depth == 16) {
        uint16_t probe = 1;
        if (*(unsigned char *)&probe == 1) png_set_swap(png);
    }
    {
        int channels = color_type == PNG_COLOR_TYPE_RGBA ? 4 : color_type == PNG_COLOR_TYPE_RGB ? 3 : 1;
        size_t rowbytes = (size_t)width * channels * (bit_depth / 8);
        for (uint32_t y = 0; y < height; y++)
            png_write_row(png, (png_const_bytep)((const unsigned char *)data + (size_t)y * rowbytes));
    }
    png_write_end(png, info);
done:
    if (png) png_destroy_write_struct(&png, info ? &info : NULL);
    return status;
}

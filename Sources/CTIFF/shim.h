#include <tiffio.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
// libtiff reports problems through variadic handlers, which Swift cannot implement;
// these C helpers format the message into a thread-local buffer Swift can read.
// (A function-local static: Swift's importer emits inline functions, not header globals.)
static inline char *ctiff_error_buffer(void) {
    static _Thread_local char buffer[512];
    return buffer;
}
static void ctiff_error_handler(const char *module, const char *fmt, va_list ap) {
    vsnprintf(ctiff_error_buffer(), 512, fmt, ap);
}
static void ctiff_warning_handler(const char *module, const char *fmt, va_list ap) { }
static inline void ctiff_install_handlers(void) {
    TIFFSetErrorHandler(ctiff_error_handler);
    TIFFSetWarningHandler(ctiff_warning_handler);
}
static inline const char *ctiff_last_error_message(void) { return ctiff_error_buffer(); }
static inline void ctiff_clear_error(void) { ctiff_error_buffer()[0] = 0; }

// TIFFGetField/TIFFSetField are variadic, which Swift cannot call: one typed wrapper
// per value shape HeatFront needs. Each getter returns 1 when the tag is present.
static inline int ctiff_get_u16(TIFF *t, uint32_t tag, uint16_t *v) { return TIFFGetField(t, tag, v); }
static inline int ctiff_get_u32(TIFF *t, uint32_t tag, uint32_t *v) { return TIFFGetField(t, tag, v); }
static inline int ctiff_get_u64(TIFF *t, uint32_t tag, uint64_t *v) { return TIFFGetField(t, tag, v); }
static inline int ctiff_get_float(TIFF *t, uint32_t tag, float *v) { return TIFFGetField(t, tag, v); }
static inline int ctiff_get_string(TIFF *t, uint32_t tag, const char **v) { return TIFFGetField(t, tag, v); }
/// Defaulted getter (e.g. SampleFormat, PlanarConfig, ResolutionUnit).
static inline int ctiff_get_u16_defaulted(TIFF *t, uint32_t tag, uint16_t *v) { return TIFFGetFieldDefaulted(t, tag, v); }

/// The raw value of any tag whose value libtiff keeps as a counted array: vendor tags
/// libtiff does not know (registered as anonymous fields), ASCII tags, arrays. `*type`
/// is the TIFF data type, `*count` the number of items of that type.
static inline int ctiff_get_array(TIFF *t, uint32_t tag, uint32_t *count, const void **data, int *type) {
    const TIFFField *f = TIFFFieldWithTag(t, tag);
    if (!f) return 0;
    *type = (int)TIFFFieldDataType(f);
    if (TIFFFieldPassCount(f)) {
        if (TIFFFieldReadCount(f) == TIFF_VARIABLE2) {
            uint32_t c = 0; void *p = NULL;
            if (!TIFFGetField(t, tag, &c, &p)) return 0;
            *count = c; *data = p; return 1;
        } else {
            uint16_t c = 0; void *p = NULL;
            if (!TIFFGetField(t, tag, &c, &p)) return 0;
            *count = c; *data = p; return 1;
        }
    }
    if (*type == TIFF_ASCII) {
        const char *s = NULL;
        if (!TIFFGetField(t, tag, &s) || !s) return 0;
        *count = (uint32_t)strlen(s); *data = s; return 1;
    }
    return 0;
}

static inline int ctiff_set_u16(TIFF *t, uint32_t tag, uint16_t v) { return TIFFSetField(t, tag, (int)v); }
static inline int ctiff_set_u32(TIFF *t, uint32_t tag, uint32_t v) { return TIFFSetField(t, tag, v); }
static inline int ctiff_set_u64(TIFF *t, uint32_t tag, uint64_t v) { return TIFFSetField(t, tag, v); }
static inline int ctiff_set_double(TIFF *t, uint32_t tag, double v) { return TIFFSetField(t, tag, v); }
static inline int ctiff_set_string(TIFF *t, uint32_t tag, const char *v) { return TIFFSetField(t, tag, v); }

/// Registers the DigitalMicrograph calibration tags (as RosettaSciIO writes them) so that
/// a writer can set them: 65003/65004 x/y unit (ASCII), 65009/65010 x/y scale (DOUBLE).
static inline int ctiff_register_dm_tags(TIFF *t) {
    static const TIFFFieldInfo info[] = {
        {65003, -1, -1, TIFF_ASCII, FIELD_CUSTOM, 1, 0, (char *)"DMXUnit"},
        {65004, -1, -1, TIFF_ASCII, FIELD_CUSTOM, 1, 0, (char *)"DMYUnit"},
        {65009, 1, 1, TIFF_DOUBLE, FIELD_CUSTOM, 1, 0, (char *)"DMXScale"},
        {65010, 1, 1, TIFF_DOUBLE, FIELD_CUSTOM, 1, 0, (char *)"DMYScale"},
    };
    return TIFFMergeFieldInfo(t, info, 4) == 0;
}

/// Writes an EXIF sub-IFD holding only SubSecTime and returns its offset in `*offset`,
/// then starts a fresh image directory (the caller sets TIFFTAG_EXIFIFD to the offset).
static inline int ctiff_write_exif_subsec(TIFF *t, const char *subsec, uint64_t *offset) {
    if (TIFFCreateEXIFDirectory(t) != 0) return 0;
    if (!TIFFSetField(t, EXIFTAG_SUBSECTIME, subsec)) return 0;
    if (!TIFFWriteCustomDirectory(t, offset)) return 0;
    TIFFFreeDirectory(t);
    return TIFFCreateDirectory(t) == 0;
}

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
// HDF5's type and property-list identifiers are macros that expand to function calls
// or globals after H5open(); Swift cannot import them, so expose them as functions.
static inline hid_t chdf5_native_double(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t chdf5_native_float(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t chdf5_native_uint8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t chdf5_native_int8(void) { return H5T_NATIVE_INT8; }
static inline hid_t chdf5_native_uint16(void) { return H5T_NATIVE_UINT16; }
static inline hid_t chdf5_native_int16(void) { return H5T_NATIVE_INT16; }
static inline hid_t chdf5_native_uint32(void) { return H5T_NATIVE_UINT32; }
static inline hid_t chdf5_native_int32(void) { return H5T_NATIVE_INT32; }
static inline hid_t chdf5_native_uint64(void) { return H5T_NATIVE_UINT64; }
static inline hid_t chdf5_native_int64(void) { return H5T_NATIVE_INT64; }
static inline hid_t chdf5_p_default(void) { return H5P_DEFAULT; }
static inline hid_t chdf5_s_all(void) { return H5S_ALL; }
static inline hid_t chdf5_p_file_access(void) { return H5P_FILE_ACCESS; }
// Further identifiers and flags the EMD decoder and its tests need. In HDF5 1.10 these are
// macros that call H5open() or cast, which Swift cannot import either.
static inline hid_t chdf5_e_default(void) { return H5E_DEFAULT; }
static inline unsigned chdf5_f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
static inline unsigned chdf5_f_acc_trunc(void) { return H5F_ACC_TRUNC; }
static inline unsigned chdf5_f_acc_rdwr(void) { return H5F_ACC_RDWR; }
static inline hid_t chdf5_p_dataset_create(void) { return H5P_DATASET_CREATE; }
static inline hid_t chdf5_p_link_create(void) { return H5P_LINK_CREATE; }
static inline hid_t chdf5_p_group_create(void) { return H5P_GROUP_CREATE; }
static inline hid_t chdf5_std_u8le(void) { return H5T_STD_U8LE; }
static inline hid_t chdf5_std_i16le(void) { return H5T_STD_I16LE; }
static inline hid_t chdf5_std_u16le(void) { return H5T_STD_U16LE; }
static inline hid_t chdf5_std_i32le(void) { return H5T_STD_I32LE; }
static inline hid_t chdf5_ieee_f32le(void) { return H5T_IEEE_F32LE; }
static inline hid_t chdf5_ieee_f64le(void) { return H5T_IEEE_F64LE; }
static inline hsize_t chdf5_s_unlimited(void) { return H5S_UNLIMITED; }
static inline hid_t chdf5_c_s1(void) { return H5T_C_S1; }
static inline hid_t chdf5_std_i64le(void) { return H5T_STD_I64LE; }
static inline hid_t chdf5_std_u16be(void) { return H5T_STD_U16BE; }
static inline size_t chdf5_variable(void) { return H5T_VARIABLE; }

// The HDF5 error stack as one line ("innermost cause; …; API call"), then cleared. Used
// with automatic error printing switched off, so a failed open names its cause.
typedef struct { char *buf; size_t cap; size_t len; } chdf5_error_text_t;
static herr_t chdf5_collect_error(unsigned n, const H5E_error2_t *e, void *p) {
    (void)n;
    chdf5_error_text_t *t = (chdf5_error_text_t *)p;
    if (!e->desc || !e->desc[0] || t->len + 1 >= t->cap) return 0;
    int w = snprintf(t->buf + t->len, t->cap - t->len, "%s%s", t->len ? "; " : "", e->desc);
    if (w > 0) t->len += ((size_t)w < t->cap - t->len) ? (size_t)w : t->cap - t->len - 1;
    return 0;
}
static inline void chdf5_error_text(char *buf, size_t cap) {
    if (cap == 0) return;
    buf[0] = 0;
    chdf5_error_text_t t = { buf, cap, 0 };
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, chdf5_collect_error, &t);
    H5Eclear2(H5E_DEFAULT);
}

// Attributes, read defensively: each helper checks the attribute's class and size before
// reading, so a file cannot make HeatFront allocate more than `cap` bytes for one.

/// The attribute `name` of `obj` as text: a fixed- or variable-length string (the first
/// element of an array), written into `buf` (NUL-terminated, at most `cap - 1` bytes).
/// Returns the text's length, or -1 when the attribute is absent, not a string or larger
/// than `cap` allows.
static inline long chdf5_attr_string(hid_t obj, const char *name, char *buf, size_t cap) {
    if (cap == 0 || H5Aexists(obj, name) <= 0) return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return -1;
    long result = -1;
    hid_t t = H5Aget_type(a), s = H5Aget_space(a);
    if (t >= 0 && s >= 0 && H5Tget_class(t) == H5T_STRING) {
        hssize_t n = H5Sget_simple_extent_npoints(s);
        htri_t vlen = H5Tis_variable_str(t);
        size_t size = H5Tget_size(t);
        if (n >= 1 && n <= 4096 && vlen > 0) {
            hid_t m = H5Tcopy(H5T_C_S1);
            H5Tset_size(m, H5T_VARIABLE);
            H5Tset_cset(m, H5Tget_cset(t));
            char **p = (char **)calloc((size_t)n, sizeof(char *));
            if (p && H5Aread(a, m, p) >= 0) {
                if (p[0]) {
                    size_t len = strnlen(p[0], cap - 1);
                    memcpy(buf, p[0], len); buf[len] = 0; result = (long)len;
                }
                H5Dvlen_reclaim(m, s, H5P_DEFAULT, p);
            }
            free(p);
            H5Tclose(m);
        } else if (n >= 1 && vlen == 0 && size > 0 && size <= cap - 1 && (size_t)n <= (cap - 1) / size) {
            hid_t m = H5Tcopy(t);
            char *all = (char *)calloc((size_t)n * size + 1, 1);
            if (all && H5Aread(a, m, all) >= 0) {
                size_t len = strnlen(all, size);
                memcpy(buf, all, len); buf[len] = 0; result = (long)len;
            }
            free(all);
            H5Tclose(m);
        }
    }
    if (t >= 0) H5Tclose(t);
    if (s >= 0) H5Sclose(s);
    H5Aclose(a);
    return result;
}

/// Whether the enumeration type `t` of `size` bytes has an integer base of that same size.
/// HDF5 1.10 does not check this when it decodes a file's enumeration, and converting one
/// whose base is larger (`H5Tget_native_type`) writes past its buffers.
static inline int chdf5_enum_base_ok(hid_t t, size_t size) {
    hid_t b = H5Tget_super(t);
    if (b < 0) return 0;
    int ok = H5Tget_class(b) == H5T_INTEGER && H5Tget_size(b) == size;
    H5Tclose(b);
    return ok;
}

/// The attribute `name` of `obj` as a number: the first element of an integer, float or
/// enumeration (numpy's bool is an 8-bit enum FALSE = 0, TRUE = 1) attribute. Returns 0 and
/// sets `*out`, or -1.
static inline int chdf5_attr_double(hid_t obj, const char *name, double *out) {
    if (H5Aexists(obj, name) <= 0) return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return -1;
    int result = -1;
    hid_t t = H5Aget_type(a), s = H5Aget_space(a);
    if (t >= 0 && s >= 0) {
        hssize_t n = H5Sget_simple_extent_npoints(s);
        H5T_class_t c = H5Tget_class(t);
        size_t size = H5Tget_size(t);
        if (n >= 1 && n <= 65536 && (c == H5T_INTEGER || c == H5T_FLOAT)) {
            double *v = (double *)calloc((size_t)n, sizeof(double));
            if (v && H5Aread(a, H5T_NATIVE_DOUBLE, v) >= 0) { *out = v[0]; result = 0; }
            free(v);
        } else if (n >= 1 && n <= 65536 && c == H5T_ENUM && size >= 1 && size <= 8 && chdf5_enum_base_ok(t, size)) {
            // The enum's stored integer: read with the enum's own (native) type, then widen.
            hid_t m = H5Tget_native_type(t, H5T_DIR_ASCEND);
            unsigned char *raw = m >= 0 ? (unsigned char *)calloc((size_t)n, size) : NULL;
            if (raw && H5Aread(a, m, raw) >= 0) {
                long long v = 0;
                switch (size) {
                case 1: v = *(signed char *)raw; break;
                case 2: { short x; memcpy(&x, raw, 2); v = x; break; }
                case 4: { int x; memcpy(&x, raw, 4); v = x; break; }
                default: { long long x; memcpy(&x, raw, 8); v = x; break; }
                }
                *out = (double)v; result = 0;
            }
            free(raw);
            if (m >= 0) H5Tclose(m);
        }
    }
    if (t >= 0) H5Tclose(t);
    if (s >= 0) H5Sclose(s);
    H5Aclose(a);
    return result;
}

/// Collects the names of `obj`'s attributes into `buf` as "name\0name\0…", at most `cap`
/// bytes and 512 attributes. Returns the bytes used.
typedef struct { char *buf; size_t cap; size_t len; int count; } chdf5_names_t;
static herr_t chdf5_collect_attr(hid_t loc, const char *name, const H5A_info_t *info, void *p) {
    (void)loc; (void)info;
    chdf5_names_t *t = (chdf5_names_t *)p;
    size_t n = strlen(name);
    if (t->count >= 512 || t->len + n + 1 > t->cap) return 1;   // stop
    memcpy(t->buf + t->len, name, n + 1);
    t->len += n + 1;
    t->count += 1;
    return 0;
}
static inline size_t chdf5_attr_names(hid_t obj, char *buf, size_t cap) {
    chdf5_names_t t = { buf, cap, 0, 0 };
    hsize_t idx = 0;
    H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, &idx, chdf5_collect_attr, &t);
    return t.len;
}

// HeatFront's read-only file driver, its check of global heap objects and the isolated
// probe live in the CHDF5Guard target (Sources/CHDF5Guard).

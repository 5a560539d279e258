#include <hdf5.h>
#include <stdio.h>
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
static inline hid_t chdf5_std_u8le(void) { return H5T_STD_U8LE; }
static inline hid_t chdf5_std_i16le(void) { return H5T_STD_I16LE; }
static inline hid_t chdf5_std_u16le(void) { return H5T_STD_U16LE; }
static inline hid_t chdf5_std_i32le(void) { return H5T_STD_I32LE; }
static inline hid_t chdf5_ieee_f32le(void) { return H5T_IEEE_F32LE; }
static inline hid_t chdf5_ieee_f64le(void) { return H5T_IEEE_F64LE; }
static inline hsize_t chdf5_s_unlimited(void) { return H5S_UNLIMITED; }

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

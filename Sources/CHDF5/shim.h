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
        } else if (n >= 1 && n <= 65536 && c == H5T_ENUM && size >= 1 && size <= 8) {
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

// ---------------------------------------------------------------------------------------
// A read-only file driver (HDF5 virtual file layer, H5FDpublic.h) that reads with pread and
// checks every global heap collection HDF5 loads before HDF5 decodes it.
//
// HDF5 1.10 decodes a global heap collection (where variable-length strings, such as
// HyperSpy's and h5py's text attributes, live) in a loop that advances by each object's
// stored size: an object of index 0 and size 0 makes it loop forever, and a size that runs
// past the collection makes it read outside its buffer. Such a collection is refused here:
// its signature is blanked in the bytes handed back, so HDF5 reports "bad global heap
// collection signature" and the read fails cleanly. Nothing else differs from HDF5's own
// sec2 driver, except that small metadata reads are not gathered into larger ones.

#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>
#include <errno.h>

typedef struct {
    H5FD_t pub;          // must be first
    int fd;
    haddr_t eoa, eof;
    dev_t dev;
    ino_t ino;
} chdf5_guard_file_t;

/// Whether the collection image `p` of `len` bytes (starting "GCOL") walks cleanly: every
/// object advances the cursor and ends inside the collection. Sizes are 8 bytes (the
/// superblock default); a collection that claims more than `len` is left to HDF5's own
/// checks (it reads the full collection before decoding it).
static int chdf5_gheap_ok(const unsigned char *p, size_t len) {
    if (len < 16) return 1;
    uint64_t size = 0;
    for (int i = 0; i < 8; i++) size |= (uint64_t)p[8 + i] << (8 * i);
    if (size > len) return 1;
    uint64_t at = 16;
    while (at < size) {
        if (at + 16 > size) break;                       // tail too small: free space
        unsigned idx = (unsigned)p[at] | ((unsigned)p[at + 1] << 8);
        uint64_t obj = 0;
        for (int i = 0; i < 8; i++) obj |= (uint64_t)p[at + 8 + i] << (8 * i);
        uint64_t need;
        if (idx > 0) {
            if (obj > size) return 0;
            need = 16 + ((obj + 7) & ~(uint64_t)7);
        } else {
            need = obj;
        }
        if (need == 0 || need > size - at) return 0;     // no progress, or past the end
        at += need;
    }
    return 1;
}

static H5FD_t *chdf5_guard_open(const char *name, unsigned flags, hid_t fapl, haddr_t maxaddr) {
    (void)fapl; (void)maxaddr;
    if (flags & (H5F_ACC_RDWR | H5F_ACC_TRUNC | H5F_ACC_CREAT)) return NULL;   // read-only
    int fd = open(name, O_RDONLY);
    if (fd < 0) return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) { close(fd); return NULL; }
    chdf5_guard_file_t *f = (chdf5_guard_file_t *)calloc(1, sizeof *f);
    if (!f) { close(fd); return NULL; }
    f->fd = fd;
    f->eof = (haddr_t)st.st_size;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    return &f->pub;
}

static herr_t chdf5_guard_close(H5FD_t *file) {
    chdf5_guard_file_t *f = (chdf5_guard_file_t *)file;
    int r = close(f->fd);
    free(f);
    return r == 0 ? 0 : -1;
}

static int chdf5_guard_cmp(const H5FD_t *a, const H5FD_t *b) {
    const chdf5_guard_file_t *x = (const chdf5_guard_file_t *)a, *y = (const chdf5_guard_file_t *)b;
    if (x->dev != y->dev) return x->dev < y->dev ? -1 : 1;
    if (x->ino != y->ino) return x->ino < y->ino ? -1 : 1;
    return 0;
}

static herr_t chdf5_guard_query(const H5FD_t *f, unsigned long *flags) {
    (void)f;
    *flags = H5FD_FEAT_DATA_SIEVE | H5FD_FEAT_POSIX_COMPAT_HANDLE;
    return 0;
}

static haddr_t chdf5_guard_get_eoa(const H5FD_t *file, H5FD_mem_t type) { (void)type; return ((const chdf5_guard_file_t *)file)->eoa; }
static herr_t chdf5_guard_set_eoa(H5FD_t *file, H5FD_mem_t type, haddr_t addr) { (void)type; ((chdf5_guard_file_t *)file)->eoa = addr; return 0; }
static haddr_t chdf5_guard_get_eof(const H5FD_t *file, H5FD_mem_t type) { (void)type; return ((const chdf5_guard_file_t *)file)->eof; }
static herr_t chdf5_guard_get_handle(H5FD_t *file, hid_t fapl, void **handle) {
    (void)fapl;
    *handle = &((chdf5_guard_file_t *)file)->fd;
    return 0;
}

static herr_t chdf5_guard_read(H5FD_t *file, H5FD_mem_t type, hid_t dxpl, haddr_t addr, size_t size, void *buf) {
    (void)dxpl;
    chdf5_guard_file_t *f = (chdf5_guard_file_t *)file;
    if (addr == HADDR_UNDEF || addr + size < addr || addr + size > f->eoa) return -1;
    unsigned char *p = (unsigned char *)buf;
    size_t left = size;
    off_t at = (off_t)addr;
    while (left > 0) {
        ssize_t n = pread(f->fd, p, left, at);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        if (n == 0) { memset(p, 0, left); break; }       // past the end of the file: zeros, as sec2
        p += n; at += n; left -= (size_t)n;
    }
    // HDF5 reads a collection as raw data (H5F_block_read maps GHEAP to DRAW): first 4096
    // bytes, then the whole collection when it is larger.
    const unsigned char *b = (const unsigned char *)buf;
    if ((type == H5FD_MEM_GHEAP || type == H5FD_MEM_DRAW) && size >= 16 && memcmp(b, "GCOL", 4) == 0 && b[4] == 1
        && !chdf5_gheap_ok(b, size)) {
        memset(buf, 0, 4);                                 // HDF5 then refuses the collection
    }
    return 0;
}

static herr_t chdf5_guard_write(H5FD_t *file, H5FD_mem_t type, hid_t dxpl, haddr_t addr, size_t size, const void *buf) {
    (void)file; (void)type; (void)dxpl; (void)addr; (void)size; (void)buf;
    return -1;
}

static herr_t chdf5_guard_lock(H5FD_t *file, hbool_t rw) { (void)file; (void)rw; return 0; }
static herr_t chdf5_guard_unlock(H5FD_t *file) { (void)file; return 0; }

/// The guarded read-only driver's identifier (registered once; call with the HDF5 lock held).
static inline hid_t chdf5_guard_driver(void) {
    static hid_t id = -1;
    if (id >= 0) return id;
    static const H5FD_class_t cls = {
        "heatfront-guard", (haddr_t)INT64_MAX, H5F_CLOSE_WEAK,
        NULL, NULL, NULL, NULL,
        0, NULL, NULL, NULL,
        0, NULL, NULL,
        chdf5_guard_open, chdf5_guard_close, chdf5_guard_cmp, chdf5_guard_query, NULL,
        NULL, NULL,
        chdf5_guard_get_eoa, chdf5_guard_set_eoa, chdf5_guard_get_eof, chdf5_guard_get_handle,
        chdf5_guard_read, chdf5_guard_write, NULL, NULL, chdf5_guard_lock, chdf5_guard_unlock,
        H5FD_FLMAP_DICHOTOMY
    };
    id = H5FDregister(&cls);
    return id;
}

/// Sets the guarded driver on a file-access property list; 0 on success.
static inline int chdf5_use_guard_driver(hid_t fapl) {
    hid_t id = chdf5_guard_driver();
    return (id >= 0 && H5Pset_driver(fapl, id, NULL) >= 0) ? 0 : -1;
}

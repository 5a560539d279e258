// HeatFront's read-only HDF5 file driver, its check of global heap objects, the repair of
// HDF5's attribute table and the check of attribute, datatype and dataspace messages.
// See include/chdf5_guard.h.
#define _GNU_SOURCE
#include "chdf5_guard.h"
#include <dlfcn.h>
#include <link.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

// ---------------------------------------------------------------------------------------
// A read-only file driver (HDF5 virtual file layer, H5FDpublic.h) that reads with pread and
// checks every global heap collection HDF5 loads before HDF5 decodes it.
//
// HDF5 1.10 decodes a global heap collection (where variable-length strings, such as
// HyperSpy's and h5py's text attributes, live) in a loop that advances by each object's
// stored size: an object of index 0 and size 0 makes it loop forever, and a size that runs
// past the collection makes it read outside its buffer. Such a collection is refused here:
// its signature is blanked in the bytes handed back, so HDF5 reports "bad global heap
// collection signature" and the read fails cleanly. A local heap whose free list loops is
// refused the same way (`local_heap_free_list_ends`). Nothing else differs from HDF5's own
// sec2 driver, except that small metadata reads are not gathered into larger ones and that
// a read reaching more than 4 kB past the end of the file is refused.

/// Which object indices one global heap collection holds (a bit per index, 1 … 65535).
typedef struct {
    haddr_t addr;
    int used;
    unsigned char present[65536 / 8];
} chdf5_heap_index_t;

enum { CHDF5_HEAP_CACHE = 8 };

typedef struct chdf5_guard_file {
    H5FD_t pub;          // must be first
    int fd;
    haddr_t eoa, eof;
    dev_t dev;
    ino_t ino;
    /// Collections already indexed (a small ring), allocated on first use.
    chdf5_heap_index_t *heaps;
    unsigned next_heap;
    /// The first damage found by the heap check (a C string; empty when none).
    char damage[256];
    struct chdf5_guard_file *next_open;
} chdf5_guard_file_t;

// The files open through this driver, so that a handle HDF5 gives back can be recognised as
// one of ours before anything is read through it.
static pthread_mutex_t open_files_lock = PTHREAD_MUTEX_INITIALIZER;
static chdf5_guard_file_t *open_files = NULL;
/// The file opened last (damage found where HDF5 gives no file is recorded on it: the
/// readers list a file right after opening it, under one hold of HeatFront's HDF5 lock).
static chdf5_guard_file_t *last_opened = NULL;

/// The last read or chunk refused, for the error HDF5's own failure then reports (HDF5 closes
/// a file it fails to open, and reads give no file to ask).
static char last_refusal[256];

static uint64_t le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/// Whether the collection image `p` of `len` bytes (starting "GCOL") walks cleanly: every
/// object advances the cursor and ends inside the collection. Sizes are 8 bytes (the
/// superblock default). A collection that claims more than `len` is walked from the file
/// (`index_collection`).
static int chdf5_gheap_ok(const unsigned char *p, size_t len) {
    if (len < 16) return 1;
    uint64_t size = le(p + 8, 8);
    if (size > len) return 1;
    uint64_t at = 16;
    while (at < size) {
        if (at + 16 > size) break;                       // tail too small: free space
        unsigned idx = (unsigned)le(p + at, 2);
        uint64_t obj = le(p + at + 8, 8);
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
    int fd = open(name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) { close(fd); return NULL; }
    chdf5_guard_file_t *f = (chdf5_guard_file_t *)calloc(1, sizeof *f);
    if (!f) { close(fd); return NULL; }
    f->fd = fd;
    f->eof = (haddr_t)st.st_size;
    last_refusal[0] = 0;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    pthread_mutex_lock(&open_files_lock);
    f->next_open = open_files;
    open_files = f;
    last_opened = f;
    pthread_mutex_unlock(&open_files_lock);
    return &f->pub;
}

static herr_t chdf5_guard_close(H5FD_t *file) {
    chdf5_guard_file_t *f = (chdf5_guard_file_t *)file;
    pthread_mutex_lock(&open_files_lock);
    for (chdf5_guard_file_t **p = &open_files; *p; p = &(*p)->next_open) {
        if (*p == f) { *p = f->next_open; break; }
    }
    if (last_opened == f) last_opened = NULL;
    pthread_mutex_unlock(&open_files_lock);
    int r = close(f->fd);
    free(f->heaps);
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

static int index_collection(chdf5_guard_file_t *f, haddr_t rel_addr, int ls, chdf5_heap_index_t *h,
                            unsigned want, uint64_t *want_size);

/// Reads `size` bytes at `at`; bytes past the end of the file read as zeros (as sec2).
static int pread_full(int fd, void *buf, size_t size, off_t at) {
    unsigned char *p = (unsigned char *)buf;
    size_t left = size;
    while (left > 0) {
        ssize_t n = pread(fd, p, left, at);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        if (n == 0) { memset(p, 0, left); break; }
        p += n; at += n; left -= (size_t)n;
    }
    return 0;
}

static void note_damage(chdf5_guard_file_t *f, const char *what);

/// How far past the end of the file a read may reach (read as zeros, as sec2 does).
enum { CHDF5_READ_PAST_EOF = 4096 };

/// Whether the free list of the local heap whose prefix `p` (starting "HEAP") was read ends.
/// HDF5 1.10 follows the list's "next" offsets (H5HL__fl_deserialize) checking only that each
/// lies inside the heap, so a list that loops back allocates a node per step until memory
/// runs out. Each free block holds its next offset and its size (8 bytes each, the superblock
/// default) and blocks do not overlap, so an intact list has at most size/16 + 1 entries.
/// The walk reads them from the file; a block too short for its two fields (which HDF5 would
/// read past its copy of the heap) is damage too.
static int local_heap_free_list_ends(chdf5_guard_file_t *f, const unsigned char *p) {
    uint64_t heap_size = le(p + 8, 8), at = le(p + 16, 8), data = le(p + 24, 8);
    const uint64_t none = 1;                              // H5HL_FREE_NULL
    uint64_t base = f->pub.base_addr;
    if (heap_size == 0 || data + base < data || data + base + heap_size > f->eof) return 1;
    for (uint64_t steps = 0; at != none; steps++) {
        if (at >= heap_size) return 1;                    // HDF5 refuses it itself
        if (heap_size - at < 16 || steps > heap_size / 16) return 0;   // past the heap's end, or a loop
        unsigned char block[16];
        if (pread_full(f->fd, block, sizeof block, (off_t)(base + data + at)) != 0) return 1;
        at = le(block, 8);
        if (at == 0) return 1;                            // HDF5 refuses a zero offset
    }
    return 1;
}

static herr_t chdf5_guard_read(H5FD_t *file, H5FD_mem_t type, hid_t dxpl, haddr_t addr, size_t size, void *buf) {
    (void)dxpl;
    chdf5_guard_file_t *f = (chdf5_guard_file_t *)file;
    if (addr == HADDR_UNDEF || addr + size < addr || addr + size > f->eoa) return -1;
    // HDF5 refuses a file shorter than the end its superblock states, but only after it has
    // read the driver information block, whose size comes from the file: a read reaching
    // far past the end comes from such a size, and zero-filling it would fill gigabytes.
    if (addr + size > f->eof + CHDF5_READ_PAST_EOF) {
        note_damage(f, "a metadata block runs past the end of the file");
        snprintf(last_refusal, sizeof last_refusal, "%s", f->damage);
        return -1;
    }
    if (pread_full(f->fd, buf, size, (off_t)addr) != 0) return -1;
    // HDF5 reads a collection as raw data (H5F_block_read maps GHEAP to DRAW): first 4096
    // bytes, then, when the collection is larger, only the rest. A larger collection is
    // walked here from the file, whole.
    const unsigned char *b = (const unsigned char *)buf;
    if ((type == H5FD_MEM_GHEAP || type == H5FD_MEM_DRAW) && size >= 16 && memcmp(b, "GCOL", 4) == 0 && b[4] == 1) {
        int ok = 1;
        if (le(b + 8, 8) <= size) {
            ok = chdf5_gheap_ok(b, size);
        } else if (addr >= f->pub.base_addr) {
            chdf5_heap_index_t *h = (chdf5_heap_index_t *)malloc(sizeof *h);
            ok = !h || index_collection(f, addr - f->pub.base_addr, 8, h, 0, NULL) >= 0;
            free(h);
        }
        if (!ok) memset(buf, 0, 4);                        // HDF5 then refuses the collection
    }
    if (type == H5FD_MEM_LHEAP && size >= 32 && memcmp(b, "HEAP", 4) == 0 && b[4] == 0
        && !local_heap_free_list_ends(f, b)) {
        note_damage(f, "a local heap's free list is damaged (it loops or runs past the heap)");
        memset(buf, 0, 4);                                 // HDF5 then refuses the heap
    }
    return 0;
}

static herr_t chdf5_guard_write(H5FD_t *file, H5FD_mem_t type, hid_t dxpl, haddr_t addr, size_t size, const void *buf) {
    (void)file; (void)type; (void)dxpl; (void)addr; (void)size; (void)buf;
    return -1;
}

static herr_t chdf5_guard_lock(H5FD_t *file, hbool_t rw) { (void)file; (void)rw; return 0; }
static herr_t chdf5_guard_unlock(H5FD_t *file) { (void)file; return 0; }

static hid_t chdf5_guard_driver(void) {
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

int chdf5_use_guard_driver(hid_t fapl) {
    chdf5_message_checks_active();
    hid_t id = chdf5_guard_driver();
    return (id >= 0 && H5Pset_driver(fapl, id, NULL) >= 0) ? 0 : -1;
}

/// The open guarded file whose driver handle (`&fd`) is `handle`, or NULL.
static chdf5_guard_file_t *guard_file_for_handle(const void *handle) {
    chdf5_guard_file_t *found = NULL;
    pthread_mutex_lock(&open_files_lock);
    for (chdf5_guard_file_t *f = open_files; f; f = f->next_open) {
        if ((const void *)&f->fd == handle) { found = f; break; }
    }
    pthread_mutex_unlock(&open_files_lock);
    return found;
}

size_t chdf5_guard_last_refusal(char *buf, size_t cap) {
    if (cap == 0) return 0;
    size_t n = strnlen(last_refusal, cap - 1);
    memcpy(buf, last_refusal, n);
    buf[n] = 0;
    return n;
}

size_t chdf5_guard_damage(hid_t file, char *buf, size_t cap) {
    void *handle = NULL;
    if (cap == 0) return 0;
    buf[0] = 0;
    if (H5Fget_vfd_handle(file, H5P_DEFAULT, &handle) < 0 || !handle) { H5Eclear2(H5E_DEFAULT); return 0; }
    chdf5_guard_file_t *f = guard_file_for_handle(handle);
    if (!f || !f->damage[0]) return 0;
    size_t n = strnlen(f->damage, cap - 1);
    memcpy(buf, f->damage, n);
    buf[n] = 0;
    return n;
}

// ---------------------------------------------------------------------------------------
// The check of global heap objects.
//
// A variable-length string or sequence is stored as its length and a heap ID: the address
// of a global heap collection and an object index in it. HDF5 1.10's `H5HG_read` and
// `H5HG_get_obj_size` only assert that the index names an object of the collection (asserts
// are compiled out of release builds), then read `heap->obj[index]`: an index the
// collection does not hold reads through a stray pointer (a crash, or bytes from elsewhere
// in memory). The heap ID lives in the attribute's or dataset's data, which the driver
// above never inspects, so the check sits on the call itself: this executable defines both
// functions, the dynamic linker binds HDF5's own calls (made through its procedure linkage
// table) to these definitions, and each looks the index up in the collection as the file
// stores it, read through the driver's descriptor, before calling HDF5's function
// (`dlsym(RTLD_NEXT, …)`). Files not opened through the guarded driver pass unchecked.

/// HDF5's heap ID (H5HGprivate.h, unchanged since 1.8).
typedef struct { haddr_t addr; size_t idx; } chdf5_heap_id_t;

typedef void *(*heap_read_fn)(void *, chdf5_heap_id_t *, void *, size_t *);
typedef herr_t (*heap_size_fn)(void *, chdf5_heap_id_t *, size_t *);
typedef herr_t (*vfd_handle_fn)(const void *, hid_t, void **);
typedef uint8_t (*sizeof_fn)(const void *);
typedef herr_t (*attr_table_fn)(void *, void *, int, int, void *);

static struct {
    int resolved;
    heap_read_fn read;
    heap_size_fn size;
    vfd_handle_fn handle;
    sizeof_fn sizeof_size, sizeof_addr;
    attr_table_fn attr_table;
} real;
static unsigned long refusals = 0;

static void resolve_real(void) {
    if (real.resolved) return;
    real.read = (heap_read_fn)dlsym(RTLD_NEXT, "H5HG_read");
    real.size = (heap_size_fn)dlsym(RTLD_NEXT, "H5HG_get_obj_size");
    real.handle = (vfd_handle_fn)dlsym(RTLD_DEFAULT, "H5F_get_vfd_handle");
    real.sizeof_size = (sizeof_fn)dlsym(RTLD_DEFAULT, "H5F_sizeof_size");
    real.sizeof_addr = (sizeof_fn)dlsym(RTLD_DEFAULT, "H5F_sizeof_addr");
    real.attr_table = (attr_table_fn)dlsym(RTLD_NEXT, "H5A__compact_build_table");
    real.resolved = 1;
}

void *H5HG_read(void *f, chdf5_heap_id_t *hobj, void *object, size_t *buf_size);
herr_t H5HG_get_obj_size(void *f, chdf5_heap_id_t *hobj, size_t *obj_size);
herr_t H5A__compact_build_table(void *f, void *oh, int idx_type, int order, void *atable);
void *H5FL_blk_realloc(void *head, void *block, size_t size);
void *H5FL_blk_calloc(void *head, size_t size);
void *H5FL_blk_free(void *head, void *block);
static int vlen_conversion_located(void);

int chdf5_heap_guard_active(void) {
    resolve_real();
    return real.read && real.size && real.handle && real.attr_table
        && dlsym(RTLD_DEFAULT, "H5HG_read") == (void *)H5HG_read
        && dlsym(RTLD_DEFAULT, "H5HG_get_obj_size") == (void *)H5HG_get_obj_size
        && dlsym(RTLD_DEFAULT, "H5A__compact_build_table") == (void *)H5A__compact_build_table
        && dlsym(RTLD_DEFAULT, "H5FL_blk_realloc") == (void *)H5FL_blk_realloc
        && dlsym(RTLD_DEFAULT, "H5FL_blk_calloc") == (void *)H5FL_blk_calloc
        && dlsym(RTLD_DEFAULT, "H5FL_blk_free") == (void *)H5FL_blk_free
        && vlen_conversion_located()
        && chdf5_message_checks_active();
}

unsigned long chdf5_heap_guard_refusals(void) { return refusals; }

/// The open guarded file behind HDF5's file `hf` (an `H5F_t *`), or NULL.
static chdf5_guard_file_t *guard_file_of(void *hf) {
    void *handle = NULL;
    if (!real.handle || real.handle(hf, H5P_DEFAULT, &handle) < 0 || !handle) return NULL;
    return guard_file_for_handle(handle);
}

/// Records the first damage found in `f`.
static void note_damage(chdf5_guard_file_t *f, const char *what) {
    if (f && !f->damage[0]) snprintf(f->damage, sizeof f->damage, "%s", what);
}

/// Indexes the collection at `addr` the way HDF5 1.10 decodes it (H5HGcache.c): objects
/// follow a 16-byte header, each with a 2-byte index and a length of `ls` bytes; index 0 is
/// free space. Returns 1 when `h` now holds its indices, -1 when the collection is damaged
/// (an object that does not advance the walk or runs past the collection's end), 0 when
/// there is no collection there to check (HDF5 then refuses it itself).
/// Heap addresses are relative to the file's base address (the superblock's), as HDF5 reads
/// them. When `want_size` is given, it receives the size of object `want` (0 when absent;
/// of the last one, as HDF5 keeps, when the index repeats).
static int index_collection(chdf5_guard_file_t *f, haddr_t rel_addr, int ls, chdf5_heap_index_t *h,
                            unsigned want, uint64_t *want_size) {
    enum { WINDOW = 1 << 16 };
    unsigned char head[16 + 8];
    int hdr = 8 + ls, objhdr = 8 + ls;
    haddr_t addr = rel_addr + f->pub.base_addr;
    if (want_size) *want_size = 0;
    if (rel_addr == HADDR_UNDEF || addr < rel_addr || addr >= f->eof || pread_full(f->fd, head, (size_t)hdr, (off_t)addr) != 0) return 0;
    if (memcmp(head, "GCOL", 4) != 0 || head[4] != 1) return 0;
    uint64_t size = le(head + 8, ls);
    if (size < (uint64_t)hdr || size > f->eof - addr) return 0;
    memset(h->present, 0, sizeof h->present);
    h->addr = rel_addr;
    // The objects, read through a window that slides with the cursor.
    unsigned char *w = (unsigned char *)malloc(WINDOW);
    if (!w) return 0;
    uint64_t wstart = 0, wlen = 0, at = (uint64_t)hdr;
    int ok = 1;
    while (at < size) {
        if (at + (uint64_t)objhdr > size) break;                     // free space too small for a header
        if (at < wstart || at + (uint64_t)objhdr > wstart + wlen) {
            wstart = at;
            wlen = size - at < WINDOW ? size - at : WINDOW;
            if (pread_full(f->fd, w, (size_t)wlen, (off_t)(addr + at)) != 0) { ok = 0; break; }   // unknown
        }
        const unsigned char *p = w + (at - wstart);
        unsigned idx = (unsigned)le(p, 2);
        uint64_t len = le(p + 8, ls), need;
        if (idx > 0) {
            if (len > size) { ok = -1; break; }
            need = (uint64_t)objhdr + ((len + 7) & ~(uint64_t)7);
            h->present[idx / 8] |= (unsigned char)(1u << (idx % 8));
            if (want_size && idx == want) *want_size = len;
        } else {
            need = len;
        }
        if (need == 0 || need > size - at) { ok = -1; break; }         // no progress, or past the end
        at += need;
    }
    free(w);
    h->used = ok > 0;
    return ok;
}

/// 1 when `hobj` names an object its collection holds, or when it cannot be checked (a
/// file not opened through the guarded driver, a collection HDF5 will refuse itself);
/// 0 when the collection holds no such object.
static int heap_object_ok(void *hf, const chdf5_heap_id_t *hobj) {
    resolve_real();
    chdf5_guard_file_t *f = guard_file_of(hf);
    if (!f) return 1;
    int ls = real.sizeof_size ? real.sizeof_size(hf) : 8;
    if (ls != 2 && ls != 4 && ls != 8) return 1;
    if (!f->heaps && !(f->heaps = (chdf5_heap_index_t *)calloc(CHDF5_HEAP_CACHE, sizeof *f->heaps))) return 1;
    chdf5_heap_index_t *h = NULL;
    for (int i = 0; i < CHDF5_HEAP_CACHE; i++) {
        if (f->heaps[i].used && f->heaps[i].addr == hobj->addr) { h = &f->heaps[i]; break; }
    }
    if (!h) {
        h = &f->heaps[f->next_heap++ % CHDF5_HEAP_CACHE];
        h->used = 0;
        int found = index_collection(f, hobj->addr, ls, h, 0, NULL);
        if (found == 0) return 1;
        if (found < 0) {
            refusals++;
            char what[160];
            snprintf(what, sizeof what, "the global heap collection at byte %llu is damaged (an object runs past its end)",
                     (unsigned long long)hobj->addr);
            note_damage(f, what);
            return 0;
        }
    }
    if (hobj->idx > 0 && hobj->idx < 65536 && (h->present[hobj->idx / 8] & (1u << (hobj->idx % 8)))) return 1;
    refusals++;
    if (!f->damage[0]) {
        snprintf(f->damage, sizeof f->damage,
                 "variable-length data refer to object %zu of the global heap collection at byte %llu, which holds no such object",
                 hobj->idx, (unsigned long long)hobj->addr);
    }
    return 0;
}

/// The buffer the variable-length conversion last allocated (see below) and its size.
static void *vlen_buffer = NULL;
static size_t vlen_buffer_size = 0;

/// 1 when the object `hobj` fits `object`, the buffer HDF5 copies it into, as far as it is
/// known: HDF5 copies the object's stored size whatever the buffer's, and the variable-length
/// conversion sizes its buffer from the length stored beside the heap ID.
static int heap_object_fits(void *hf, const chdf5_heap_id_t *hobj, const void *object) {
    if (!object || object != vlen_buffer || hobj->idx == 0 || hobj->idx >= 65536) return 1;
    chdf5_guard_file_t *f = guard_file_of(hf);
    int ls = real.sizeof_size ? real.sizeof_size(hf) : 8;
    if (!f || (ls != 2 && ls != 4 && ls != 8)) return 1;
    chdf5_heap_index_t *h = (chdf5_heap_index_t *)malloc(sizeof *h);
    uint64_t size = 0;
    int known = h && index_collection(f, hobj->addr, ls, h, (unsigned)hobj->idx, &size) > 0;
    free(h);
    if (!known || size <= vlen_buffer_size) return 1;
    refusals++;
    char what[200];
    snprintf(what, sizeof what, "variable-length data of %llu bytes (object %zu of the global heap collection at byte %llu) exceed the length stored with them",
             (unsigned long long)size, hobj->idx, (unsigned long long)hobj->addr);
    note_damage(f, what);
    return 0;
}

void *H5HG_read(void *f, chdf5_heap_id_t *hobj, void *object, size_t *buf_size) {
    resolve_real();
    if (!real.read || !hobj || !heap_object_ok(f, hobj) || !heap_object_fits(f, hobj, object)) return NULL;   // HDF5: "Unable to read VL information"
    return real.read(f, hobj, object, buf_size);
}

herr_t H5HG_get_obj_size(void *f, chdf5_heap_id_t *hobj, size_t *obj_size) {
    resolve_real();
    if (!real.size || !hobj || !heap_object_ok(f, hobj)) return -1;
    return real.size(f, hobj, obj_size);
}

// ---------------------------------------------------------------------------------------
// The attribute table of an object whose attribute messages cannot all be decoded.
//
// To list or iterate over an object's attributes in a given order (H5Aiterate2, the
// by-index calls), HDF5 1.10 copies them into a table that it grows by doubling
// (`H5A__compact_build_table`, H5Aint.c). When a message fails to decode part-way, the table
// keeps its allocated length rather than the number of attributes copied, and the caller
// then closes every entry (`H5A__attr_release_table`): the entries past the last copy are
// uninitialised, so HDF5 closes whatever pointers the heap held there (a crash or heap
// corruption, depending on what was in memory before). This executable defines the function
// too (bound as above): after a failure it sets the table's length to 0, so only the table
// itself is freed. The attributes already copied leak (a few hundred bytes per damaged
// object), and the damage is recorded on the file so the reader reports it.

/// HDF5 1.10's attribute table (H5Apkg.h): its length, then the entries.
typedef struct { size_t nattrs; void **attrs; } chdf5_attr_table_t;

herr_t H5A__compact_build_table(void *f, void *oh, int idx_type, int order, void *atable) {
    resolve_real();
    if (!real.attr_table) return -1;
    herr_t r = real.attr_table(f, oh, idx_type, order, atable);
    if (r < 0 && atable) {
        ((chdf5_attr_table_t *)atable)->nattrs = 0;
        note_damage(guard_file_of(f), "an object's attribute messages are damaged (HDF5 cannot decode them)");
    }
    return r;
}

// ---------------------------------------------------------------------------------------
// The buffer HDF5 allocates for one variable-length value.
//
// A variable-length string or sequence stores its length beside its heap ID, and HDF5 1.10
// (`H5T__conv_vlen`) allocates and zero-fills a buffer of that length before it reads the
// heap object: a length of 4 GB in a 37 kB file costs 4 GB of memory and half a minute. The
// buffer comes from HDF5's block free lists; this executable defines their allocation calls
// too, and refuses a block larger than `CHDF5_MAX_VLEN_BYTES` when the caller is the
// variable-length conversion (its return address lies in `H5T__conv_vlen`'s code), so HDF5
// reports an allocation failure and the damage is recorded on the file being read. The
// conversion's latest block and its size are remembered: `H5HG_read` copies a heap object
// into it (see `heap_object_fits`).

/// The largest variable-length value HDF5 may allocate: HeatFront's cap on a frame file's
/// metadata (`FrameLimits.maxMetadataBytes`).
#define CHDF5_MAX_VLEN_BYTES ((size_t)1 << 24)

typedef void *(*blk_realloc_fn)(void *, void *, size_t);
typedef void *(*blk_alloc_fn)(void *, size_t);
typedef void *(*blk_free_fn)(void *, void *);
static struct {
    int resolved;
    blk_realloc_fn realloc;
    blk_alloc_fn malloc, calloc;
    blk_free_fn free;
    uintptr_t conv_lo, conv_hi;     // H5T__conv_vlen's code
} blk;
static unsigned long vlen_refusals = 0;

static void resolve_blk(void) {
    if (blk.resolved) return;
    blk.realloc = (blk_realloc_fn)dlsym(RTLD_NEXT, "H5FL_blk_realloc");
    blk.malloc = (blk_alloc_fn)dlsym(RTLD_NEXT, "H5FL_blk_malloc");
    blk.calloc = (blk_alloc_fn)dlsym(RTLD_NEXT, "H5FL_blk_calloc");
    blk.free = (blk_free_fn)dlsym(RTLD_NEXT, "H5FL_blk_free");
    void *conv = dlsym(RTLD_DEFAULT, "H5T__conv_vlen");
    Dl_info info;
    const ElfW(Sym) *sym = NULL;
    if (conv && dladdr1(conv, &info, (void **)&sym, RTLD_DL_SYMENT) && sym && sym->st_size > 0) {
        blk.conv_lo = (uintptr_t)conv;
        blk.conv_hi = (uintptr_t)conv + sym->st_size;
    }
    blk.resolved = 1;
}

static int vlen_conversion_located(void) {
    resolve_blk();
    return blk.conv_hi > blk.conv_lo;
}

static int from_vlen_conversion(void *caller) {
    return (uintptr_t)caller >= blk.conv_lo && (uintptr_t)caller < blk.conv_hi;
}

/// Whether a block of `size` bytes for the variable-length conversion is too large to be
/// real (and records the damage).
static int vlen_block_refused(size_t size) {
    if (size <= CHDF5_MAX_VLEN_BYTES) return 0;
    vlen_refusals++;
    char what[160];
    snprintf(what, sizeof what, "a variable-length value claims %zu bytes, more than the %zu MB allowed for metadata",
             size, CHDF5_MAX_VLEN_BYTES >> 20);
    pthread_mutex_lock(&open_files_lock);
    note_damage(last_opened, what);
    pthread_mutex_unlock(&open_files_lock);
    return 1;
}

/// A block HDF5 gave out: when the variable-length conversion asked for it, it is the
/// buffer the next heap object is copied into.
static void *given(void *block, size_t size, int vlen) {
    if (vlen && block) { vlen_buffer = block; vlen_buffer_size = size; }
    return block;
}

void *H5FL_blk_realloc(void *head, void *block, size_t size) {
    resolve_blk();
    int vlen = from_vlen_conversion(__builtin_return_address(0));
    if (!blk.realloc || (vlen && vlen_block_refused(size))) return NULL;
    if (block && block == vlen_buffer) vlen_buffer = NULL;
    return given(blk.realloc(head, block, size), size, vlen);
}

void *H5FL_blk_malloc(void *head, size_t size) {
    resolve_blk();
    int vlen = from_vlen_conversion(__builtin_return_address(0));
    if (!blk.malloc || (vlen && vlen_block_refused(size))) return NULL;
    return given(blk.malloc(head, size), size, vlen);
}

void *H5FL_blk_calloc(void *head, size_t size) {
    resolve_blk();
    int vlen = from_vlen_conversion(__builtin_return_address(0));
    if (!blk.calloc || (vlen && vlen_block_refused(size))) return NULL;
    return given(blk.calloc(head, size), size, vlen);
}

void *H5FL_blk_free(void *head, void *block) {
    resolve_blk();
    if (block && block == vlen_buffer) vlen_buffer = NULL;
    return blk.free ? blk.free(head, block) : NULL;
}

unsigned long chdf5_vlen_refusals(void) { return vlen_refusals; }

// ---------------------------------------------------------------------------------------
// The object-header messages HDF5 decodes without checking them against their own size.
//
// An attribute message (H5Oattr.c) stores a name, a datatype, a dataspace and the data, with
// the sizes of the first three; a datatype message (H5Odtype.c) and a dataspace message
// (H5Osdspace.c) are read field by field. HDF5 1.10 is handed each message with its size as
// the object-header chunk stores it, but decodes the parts by the counts and sizes written
// inside them: an enumeration's values (members × its base type's size), a name without its
// terminating zero, an array of more than 32 dimensions, an attribute's data (points ×
// element size) are read or copied however far they reach past the message (a read of
// unmapped memory: SIGSEGV; or of HDF5's neighbouring heap block). Nor does HDF5 check that
// an integer's or a float's bit fields lie inside its size: converting an integer of
// precision 0 reads 2^61 bytes away (SIGBUS). The three message classes
// are tables of methods inside libhdf5 (`H5O_MSG_ATTR`, `H5O_MSG_DTYPE`, `H5O_MSG_SDSPACE`);
// their decode method is replaced, once, by one that walks the encoding within the message's
// size first, as HDF5 will read it, and refuses a message whose parts run past its end or
// whose atomic types' bits lie outside their size (HDF5 then reports "unable to decode
// message" and the damage is recorded on the file).
// Messages shared through the file's shared-message heap, and calls that pass no size, go to
// HDF5 unchecked.

/// HDF5 1.10's message class (H5Opkg.h) up to its decode method.
typedef void *(*msg_decode_fn)(void *f, void *open_oh, unsigned mesg_flags, unsigned *ioflags, size_t p_size, const uint8_t *p);
typedef struct { unsigned id; const char *name; size_t native_size; unsigned share_flags; msg_decode_fn decode; } chdf5_msg_class_t;

enum { MSG_FLAG_SHARED = 0x02, MAX_RANK = 32, MAX_TYPE_DEPTH = 32 };

static struct { msg_decode_fn attr, dtype, sdspace; int patched; } decode;
static unsigned long message_refusals = 0;

enum { TYPE_PAST_END = -1, TYPE_IMPOSSIBLE = -2, TYPE_ENUM_SIZE = -3, TYPE_VLEN_SIZE = -4 };

/// Whether the bit fields of an integer, bitfield or float of `size` bytes, whose properties
/// start at `q`, lie inside it: a precision of at least 1 bit that fits the size with its
/// offset, and a float's sign, exponent and mantissa inside the precision. HDF5 1.10 decodes
/// them unchecked, and its conversions index bits from them (a precision of 0 reads 2^61
/// bytes before the value).
static int atomic_bits_ok(unsigned cls, unsigned flags, const unsigned char *q, uint64_t size) {
    uint64_t offset = le(q, 2), precision = le(q + 2, 2);
    if (precision == 0 || offset + precision > 8 * size) return 0;
    if (cls != 1) return 1;
    uint64_t epos = q[4], esize = q[5], mpos = q[6], msize = q[7], sign = (flags >> 8) & 0xff;
    return esize > 0 && msize > 0 && epos + esize <= precision && mpos + msize <= precision && sign < precision;
}

/// The bytes HDF5's datatype decoder (`H5O_dtype_decode_helper`) reads from the encoding at
/// `p`: TYPE_PAST_END when it would read past `avail` bytes, TYPE_IMPOSSIBLE when the
/// encoding cannot describe a type (bits outside an atomic type's size, more dimensions than
/// HDF5's arrays hold), TYPE_ENUM_SIZE for an enumeration whose size is not its base type's
/// (HDF5 sizes its values by the base and copies them by the enumeration: past the buffer),
/// TYPE_VLEN_SIZE for a variable-length type whose size is not `vlen_size`, the size of its
/// stored form (HDF5 sizes an attribute's data by the stated size, then reads them by the
/// stored form's: past the buffer). `elem` receives the type's size. A version or class HDF5
/// refuses before reading further counts as its 8-byte header.
static long dtype_extent(const unsigned char *p, size_t avail, int depth, uint64_t vlen_size, uint64_t *elem) {
    if (depth > MAX_TYPE_DEPTH) return TYPE_IMPOSSIBLE;
    if (avail < 8) return TYPE_PAST_END;
    unsigned word = (unsigned)le(p, 4), version = (word >> 4) & 0x0f, cls = word & 0x0f, flags = word >> 8;
    uint64_t size = le(p + 4, 4), sub = 0;
    *elem = size;
    size_t at = 8;
    if (version < 1 || version > 3) return 8;
    switch (cls) {
    case 0: case 4: case 1:                             // integer, bitfield: offset, precision;
        at += cls == 1 ? 12 : 4;                        // float: … exponent bias
        if (at > avail) return TYPE_PAST_END;
        if (!atomic_bits_ok(cls, flags, p + 8, size)) return TYPE_IMPOSSIBLE;
        break;
    case 2: at += 2; break;                             // time: precision
    case 3: case 7: break;                              // string, reference
    case 5: at += flags & 0xff; break;                  // opaque: its tag
    case 6: {                                           // compound: name, offset, [v1 dims], type
        unsigned offset_bytes = 1;
        for (uint64_t s = size; s >= 256; s >>= 8) offset_bytes++;
        for (unsigned i = 0, n = flags & 0xffff; i < n; i++) {
            const unsigned char *z = at < avail ? memchr(p + at, 0, avail - at) : NULL;
            if (!z) return TYPE_PAST_END;
            size_t len = (size_t)(z - (p + at));
            at += version >= 3 ? len + 1 : (len + 8) / 8 * 8;
            at += version >= 3 ? offset_bytes : 4;
            if (version == 1) {
                if (at >= avail) return TYPE_PAST_END;
                if (p[at] > 4) return TYPE_IMPOSSIBLE;
                at += 28;
            }
            if (at > avail) return TYPE_PAST_END;
            long m = dtype_extent(p + at, avail - at, depth + 1, vlen_size, &sub);
            if (m < 0) return m;
            at += (size_t)m;
        }
        break;
    }
    case 8: {                                           // enumeration: base type, names, values
        long m = dtype_extent(p + at, avail - at, depth + 1, vlen_size, &sub);
        if (m < 0) return m;
        if (sub != size) return TYPE_ENUM_SIZE;         // HDF5 copies values by the enum's size
        at += (size_t)m;
        unsigned n = flags & 0xffff;
        for (unsigned i = 0; i < n; i++) {
            const unsigned char *z = at < avail ? memchr(p + at, 0, avail - at) : NULL;
            if (!z) return TYPE_PAST_END;
            size_t len = (size_t)(z - (p + at));
            at += version >= 3 ? len + 1 : (len + 8) / 8 * 8;
        }
        if (at > avail || (n > 0 && sub > (avail - at) / n)) return TYPE_PAST_END;
        at += (size_t)(sub * n);
        break;
    }
    case 9: {                                           // variable length: base type
        if (size != vlen_size) return TYPE_VLEN_SIZE;
        long m = dtype_extent(p + at, avail - at, depth + 1, vlen_size, &sub);
        if (m < 0) return m;
        at += (size_t)m;
        break;
    }
    case 10: {                                          // array: rank, dims, [permutation], base
        if (at >= avail) return TYPE_PAST_END;
        if (p[at] > MAX_RANK) return TYPE_IMPOSSIBLE;
        unsigned rank = p[at];
        at += 1 + (version < 3 ? 3 : 0) + 4 * rank + (version < 3 ? 4 * rank : 0);
        if (at > avail) return TYPE_PAST_END;
        long m = dtype_extent(p + at, avail - at, depth + 1, vlen_size, &sub);
        if (m < 0) return m;
        at += (size_t)m;
        break;
    }
    default: return 8;                                  // HDF5 refuses an unknown class
    }
    return at <= avail ? (long)at : TYPE_PAST_END;
}

/// The bytes HDF5's dataspace decoder (`H5O_sdspace_decode`) reads from the encoding at `p`
/// (sizes of `ls` bytes), or -1 past `avail`; `points` receives the number of elements
/// (saturating at UINT64_MAX).
static long dataspace_extent(const unsigned char *p, size_t avail, int ls, uint64_t *points) {
    *points = 0;
    if (avail < 4) return -1;
    unsigned version = p[0], rank = p[1], flags = p[2];
    if (version < 1 || version > 2) return 4;           // HDF5 refuses the version
    if (rank > MAX_RANK) return -1;
    unsigned kind = version >= 2 ? p[3] : (rank > 0 ? 1 : 0);   // scalar, simple, null
    size_t at = version >= 2 ? 4 : 8;
    size_t dims = (size_t)rank * (size_t)ls * ((flags & 1) ? 2 : 1);
    if (at > avail || dims > avail - at) return -1;
    uint64_t n = kind == 2 ? 0 : 1;
    if (kind == 1) {
        for (unsigned i = 0; i < rank; i++) {
            uint64_t d = le(p + at + (size_t)i * (size_t)ls, ls);
            n = (d != 0 && n > UINT64_MAX / d) ? UINT64_MAX : n * d;
        }
    }
    *points = n;
    return (long)(at + dims);
}

static int sizeof_size_of(void *f) {
    resolve_real();
    int ls = real.sizeof_size ? real.sizeof_size(f) : 8;
    return (ls == 2 || ls == 4 || ls == 8) ? ls : 8;
}

/// The stored size of one variable-length value in `f`: a 4-byte length and a global heap ID
/// (the collection's address and a 4-byte index).
static uint64_t vlen_size_of(void *f) {
    resolve_real();
    int la = real.sizeof_addr ? real.sizeof_addr(f) : 8;
    return 4 + (uint64_t)((la == 2 || la == 4 || la == 8) ? la : 8) + 4;
}

/// Records a refused message on the file being decoded.
static void refuse_message(void *f, const char *what) {
    message_refusals++;
    chdf5_guard_file_t *g = guard_file_of(f);
    pthread_mutex_lock(&open_files_lock);
    if (!g) g = last_opened;
    note_damage(g, what);
    pthread_mutex_unlock(&open_files_lock);
}

/// What is wrong with the attribute message `p` of `size` bytes (H5Oattr.c, versions 1–3:
/// version, flags, the sizes of name, datatype and dataspace, [encoding], then the parts,
/// each padded to 8 bytes in version 1), or NULL when HDF5 can decode it within its size.
static const char *attribute_damage(void *f, const unsigned char *p, size_t size, char *what, size_t cap) {
    if (size < 8) return "an attribute message is shorter than its header";
    unsigned version = p[0], flags = version >= 2 ? p[1] : 0;
    if (version < 1 || version > 3 || (flags & ~3u)) return NULL;    // HDF5 refuses these itself
    size_t name_len = (size_t)le(p + 2, 2), dt_size = (size_t)le(p + 4, 2), ds_size = (size_t)le(p + 6, 2);
#define PADDED(n) (version == 1 ? ((n) + 7) / 8 * 8 : (n))
    size_t at = version >= 3 ? 9 : 8;
    if (at > size || !memchr(p + at, 0, name_len < size - at ? name_len : size - at))
        return "an attribute's name runs past its attribute message";
    at += PADDED(name_len);
    uint64_t elem = 0, points = 0;
    long type = (at > size || dt_size > size - at) ? TYPE_PAST_END : (flags & 1) ? 0 : dtype_extent(p + at, dt_size, 0, vlen_size_of(f), &elem);
    if (type == TYPE_IMPOSSIBLE) return "an attribute's datatype is damaged (its bits lie outside its size)";
    if (type == TYPE_ENUM_SIZE) return "an attribute's enumeration type is damaged (its size is not its base type's)";
    if (type == TYPE_VLEN_SIZE) return "an attribute's variable-length type is damaged (its size is not that of its stored form)";
    if (type < 0) return "an attribute's datatype runs past its part of the attribute message";
    at += PADDED(dt_size);
    if (at > size || ds_size > size - at || (!(flags & 2) && dataspace_extent(p + at, ds_size, sizeof_size_of(f), &points) < 0))
        return "an attribute's dataspace runs past its part of the attribute message";
    at += PADDED(ds_size);
#undef PADDED
    if (at > size) return "an attribute's dataspace runs past its part of the attribute message";
    if (!(flags & 3) && points > 0 && elem > 0 && (elem > (size - at) / points)) {
        snprintf(what, cap, "an attribute's data (%llu × %llu bytes) run past its attribute message (%zu bytes)",
                 (unsigned long long)points, (unsigned long long)elem, size);
        return what;
    }
    return NULL;
}

static void *checked_attr_decode(void *f, void *oh, unsigned mesg_flags, unsigned *ioflags, size_t p_size, const uint8_t *p) {
    char what[200];
    const char *damage = (mesg_flags & MSG_FLAG_SHARED) || p_size == 0 ? NULL : attribute_damage(f, p, p_size, what, sizeof what);
    if (damage) { refuse_message(f, damage); return NULL; }
    return decode.attr(f, oh, mesg_flags, ioflags, p_size, p);
}

static void *checked_dtype_decode(void *f, void *oh, unsigned mesg_flags, unsigned *ioflags, size_t p_size, const uint8_t *p) {
    uint64_t elem;
    long type = (mesg_flags & MSG_FLAG_SHARED) || p_size == 0 ? 0 : dtype_extent(p, p_size, 0, vlen_size_of(f), &elem);
    if (type < 0) {
        refuse_message(f, type == TYPE_IMPOSSIBLE ? "a datatype message is damaged (its bits lie outside its size)"
                          : type == TYPE_ENUM_SIZE ? "a datatype message is damaged (an enumeration's size is not its base type's)"
                          : type == TYPE_VLEN_SIZE ? "a datatype message is damaged (a variable-length type's size is not that of its stored form)"
                                                   : "a datatype message is damaged (its encoding runs past the message)");
        return NULL;
    }
    return decode.dtype(f, oh, mesg_flags, ioflags, p_size, p);
}

static void *checked_sdspace_decode(void *f, void *oh, unsigned mesg_flags, unsigned *ioflags, size_t p_size, const uint8_t *p) {
    uint64_t points;
    if (!(mesg_flags & MSG_FLAG_SHARED) && p_size > 0 && dataspace_extent(p, p_size, sizeof_size_of(f), &points) < 0) {
        refuse_message(f, "a dataspace message is damaged (its dimensions run past the message)");
        return NULL;
    }
    return decode.sdspace(f, oh, mesg_flags, ioflags, p_size, p);
}

/// Replaces the decode method of HDF5's message class `symbol` (id `id`, named `name`) with
/// `checked`, keeping HDF5's in `*saved`. The class lives in libhdf5's relocated read-only
/// data: its page is made writable for the one store, then given back its protection.
static int patch_decode(const char *symbol, unsigned id, const char *name, msg_decode_fn checked, msg_decode_fn *saved) {
    chdf5_msg_class_t *cls = (chdf5_msg_class_t *)dlsym(RTLD_DEFAULT, symbol);
    if (!cls || cls->id != id || !cls->name || strcmp(cls->name, name) != 0 || !cls->decode) return -1;
    if (cls->decode == checked) return 0;
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t slot = (uintptr_t)&cls->decode, start = slot & ~(uintptr_t)(page - 1);
    int prot = -1;
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[512];
    while (maps && fgets(line, sizeof line, maps)) {
        unsigned long lo, hi;
        char perms[5];
        if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) == 3 && slot >= lo && slot < hi) {
            prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) | (perms[2] == 'x' ? PROT_EXEC : 0);
            break;
        }
    }
    if (maps) fclose(maps);
    if (prot < 0) return -1;
    if (!(prot & PROT_WRITE) && mprotect((void *)start, (size_t)page, prot | PROT_WRITE) != 0) return -1;
    *saved = cls->decode;
    __atomic_store_n(&cls->decode, checked, __ATOMIC_SEQ_CST);
    if (!(prot & PROT_WRITE)) mprotect((void *)start, (size_t)page, prot);
    return 0;
}

static pthread_once_t message_checks_once = PTHREAD_ONCE_INIT;

static void install_message_checks(void) {
    decode.patched = patch_decode("H5O_MSG_ATTR", 0x0c, "attribute", checked_attr_decode, &decode.attr) == 0
                   && patch_decode("H5O_MSG_DTYPE", 0x03, "datatype", checked_dtype_decode, &decode.dtype) == 0
                   && patch_decode("H5O_MSG_SDSPACE", 0x01, "dataspace", checked_sdspace_decode, &decode.sdspace) == 0;
}

int chdf5_message_checks_active(void) {
    pthread_once(&message_checks_once, install_message_checks);
    return decode.patched;
}

unsigned long chdf5_message_refusals(void) { return message_refusals; }

// ---------------------------------------------------------------------------------------
// The check of decompressed chunks.
//
// HDF5 1.10 does not compare the size a chunk's filters return with the chunk's size: a
// compressed chunk that inflates to fewer bytes than its declared dimensions hold is then
// copied out by those dimensions, past the end of its buffer. HDF5 calls `H5Z_pipeline`
// through its procedure linkage table, so the definition below is the one it reaches; it
// runs HDF5's own and, while a reader has said which chunks it expects, refuses a chunk of
// another size.

typedef herr_t (*pipeline_fn)(const void *, unsigned, unsigned *, H5Z_EDC_t, H5Z_cb_t, size_t *, size_t *, void **);
static pipeline_fn real_pipeline;
static size_t expected_chunk_bytes;
static unsigned long chunk_refusals = 0;

herr_t H5Z_pipeline(const void *pline, unsigned flags, unsigned *filter_mask, H5Z_EDC_t edc_read, H5Z_cb_t cb_struct,
                    size_t *nbytes, size_t *buf_size, void **buf);
herr_t H5Z_pipeline(const void *pline, unsigned flags, unsigned *filter_mask, H5Z_EDC_t edc_read, H5Z_cb_t cb_struct,
                    size_t *nbytes, size_t *buf_size, void **buf) {
    if (!real_pipeline) real_pipeline = (pipeline_fn)dlsym(RTLD_NEXT, "H5Z_pipeline");
    if (!real_pipeline) return -1;
    herr_t r = real_pipeline(pline, flags, filter_mask, edc_read, cb_struct, nbytes, buf_size, buf);
    if (r >= 0 && (flags & H5Z_FLAG_REVERSE) && expected_chunk_bytes > 0 && *nbytes != expected_chunk_bytes) {
        chunk_refusals++;
        snprintf(last_refusal, sizeof last_refusal, "a compressed chunk decompresses to %zu bytes, not the %zu its dimensions hold",
                 *nbytes, expected_chunk_bytes);
        return -1;
    }
    return r;
}

void chdf5_expect_chunks_of(hid_t dataset) {
    expected_chunk_bytes = 0;
    if (dataset < 0) return;
    last_refusal[0] = 0;
    hid_t dcpl = H5Dget_create_plist(dataset), type = H5Dget_type(dataset);
    if (dcpl >= 0 && type >= 0 && H5Pget_layout(dcpl) == H5D_CHUNKED && H5Pget_nfilters(dcpl) > 0) {
        hsize_t dims[32];
        int rank = H5Pget_chunk(dcpl, 32, dims);
        size_t bytes = H5Tget_size(type);
        for (int i = 0; i < rank && bytes > 0; i++) {
            if (dims[i] == 0 || bytes > SIZE_MAX / dims[i]) { bytes = 0; break; }
            bytes *= (size_t)dims[i];
        }
        expected_chunk_bytes = rank > 0 ? bytes : 0;
    }
    if (type >= 0) H5Tclose(type);
    if (dcpl >= 0) H5Pclose(dcpl);
    H5Eclear2(H5E_DEFAULT);
}

unsigned long chdf5_chunk_refusals(void) { return chunk_refusals; }

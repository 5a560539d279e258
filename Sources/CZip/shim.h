#include <zip.h>
#include <stdint.h>
#include <string.h>
#include <stdio.h>

// libzip, used read-only for HyperSpy's ZSpy files (a zarr store in a zip archive).

/// Opens `path` read-only with libzip's consistency checks off (zarr's ZipStore may write a
/// name twice; such archives fail ZIP_CHECKCONS). Returns NULL and the libzip error code.
static inline zip_t *czip_open(const char *path, int *error) {
    *error = 0;
    return zip_open(path, ZIP_RDONLY, error);
}

/// Size fields of entry `index`: uncompressed size and stored (compressed) size; 0 on success.
static inline int czip_sizes(zip_t *z, zip_uint64_t index, zip_uint64_t *size, zip_uint64_t *comp_size) {
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(z, index, 0, &st) != 0) return -1;
    if (!(st.valid & ZIP_STAT_SIZE) || !(st.valid & ZIP_STAT_COMP_SIZE)) return -1;
    *size = st.size;
    *comp_size = st.comp_size;
    return 0;
}

/// Reads entry `index` whole into `buf`, which holds exactly its uncompressed `size` bytes
/// (checked by the caller against its limits). libzip inflates and checks the CRC-32.
/// Returns 0 when exactly `size` bytes were read and the entry ended there.
static inline int czip_read(zip_t *z, zip_uint64_t index, void *buf, zip_uint64_t size) {
    zip_file_t *f = zip_fopen_index(z, index, 0);
    if (!f) return -1;
    zip_uint64_t got = 0;
    int status = 0;
    while (got < size) {
        zip_int64_t n = zip_fread(f, (char *)buf + got, size - got);
        if (n <= 0) { status = -1; break; }
        got += (zip_uint64_t)n;
    }
    if (status == 0) {
        char extra;
        if (zip_fread(f, &extra, 1) != 0) status = -1;   // more data than the directory said, or an error
    }
    zip_fclose(f);
    return status;
}

static inline const char *czip_error_text(int code) {
    zip_error_t e;
    zip_error_init_with_code(&e, code);
    static _Thread_local char text[128];
    snprintf(text, sizeof text, "%s", zip_error_strerror(&e));
    zip_error_fini(&e);
    return text;
}

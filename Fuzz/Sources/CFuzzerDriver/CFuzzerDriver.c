// LLVMFuzzerRunDriver lives in libclang_rt.fuzzer, linked by -sanitize=fuzzer.
#include "CFuzzerDriver.h"
#include <dlfcn.h>

int fuzz_hdf5_keep_free_lists(void) {
    typedef int (*limits_fn)(int, int, int, int, int, int);
    limits_fn set = (limits_fn)dlsym(RTLD_DEFAULT, "H5set_free_list_limits");
    return set ? set(64 << 20, 16 << 20, 64 << 20, 16 << 20, 64 << 20, 16 << 20) : -1;
}

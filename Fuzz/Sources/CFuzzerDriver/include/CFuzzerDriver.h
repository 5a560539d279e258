#pragma once
#include <stddef.h>
#include <stdint.h>

/// libFuzzer's driver (LLVM >= 11), for programs that keep their own `main`.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

/// Raises HDF5's free-list limits (64 MB in all, 16 MB per list, for each kind of list) so
/// that the metadata cache HDF5 allocates on every open (over 512 kB, zero-filled) is
/// reused from its free list instead of being mapped fresh and faulted in on each input.
/// 0 on success, -1 when HDF5 is not linked.
int fuzz_hdf5_keep_free_lists(void);

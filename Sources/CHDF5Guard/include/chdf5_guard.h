#pragma once
// HeatFront's defences around the HDF5 C library (HDF5 1.10 and later), in C because they
// sit below HDF5's public API:
//
// - a read-only file driver that refuses the global heap collections HDF5 would decode in
//   an endless loop or outside its buffer, and keeps the file open for the checks below;
// - a check of every global heap object HDF5 dereferences (variable-length strings and
//   sequences, references): the object must exist in its collection, read from the file's
//   own bytes, before HDF5 reads it;
// - a repair of the attribute table HDF5 builds when an object's attribute messages cannot
//   all be decoded (its unfilled entries would otherwise be closed as attributes);
// - a cap on the buffer HDF5 allocates for one variable-length value, whose length the
//   file states;
// - a check of every attribute, datatype and dataspace message against its own size before
//   HDF5 decodes it (HDF5 reads their parts as far as the counts inside them reach).
//
// Every function here must be called with HeatFront's HDF5 lock held (HDF5Access).
#include <hdf5.h>
#include <stddef.h>

/// Sets HeatFront's guarded read-only driver on a file-access property list; 0 on success.
int chdf5_use_guard_driver(hid_t fapl);

/// Whether HDF5 goes through HeatFront's checks in this process (the dynamic linker bound
/// HDF5's calls of `H5HG_read`, `H5HG_get_obj_size`, `H5A__compact_build_table` and of its
/// block allocator to the executable's checked versions, and the message checks are
/// installed): 1 or 0.
int chdf5_heap_guard_active(void);

/// Whether the checks of attribute, datatype and dataspace messages are installed in HDF5's
/// message classes (they are on first use of the guarded driver): 1 or 0.
int chdf5_message_checks_active(void);

/// Object-header messages refused so far in this process (for tests).
unsigned long chdf5_message_refusals(void);

/// Global heap objects refused so far in this process (for tests).
unsigned long chdf5_heap_guard_refusals(void);

/// Variable-length values refused as too large so far in this process (for tests).
unsigned long chdf5_vlen_refusals(void);

/// Declares which dataset the next reads are from: while it is set, a compressed chunk
/// whose filters return another size than its declared dimensions × its type's size is
/// refused (HDF5 1.10 would copy it out by the dimensions, past its buffer). A negative
/// identifier clears it. Call under the same lock as the reads.
void chdf5_expect_chunks_of(hid_t dataset);

/// Decompressed chunks refused for their size so far in this process (for tests).
unsigned long chdf5_chunk_refusals(void);

/// Copies into `buf` the first damage the checks found in the open file `file` (a file
/// opened through the guarded driver); returns its length, or 0 when none was found.
size_t chdf5_guard_damage(hid_t file, char *buf, size_t cap);

/// Copies into `buf` what was refused last since the last open or `chdf5_expect_chunks_of`:
/// a read reaching far past the end of the file, a chunk of the wrong decompressed size.
/// Returns its length, or 0 when nothing was. Meaningful right after a failed `H5Fopen` or
/// `H5Dread`, under the same lock.
size_t chdf5_guard_last_refusal(char *buf, size_t cap);

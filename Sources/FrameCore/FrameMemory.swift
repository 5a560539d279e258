#if canImport(Glibc)
import CMalloc
#endif

/// How the C allocator treats frame-sized buffers, set once by each executable at start.
public enum FrameMemory {
    /// Every stage decodes, resamples and sums frames of a few MB, one buffer per frame.
    /// glibc maps each such buffer afresh and returns it to the kernel when freed, so each
    /// frame paid for zero-filled pages again (8 % of the rigid benchmark's CPU in `perf`).
    /// Serving blocks up to 32 MB from the heap and keeping up to 256 MB of freed memory
    /// for reuse removes that; peak memory is unchanged. Both limits must be set: setting
    /// either alone turns off glibc's own adaptation of the other and is slower.
    public static func reuseFrameBuffers() {
        #if canImport(Glibc)
        _ = mallopt(M_MMAP_THRESHOLD, 32 << 20)
        _ = mallopt(M_TRIM_THRESHOLD, 256 << 20)
        #endif
    }
}

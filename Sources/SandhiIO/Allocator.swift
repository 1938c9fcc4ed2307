import CMalloc

/// The process's allocator settings.
public enum Allocator {
    /// Keeps up to `bytes` of freed heap in the process instead of trimming it back to the
    /// kernel, and allocates blocks up to that size (at most 32 MiB) from the heap rather than
    /// by mapping them (glibc's M_TRIM_THRESHOLD and M_MMAP_THRESHOLD; nothing elsewhere). For a process that builds and
    /// frees large structures over and over (a simulation building a world per seed): each
    /// trim would make the next build fault the same pages in again. Process-wide, so only for
    /// a process whose one job that is. Returns whether the setting took.
    @discardableResult
    public static func keepFreedHeap(upToBytes bytes: Int32) -> Bool {
        sandhi_keep_freed_heap(bytes) == 1
    }
}

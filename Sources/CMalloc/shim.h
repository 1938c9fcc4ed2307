#ifndef SANDHI_CMALLOC_SHIM_H
#define SANDHI_CMALLOC_SHIM_H
// glibc's allocator settings (mallopt), which Swift's Glibc module does not carry.
#ifdef __linux__
#include <malloc.h>

// Free memory at the top of the heap stays with the process up to `bytes`, instead of going
// back to the kernel whenever more than 128 KiB of it is free. Setting the trim threshold also
// freezes glibc's mmap threshold at its 128 KiB start, so every larger block would be mapped
// and unmapped (its pages faulted in) each time: raise that too, to `bytes` or glibc's 32 MiB
// ceiling. Returns 1 when both took.
static inline int sandhi_keep_freed_heap(int bytes) {
    int mmapBytes = bytes < (32 << 20) ? bytes : (32 << 20);
    return mallopt(M_TRIM_THRESHOLD, bytes) == 1 && mallopt(M_MMAP_THRESHOLD, mmapBytes) == 1;
}
#else
static inline int sandhi_keep_freed_heap(int bytes) {
    (void)bytes;
    return 0;
}
#endif
#endif

#ifndef SANDHI_CMALLOC_SHIM_H
#define SANDHI_CMALLOC_SHIM_H
// glibc's allocator settings (mallopt), which Swift's Glibc module does not carry.
#ifdef __linux__
#include <malloc.h>

// Free memory at the top of the heap stays with the process up to `bytes`, instead of going
// back to the kernel whenever more than 128 KiB of it is free. Returns mallopt's answer
// (1 on success).
static inline int sandhi_keep_freed_heap(int bytes) {
    return mallopt(M_TRIM_THRESHOLD, bytes);
}
#else
static inline int sandhi_keep_freed_heap(int bytes) {
    (void)bytes;
    return 0;
}
#endif
#endif

//! Settings of the mimalloc allocator that the `sweep` binary and the training benchmark install
//! as their global allocator (the library itself installs none).
//!
//! Why mimalloc at all: a training step allocates and frees activations of tens of megabytes,
//! which glibc's malloc always hands back to the kernel (they are above its largest mmap threshold,
//! 32 MiB), so every step paid page faults and page zeroing for them again.

/// mimalloc's `mi_option_purge_delay`: 15 in both its v2 and v3 `mimalloc.h` (libmimalloc-sys
/// 0.1.49 declares no constant for it).
const MI_OPTION_PURGE_DELAY: i32 = 15;

/// Tells mimalloc to keep freed memory instead of purging it back to the kernel 10 ms after a
/// free (its default). With purging, the activations of the next step faulted in and zeroed their
/// pages again: about 18% of a training step's samples in perf, 2-5 s of system time over 9 steps;
/// without, under 1 s. The price is that the process keeps its peak memory, which a training run
/// reaches again at every step anyway. Call it at the start of `main`.
pub fn keep_freed_memory() {
    // SAFETY: mi_option_set only stores an integer in mimalloc's option table; any value is valid
    // for this option (-1 means never purge).
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

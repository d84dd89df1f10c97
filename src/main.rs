//! The `sweep` binary: everything lives in the library; this only picks the allocator and calls
//! [`sweep::cli::main`].

/// mimalloc instead of glibc's malloc: a training step allocates and frees activations of tens of
/// megabytes, which glibc always hands back to the kernel (they are above its largest mmap
/// threshold, 32 MiB), so every step paid page faults and page zeroing for them again; mimalloc
/// reuses the memory. About 10% more images/s on the standard model (bench/RESULTS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    sweep::cli::main()
}

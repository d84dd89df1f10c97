//! The `sweep` binary: everything lives in the library; this only picks the allocator and calls
//! [`sweep::cli::main`].

/// mimalloc instead of glibc's malloc, keeping freed memory: see [`sweep::allocator`]. About 10%
/// more images/s on the standard model from the allocator, less system time from keeping memory
/// (bench/RESULTS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // A closed pipe (`sweep plan --json | head`) ends the process quietly, as it does any Unix
    // tool, instead of making `println!` panic. Rust ignores SIGPIPE by default.
    // SAFETY: setting a signal's disposition to the default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    sweep::allocator::keep_freed_memory();
    sweep::cli::main()
}

//! The `benchkeep` binary: parse the command line, run it, map the outcome to an exit code.

// mimalloc: loading 10,000 metadata files is mostly small allocations on two threads,
// where glibc's arenas spent a third of the time growing (mprotect, page faults).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(benchkeep::cli::main());
}

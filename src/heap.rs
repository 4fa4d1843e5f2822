//! The allocator's two knobs: glibc's trim threshold, fixed once at start ([`tune`]), and its
//! free pages given back after a load ([`trim`]). Neither allocates nor decides anything; both
//! do nothing on other C libraries (musl keeps no such threshold). Never called on the answer
//! path.

/// Fixes glibc's trim threshold at its default (128 KiB), once, before the config is loaded.
/// glibc raises it (and the mmap threshold) as large blocks are freed, and only a heap's top
/// beyond it goes back to the kernel. The config is parsed on a thread of its own
/// (`Config::load`), whose arena is all free once the parse is dropped: at 10,000 endpoints its
/// 8 MB top stayed resident under the raised threshold (6.0 against 4.2 MB anonymous), and
/// `malloc_trim` does not trim another arena's top. A fixed threshold also fixes the mmap
/// threshold at 128 KiB, so the registry's large tables are mapped apart and a regrown one is
/// returned whole. Nothing on the answer path allocates that much.
#[cfg(target_env = "gnu")]
pub fn tune() {
    // SAFETY: glibc documents mallopt as MT-Unsafe; `serve` calls this first, before it starts
    // any thread.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024);
    }
}

#[cfg(not(target_env = "gnu"))]
pub fn tune() {}

/// Gives the allocator's free pages back to the kernel after the static records are loaded:
/// at start, and after each reload. Loading peaks well above what is kept (the TOML parse, the
/// parsed networks, a reload's diff), and glibc keeps freed pages that are not at a heap's top:
/// at 100,000 endpoints memory.sh read 198.4 MB resident at start without this, 179.5 MB with
/// it; and a reload of the same records (a comment added to the file) took the anonymous
/// memory from 23.2 to 78.6 MB without it, to 23.4 MB with it. It takes ~10 ms at 100,000.
#[cfg(target_env = "gnu")]
pub fn trim() {
    // SAFETY: malloc_trim only takes the allocator's own locks; any thread may call it.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(target_env = "gnu"))]
pub fn trim() {}

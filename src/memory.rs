//! Handing freed memory back to the operating system. A worker's large buffers come and go
//! (a 20 MB request body, its parsed copy, decoded images): glibc's allocator keeps freed
//! memory in per-thread arenas and, after the first large free, raises its mmap threshold so
//! later buffers of that size come from those arenas too. Memory that is free but never
//! returned looks like a leak to the platform's memory limit: forty 20 MB bodies left `serve`
//! at half a gigabyte. So large buffers are always mapped on their own (returned to the system
//! the moment they are freed), and after each job the arenas' free pages are released.
//! Elsewhere than Linux with glibc both calls do nothing.

/// Buffers from this size up are mapped on their own (glibc's default starts at 128 KiB but
/// moves up to 32 MiB as large buffers are freed; fixed here, it stays).
const MMAP_THRESHOLD: usize = 1024 * 1024;

/// Fix the allocator's large-buffer threshold. Call once, first thing in `main`.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let threshold = libc::c_int::try_from(MMAP_THRESHOLD).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only changes the allocator's parameters; any value is accepted or
        // refused (returning 0), and it is called before the program starts other threads.
        #[allow(unsafe_code)]
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, threshold);
        }
    }
}

/// Return the free pages of every arena to the system (after a job: its buffers are gone).
pub(crate) fn release() {
    // SAFETY: malloc_trim walks the allocator's own free lists under its locks; it takes no
    // pointer of ours and is safe to call from any thread at any time.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    unsafe {
        libc::malloc_trim(0);
    }
}

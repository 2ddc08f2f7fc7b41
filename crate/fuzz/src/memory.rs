use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The memory a hostile model file may make Torchlight take before it is refused: the bound
/// issue 13 sets for native runs and for the browser's worker.
pub const MEMORY_LIMIT: usize = 512 << 20;

/// The system allocator, refusing any allocation that would take the live bytes past
/// [`MEMORY_LIMIT`]. Rust then aborts with "memory allocation of N bytes failed", which
/// libFuzzer reports as a crash, saving the input. libFuzzer's own limits do less here:
/// `-rss_limit_mb` looks once a second, by which time a hostile count may have taken
/// gigabytes of a machine others share, and `-malloc_limit_mb` needs a sanitizer's allocator,
/// which a stable build has not.
pub struct CappedAllocator;

static LIVE: AtomicUsize = AtomicUsize::new(0);

fn reserve(bytes: usize) -> bool {
    LIVE.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |live| {
        live.checked_add(bytes).filter(|&total| total <= MEMORY_LIMIT)
    })
    .is_ok()
}

fn release(bytes: usize) {
    LIVE.fetch_sub(bytes, Ordering::Relaxed);
}

// SAFETY: every call goes to `System` with the caller's arguments unchanged; the counting
// around it only decides whether to make the call.
unsafe impl GlobalAlloc for CappedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !reserve(layout.size()) {
            return null_mut();
        }
        let p = System.alloc(layout);
        if p.is_null() {
            release(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !reserve(layout.size()) {
            return null_mut();
        }
        let p = System.alloc_zeroed(layout);
        if p.is_null() {
            release(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        release(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old_size = layout.size();
        if new_size > old_size && !reserve(new_size - old_size) {
            return null_mut();
        }
        let p = System.realloc(ptr, layout, new_size);
        match (p.is_null(), new_size > old_size) {
            (true, true) => release(new_size - old_size),
            (false, false) => release(old_size - new_size),
            _ => {}
        }
        p
    }
}

//! What the core was doing when it trapped. A panic, or an allocation wasm memory cannot give,
//! ends in a trap (`RuntimeError: unreachable`): the call never returns its error and the
//! instance is not to be trusted again. Both are noted here as they happen, so that the page
//! can still say why afterwards ([`trap_report`], `trapReport` in JS), without calling into
//! anything the trap may have left half done.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::Mutex;

use wasm_bindgen::prelude::*;

use super::WebError;

/// The system allocator, noting each allocation it could not make: std then aborts.
struct NotingAllocator;

#[global_allocator]
static ALLOCATOR: NotingAllocator = NotingAllocator;

/// What happened last, of the two things that end in a trap.
const NOTHING: u8 = 0;
const ALLOCATION: u8 = 1;
const PANIC: u8 = 2;
static LAST: AtomicU8 = AtomicU8::new(NOTHING);
/// Bytes of the last allocation that failed.
static FAILED_BYTES: AtomicUsize = AtomicUsize::new(0);
/// Whether it failed while a model's header was being read.
static FAILED_IN_HEADER: AtomicBool = AtomicBool::new(false);
static READING_HEADER: AtomicBool = AtomicBool::new(false);
static PANIC_MESSAGE: Mutex<String> = Mutex::new(String::new());

// SAFETY: every call goes to `System` unchanged; only its null results are looked at.
unsafe impl GlobalAlloc for NotingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        noted(unsafe { System.alloc(layout) }, layout.size())
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        noted(unsafe { System.alloc_zeroed(layout) }, layout.size())
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        noted(unsafe { System.realloc(ptr, layout, new_size) }, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Notes a failed allocation (a null `ptr`); allocates nothing itself.
fn noted(ptr: *mut u8, bytes: usize) -> *mut u8 {
    if ptr.is_null() {
        FAILED_BYTES.store(bytes, Ordering::Relaxed);
        FAILED_IN_HEADER.store(READING_HEADER.load(Ordering::Relaxed), Ordering::Relaxed);
        LAST.store(ALLOCATION, Ordering::Release);
    }
    ptr
}

/// Runs `read`, which reads a model's header: memory it cannot get is the file's fault (a
/// count or a length no real model has), not the device's.
pub(super) fn reading_header<T>(read: impl FnOnce() -> T) -> T {
    READING_HEADER.store(true, Ordering::Relaxed);
    let result = read();
    READING_HEADER.store(false, Ordering::Relaxed);
    result
}

/// A panic's message goes to the console, so that a bug report can say where, and is kept for
/// `trap_report`. (Panic messages carry no prompt or answer text.)
pub(super) fn note_panics() {
    std::panic::set_hook(Box::new(|info| {
        let message = info.to_string();
        super::console_error(&format!("torchlight panicked: {message}"));
        // A panic inside the hook's own lock would wait for ever: skip the note instead.
        if let Ok(mut kept) = PANIC_MESSAGE.try_lock() {
            *kept = message;
        }
        LAST.store(PANIC, Ordering::Release);
    }));
}

/// Why the core trapped, once it has: an error with code `does_not_fit` for memory wasm could
/// not give (`invalid_model` when a model's header asked for it), or `internal` with the panic's
/// message; undefined when it noted neither (a trap of another kind).
#[wasm_bindgen(js_name = trapReport)]
pub fn trap_report() -> JsValue {
    let error = match LAST.load(Ordering::Acquire) {
        ALLOCATION => {
            let bytes = FAILED_BYTES.load(Ordering::Relaxed) as u64;
            if FAILED_IN_HEADER.load(Ordering::Relaxed) {
                WebError::HeaderOutOfMemory { bytes }
            } else {
                WebError::OutOfMemory { bytes }
            }
        }
        PANIC => WebError::Panicked(PANIC_MESSAGE.try_lock().map(|m| m.clone()).unwrap_or_default()),
        _ => return JsValue::UNDEFINED,
    };
    error.into()
}

//! The browser face: what the npm package's JS layer calls through wasm-bindgen.
//!
//! JS owns the network (and, later, the IndexedDB cache): it fetches the first bytes of a model
//! file and hands them to [`Loader::create`], which reads the GGUF header, checks that
//! Torchlight can run the model, opens WebGPU and allocates every weight; then it streams the
//! tensor data range [`Loader::range`] names through [`Loader::push`], chunk by chunk, so wasm
//! memory never holds more than one chunk. [`Loader::finish`] gives an [`Engine`] that answers
//! OpenAI-shaped chat requests, streaming text through a callback that can also stop it.
//!
//! When a page falls back to a cloud endpoint, JS fetches from there too, and
//! [`cloud_completion`], [`CloudStream`] and [`cloud_failure`] (`cloudCompletion`,
//! `CloudStream`, `cloudFailure` in JS) read what came back.
//!
//! Every failure crosses as a JS `Error` with a stable `code` property; the codes are decided
//! in one place, [`error::code`]. A trap (a panic, an allocation wasm memory cannot give) ends a
//! call without one: [`trap`] notes why, and [`trap_report`] (`trapReport`) tells the page after.

mod cloud;
mod device;
mod engine;
mod error;
mod estimate;
mod loader;
mod logprobs;
mod request;
mod trap;

pub use cloud::{cloud_completion, cloud_failure, CloudStream};
pub use engine::Engine;
pub use error::WebError;
pub use estimate::estimate;
pub use loader::Loader;
pub use trap::trap_report;

/// Lends the calling Web Worker's thread to CPU thread pool `id` (a `Loader`'s `threadPool`):
/// runs its tasks until the model is freed. Only in the build with wasm atomics.
#[cfg(target_feature = "atomics")]
#[wasm_bindgen(js_name = lendThread)]
pub fn lend_thread(id: u32) {
    crate::cpu::lend_thread(id);
}

/// Tells pool `id` that a thread lent to it trapped, so the engine fails instead of waiting for
/// the task that thread held.
#[cfg(target_feature = "atomics")]
#[wasm_bindgen(js_name = threadFailed)]
pub fn thread_failed(id: u32) {
    crate::cpu::thread_failed(id);
}

use wasm_bindgen::prelude::*;

/// `value` as a plain JS object (not `Map`s), as JSON would give.
fn to_js(value: &impl serde::Serialize) -> JsValue {
    value.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).expect("plain data serializes")
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(message: &str);
}

#[wasm_bindgen(start)]
fn start() {
    trap::note_panics();
}

/// Has `listener` called, at most about once a second, while the core computes without giving
/// this thread's event loop a turn (a CPU prefill step): the package's worker tells its page,
/// whose watchdog would otherwise take the silence for a hang. `undefined` stops it.
#[wasm_bindgen(js_name = setHeartbeat)]
pub fn set_heartbeat(listener: Option<js_sys::Function>) {
    crate::event_loop::set_heartbeat_listener(listener);
}

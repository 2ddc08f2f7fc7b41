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
//! in one place, [`error::code`].

mod cloud;
mod device;
mod engine;
mod error;
mod estimate;
mod loader;
mod request;

pub use cloud::{cloud_completion, cloud_failure, CloudStream};
pub use engine::Engine;
pub use error::WebError;
pub use estimate::estimate;
pub use loader::Loader;

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

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(message: &str);
}

/// Gives the browser's event loop a turn (a task, not a microtask), so that while a generation
/// runs on the CPU a page still paints and a worker still hears messages (an abort). A
/// MessageChannel message is a task without the 4 ms clamp nested `setTimeout`s get.
pub(crate) async fn yield_to_event_loop() {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let post = || -> Result<(), JsValue> {
            let constructor = js_sys::Reflect::get(&js_sys::global(), &"MessageChannel".into())?;
            let constructor: &js_sys::Function = constructor.dyn_ref().ok_or(JsValue::NULL)?;
            let channel = js_sys::Reflect::construct(constructor, &js_sys::Array::new())?;
            let [receiver, sender] = ["port1", "port2"].map(|port| js_sys::Reflect::get(&channel, &port.into()));
            js_sys::Reflect::set(&receiver?, &"onmessage".into(), &resolve)?;
            let sender = sender?;
            let post: js_sys::Function = js_sys::Reflect::get(&sender, &"postMessage".into())?.dyn_into()?;
            post.call1(&sender, &JsValue::NULL).map(drop)
        };
        // Without MessageChannel there is no task to wait for: go on at once.
        if post().is_err() {
            let _ = resolve.call0(&JsValue::NULL);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// A panic in wasm ends as an opaque `unreachable` trap; its message goes to the console first,
/// so a bug report can say where. (Panic messages carry no prompt or answer text.)
#[wasm_bindgen(start)]
fn start() {
    std::panic::set_hook(Box::new(|info| console_error(&format!("torchlight panicked: {info}"))));
}

//! The browser's event loop, for the engine: where a generation on the CPU gives the page a
//! turn between tokens, and how a computation too long to wait for one says it is still going.
//! A platform service, below the engine; the web face (`web`) is above it.

use std::cell::RefCell;

use wasm_bindgen::{JsCast, JsValue};

/// Milliseconds between two calls of the heartbeat listener, at least.
const HEARTBEAT_MS: f64 = 1000.0;

thread_local! {
    /// Who hears `heartbeat` on this thread, and when it last did (`Date.now()`).
    static HEARTBEAT: RefCell<Option<(js_sys::Function, f64)>> = const { RefCell::new(None) };
}

/// Sets (or, with `None`, clears) who hears `heartbeat` on this thread.
pub fn set_heartbeat_listener(listener: Option<js_sys::Function>) {
    HEARTBEAT.with(|h| *h.borrow_mut() = listener.map(|f| (f, f64::NEG_INFINITY)));
}

/// Says "busy, not stuck" from inside a computation that holds the thread without yielding (one
/// CPU prefill step can take a minute on a phone): calls the listener at most once every
/// HEARTBEAT_MS. A page cannot see into a worker busy in wasm, and the npm package's page ends
/// one that goes quiet for too long.
pub fn heartbeat() {
    HEARTBEAT.with(|h| {
        // Only a listener that called back into the core could find the cell borrowed.
        let Ok(mut h) = h.try_borrow_mut() else { return };
        let Some((listener, last)) = h.as_mut() else { return };
        let now = js_sys::Date::now();
        if now - *last >= HEARTBEAT_MS {
            *last = now;
            let _ = listener.call0(&JsValue::NULL);
        }
    });
}

/// Gives the browser's event loop a turn (a task, not a microtask), so that while a generation
/// runs on the CPU a page still paints and a worker still hears messages (an abort). A
/// MessageChannel message is a task without the 4 ms clamp nested `setTimeout`s get.
pub async fn yield_to_event_loop() {
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

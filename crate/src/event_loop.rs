//! The browser's event loop, for the engine: where a generation on the CPU gives the page a
//! turn between tokens. A platform service, below the engine; the web face (`web`) is above it.

use wasm_bindgen::{JsCast, JsValue};

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

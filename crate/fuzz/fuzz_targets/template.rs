//! A chat template is a program from the model file, run on every request: whatever it says,
//! building and rendering it must end with an error or a prompt, never a panic, a hang or an
//! exhausted memory. An input whose first byte is 0 is the template's text itself (the corpus
//! starts from real chat templates, which the fuzzer mutates character by character); any other
//! is a template built from the grammar in `jinja.rs`, which reaches constructs no real
//! template uses.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use torchlight::chat::{ChatTemplate, Message, RenderOptions};
use torchlight_fuzz::jinja::Template;
use torchlight_fuzz::CappedAllocator;

#[global_allocator]
static ALLOCATOR: CappedAllocator = CappedAllocator;

fuzz_target!(init: torchlight_fuzz::let_the_template_thread_panic(), |data: &[u8]| {
    let source = match data.split_first() {
        Some((0, text)) => match std::str::from_utf8(text) {
            Ok(text) => text.to_string(),
            Err(_) => return,
        },
        _ => match Template::arbitrary_take_rest(Unstructured::new(data)) {
            Ok(template) => template.to_string(),
            Err(_) => return,
        },
    };
    let Ok(template) = ChatTemplate::new(&source, "<s>", "</s>") else {
        return;
    };
    let conversation = [
        Message::new("system", "Answer briefly."),
        Message::new("user", "What is 2 + 2?"),
        Message::new("assistant", "<think>sum</think>4"),
        Message::new("user", "And ÷ 2?"),
    ];
    let _ = template.render(&conversation, RenderOptions { add_generation_prompt: true, enable_thinking: false });
});

//! A model file's header is untrusted input: everything Torchlight does with one before reading
//! its weights (`torchlight info`, and a page deciding whether a model fits) must end with an
//! error, never a panic, a hang or an exhausted memory. This reads the fuzzer's bytes as a
//! header, then sizes the model, builds its tokenizer and chat template, renders a
//! conversation and tokenizes the prompt.
#![no_main]

use libfuzzer_sys::fuzz_target;
use torchlight::chat::{ChatTemplate, Message, RenderOptions};
use torchlight::engine::LoadOptions;
use torchlight::footprint::Footprint;
use torchlight::gguf::{ByteSource, GgufFile};
use torchlight::tokenizer::Tokenizer;
use torchlight_fuzz::CappedAllocator;

#[global_allocator]
static ALLOCATOR: CappedAllocator = CappedAllocator;

/// The length every input is padded to with zeros.
const FILE_LEN: u64 = 64 << 20;

/// The input followed by zeros, as a sparse file (or a server padding its answer) presents it.
/// The header's counts and offsets are checked against the file's length, so a hostile file can
/// claim millions of items with few bytes of its own; without the padding every such count in a
/// small input would be refused before the code it reaches runs, and every tensor would have to
/// carry its data in the input.
struct ZeroPadded<'a>(&'a [u8]);

impl ByteSource for ZeroPadded<'_> {
    fn len(&self) -> u64 {
        FILE_LEN.max(self.0.len() as u64)
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        buf.fill(0);
        if let Some(rest) = usize::try_from(offset).ok().and_then(|start| self.0.get(start..)) {
            let n = rest.len().min(buf.len());
            buf[..n].copy_from_slice(&rest[..n]);
        }
        Ok(())
    }
}

fuzz_target!(init: torchlight_fuzz::let_the_template_thread_panic(), |data: &[u8]| {
    let Ok(file) = GgufFile::read(&mut ZeroPadded(data)) else {
        return;
    };
    // The model's config and memory, its tokenizer and its template, as `torchlight info` does.
    let footprint = Footprint::of(&file, &LoadOptions::default());
    let _ = footprint.gpu_bytes();
    let (Ok(template), Ok(tokenizer)) = (ChatTemplate::from_gguf(&file), Tokenizer::from_gguf(&file)) else {
        return;
    };
    let conversation = [
        Message::new("system", "Answer briefly."),
        Message::new("user", "What is 2 + 2?"),
        Message::new("assistant", "4"),
        Message::new("user", "And ÷ 2? <think>"),
    ];
    let options = RenderOptions { add_generation_prompt: true, enable_thinking: true };
    if let Ok(prompt) = template.render(&conversation, options) {
        let _ = tokenizer.encode(&prompt, true, true);
    }
});

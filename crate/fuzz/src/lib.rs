//! What the fuzz targets share beyond `libfuzzer-sys`: a memory cap, and the Jinja grammar of
//! the template target.

pub mod jinja;
mod memory;

pub use memory::CappedAllocator;

/// libFuzzer's panic hook aborts on every panic, before it can unwind. Torchlight catches a
/// panic on its chat template's thread (a MiniJinja bug, such as `loop.cycle()` with no
/// argument) and returns it as the template's error, as it does outside the fuzzer: a panic
/// there unwinds to that catch. Any other panic still aborts, and is a finding.
pub fn let_the_template_thread_panic() {
    let libfuzzer = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() != Some("chat template") {
            libfuzzer(info);
        }
    }));
}

//! What the fuzz targets share beyond `libfuzzer-sys`: a memory cap, and the Jinja grammar of
//! the template target.

pub mod jinja;
mod memory;

pub use memory::CappedAllocator;

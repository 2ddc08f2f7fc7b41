//! Token sampling and stop-string handling.
//!
//! [`Sampler`] turns one step's logits into a token, following llama.cpp's common chain:
//! penalties, top-k, top-p, min-p, temperature, then a seeded draw. [`StopStrings`] watches the
//! streamed text and cuts it exactly before the first stop string.

mod params;
mod sampler;
mod stop;

pub use params::{SampleError, SamplingParams};
pub use sampler::Sampler;
pub use stop::{StopStep, StopStrings};
pub(crate) use stop::partial_start;

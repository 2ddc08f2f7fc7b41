//! Token sampling and stop-string handling.
//!
//! [`Sampler`] turns one step's logits into a token, following llama.cpp's common chain:
//! penalties, top-k, top-p, min-p, temperature, then a seeded draw. [`StopStrings`] watches the
//! streamed text and cuts it exactly before the first stop string. [`apply_logit_bias`] shifts
//! the raw logits before any of that, and [`TokenLogprob`] reports what the model thought of
//! each token.

mod logit_bias;
mod logprobs;
mod params;
mod sampler;
mod stop;

pub use logit_bias::{apply_logit_bias, check_logit_bias, MAX_LOGIT_BIAS};
pub use logprobs::{check_top_logprobs, TokenLogprob, MAX_TOP_LOGPROBS};
pub use params::{SampleError, SamplingParams};
pub use sampler::Sampler;
pub use stop::{StopStep, StopStrings};
pub(crate) use stop::partial_start;

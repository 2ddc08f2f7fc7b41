//! Errors at the JS boundary: each becomes a JS `Error` whose `code` property is one of a fixed
//! set of strings pages can branch on, with the core's own message.

use wasm_bindgen::prelude::*;

use crate::chat::ChatError;
use crate::cloud::CloudError;
use crate::engine::EngineError;
use crate::gguf::GgufError;
use crate::gpu::GpuError;
use crate::model::ModelError;
use crate::tokenizer::TokenizerError;

/// A failure of a call from JS: one of the core's, or one only the browser face has.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Cloud(#[from] CloudError),
    /// The header runs past the bytes JS has fetched so far, in `what` (a key, or the tensor
    /// table); it should fetch up to `needed` and try again. Not a failure of the model, and
    /// never shown to a page.
    #[error("the GGUF header continues past the first {have} bytes, in {what}; {needed} are needed")]
    HeaderIncomplete { what: String, have: u64, needed: u64 },
    #[error("invalid request: {0}")]
    BadRequest(String),
    #[error("this engine is already generating: requests on one engine take turns")]
    Busy,
    #[error("the model needs {needed} bytes of memory, more than the {limit} a browser tab's wasm memory can give it on the CPU")]
    DoesNotFit { needed: u64, limit: u64 },
    #[error("the request was aborted")]
    Aborted,
    /// The delta callback threw; its exception is passed on untouched.
    #[error("the delta callback threw")]
    Callback(JsValue),
    /// An allocation failed, and the core trapped (see `trap`).
    #[error("the engine ran out of wasm memory (an allocation of {bytes} bytes failed): the model, its context or the request is too large for this browser tab")]
    OutOfMemory { bytes: u64 },
    /// An allocation failed while a model's header was read, and the core trapped: no real
    /// model's header needs more than wasm memory holds.
    #[error("the model's header asked for more memory than a browser tab's wasm memory holds (an allocation of {bytes} bytes failed): the file is malformed")]
    HeaderOutOfMemory { bytes: u64 },
    /// The core panicked, and trapped (see `trap`): a bug.
    #[error("internal error: the engine's core panicked: {0}")]
    Panicked(String),
}

impl From<ModelError> for WebError {
    fn from(e: ModelError) -> Self {
        Self::Engine(e.into())
    }
}

impl From<GgufError> for WebError {
    fn from(e: GgufError) -> Self {
        ModelError::from(e).into()
    }
}

/// The stable code of a failure, as the JS API documents it.
pub fn code(e: &WebError) -> &'static str {
    match e {
        WebError::Engine(e) => engine_code(e),
        WebError::Cloud(e) => match e {
            CloudError::Auth { .. } => "cloud_auth",
            CloudError::RateLimited { .. } => "cloud_rate_limited",
            CloudError::Server { .. } | CloudError::Reported { .. } => "cloud_error",
            CloudError::Protocol(_) => "cloud_protocol",
        },
        WebError::HeaderIncomplete { .. } => "truncated_header",
        WebError::BadRequest(_) => "invalid_request",
        WebError::Busy => "busy",
        WebError::DoesNotFit { .. } => "does_not_fit",
        WebError::Aborted => "aborted",
        WebError::Callback(_) => "callback",
        WebError::OutOfMemory { .. } => "does_not_fit",
        WebError::HeaderOutOfMemory { .. } => "invalid_model",
        WebError::Panicked(_) => "internal",
    }
}

fn engine_code(e: &EngineError) -> &'static str {
    match e {
        EngineError::Model(e) => model_code(e),
        EngineError::Tokenizer(e) => match e {
            TokenizerError::Metadata(e) => gguf_code(e),
            // A vocabulary kind Torchlight cannot tokenize is a model family it does not run.
            TokenizerError::UnsupportedModel(_) | TokenizerError::UnknownPreTokenizer(_) => "unsupported_arch",
            TokenizerError::Encode(_) => "invalid_request",
            TokenizerError::EmptyVocabulary
            | TokenizerError::BadEntry { .. }
            | TokenizerError::TooShort { .. }
            | TokenizerError::DuplicateToken { .. }
            | TokenizerError::BadMerge { .. }
            | TokenizerError::MissingSpecialToken { .. }
            | TokenizerError::Build(_) => "invalid_model",
        },
        EngineError::Chat(e) => match e {
            ChatError::Metadata(e) => gguf_code(e),
            ChatError::Syntax(_) | ChatError::Unusable(_) => "invalid_model",
            // The template ran on the request's messages and refused them (roles out of
            // order), or the prompt it wrote is too long.
            ChatError::Raised(_) | ChatError::OutputTooLong => "invalid_request",
            // The request's tools: malformed, or given to a template that takes none.
            ChatError::Tool(_) => "invalid_request",
            // The template itself failed, or spent its whole budget of work and memory: a
            // broken or hostile file (a real template needs a fraction of it).
            ChatError::OutOfFuel | ChatError::Render(_) => "invalid_model",
        },
        EngineError::Sample(_) => "invalid_request",
    }
}

fn model_code(e: &ModelError) -> &'static str {
    match e {
        ModelError::Gguf(e) => gguf_code(e),
        ModelError::UnsupportedArchitecture { .. } | ModelError::UnexpectedTensor { .. } => "unsupported_arch",
        ModelError::UnsupportedTensorType { .. } => "unsupported_quant",
        ModelError::Incomplete(_) => "truncated",
        ModelError::ContextOverflow { .. } => "context_overflow",
        ModelError::Backend(e) => e.downcast_ref::<GpuError>().map_or("gpu", gpu_code),
        ModelError::Io(_) => "network",
        ModelError::MissingTensor { .. }
        | ModelError::TensorShape { .. }
        | ModelError::BadConfig(_)
        | ModelError::Quant(_) => "invalid_model",
    }
}

fn gguf_code(e: &GgufError) -> &'static str {
    match e {
        GgufError::NotGguf { .. } => "not_gguf",
        // A length or offset past the end of the file: it was cut short (or is corrupt).
        GgufError::Truncated { .. } | GgufError::LengthTooLarge { .. } | GgufError::TensorOutOfRange { .. } => {
            "truncated"
        }
        GgufError::UnknownTensorType { .. } => "unsupported_quant",
        GgufError::Io(_) => "network",
        GgufError::UnsupportedVersion(_)
        | GgufError::UnknownValueType { .. }
        | GgufError::MissingKey(_)
        | GgufError::WrongType { .. }
        | GgufError::HeaderTooLarge { .. }
        | GgufError::TooManyItems { .. }
        | GgufError::Malformed(_) => "invalid_model",
    }
}

fn gpu_code(e: &GpuError) -> &'static str {
    match e {
        GpuError::NoAdapter(_) | GpuError::RequestDevice(_) => "no_webgpu",
        GpuError::DeviceLost(_) => "device_lost",
        GpuError::TooLarge { .. } => "gpu_limit",
        GpuError::Validation(_) | GpuError::Readback(_) => "gpu",
    }
}

impl From<WebError> for JsValue {
    fn from(e: WebError) -> Self {
        // A number a page acts on, beside the message.
        let detail = match &e {
            WebError::Callback(thrown) => return thrown.clone(),
            WebError::HeaderIncomplete { needed, .. } => Some(("needed", *needed as f64)),
            WebError::Cloud(CloudError::RateLimited { retry_after_seconds: Some(seconds), .. }) => {
                Some(("retryAfter", *seconds))
            }
            _ => None,
        };
        let error = js_sys::Error::new(&e.to_string());
        error.set_name("TorchlightError");
        // Setting a property on a fresh plain object cannot fail.
        let _ = js_sys::Reflect::set(&error, &"code".into(), &code(&e).into());
        if let Some((name, value)) = detail {
            let _ = js_sys::Reflect::set(&error, &name.into(), &value.into());
        }
        // Where the header goes on: JS names it if the header runs on for too long to fetch.
        if let WebError::HeaderIncomplete { what, .. } = &e {
            let _ = js_sys::Reflect::set(&error, &"reading".into(), &what.into());
        }
        error.into()
    }
}

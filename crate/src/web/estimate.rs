use serde::Serialize;
use wasm_bindgen::prelude::*;

use super::device::CPU_MEMORY_LIMIT;
use super::loader::{load_options, read_header};
use super::{trap, WebError};
use crate::footprint::Footprint;

/// `Footprint` as pages see it: with the total and the problems for this device.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Estimate {
    #[serde(flatten)]
    footprint: Footprint,
    gpu_bytes: u64,
}

/// What the model in a file needs, from `header`, the first bytes of a file `file_len` bytes
/// long (a header longer than that fails with code `truncated_header`, as for
/// `Loader.create`), on `backend` ("gpu" or "cpu"). On the GPU, `binding_limit`, the device's
/// largest storage binding, adds a problem when one buffer would not fit it; on the CPU, a
/// model wasm memory cannot hold is one. Opens no GPU and allocates nothing.
#[wasm_bindgen]
pub fn estimate(
    header: Vec<u8>,
    file_len: f64,
    context_length: Option<u32>,
    backend: String,
    binding_limit: Option<f64>,
) -> Result<JsValue, WebError> {
    let mut footprint = trap::reading_header(|| -> Result<_, WebError> {
        Ok(Footprint::of(&read_header(&header, file_len as u64)?, &load_options(context_length)))
    })?;
    footprint.problems = match (backend.as_str(), binding_limit) {
        ("cpu", _) => footprint.problems_in_memory(CPU_MEMORY_LIMIT),
        (_, Some(limit)) => footprint.problems_on(limit as u64),
        (_, None) => footprint.problems.clone(),
    };
    let estimate = Estimate { gpu_bytes: footprint.gpu_bytes(), footprint };
    Ok(super::to_js(&estimate))
}

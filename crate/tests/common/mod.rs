//! Shared by the tests that run the real model: where it is, and the llama.cpp golden files.
#![allow(dead_code)]

pub mod gguf_writer;

use std::path::PathBuf;

use torchlight::gguf::{FileSource, GgufFile};
use torchlight::gpu::{Gpu, GpuBackend};
use torchlight::model::{forward, Activations, Backend, Logits, ModelConfig, Weights};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The test model. Missing is a failure, not a skip: run `bash pkg-scripts/fetch-test-model.sh`.
pub fn model_path() -> PathBuf {
    let path = std::env::var_os("TORCHLIGHT_TEST_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf"));
    assert!(path.exists(), "test model {} is missing: run `bash pkg-scripts/fetch-test-model.sh`", path.display());
    path
}

/// A real model file and the prefix of its llama.cpp golden files in tests/golden/.
pub struct RealModel {
    pub path: PathBuf,
    pub prefix: &'static str,
    /// Two choices this close in logits are a near tie, which an exact f32 engine may break
    /// the other way from llama.cpp's 8-bit activations.
    pub near_tie: f64,
    /// Where a greedy step disagrees on a near tie of llama.cpp's, how far apart the two
    /// tokens may be in our logits: within llama.cpp's own spread on that model.
    pub gap_limit: f64,
    /// Least share of teacher-forced positions whose top-1 must equal llama.cpp's.
    pub min_top1_share: f64,
}

impl RealModel {
    /// SmolLM2-135M-Instruct Q4_1, the default test model (llama).
    pub fn smollm2() -> Self {
        Self { path: model_path(), prefix: "", near_tie: 0.25, gap_limit: 0.25, min_top1_share: 0.93 }
    }

    /// Gemma 3 270M Q4_K_M (gemma3). Missing is a failure, not a skip.
    pub fn gemma3() -> Self {
        let path = repo_root().join("models/gemma-3-270m-q4_k_m.gguf");
        assert!(path.exists(), "{} is missing: run `bash pkg-scripts/fetch-test-model.sh gemma3`", path.display());
        // llama.cpp disagrees with itself more on Gemma: fed in chunks of other sizes, its logits
        // move by up to 1.38 and its top-1 changes at 7 of 117 positions (margins up to 0.2).
        Self { path, prefix: "gemma3_", near_tie: 0.35, gap_limit: 1.0, min_top1_share: 0.9 }
    }

    /// Its golden file `name` (as the SmolLM2 one is called).
    pub fn golden<T: serde::de::DeserializeOwned>(&self, name: &str) -> T {
        read_golden(&format!("{}{name}", self.prefix))
    }
}

/// A golden file of tests/golden/, parsed into `T`.
pub fn read_golden<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let path = repo_root().join("tests/golden").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn golden(name: &str) -> serde_json::Value {
    read_golden(name)
}

pub fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

pub fn open_model() -> (FileSource, GgufFile) {
    open_model_at(&model_path())
}

pub fn open_model_at(path: &std::path::Path) -> (FileSource, GgufFile) {
    let mut source = FileSource::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = GgufFile::read(&mut source).unwrap();
    (source, file)
}

/// The test model's weights on `backend`.
pub fn load_weights<B: Backend>(backend: &mut B) -> Weights<B> {
    load_weights_at(backend, &model_path())
}

/// The weights of the model at `path` on `backend`.
pub fn load_weights_at<B: Backend>(backend: &mut B, path: &std::path::Path) -> Weights<B> {
    let (mut source, file) = open_model_at(path);
    let config = ModelConfig::from_gguf(&file).unwrap();
    Weights::load(backend, &file, &mut source, config, &mut |_| {}).unwrap()
}

pub fn gpu_backend() -> GpuBackend {
    GpuBackend::new(pollster::block_on(Gpu::new()).expect("a WebGPU adapter (install mesa-vulkan-drivers)"))
}

/// Index of the largest value, the first among equals.
pub fn argmax(row: &[f32]) -> usize {
    row.iter().enumerate().fold(0, |b, (i, &v)| if v > row[b] { i } else { b })
}

/// Teacher-forced logits for every position of `tokens`, from one batch or token by token.
pub fn logits<B: Backend>(b: &mut B, tokens: &[u32], one_at_a_time: bool) -> Vec<f32> {
    logits_at(b, &model_path(), tokens, one_at_a_time)
}

/// As `logits`, for the model at `path`.
pub fn logits_at<B: Backend>(b: &mut B, path: &std::path::Path, tokens: &[u32], one_at_a_time: bool) -> Vec<f32> {
    let weights = load_weights_at(b, path);
    let cache = b.cache(&weights.config, tokens.len()).unwrap();
    let act = Activations::new(b, &weights, tokens.len(), true).unwrap();
    if one_at_a_time {
        let mut all = Vec::new();
        for (pos, &t) in tokens.iter().enumerate() {
            forward(b, &weights, &cache, &act, &[t], pos, Logits::Last);
            all.extend(pollster::block_on(b.read(&act.logits, 1)).unwrap());
        }
        all
    } else {
        forward(b, &weights, &cache, &act, tokens, 0, Logits::All);
        pollster::block_on(b.read(&act.logits, tokens.len())).unwrap()
    }
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}


//! Loading weights from chunks as they arrive (the browser's path) gives exactly the model that
//! loading from the file gives, whatever the chunk sizes, and refuses gaps and early ends.

mod common;

use common::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use torchlight::gguf::ByteSource;
use torchlight::gpu::{Gpu, GpuBackend};
use torchlight::model::{forward, Activations, Backend, Logits, ModelConfig, ModelError, WeightStream, Weights};

fn logits(b: &mut GpuBackend, weights: &Weights<GpuBackend>, tokens: &[u32]) -> Vec<f32> {
    let cache = b.cache(&weights.config, tokens.len()).unwrap();
    let act = Activations::new(b, weights, tokens.len(), true).unwrap();
    forward(b, weights, &cache, &act, tokens, 0, Logits::All);
    pollster::block_on(b.read(&act.logits, tokens.len())).unwrap()
}

#[test]
fn chunks_of_any_size_load_the_same_model_as_the_file() {
    let tokens = [504u32, 33059, 335, 2974, 720];
    let mut whole = gpu_backend();
    let weights = load_weights(&mut whole);
    let want = logits(&mut whole, &weights, &tokens);

    // 1 MiB weight slices, so chunks also straddle slice boundaries of the split embedding table.
    let mut b = GpuBackend::with_weight_slice_limit(pollster::block_on(Gpu::new()).unwrap(), 1 << 20);
    let (mut source, file) = open_model();
    let config = ModelConfig::from_gguf(&file).unwrap();
    let mut stream = WeightStream::new(&mut b, &file, config).unwrap();
    let (start, end) = stream.range();
    let mut rng = SmallRng::seed_from_u64(11);
    let mut at = start;
    while at < end {
        // Odd sizes from 1 byte to 3 MiB, sometimes re-sending bytes already pushed.
        let len = match rng.random_range(0..4) {
            0 => rng.random_range(1..8),
            1 => rng.random_range(1..5000),
            _ => rng.random_range(1..3 << 20),
        }
        .min((end - at) as usize);
        let back = if rng.random_bool(0.2) { rng.random_range(0..=(at - start).min(100)) } else { 0 };
        let mut chunk = vec![0u8; len + back as usize];
        source.read_at(at - back, &mut chunk).unwrap();
        stream.push(&mut b, at - back, &chunk).unwrap();
        at += len as u64;
    }
    assert_eq!(stream.remaining(), 0);
    let streamed = stream.finish().unwrap();
    assert!(streamed.token_embd.slice_count() > 1, "the embedding table should be split");
    assert_eq!(logits(&mut b, &streamed, &tokens), want, "streamed weights give different logits");
}

#[test]
fn a_gap_or_an_early_end_is_an_error() {
    let mut b = gpu_backend();
    let (mut source, file) = open_model();
    let config = ModelConfig::from_gguf(&file).unwrap();
    let mut stream = WeightStream::new(&mut b, &file, config.clone()).unwrap();
    let (start, _) = stream.range();
    let mut chunk = vec![0u8; 4096];
    source.read_at(start, &mut chunk).unwrap();
    stream.push(&mut b, start, &chunk).unwrap();
    let err = stream.push(&mut b, start + 8192, &chunk).unwrap_err();
    assert!(err.to_string().contains("out of order"), "{err}");
    match stream.finish() {
        Err(ModelError::Incomplete(name)) => assert!(!name.is_empty()),
        Err(e) => panic!("expected Incomplete, got {e}"),
        Ok(_) => panic!("an unfinished stream gave weights"),
    }
}

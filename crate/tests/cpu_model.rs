//! The CPU forward pass against the plain f32 CPU reference, on the real test model.
//!
//! The CPU backend quantizes activations to 16-bit integers per block inside every matrix
//! product; the reference keeps them in f32. Measured on the test model over 40 positions: max
//! |logit difference| 0.013 (logits span about 30); the summation orders alone move them by
//! 0.0003 on the GPU.

mod common;

use common::*;
use torchlight::cpu::{CpuBackend, Kernels};
use torchlight::model::ReferenceBackend;

/// Max |logit difference| from the reference.
const TOLERANCE: f32 = 0.05;
/// Where the reference's best two tokens are closer than this, either may win.
const NEAR_TIE: f32 = 2.0 * TOLERANCE;

/// Panics unless `ours` picks the reference's top-1 at every position, or a near tie of it.
fn assert_same_top1(what: &str, reference: &[f32], ours: &[f32], vocab: usize) {
    for (pos, (r, o)) in reference.chunks(vocab).zip(ours.chunks(vocab)).enumerate() {
        let (want, got) = (argmax(r), argmax(o));
        let gap = r[want] - r[got];
        assert!(want == got || gap < NEAR_TIE, "{what}: position {pos}: top-1 {got}, reference {want} ({gap} above it)");
    }
}

#[test]
fn cpu_logits_match_the_reference_batched_and_token_by_token_with_every_kernel_set() {
    let golden = golden("teacher_forced.json");
    let tokens = &ids(&golden["ids"])[..40];
    let reference = logits(&mut ReferenceBackend, tokens, false);
    let vocab = reference.len() / tokens.len();
    for kernels in Kernels::available() {
        let mut cpu = CpuBackend::with_kernels(0, kernels);
        let batched = logits(&mut cpu, tokens, false);
        let stepwise = logits(&mut cpu, tokens, true);
        let (d_batched, d_stepwise) = (max_abs_diff(&batched, &reference), max_abs_diff(&stepwise, &reference));
        println!("{kernels}: max |logit difference| vs the reference: batched {d_batched:.4}, token by token {d_stepwise:.4}");
        assert!(d_batched <= TOLERANCE, "{kernels}: batched logits differ from the reference by {d_batched}");
        assert!(d_stepwise <= TOLERANCE, "{kernels}: token-by-token logits differ from the reference by {d_stepwise}");
        assert_same_top1(&format!("{kernels}, batched"), &reference, &batched, vocab);
        assert_same_top1(&format!("{kernels}, token by token"), &reference, &stepwise, vocab);
    }
}

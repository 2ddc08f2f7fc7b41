//! Every CPU kernel against the plain CPU reference, on random inputs of awkward sizes, with
//! every instruction set this machine runs (always the scalar one) and several thread counts:
//! the matrix products here, every other op through the shared checks of `common/ops.rs`.
//!
//! Tolerances. Float ops: each output may differ from the reference by 1e-4 of the sum of the
//! magnitudes that produced it, plus 1e-5, as in gpu_kernels.rs (different summation orders, and
//! a polynomial exp). Matrix products quantize the activations to 16-bit integers per block of
//! 32 (K-quants: 256), which moves each activation by at most half a step, amax/64770 for its
//! block's largest magnitude amax. So a product is checked twice: against the reference fed the
//! very activations the kernel multiplies with (`quantized_activations`), within the float
//! tolerance, which pins the kernel's arithmetic; and against the reference fed the original
//! activations, within the float tolerance plus that worst case, Σ over blocks of
//! amax/64770 · Σ |w|, which bounds what quantization may cost.

//!
//! The same tests run in Node for the wasm simd128 kernels (the browser's), through
//! wasm-bindgen-test:
//!
//!     RUSTFLAGS="-C target-feature=+simd128" \
//!     CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
//!     cargo test --release --target wasm32-unknown-unknown -p torchlight --test cpu_kernels

#[path = "common/random.rs"]
mod random;
#[path = "common/ops.rs"]
mod ops;

use random::{f16_bytes, matrix_info, random_blocks, random_f32};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use torchlight::cpu::{quantized_activations, CpuBackend, CpuBuffer, Kernels};
use torchlight::gguf::SliceSource;
use torchlight::model::{Backend, ReferenceBackend, ReferenceBuffer};
use torchlight::quant::{dequantize_to_vec, QuantFormat};

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// Every instruction set here, each on one thread and on three (more than the cores, so chunks
/// are claimed out of order).
fn backends() -> Vec<CpuBackend> {
    let sets = Kernels::available();
    println!("kernel sets on this machine: {sets:?}");
    sets.into_iter().flat_map(|k| [1, 3].map(|threads| CpuBackend::with_kernels(threads, k))).collect()
}

fn name(b: &CpuBackend) -> String {
    format!("{} on {} thread(s)", b.kernels(), b.threads())
}

fn assert_within(what: &str, got: &[f32], want: &[f32], tolerance: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for i in 0..got.len() {
        assert!(
            (got[i] - want[i]).abs() <= tolerance[i],
            "{what}: element {i}: cpu {} reference {} (tolerance {})",
            got[i],
            want[i],
            tolerance[i]
        );
    }
}

/// The float tolerance for outputs whose contributions had these magnitudes.
fn float_tolerance(magnitude: &[f32]) -> Vec<f32> {
    magnitude.iter().map(|m| 1e-4 * m + 1e-5).collect()
}

fn read_cpu(b: &mut CpuBackend, t: &CpuBuffer, rows: usize) -> Vec<f32> {
    pollster::block_on(b.read(t, rows)).unwrap()
}

fn read_ref(t: &ReferenceBuffer, rows: usize) -> Vec<f32> {
    pollster::block_on(ReferenceBackend.read(t, rows)).unwrap()
}

/// Awkward matrix sizes per format: odd block counts, rows not a multiple of any vector width
/// or thread count, and for the unquantized formats rows whose length is not either.
fn shapes(format: QuantFormat) -> [(usize, usize); 2] {
    match format {
        QuantFormat::F32 | QuantFormat::F16 => [(37, 29), (101, 130)],
        _ => {
            let be = format.block_elems();
            [(be * 3, 37), (be * 5, 130)]
        }
    }
}

/// Half steps of an activation block's quantization from 0 to its largest magnitude. (Bounds
/// allow 1% more: `x / d` is computed as `x * (1 / d)` in f32, off by up to 0.004 of a step.)
const HALF_STEPS: f32 = 2.0 * 32385.0;

/// Elements per activation block of a format's products (1: not quantized).
fn act_block(format: QuantFormat) -> usize {
    match format {
        QuantFormat::F32 | QuantFormat::F16 => 1,
        QuantFormat::Q4_K | QuantFormat::Q5_K | QuantFormat::Q6_K | QuantFormat::Q2_K | QuantFormat::Q3_K => 256,
        _ => 32,
    }
}

/// `Σ_i |w_i x_i|` per output, and the worst-case quantization error `Σ_blocks amax/64770 · Σ|w|`.
fn magnitudes(dense: &[f32], x: &[f32], cols: usize, rows: usize, block: usize) -> (Vec<f32>, Vec<f32>) {
    let n = x.len() / cols;
    let mut magnitude = Vec::new();
    let mut bound = Vec::new();
    for xr in x.chunks(cols).take(n) {
        for w in dense.chunks(cols).take(rows) {
            magnitude.push(w.iter().zip(xr).map(|(a, b)| (a * b).abs()).sum());
            let worst = if block == 1 {
                0.0
            } else {
                w.chunks(block)
                    .zip(xr.chunks(block))
                    .map(|(wb, xb)| xb.iter().fold(0.0f32, |m, v| m.max(v.abs())) / HALF_STEPS * 1.01 * wb.iter().map(|v| v.abs()).sum::<f32>())
                    .sum()
            };
            bound.push(worst);
        }
    }
    (magnitude, bound)
}

#[test]
fn matmul_matches_reference_for_every_format_kernel_set_and_thread_count() {
    let mut rng = SmallRng::seed_from_u64(1);
    let mut r = ReferenceBackend;
    for mut c in backends() {
        for format in QuantFormat::ALL {
            for (cols, rows) in shapes(format) {
                let bytes = random_blocks(&mut rng, format, cols * rows);
                let ti = matrix_info("w", format, cols, rows, &bytes);
                let wc = c.load_matrix(&ti, format, &mut SliceSource::new(&bytes)).unwrap();
                let wr = r.load_matrix(&ti, format, &mut SliceSource::new(&bytes)).unwrap();
                let dense = dequantize_to_vec(format, &bytes, cols * rows).unwrap();
                // One token, tiles of four with every remainder, and batches large enough that
                // several threads quantize the activations.
                for (n, x_row0) in [(1, 0), (1, 4), (2, 1), (3, 0), (6, 2), (13, 1), (37, 0)] {
                    let x = random_f32(&mut rng, (n + x_row0) * cols);
                    let xc = CpuBuffer::from_vec(cols, x.clone());
                    let yc = c.buffer(n, rows).unwrap();
                    c.matmul(&wc, &xc, x_row0, &yc, n);
                    let got = read_cpu(&mut c, &yc, n);
                    let what = format!("matmul {format} {rows}x{cols}, {n} tokens from row {x_row0}, {}", name(&c));

                    let used = &x[x_row0 * cols..];
                    let quantized: Vec<f32> = used.chunks(cols).flat_map(|row| quantized_activations(format, row)).collect();
                    for (input, exact) in [(&quantized, true), (&used.to_vec(), false)] {
                        let xr = ReferenceBuffer::from_vec(cols, input.clone());
                        let yr = r.buffer(n, rows).unwrap();
                        r.matmul(&wr, &xr, 0, &yr, n);
                        let (magnitude, bound) = magnitudes(&dense, input, cols, rows, act_block(format));
                        let mut tolerance = float_tolerance(&magnitude);
                        if !exact {
                            tolerance.iter_mut().zip(&bound).for_each(|(t, b)| *t += b);
                        }
                        let label = if exact { "quantized activations" } else { "original activations" };
                        assert_within(&format!("{what}, {label}"), &got, &read_ref(&yr, n), &tolerance);
                    }
                }
            }
        }
    }
}

/// A token's product is the same bits whether it comes alone (decode) or in a batch (prefill),
/// though the kernels take other paths for them (rows of a group together for one token; for
/// several, 16-bit products where the instruction set has them): each lane sums the same
/// integers either way. Sampled answers depend on it, prompt caching too.
#[test]
fn a_token_in_a_batch_gets_the_bits_it_gets_alone() {
    let mut rng = SmallRng::seed_from_u64(3);
    for mut c in backends() {
        for format in QuantFormat::ALL {
            let (cols, rows) = shapes(format)[1];
            let bytes = random_blocks(&mut rng, format, cols * rows);
            let ti = matrix_info("w", format, cols, rows, &bytes);
            let w = c.load_matrix(&ti, format, &mut SliceSource::new(&bytes)).unwrap();
            let n = 6;
            let x = CpuBuffer::from_vec(cols, random_f32(&mut rng, n * cols));
            let batch = c.buffer(n, rows).unwrap();
            c.matmul(&w, &x, 0, &batch, n);
            let batch = read_cpu(&mut c, &batch, n);
            for t in 0..n {
                let alone = c.buffer(1, rows).unwrap();
                c.matmul(&w, &x, t, &alone, 1);
                let alone = read_cpu(&mut c, &alone, 1);
                for (i, (a, b)) in alone.iter().zip(&batch[t * rows..]).enumerate() {
                    assert_eq!(a.to_bits(), b.to_bits(), "{format}, {}: token {t} row {i}: alone {a}, in a batch {b}", name(&c));
                }
            }
        }
    }
}

#[test]
fn quantized_activations_move_each_value_by_at_most_half_a_step() {
    // Exact ties and the largest magnitudes, besides random values.
    let edges = [1.0f32, -1.0, 0.5 / 32385.0, 1.5 / 32385.0, -255.5 / 32385.0, 0.999_99];
    let mut rng = SmallRng::seed_from_u64(2);
    for format in QuantFormat::ALL {
        let block = act_block(format);
        let mut x = random_f32(&mut rng, 512);
        x[..32].fill(0.0); // an all-zero block stays zero
        x[256..256 + edges.len()].copy_from_slice(&edges);
        let q = quantized_activations(format, &x);
        for (xb, qb) in x.chunks(block).zip(q.chunks(block)) {
            let amax = xb.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            for (a, b) in xb.iter().zip(qb) {
                assert!((a - b).abs() <= amax / HALF_STEPS * 1.01, "{format}: {a} became {b} (block amax {amax})");
            }
        }
    }
}

#[test]
fn every_op_matches_reference_for_every_kernel_set_and_thread_count() {
    for mut c in backends() {
        let label = name(&c);
        ops::all(&mut c, &label);
    }
}

#[test]
fn f16_weights_widen_exactly_including_subnormals() {
    // One row of halves spanning zero, subnormals, normals and the largest finite value, against
    // one-hot activations: each output is one weight, exactly.
    let values = [0.0f32, -0.0, 6.0e-8, -3.0e-5, 1.0, -2.5, 65504.0, 0.333];
    let bytes: Vec<u8> = values.iter().flat_map(|&v| f16_bytes(v)).collect();
    let ti = matrix_info("w", QuantFormat::F16, values.len(), 1, &bytes);
    for mut c in backends() {
        let w = c.load_matrix(&ti, QuantFormat::F16, &mut SliceSource::new(&bytes)).unwrap();
        let n = values.len();
        let eye: Vec<f32> = (0..n * n).map(|i| if i / n == i % n { 1.0 } else { 0.0 }).collect();
        let x = CpuBuffer::from_vec(n, eye);
        let y = c.buffer(n, 1).unwrap();
        c.matmul(&w, &x, 0, &y, n);
        let want: Vec<f32> = values.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
        assert_eq!(read_cpu(&mut c, &y, n), want, "{}", name(&c));
    }
}

#[cfg(not(target_arch = "wasm32"))]
#[test]
fn the_thread_pool_runs_every_task_once_and_passes_on_panics() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use torchlight::cpu::{ThreadPool, Workers};
    let pool = ThreadPool::new(3);
    for n in [0, 1, 2, 5, 1000] {
        let counts: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
        pool.for_each(n, &|i| {
            counts[i].fetch_add(1, Ordering::Relaxed);
        });
        assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1), "{n} tasks");
    }
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.for_each(10, &|i| assert!(i != 7, "task 7 fails"));
    }));
    assert!(panicked.is_err());
    // The pool still works afterwards.
    let total = AtomicUsize::new(0);
    pool.for_each(100, &|i| {
        total.fetch_add(i, Ordering::Relaxed);
    });
    assert_eq!(total.into_inner(), 4950);
}

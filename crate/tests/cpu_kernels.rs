//! Every CPU kernel against the plain CPU reference, on random inputs of awkward sizes, with
//! every instruction set this machine runs (always the scalar one) and several thread counts.
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

use random::{f16_bytes, matrix_info, random_blocks, random_f32};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use torchlight::cpu::{quantized_activations, CpuBackend, CpuBuffer, Kernels};
use torchlight::gguf::{SliceSource, TensorInfo};
use torchlight::model::{AttentionShape, Backend, ReferenceBackend, ReferenceBuffer, RopeOrder};
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
fn embedding_lookup_dequantizes_rows_exactly_for_every_format() {
    let mut rng = SmallRng::seed_from_u64(3);
    let mut r = ReferenceBackend;
    let mut c = CpuBackend::new(1);
    for format in QuantFormat::ALL {
        let (cols, rows) = shapes(format)[1];
        let bytes = random_blocks(&mut rng, format, cols * rows);
        let ti = matrix_info("embd", format, cols, rows, &bytes);
        let wc = c.load_matrix(&ti, format, &mut SliceSource::new(&bytes)).unwrap();
        let wr = r.load_matrix(&ti, format, &mut SliceSource::new(&bytes)).unwrap();
        let tokens: Vec<u32> = (0..11).map(|_| rng.random_range(0..rows as u32)).collect();
        let (ec, er) = (c.buffer(tokens.len(), cols).unwrap(), r.buffer(tokens.len(), cols).unwrap());
        c.embed(&wc, &tokens, &ec);
        r.embed(&wr, &tokens, &er);
        assert_eq!(read_cpu(&mut c, &ec, tokens.len()), read_ref(&er, tokens.len()), "embed {format}");
    }
}

fn gain_vector<B: Backend>(b: &mut B, gain: &[f32]) -> B::Vector {
    let info = TensorInfo { name: "gain".into(), dims: vec![gain.len() as u64], ggml_type: QuantFormat::F32.ggml_type(), offset: 0, n_bytes: gain.len() as u64 * 4 };
    let bytes: Vec<u8> = gain.iter().flat_map(|v| v.to_le_bytes()).collect();
    b.load_vector(&info, QuantFormat::F32, &mut SliceSource::new(&bytes)).unwrap()
}

#[test]
fn rms_norm_swiglu_and_add_match_reference() {
    let mut rng = SmallRng::seed_from_u64(4);
    let mut r = ReferenceBackend;
    for mut c in backends() {
        for (n, width) in [(1, 68), (7, 576), (3, 1000), (2, 13)] {
            let mut x = random_f32(&mut rng, n * width);
            // SiLU far into both tails.
            x[0] = 90.0;
            x[n * width - 1] = -95.0;
            let y = random_f32(&mut rng, n * width);
            let gain = random_f32(&mut rng, width);
            let (wc, wr) = (gain_vector(&mut c, &gain), gain_vector(&mut r, &gain));
            let (xc, yc, oc) = (CpuBuffer::from_vec(width, x.clone()), CpuBuffer::from_vec(width, y.clone()), c.buffer(n, width).unwrap());
            let (xr, yr, or) = (ReferenceBuffer::from_vec(width, x.clone()), ReferenceBuffer::from_vec(width, y.clone()), r.buffer(n, width).unwrap());
            let label = name(&c);
            let what = |op: &str| format!("{op} {n}x{width}, {label}");

            c.rms_norm(&xc, &wc, &oc, n, 1e-5);
            r.rms_norm(&xr, &wr, &or, n, 1e-5);
            let ones = float_tolerance(&vec![10.0; n * width]);
            assert_within(&what("rms_norm"), &read_cpu(&mut c, &oc, n), &read_ref(&or, n), &ones);

            c.swiglu(&xc, &yc, n);
            r.swiglu(&xr, &yr, n);
            let magnitude: Vec<f32> = x.iter().zip(&y).map(|(a, b)| (a * b).abs()).collect();
            assert_within(&what("swiglu"), &read_cpu(&mut c, &xc, n), &read_ref(&xr, n), &float_tolerance(&magnitude));

            c.add(&xc, &yc, n);
            r.add(&xr, &yr, n);
            assert_within(&what("add"), &read_cpu(&mut c, &xc, n), &read_ref(&xr, n), &ones);
        }
    }
}

fn config_for(shape: AttentionShape, layers: usize) -> torchlight::model::ModelConfig {
    torchlight::model::ModelConfig {
        arch: Box::leak(Box::new(torchlight::model::Architecture { name: "test", rope_order: shape.rope_order })),
        n_layers: layers,
        width: shape.n_heads * shape.head_dim,
        ffn_width: 4,
        n_heads: shape.n_heads,
        n_kv_heads: shape.n_kv_heads,
        head_dim: shape.head_dim,
        rope_dim: shape.rope_dim,
        rope_base: 10000.0,
        norm_eps: 1e-5,
        vocab_size: 1,
        train_context: 4096,
    }
}

#[test]
fn rope_matches_reference_in_both_orders() {
    let mut rng = SmallRng::seed_from_u64(5);
    let mut r = ReferenceBackend;
    let mut c = CpuBackend::new(1);
    for order in [RopeOrder::Normal, RopeOrder::Neox] {
        for (heads, head_dim, rope_dim, n, pos0) in [(3, 64, 64, 5, 0), (5, 80, 48, 3, 1000)] {
            let shape = AttentionShape { n_heads: heads, n_kv_heads: 1, head_dim, rope_dim, rope_order: order };
            let config = config_for(shape, 1);
            let (cc, cr) = (c.cache(&config, 1100).unwrap(), r.cache(&config, 1100).unwrap());
            let width = heads * head_dim;
            let x = random_f32(&mut rng, n * width);
            let (xc, xr) = (CpuBuffer::from_vec(width, x.clone()), ReferenceBuffer::from_vec(width, x.clone()));
            c.rope(&xc, &cc, heads, n, pos0);
            r.rope(&xr, &cr, heads, n, pos0);
            assert_eq!(read_cpu(&mut c, &xc, n), read_ref(&xr, n), "rope {order:?} {heads}x{head_dim}/{rope_dim} at {pos0}");
        }
    }
}

#[test]
fn attention_over_the_cache_matches_reference_with_grouped_heads() {
    let mut rng = SmallRng::seed_from_u64(6);
    let mut r = ReferenceBackend;
    for mut c in backends() {
        // (heads, kv heads, head dim, steps of new tokens): prompts longer than one block of
        // keys, decode steps whose keys are split among threads, heads whose size is not a
        // multiple of 64 or 8, groups of query heads larger than one pass takes.
        let cases = [
            (9, 3, 64, vec![70, 1, 1]),
            (4, 4, 68, vec![3, 130]),
            (6, 2, 128, vec![1, 1, 5]),
            (8, 1, 80, vec![40, 1]),
            (12, 1, 32, vec![5, 300, 1]),
        ];
        for (heads, kv_heads, head_dim, steps) in cases {
            let shape = AttentionShape { n_heads: heads, n_kv_heads: kv_heads, head_dim, rope_dim: head_dim, rope_order: RopeOrder::Normal };
            let config = config_for(shape, 2);
            let context = steps.iter().sum::<usize>();
            let (cc, cr) = (c.cache(&config, context).unwrap(), r.cache(&config, context).unwrap());
            let (q_width, kv_width) = (heads * head_dim, kv_heads * head_dim);
            let mut pos0 = 0;
            for n in steps {
                let (q, k, v) = (random_f32(&mut rng, n * q_width), random_f32(&mut rng, n * kv_width), random_f32(&mut rng, n * kv_width));
                let (qc, kc, vc, oc) = (CpuBuffer::from_vec(q_width, q.clone()), CpuBuffer::from_vec(kv_width, k.clone()), CpuBuffer::from_vec(kv_width, v.clone()), c.buffer(n, q_width).unwrap());
                let (qr, kr, vr, or) = (ReferenceBuffer::from_vec(q_width, q), ReferenceBuffer::from_vec(kv_width, k), ReferenceBuffer::from_vec(kv_width, v), r.buffer(n, q_width).unwrap());
                c.store_kv(&cc, 1, &kc, &vc, n, pos0);
                r.store_kv(&cr, 1, &kr, &vr, n, pos0);
                c.attention(&qc, &cc, 1, &oc, n, pos0);
                r.attention(&qr, &cr, 1, &or, n, pos0);
                let ones = float_tolerance(&vec![1.0; n * q_width]);
                let what = format!("attention {heads}/{kv_heads}x{head_dim}, {n} tokens at {pos0}, {}", name(&c));
                assert_within(&what, &read_cpu(&mut c, &oc, n), &read_ref(&or, n), &ones);
                pos0 += n;
            }
        }
    }
}

#[test]
fn argmax_finds_the_first_maximum() {
    let mut rng = SmallRng::seed_from_u64(7);
    for mut c in backends() {
        for len in [1usize, 7, 255, 257, 49152, 100_003] {
            let mut logits = random_f32(&mut rng, 2 * len);
            let want = rng.random_range(0..len);
            logits[len + want] = 5.0;
            // A tie after the winner must not win.
            if want + 1 < len {
                logits[len + len - 1] = 5.0;
            }
            let t = CpuBuffer::from_vec(len, logits);
            assert_eq!(pollster::block_on(c.argmax(&t, 1)).unwrap() as usize, want, "argmax over {len}, {}", name(&c));
        }
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

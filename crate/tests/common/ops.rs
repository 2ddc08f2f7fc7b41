//! Every op of the forward pass but the matrix product, written once and generic over
//! [`Backend`]: a backend runs each on random inputs of awkward sizes and its results are held
//! against the plain reference's, as ggml's test-backend-ops runs every op on every backend.
//! cpu_kernels.rs runs them for each CPU kernel set and thread count, gpu_kernels.rs on the
//! adapter wgpu finds (Mesa's lavapipe in CI). A new op gets its check here, once.
//!
//! Tolerance: each output may differ from the reference by 1e-4 of the sum of the magnitudes
//! that produced it, plus 1e-5 (the backends accumulate f32 in other orders, and their exp is
//! a polynomial or the GPU's own). Embedding rows and rotations are exact arithmetic on both
//! sides up to the rounding of one product.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use torchlight::gguf::SliceSource;
use torchlight::model::{Activation, Architecture, Backend, LayerAttention, ModelConfig, ReferenceBackend};
use torchlight::quant::QuantFormat;

use crate::random::{matrix_info, random_blocks, random_f32};

fn read<B: Backend>(b: &mut B, t: &B::Buffer, rows: usize) -> Vec<f32> {
    pollster::block_on(b.read(t, rows)).unwrap()
}

fn assert_within(what: &str, got: &[f32], want: &[f32], magnitude: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for i in 0..got.len() {
        let tolerance = 1e-4 * magnitude[i] + 1e-5;
        assert!(
            (got[i] - want[i]).abs() <= tolerance,
            "{what}: element {i}: backend {} reference {} (tolerance {tolerance})",
            got[i],
            want[i]
        );
    }
}

/// The same buffer on the backend under test and on the reference.
fn pair<B: Backend>(b: &mut B, width: usize, data: &[f32]) -> (B::Buffer, <ReferenceBackend as Backend>::Buffer) {
    (b.buffer_from(width, data).unwrap(), ReferenceBackend.buffer_from(width, data).unwrap())
}

/// A model config with the given heads, for the attention and rope caches; `arch` sets the
/// rotary order and whether layers slide.
pub fn config_for(arch: &str, heads: usize, kv_heads: usize, head_dim: usize, rope_dim: usize, layers: usize) -> ModelConfig {
    ModelConfig {
        arch: Architecture::find(arch).unwrap(),
        n_layers: layers,
        width: heads * head_dim,
        ffn_width: 4,
        n_heads: heads,
        n_kv_heads: kv_heads,
        head_dim,
        rope_dim,
        rope_base: 10000.0,
        norm_eps: 1e-5,
        vocab_size: 1,
        train_context: 4096,
        rope_scale: 1.0,
        rope_factors: None,
        rope_factors_long: None,
        rope_original_context: usize::MAX,
        rope_mscale: 1.0,
        attn_scale: 1.0 / (head_dim as f32).sqrt(),
        sliding_window: None,
        embed_scale: 1.0,
    }
}

/// Embedding rows of every format, scaled as Gemma scales them and not.
pub fn embed<B: Backend>(b: &mut B, label: &str) {
    let mut rng = SmallRng::seed_from_u64(3);
    let mut r = ReferenceBackend;
    for format in QuantFormat::ALL {
        let (cols, rows) = (format.block_elems().max(32) * 5, 130);
        let bytes = random_blocks(&mut rng, format, cols * rows);
        let info = matrix_info("embd", format, cols, rows, &bytes);
        let wb = b.load_matrix(&info, format, &mut SliceSource::new(&bytes)).unwrap();
        let wr = r.load_matrix(&info, format, &mut SliceSource::new(&bytes)).unwrap();
        let tokens: Vec<u32> = (0..11).map(|_| rng.random_range(0..rows as u32)).collect();
        for scale in [1.0, 25.3] {
            let (eb, er) = (b.buffer(tokens.len(), cols).unwrap(), r.buffer(tokens.len(), cols).unwrap());
            b.embed(&wb, &tokens, &eb, scale);
            r.embed(&wr, &tokens, &er, scale);
            let want = read(&mut r, &er, tokens.len());
            let magnitude: Vec<f32> = want.iter().map(|v| v.abs() * 0.01).collect();
            assert_within(&format!("embed {format} x{scale}, {label}"), &read(b, &eb, tokens.len()), &want, &magnitude);
        }
    }
}

/// RMSNorm over whole rows and per head (runs of a row, rows wider than their runs), the
/// gated activations far into both tails, the residual add and the bias add.
pub fn elementwise<B: Backend>(b: &mut B, label: &str) {
    let mut rng = SmallRng::seed_from_u64(4);
    let mut r = ReferenceBackend;
    for (n, width) in [(1, 68), (7, 576), (3, 1000), (2, 13 * 4)] {
        let what = |op: &str| format!("{op} {n}x{width}, {label}");
        let mut x = random_f32(&mut rng, n * width);
        x[0] = 90.0;
        x[n * width - 1] = -95.0;
        let y = random_f32(&mut rng, n * width);
        let ((xb, xr), (yb, yr)) = (pair(b, width, &x), pair(b, width, &y));

        // Whole rows, then heads of 4 to 64 values taking all or part of each row.
        for (run, groups) in [(width, 1), (4, width / 4), (width / 4, 3)] {
            let gain = random_f32(&mut rng, run);
            let (gb, gr) = (b.vector("gain", &gain).unwrap(), r.vector("gain", &gain).unwrap());
            let out_width = width + 3;
            let (ob, or) = (b.buffer(n, out_width).unwrap(), r.buffer(n, out_width).unwrap());
            b.rms_norm(&xb, &gb, &ob, n, groups, 1e-5);
            r.rms_norm(&xr, &gr, &or, n, groups, 1e-5);
            let (got, want) = (read(b, &ob, n), read(&mut r, &or, n));
            // Only the normed runs of each row are compared.
            let normed = |v: &[f32]| -> Vec<f32> { v.chunks(out_width).flat_map(|row| row[..run * groups].to_vec()).collect() };
            let ones = vec![100.0; n * run * groups];
            assert_within(&what(&format!("rms_norm of {groups} run(s) of {run}")), &normed(&got), &normed(&want), &ones);
        }

        for act in [Activation::Silu, Activation::GeluTanh] {
            let ((gb, gr), (ub, ur)) = (pair(b, width, &x), pair(b, width, &y));
            b.glu(&gb, &ub, n, act);
            r.glu(&gr, &ur, n, act);
            let magnitude: Vec<f32> = x.iter().zip(&y).map(|(a, b)| (a * b).abs()).collect();
            assert_within(&what(&format!("glu {act:?}")), &read(b, &gb, n), &read(&mut r, &gr, n), &magnitude);
        }

        b.add(&xb, &yb, n);
        r.add(&xr, &yr, n);
        let ones = vec![100.0; n * width];
        assert_within(&what("add"), &read(b, &xb, n), &read(&mut r, &xr, n), &ones);

        // A bias narrower than the rows it is added to (k's bias on a q-wide scratch).
        let bias = random_f32(&mut rng, width - 4);
        let (bb, br) = (b.vector("bias", &bias).unwrap(), r.vector("bias", &bias).unwrap());
        b.add_bias(&xb, &bb, n);
        r.add_bias(&xr, &br, n);
        assert_within(&what("add_bias"), &read(b, &xb, n), &read(&mut r, &xr, n), &ones);
    }
}

/// Rotations in both pair orders, partial, with Llama 3's frequency factors and linear
/// scaling, and on a sliding layer's table.
pub fn rope<B: Backend>(b: &mut B, label: &str) {
    let mut rng = SmallRng::seed_from_u64(5);
    let mut r = ReferenceBackend;
    for arch in ["llama", "qwen2", "gemma3"] {
        for (heads, head_dim, rope_dim, n, pos0) in [(3, 64, 64, 5, 0), (5, 80, 48, 3, 1000)] {
            let mut config = config_for(arch, heads, 1, head_dim, rope_dim, 6);
            if arch == "llama" {
                config.rope_factors = Some((0..rope_dim / 2).map(|i| 1.0 + i as f32 * 0.3).collect());
                config.rope_scale = 0.25;
                config.rope_mscale = 1.19;
            }
            let (cb, cr) = (b.cache(&config, 1100).unwrap(), r.cache(&config, 1100).unwrap());
            let width = heads * head_dim;
            let x = random_f32(&mut rng, n * width);
            for layer in [0, 5].map(|i| config.layer_attention(i)) {
                let (xb, xr) = pair(b, width, &x);
                b.rope(&xb, &cb, layer, heads, n, pos0);
                r.rope(&xr, &cr, layer, heads, n, pos0);
                let what = format!("rope {arch} {heads}x{head_dim}/{rope_dim} at {pos0}, table {}, {label}", layer.table);
                assert_within(&what, &read(b, &xb, n), &read(&mut r, &xr, n), &vec![1.0; n * width]);
            }
        }
    }
}

/// Causal attention over the cache: prompts longer than one block of keys, decode steps whose
/// keys are split among threads, heads whose size is not a multiple of 64 or 8, groups of
/// query heads larger than one pass takes, and sliding windows shorter and longer than a step.
pub fn attention<B: Backend>(b: &mut B, label: &str) {
    let mut rng = SmallRng::seed_from_u64(6);
    let mut r = ReferenceBackend;
    let cases = [
        (9, 3, 64, vec![70, 1, 1], None),
        (4, 4, 68, vec![3, 130], None),
        (6, 2, 128, vec![1, 1, 5], None),
        (8, 1, 80, vec![40, 1], None),
        (12, 1, 32, vec![5, 300, 1], None),
        (4, 2, 64, vec![70, 1, 1, 100], Some(5)),
        (6, 3, 48, vec![3, 200, 1], Some(130)),
    ];
    for (heads, kv_heads, head_dim, steps, window) in cases {
        let mut config = config_for("llama", heads, kv_heads, head_dim, head_dim, 2);
        config.attn_scale = 0.7 / (head_dim as f32).sqrt();
        let context = steps.iter().sum::<usize>();
        let (cb, cr) = (b.cache(&config, context).unwrap(), r.cache(&config, context).unwrap());
        let layer = LayerAttention { layer: 1, table: 0, window };
        let (q_width, kv_width) = (heads * head_dim, kv_heads * head_dim);
        let mut pos0 = 0;
        for n in steps {
            let (q, k, v) = (random_f32(&mut rng, n * q_width), random_f32(&mut rng, n * kv_width), random_f32(&mut rng, n * kv_width));
            let ((qb, qr), (kb, kr), (vb, vr)) = (pair(b, q_width, &q), pair(b, kv_width, &k), pair(b, kv_width, &v));
            let (ob, or) = (b.buffer(n, q_width).unwrap(), r.buffer(n, q_width).unwrap());
            b.store_kv(&cb, 1, &kb, &vb, n, pos0);
            r.store_kv(&cr, 1, &kr, &vr, n, pos0);
            b.attention(&qb, &cb, layer, &ob, n, pos0);
            r.attention(&qr, &cr, layer, &or, n, pos0);
            let what = format!("attention {heads}/{kv_heads}x{head_dim}, window {window:?}, {n} tokens at {pos0}, {label}");
            assert_within(&what, &read(b, &ob, n), &read(&mut r, &or, n), &vec![1.0; n * q_width]);
            pos0 += n;
        }
    }
}

/// The first maximum of a row, ties after it losing; then among the indices a random mask
/// allows (a mask some words short of the row allows nothing there).
pub fn argmax<B: Backend>(b: &mut B, label: &str) {
    let mut rng = SmallRng::seed_from_u64(7);
    for len in [1usize, 7, 255, 257, 49152, 100_003] {
        let mut logits = random_f32(&mut rng, 2 * len);
        let want = rng.random_range(0..len);
        logits[len + want] = 5.0;
        if want + 1 < len {
            logits[len + len - 1] = 5.0;
        }
        let t = b.buffer_from(len, &logits).unwrap();
        assert_eq!(pollster::block_on(b.argmax(&t, 1, None)).unwrap() as usize, want, "argmax over {len}, {label}");
        for density in [0.002, 0.5] {
            // The row's maximum is refused, as a grammar refuses a greedy pick.
            let mut bits: Vec<u32> = (0..len.div_ceil(32) - usize::from(len > 64)).map(|_| (0..32).fold(0, |w, j| w | u32::from(rng.random_bool(density)) << j)).collect();
            if let Some(w) = bits.get_mut(want / 32) {
                *w &= !(1 << (want % 32));
            }
            let k = rng.random_range(0..len.min(bits.len() * 32));
            bits[k / 32] |= 1 << (k % 32);
            let row = &logits[len..];
            let may_win = |i: &usize| bits.get(i / 32).is_some_and(|w| w >> (i % 32) & 1 == 1);
            let masked = (0..len).filter(may_win).reduce(|b, i| if row[i] > row[b] { i } else { b }).unwrap() as u32;
            let got = pollster::block_on(b.argmax(&t, 1, Some(&bits))).unwrap();
            assert_eq!(got, masked, "argmax over {len} with {density} of it allowed, {label}");
        }
    }
}

/// Every check above.
pub fn all<B: Backend>(b: &mut B, label: &str) {
    embed(b, label);
    elementwise(b, label);
    rope(b, label);
    attention(b, label);
    argmax(b, label);
}

//! Every GPU kernel against the plain CPU reference, on random inputs of awkward sizes.
//!
//! Tolerance: each output may differ from the reference by 1e-4 of the sum of the magnitudes
//! that produced it, plus 1e-5 (the two sides accumulate f32 in different orders, and the GPU's
//! exp may differ from the CPU's in the last bits). Runs on whatever adapter wgpu finds; in CI
//! that is Mesa's lavapipe.

#[path = "common/random.rs"]
mod random;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use random::{matrix_info as info, random_blocks, random_f32};
use torchlight::gguf::{SliceSource, TensorInfo};
use torchlight::gpu::{Gpu, GpuBackend, GpuTensor};
use torchlight::model::{
    AttentionShape, Backend, ReferenceBackend, ReferenceBuffer, ReferenceCache, RopeOrder,
};
use torchlight::quant::{dequantize_to_vec, QuantFormat};

fn gpu() -> GpuBackend {
    GpuBackend::new(pollster::block_on(Gpu::new()).expect("a WebGPU adapter (install mesa-vulkan-drivers)"))
}

fn assert_close(what: &str, gpu: &[f32], reference: &[f32], magnitude: &[f32]) {
    assert_eq!(gpu.len(), reference.len(), "{what}: lengths");
    for i in 0..gpu.len() {
        let tol = 1e-4 * magnitude[i] + 1e-5;
        assert!(
            (gpu[i] - reference[i]).abs() <= tol,
            "{what}: element {i}: gpu {} reference {} (tolerance {tol})",
            gpu[i],
            reference[i]
        );
    }
}

fn read_gpu(g: &mut GpuBackend, t: &GpuTensor, rows: usize) -> Vec<f32> {
    pollster::block_on(g.read(t, rows)).unwrap()
}

fn read_ref(r: &mut ReferenceBackend, t: &ReferenceBuffer, rows: usize) -> Vec<f32> {
    pollster::block_on(r.read(t, rows)).unwrap()
}

/// Awkward matrix sizes per format: odd block counts, rows not a multiple of the tile.
fn shapes(format: QuantFormat) -> [(usize, usize); 2] {
    let be = format.block_elems().max(32);
    [(be * 3, 37), (be * 5, 130)]
}

#[test]
fn matmul_matches_reference_for_every_format() {
    let mut g = gpu();
    let mut r = ReferenceBackend;
    let mut rng = SmallRng::seed_from_u64(1);
    for format in QuantFormat::ALL {
        for (cols, rows) in shapes(format) {
            let bytes = random_blocks(&mut rng, format, cols * rows);
            let ti = info("w", format, cols, rows, &bytes);
            let wg = g.load_matrix(&ti, format, &mut SliceSource::new(&bytes)).unwrap();
            let wr = r.load_matrix(&ti, format, &mut SliceSource::new(&bytes)).unwrap();
            let dense = dequantize_to_vec(format, &bytes, cols * rows).unwrap();
            // One token and a few use the matrix-vector kernel; more, the tiled one (two token tiles at 45).
            for (n, x_row0) in [(1, 0), (1, 4), (3, 0), (13, 2), (45, 1)] {
                let x = random_f32(&mut rng, (n + x_row0) * cols);
                let xg = g.tensor_from(cols, &x).unwrap();
                let yg = g.buffer(n, rows).unwrap();
                g.matmul(&wg, &xg, x_row0, &yg, n);
                let xr = ReferenceBuffer::from_vec(cols, x.clone());
                let yr = r.buffer(n, rows).unwrap();
                r.matmul(&wr, &xr, x_row0, &yr, n);
                let magnitude: Vec<f32> = (0..n * rows)
                    .map(|i| {
                        let (t, row) = (i / rows, i % rows);
                        let xrow = &x[(x_row0 + t) * cols..][..cols];
                        dense[row * cols..][..cols].iter().zip(xrow).map(|(a, b)| (a * b).abs()).sum()
                    })
                    .collect();
                let what = format!("matmul {format} {rows}x{cols}, {n} tokens from row {x_row0}");
                assert_close(&what, &read_gpu(&mut g, &yg, n), &read_ref(&mut r, &yr, n), &magnitude);
            }
        }
    }
}

#[test]
fn weights_split_at_the_binding_limit_give_the_same_results() {
    let gpu = pollster::block_on(Gpu::new()).unwrap();
    // 1 KiB bindings: a 130-row Q4_1 matrix of 160 columns (100 bytes a row) needs 13 slices.
    let mut g = GpuBackend::with_weight_slice_limit(gpu, 1024);
    let mut r = ReferenceBackend;
    let mut rng = SmallRng::seed_from_u64(2);
    for format in [QuantFormat::Q4_1, QuantFormat::Q8_0] {
        let (cols, rows) = (160, 130);
        let bytes = random_blocks(&mut rng, format, cols * rows);
        let ti = info("w", format, cols, rows, &bytes);
        let wg = g.load_matrix(&ti, format, &mut SliceSource::new(&bytes)).unwrap();
        assert!(wg.slice_count() > 1, "{format}: expected a split, got {} slice", wg.slice_count());
        let wr = r.load_matrix(&ti, format, &mut SliceSource::new(&bytes)).unwrap();

        for n in [3, 40] {
            let x = random_f32(&mut rng, n * cols);
            let (xg, yg) = (g.tensor_from(cols, &x).unwrap(), g.buffer(n, rows).unwrap());
            let (xr, yr) = (ReferenceBuffer::from_vec(cols, x.clone()), r.buffer(n, rows).unwrap());
            g.matmul(&wg, &xg, 0, &yg, n);
            r.matmul(&wr, &xr, 0, &yr, n);
            let magnitude = vec![cols as f32 * 0.2; n * rows];
            assert_close(&format!("split matmul {format}, {n} tokens"), &read_gpu(&mut g, &yg, n), &read_ref(&mut r, &yr, n), &magnitude);
        }

        // Token ids from every slice of the table, repeated and out of order.
        let tokens = [129u32, 0, 64, 7, 129, 100, 33];
        let (eg, er) = (g.buffer(tokens.len(), cols).unwrap(), r.buffer(tokens.len(), cols).unwrap());
        g.embed(&wg, &tokens, &eg);
        r.embed(&wr, &tokens, &er);
        let ones = vec![1.0; tokens.len() * cols];
        assert_close(&format!("split embed {format}"), &read_gpu(&mut g, &eg, tokens.len()), &read_ref(&mut r, &er, tokens.len()), &ones);
    }
}

#[test]
fn embedding_lookup_dequantizes_rows_for_every_format() {
    let mut g = gpu();
    let mut r = ReferenceBackend;
    let mut rng = SmallRng::seed_from_u64(3);
    for format in QuantFormat::ALL {
        let (cols, rows) = shapes(format)[1];
        let bytes = random_blocks(&mut rng, format, cols * rows);
        let ti = info("embd", format, cols, rows, &bytes);
        let wg = g.load_matrix(&ti, format, &mut SliceSource::new(&bytes)).unwrap();
        let wr = r.load_matrix(&ti, format, &mut SliceSource::new(&bytes)).unwrap();
        let tokens: Vec<u32> = (0..11).map(|_| rng.random_range(0..rows as u32)).collect();
        let (eg, er) = (g.buffer(tokens.len(), cols).unwrap(), r.buffer(tokens.len(), cols).unwrap());
        g.embed(&wg, &tokens, &eg);
        r.embed(&wr, &tokens, &er);
        // Dequantization is exact arithmetic on both sides, up to f32 rounding of one product.
        let magnitude: Vec<f32> = read_ref(&mut r, &er, tokens.len()).iter().map(|v| v.abs() * 0.01).collect();
        assert_close(&format!("embed {format}"), &read_gpu(&mut g, &eg, tokens.len()), &read_ref(&mut r, &er, tokens.len()), &magnitude);
    }
}

#[test]
fn rms_norm_swiglu_and_add_match_reference() {
    let mut g = gpu();
    let mut r = ReferenceBackend;
    let mut rng = SmallRng::seed_from_u64(4);
    for (n, width) in [(1, 68), (7, 576), (3, 1000)] {
        let x = random_f32(&mut rng, n * width);
        let y = random_f32(&mut rng, n * width);
        let gain = random_f32(&mut rng, width);
        let gain_info = TensorInfo { name: "gain".into(), dims: vec![width as u64], ggml_type: QuantFormat::F32.ggml_type(), offset: 0, n_bytes: width as u64 * 4 };
        let gain_bytes: Vec<u8> = gain.iter().flat_map(|v| v.to_le_bytes()).collect();
        let wg = g.load_vector(&gain_info, QuantFormat::F32, &mut SliceSource::new(&gain_bytes)).unwrap();
        let wr = r.load_vector(&gain_info, QuantFormat::F32, &mut SliceSource::new(&gain_bytes)).unwrap();

        let (xg, yg, og) = (g.tensor_from(width, &x).unwrap(), g.tensor_from(width, &y).unwrap(), g.buffer(n, width).unwrap());
        let (xr, yr, or) = (ReferenceBuffer::from_vec(width, x.clone()), ReferenceBuffer::from_vec(width, y.clone()), r.buffer(n, width).unwrap());
        let ones = vec![1.0; n * width];

        g.rms_norm(&xg, &wg, &og, n, 1e-5);
        r.rms_norm(&xr, &wr, &or, n, 1e-5);
        assert_close(&format!("rms_norm {n}x{width}"), &read_gpu(&mut g, &og, n), &read_ref(&mut r, &or, n), &ones);

        g.swiglu(&xg, &yg, n);
        r.swiglu(&xr, &yr, n);
        assert_close(&format!("swiglu {n}x{width}"), &read_gpu(&mut g, &xg, n), &read_ref(&mut r, &xr, n), &ones);

        g.add(&xg, &yg, n);
        r.add(&xr, &yr, n);
        assert_close(&format!("add {n}x{width}"), &read_gpu(&mut g, &xg, n), &read_ref(&mut r, &xr, n), &ones);
    }
}

fn config_for(shape: AttentionShape, layers: usize) -> torchlight::model::ModelConfig {
    torchlight::model::ModelConfig {
        arch: torchlight::model::Architecture::find("llama").unwrap(),
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
    let mut g = gpu();
    let mut r = ReferenceBackend;
    let mut rng = SmallRng::seed_from_u64(5);
    for order in [RopeOrder::Normal, RopeOrder::Neox] {
        for (heads, head_dim, rope_dim, n, pos0) in [(3, 64, 64, 5, 0), (5, 80, 48, 3, 1000)] {
            let shape = AttentionShape { n_heads: heads, n_kv_heads: 1, head_dim, rope_dim, rope_order: order };
            let mut config = config_for(shape, 1);
            config.arch = Box::leak(Box::new(torchlight::model::Architecture { name: "test", rope_order: order }));
            let (cg, cr) = (g.cache(&config, 1100).unwrap(), r.cache(&config, 1100).unwrap());
            let width = heads * head_dim;
            let x = random_f32(&mut rng, n * width);
            let (xg, xr) = (g.tensor_from(width, &x).unwrap(), ReferenceBuffer::from_vec(width, x.clone()));
            g.rope(&xg, &cg, heads, n, pos0);
            r.rope(&xr, &cr, heads, n, pos0);
            let ones = vec![1.0; n * width];
            assert_close(&format!("rope {order:?} {heads}x{head_dim}/{rope_dim} at {pos0}"), &read_gpu(&mut g, &xg, n), &read_ref(&mut r, &xr, n), &ones);
        }
    }
}

#[test]
fn attention_over_the_cache_matches_reference_with_grouped_heads() {
    let mut g = gpu();
    let mut r = ReferenceBackend;
    let mut rng = SmallRng::seed_from_u64(6);
    // (heads, kv heads, head dim, steps of new tokens): prompts longer than one 64-key tile,
    // head sizes that are not a multiple of the workgroup.
    for (heads, kv_heads, head_dim, steps) in [(9, 3, 64, vec![70, 1, 1]), (4, 4, 80, vec![3, 130]), (6, 2, 128, vec![1, 1, 5])] {
        let shape = AttentionShape { n_heads: heads, n_kv_heads: kv_heads, head_dim, rope_dim: head_dim, rope_order: RopeOrder::Normal };
        let config = config_for(shape, 2);
        let context = steps.iter().sum::<usize>();
        let cg = g.cache(&config, context).unwrap();
        let cr: ReferenceCache = r.cache(&config, context).unwrap();
        let (q_width, kv_width) = (heads * head_dim, kv_heads * head_dim);
        let mut pos0 = 0;
        for n in steps {
            let (q, k, v) = (random_f32(&mut rng, n * q_width), random_f32(&mut rng, n * kv_width), random_f32(&mut rng, n * kv_width));
            let (qg, kg, vg, og) = (g.tensor_from(q_width, &q).unwrap(), g.tensor_from(kv_width, &k).unwrap(), g.tensor_from(kv_width, &v).unwrap(), g.buffer(n, q_width).unwrap());
            let (qr, kr, vr, or) = (ReferenceBuffer::from_vec(q_width, q), ReferenceBuffer::from_vec(kv_width, k), ReferenceBuffer::from_vec(kv_width, v), r.buffer(n, q_width).unwrap());
            g.store_kv(&cg, 1, &kg, &vg, n, pos0);
            r.store_kv(&cr, 1, &kr, &vr, n, pos0);
            g.attention(&qg, &cg, 1, &og, n, pos0);
            r.attention(&qr, &cr, 1, &or, n, pos0);
            let ones = vec![1.0; n * q_width];
            assert_close(&format!("attention {heads}/{kv_heads}x{head_dim}, {n} tokens at {pos0}"), &read_gpu(&mut g, &og, n), &read_ref(&mut r, &or, n), &ones);
            pos0 += n;
        }
    }
}

#[test]
fn argmax_finds_the_first_maximum() {
    let mut g = gpu();
    let mut rng = SmallRng::seed_from_u64(7);
    for len in [1usize, 255, 257, 49152, 100_003] {
        let mut logits = random_f32(&mut rng, 2 * len);
        let want = rng.random_range(0..len);
        logits[len + want] = 5.0;
        // A tie after the winner must not win.
        if want + 1 < len {
            logits[len + len - 1] = 5.0;
        }
        let t = g.tensor_from(len, &logits).unwrap();
        assert_eq!(pollster::block_on(g.argmax(&t, 1)).unwrap() as usize, want, "argmax over {len}");
    }
}

//! Every GPU kernel against the plain CPU reference, on random inputs of awkward sizes: the
//! matrix products and split weights here, every other op through `common/ops.rs`.
//!
//! Tolerance: each output may differ from the reference by 1e-4 of the sum of the magnitudes
//! that produced it, plus 1e-5 (the two sides accumulate f32 in different orders, and the GPU's
//! exp may differ from the CPU's in the last bits). Runs on whatever adapter wgpu finds; in CI
//! that is Mesa's lavapipe.

#[path = "common/random.rs"]
mod random;
#[path = "common/ops.rs"]
mod ops;

use rand::rngs::SmallRng;
use rand::SeedableRng;
use random::{matrix_info as info, random_blocks, random_f32};
use torchlight::gguf::SliceSource;
use torchlight::gpu::{Gpu, GpuBackend, GpuTensor};
use torchlight::model::{Backend, ReferenceBackend, ReferenceBuffer};
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
                let xg = g.buffer_from(cols, &x).unwrap();
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
            let (xg, yg) = (g.buffer_from(cols, &x).unwrap(), g.buffer(n, rows).unwrap());
            let (xr, yr) = (ReferenceBuffer::from_vec(cols, x.clone()), r.buffer(n, rows).unwrap());
            g.matmul(&wg, &xg, 0, &yg, n);
            r.matmul(&wr, &xr, 0, &yr, n);
            let magnitude = vec![cols as f32 * 0.2; n * rows];
            assert_close(&format!("split matmul {format}, {n} tokens"), &read_gpu(&mut g, &yg, n), &read_ref(&mut r, &yr, n), &magnitude);
        }

        // Token ids from every slice of the table, repeated and out of order.
        let tokens = [129u32, 0, 64, 7, 129, 100, 33];
        let (eg, er) = (g.buffer(tokens.len(), cols).unwrap(), r.buffer(tokens.len(), cols).unwrap());
        g.embed(&wg, &tokens, &eg, 1.0);
        r.embed(&wr, &tokens, &er, 1.0);
        let ones = vec![1.0; tokens.len() * cols];
        assert_close(&format!("split embed {format}"), &read_gpu(&mut g, &eg, tokens.len()), &read_ref(&mut r, &er, tokens.len()), &ones);
    }
}

#[test]
fn every_op_matches_reference() {
    ops::all(&mut gpu(), "gpu");
}

//! The plain CPU reference: every weight dequantized to f32, every op the textbook loop. It is
//! slow and simple on purpose; the GPU kernels and the whole GPU forward pass are tested
//! against it.

use std::cell::RefCell;

use super::{rope_table, AttentionShape, Backend, ModelConfig, ModelError, RopeOrder};
use crate::gguf::TensorInfo;
use crate::quant::{dequantize_to_vec, QuantFormat};

#[derive(Default)]
pub struct ReferenceBackend;

pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    format: QuantFormat,
    /// The packed bytes while loading; dequantized into `data` when complete.
    raw: Vec<u8>,
    pub data: Vec<f32>,
}

pub struct Buffer {
    width: usize,
    data: RefCell<Vec<f32>>,
}

impl Buffer {
    pub fn new(rows: usize, width: usize) -> Self {
        Self { width, data: RefCell::new(vec![0.0; rows * width]) }
    }

    pub fn from_vec(width: usize, data: Vec<f32>) -> Self {
        Self { width, data: RefCell::new(data) }
    }
}

pub struct Cache {
    shape: AttentionShape,
    k: Vec<RefCell<Vec<f32>>>,
    v: Vec<RefCell<Vec<f32>>>,
    rope: Vec<[f32; 2]>,
}

impl Cache {
    pub fn new(shape: AttentionShape, n_layers: usize, context: usize, rope_base: f32) -> Self {
        let kv = shape.n_kv_heads * shape.head_dim;
        let layer = || (0..n_layers).map(|_| RefCell::new(vec![0.0; context * kv])).collect();
        Self { shape, k: layer(), v: layer(), rope: rope_table(context, shape.rope_dim, rope_base) }
    }
}

impl Backend for ReferenceBackend {
    type Matrix = Matrix;
    type Vector = Vec<f32>;
    type Buffer = Buffer;
    type Cache = Cache;

    fn alloc_matrix(&mut self, info: &TensorInfo, format: QuantFormat) -> Result<Matrix, ModelError> {
        Ok(Matrix {
            rows: info.dims[1] as usize,
            cols: info.dims[0] as usize,
            format,
            raw: vec![0; info.n_bytes as usize],
            data: Vec::new(),
        })
    }

    fn write_matrix(&mut self, m: &mut Matrix, offset: u64, bytes: &[u8]) {
        m.raw[offset as usize..][..bytes.len()].copy_from_slice(bytes);
    }

    fn finish_matrix(&mut self, m: &mut Matrix) -> Result<(), ModelError> {
        m.data = dequantize_to_vec(m.format, &m.raw, m.rows * m.cols)?;
        m.raw = Vec::new();
        Ok(())
    }

    fn vector(&mut self, _name: &str, values: &[f32]) -> Result<Vec<f32>, ModelError> {
        Ok(values.to_vec())
    }

    fn buffer(&mut self, rows: usize, width: usize) -> Result<Buffer, ModelError> {
        Ok(Buffer::new(rows, width))
    }

    fn cache(&mut self, config: &ModelConfig, context: usize) -> Result<Cache, ModelError> {
        Ok(Cache::new(AttentionShape::of(config), config.n_layers, context, config.rope_base))
    }

    fn embed(&mut self, table: &Matrix, tokens: &[u32], out: &Buffer) {
        let mut o = out.data.borrow_mut();
        for (t, &id) in tokens.iter().enumerate() {
            let row = &table.data[id as usize * table.cols..][..table.cols];
            o[t * out.width..][..table.cols].copy_from_slice(row);
        }
    }

    fn rms_norm(&mut self, x: &Buffer, weight: &Vec<f32>, out: &Buffer, n: usize, eps: f32) {
        let xs = x.data.borrow();
        let mut o = out.data.borrow_mut();
        for t in 0..n {
            let row = &xs[t * x.width..][..x.width];
            let mean_sq = row.iter().map(|v| v * v).sum::<f32>() / x.width as f32;
            let scale = 1.0 / (mean_sq + eps).sqrt();
            for (i, v) in row.iter().enumerate() {
                o[t * out.width + i] = v * scale * weight[i];
            }
        }
    }

    fn matmul(&mut self, w: &Matrix, x: &Buffer, x_row0: usize, out: &Buffer, n: usize) {
        let xs = x.data.borrow();
        let mut o = out.data.borrow_mut();
        for t in 0..n {
            let xr = &xs[(x_row0 + t) * x.width..][..w.cols];
            for r in 0..w.rows {
                let wr = &w.data[r * w.cols..][..w.cols];
                o[t * out.width + r] = wr.iter().zip(xr).map(|(a, b)| a * b).sum();
            }
        }
    }

    fn rope(&mut self, x: &Buffer, cache: &Cache, heads: usize, n: usize, pos0: usize) {
        let s = cache.shape;
        let half = s.rope_dim / 2;
        let mut xs = x.data.borrow_mut();
        for t in 0..n {
            for h in 0..heads {
                let base = t * x.width + h * s.head_dim;
                for i in 0..half {
                    let (a, b) = match s.rope_order {
                        RopeOrder::Normal => (base + 2 * i, base + 2 * i + 1),
                        RopeOrder::Neox => (base + i, base + i + half),
                    };
                    let [c, sn] = cache.rope[(pos0 + t) * half + i];
                    let (x0, x1) = (xs[a], xs[b]);
                    xs[a] = x0 * c - x1 * sn;
                    xs[b] = x0 * sn + x1 * c;
                }
            }
        }
    }

    fn store_kv(&mut self, cache: &Cache, layer: usize, k: &Buffer, v: &Buffer, n: usize, pos0: usize) {
        let kv = k.width;
        cache.k[layer].borrow_mut()[pos0 * kv..][..n * kv].copy_from_slice(&k.data.borrow()[..n * kv]);
        cache.v[layer].borrow_mut()[pos0 * kv..][..n * kv].copy_from_slice(&v.data.borrow()[..n * kv]);
    }

    fn attention(&mut self, q: &Buffer, cache: &Cache, layer: usize, out: &Buffer, n: usize, pos0: usize) {
        let s = cache.shape;
        let (hd, kv_width) = (s.head_dim, s.n_kv_heads * s.head_dim);
        let group = s.n_heads / s.n_kv_heads;
        let scale = 1.0 / (hd as f32).sqrt();
        let (qs, ks, vs) = (q.data.borrow(), cache.k[layer].borrow(), cache.v[layer].borrow());
        let mut o = out.data.borrow_mut();
        for t in 0..n {
            let n_keys = pos0 + t + 1;
            for h in 0..s.n_heads {
                let qr = &qs[t * q.width + h * hd..][..hd];
                let kv_off = (h / group) * hd;
                let scores: Vec<f32> = (0..n_keys)
                    .map(|j| qr.iter().zip(&ks[j * kv_width + kv_off..][..hd]).map(|(a, b)| a * b).sum::<f32>() * scale)
                    .collect();
                let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let exps: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
                let sum: f32 = exps.iter().sum();
                let or = &mut o[t * out.width + h * hd..][..hd];
                or.fill(0.0);
                for (j, e) in exps.iter().enumerate() {
                    for (d, ov) in or.iter_mut().enumerate() {
                        *ov += e / sum * vs[j * kv_width + kv_off + d];
                    }
                }
            }
        }
    }

    fn swiglu(&mut self, gate: &Buffer, up: &Buffer, n: usize) {
        let mut g = gate.data.borrow_mut();
        let u = up.data.borrow();
        for i in 0..n * gate.width {
            g[i] = g[i] / (1.0 + (-g[i]).exp()) * u[i];
        }
    }

    fn add(&mut self, x: &Buffer, y: &Buffer, n: usize) {
        let mut xs = x.data.borrow_mut();
        let ys = y.data.borrow();
        for i in 0..n * x.width {
            xs[i] += ys[i];
        }
    }

    async fn argmax(&mut self, logits: &Buffer, row: usize) -> Result<u32, ModelError> {
        let l = logits.data.borrow();
        let row = &l[row * logits.width..][..logits.width];
        // First maximum wins, as on the GPU.
        let best = row.iter().enumerate().fold(0, |b, (i, &v)| if v > row[b] { i } else { b });
        Ok(best as u32)
    }

    async fn read(&mut self, x: &Buffer, rows: usize) -> Result<Vec<f32>, ModelError> {
        Ok(x.data.borrow()[..rows * x.width].to_vec())
    }
}

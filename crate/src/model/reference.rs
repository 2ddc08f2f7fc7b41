//! The plain CPU reference: every weight dequantized to f32, every op the textbook loop. It is
//! slow and simple on purpose; the GPU kernels and the whole GPU forward pass are tested
//! against it.

use std::cell::RefCell;

use super::{first_max, rope_tables, Activation, AttentionShape, Backend, LayerAttention, ModelConfig, ModelError, RopeOrder};
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
    tables: Vec<Vec<[f32; 2]>>,
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

    fn buffer_from(&mut self, width: usize, data: &[f32]) -> Result<Buffer, ModelError> {
        Ok(Buffer::from_vec(width, data.to_vec()))
    }

    fn cache(&mut self, config: &ModelConfig, context: usize) -> Result<Cache, ModelError> {
        let len = config.kv_layer_len(context)?;
        let layer = || (0..config.n_layers).map(|_| RefCell::new(vec![0.0; len])).collect();
        Ok(Cache { shape: AttentionShape::of(config), k: layer(), v: layer(), tables: rope_tables(config, context) })
    }

    fn embed(&mut self, table: &Matrix, tokens: &[u32], out: &Buffer, scale: f32) {
        let mut o = out.data.borrow_mut();
        for (t, &id) in tokens.iter().enumerate() {
            let row = &table.data[id as usize * table.cols..][..table.cols];
            for (o, v) in o[t * out.width..][..table.cols].iter_mut().zip(row) {
                *o = v * scale;
            }
        }
    }

    fn rms_norm(&mut self, x: &Buffer, weight: &Vec<f32>, out: &Buffer, n: usize, groups: usize, eps: f32) {
        let xs = x.data.borrow();
        let mut o = out.data.borrow_mut();
        let width = weight.len();
        for t in 0..n {
            for g in 0..groups {
                let row = &xs[t * x.width + g * width..][..width];
                let mean_sq = row.iter().map(|v| v * v).sum::<f32>() / width as f32;
                let scale = 1.0 / (mean_sq + eps).sqrt();
                for (i, v) in row.iter().enumerate() {
                    o[t * out.width + g * width + i] = v * scale * weight[i];
                }
            }
        }
    }

    fn add_bias(&mut self, x: &Buffer, bias: &Vec<f32>, n: usize) {
        let mut xs = x.data.borrow_mut();
        for t in 0..n {
            for (v, b) in xs[t * x.width..][..bias.len()].iter_mut().zip(bias) {
                *v += b;
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

    fn rope(&mut self, x: &Buffer, cache: &Cache, layer: LayerAttention, heads: usize, n: usize, pos0: usize) {
        let s = cache.shape;
        let table = &cache.tables[layer.table];
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
                    let [c, sn] = table[(pos0 + t) * half + i];
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

    fn attention(&mut self, q: &Buffer, cache: &Cache, layer: LayerAttention, out: &Buffer, n: usize, pos0: usize) {
        let s = cache.shape;
        let (hd, kv_width) = (s.head_dim, s.n_kv_heads * s.head_dim);
        let group = s.n_heads / s.n_kv_heads;
        let (qs, ks, vs) = (q.data.borrow(), cache.k[layer.layer].borrow(), cache.v[layer.layer].borrow());
        let mut o = out.data.borrow_mut();
        for t in 0..n {
            let first = layer.first_key(pos0 + t);
            for h in 0..s.n_heads {
                let qr = &qs[t * q.width + h * hd..][..hd];
                let kv_off = (h / group) * hd;
                let scores: Vec<f32> = (first..=pos0 + t)
                    .map(|j| qr.iter().zip(&ks[j * kv_width + kv_off..][..hd]).map(|(a, b)| a * b).sum::<f32>() * s.scale)
                    .collect();
                let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let exps: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
                let sum: f32 = exps.iter().sum();
                let or = &mut o[t * out.width + h * hd..][..hd];
                or.fill(0.0);
                for (j, e) in (first..).zip(&exps) {
                    for (d, ov) in or.iter_mut().enumerate() {
                        *ov += e / sum * vs[j * kv_width + kv_off + d];
                    }
                }
            }
        }
    }

    fn glu(&mut self, gate: &Buffer, up: &Buffer, n: usize, act: Activation) {
        let mut g = gate.data.borrow_mut();
        let u = up.data.borrow();
        for i in 0..n * gate.width {
            let x = g[i];
            g[i] = match act {
                Activation::Silu => x / (1.0 + (-x).exp()),
                // GELU's tanh approximation, as Gemma was trained with.
                Activation::GeluTanh => {
                    let z = 0.797_884_6 * (x + 0.044_715 * x * x * x);
                    0.5 * x * (1.0 + z.tanh())
                }
            } * u[i];
        }
    }

    fn add(&mut self, x: &Buffer, y: &Buffer, n: usize) {
        let mut xs = x.data.borrow_mut();
        let ys = y.data.borrow();
        for i in 0..n * x.width {
            xs[i] += ys[i];
        }
    }

    async fn argmax(&mut self, logits: &Buffer, row: usize, allowed: Option<&[u32]>) -> Result<u32, ModelError> {
        let l = logits.data.borrow();
        Ok(first_max(&l[row * logits.width..][..logits.width], allowed))
    }

    async fn read(&mut self, x: &Buffer, rows: usize) -> Result<Vec<f32>, ModelError> {
        Ok(x.data.borrow()[..rows * x.width].to_vec())
    }
}

//! `CpuBackend`: the model's weights, activations and caches in memory, and its ops as the
//! kernels of this module.

use std::cell::RefCell;

use super::layout::Layout;
use super::matmul::{Product, Weights};
use super::ops::{self, Argmax, AttendGroup, Glu, Partials, RmsNorm};
use super::pool::{SharedOut, Workers};
#[cfg(not(target_arch = "wasm32"))]
use super::pool::ThreadPool;
#[cfg(target_arch = "wasm32")]
use super::pool::SingleThread;
use super::simd::Kernels;
use crate::gguf::TensorInfo;
use crate::model::{first_max, rope_tables, Activation, AttentionShape, Backend, LayerAttention, ModelConfig, ModelError, RopeOrder};
use crate::quant::QuantFormat;

/// A weight matrix `[rows][cols]`: the file's blocks, laid out as `layout` says once loaded.
pub struct CpuMatrix {
    pub format: QuantFormat,
    pub rows: usize,
    pub cols: usize,
    layout: Layout,
    data: Vec<u8>,
}

/// f32 activations `[rows][width]`.
pub struct CpuBuffer {
    pub width: usize,
    data: RefCell<Vec<f32>>,
}

impl CpuBuffer {
    pub fn from_vec(width: usize, data: Vec<f32>) -> Self {
        Self { width, data: RefCell::new(data) }
    }
}

/// Keys and values of every layer in f32, `[position][kv heads * head_dim]`, and the rotary
/// angle tables.
pub struct CpuCache {
    shape: AttentionShape,
    k: Vec<RefCell<Vec<f32>>>,
    v: Vec<RefCell<Vec<f32>>>,
    tables: Vec<Vec<[f32; 2]>>,
}

/// Runs the model's ops on the CPU (see the module docs).
pub struct CpuBackend {
    kernels: Kernels,
    workers: Box<dyn Workers>,
    /// Working memory of one op at a time (a product's quantized activations, attention's
    /// partial results), kept from op to op.
    scratch: Vec<u32>,
    /// Bytes of weights, caches and activations this backend holds.
    pub allocated: u64,
}

/// Fewest keys an attention task takes when a decode step's keys are split among threads.
const MIN_CHUNK_KEYS: usize = 64;

/// Threads to use when none are asked for: one per core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl CpuBackend {
    /// The fastest kernels this machine runs on `threads` threads (0: one per core). On wasm32,
    /// where `std` cannot start threads, it runs on the calling thread.
    pub fn new(threads: usize) -> Self {
        Self::with_kernels(threads, Kernels::best())
    }

    /// As `new`, with the given kernels. Panics if this machine cannot run them.
    pub fn with_kernels(threads: usize, kernels: Kernels) -> Self {
        #[cfg(not(target_arch = "wasm32"))]
        let workers: Box<dyn Workers> = {
            let threads = if threads == 0 { default_threads() } else { threads };
            Box::new(ThreadPool::new(threads))
        };
        #[cfg(target_arch = "wasm32")]
        let workers: Box<dyn Workers> = {
            let _ = threads;
            Box::new(SingleThread)
        };
        Self::with_workers(workers, kernels)
    }

    /// The given kernels on the given threads (in the browser: Web Workers).
    pub fn with_workers(workers: Box<dyn Workers>, kernels: Kernels) -> Self {
        assert!(kernels.is_available(), "{kernels} kernels do not run on this machine");
        Self { kernels, workers, scratch: Vec::new(), allocated: 0 }
    }

    pub fn kernels(&self) -> Kernels {
        self.kernels
    }

    pub fn threads(&self) -> usize {
        self.workers.threads()
    }
}

impl Backend for CpuBackend {
    type Matrix = CpuMatrix;
    type Vector = Vec<f32>;
    type Buffer = CpuBuffer;
    type Cache = CpuCache;

    fn alloc_matrix(&mut self, info: &TensorInfo, format: QuantFormat) -> Result<CpuMatrix, ModelError> {
        let (cols, rows) = (info.dims[0] as usize, info.dims[1] as usize);
        if cols % format.block_elems() != 0 {
            return Err(ModelError::BadConfig(format!(
                "tensor {}: rows of {cols} values are not whole {format} blocks",
                info.name
            )));
        }
        let bytes = rows * (cols / format.block_elems()) * format.block_bytes();
        if bytes as u64 != info.n_bytes {
            return Err(ModelError::BadConfig(format!("tensor {}: {} bytes for {rows}x{cols} {format}", info.name, info.n_bytes)));
        }
        self.allocated += bytes as u64;
        let layout = Layout::of(format, rows, cols, self.kernels.rows_per_pass());
        Ok(CpuMatrix { format, rows, cols, layout, data: vec![0; bytes] })
    }

    fn write_matrix(&mut self, m: &mut CpuMatrix, offset: u64, bytes: &[u8]) {
        m.data[offset as usize..][..bytes.len()].copy_from_slice(bytes);
    }

    fn finish_matrix(&mut self, m: &mut CpuMatrix) -> Result<(), ModelError> {
        m.layout.interleave(&mut m.data, m.format.block_bytes());
        Ok(())
    }

    fn vector(&mut self, _name: &str, values: &[f32]) -> Result<Vec<f32>, ModelError> {
        self.allocated += values.len() as u64 * 4;
        Ok(values.to_vec())
    }

    fn buffer(&mut self, rows: usize, width: usize) -> Result<CpuBuffer, ModelError> {
        self.allocated += (rows * width * 4) as u64;
        Ok(CpuBuffer::from_vec(width, vec![0.0; rows * width]))
    }

    fn buffer_from(&mut self, width: usize, data: &[f32]) -> Result<CpuBuffer, ModelError> {
        self.allocated += data.len() as u64 * 4;
        Ok(CpuBuffer::from_vec(width, data.to_vec()))
    }

    fn cache(&mut self, config: &ModelConfig, context: usize) -> Result<CpuCache, ModelError> {
        let shape = AttentionShape::of(config);
        let layer_len = config.kv_layer_len(context)?;
        let layer = || (0..config.n_layers).map(|_| RefCell::new(vec![0.0; layer_len])).collect();
        self.allocated += 2 * config.n_layers as u64 * config.kv_layer_bytes(context)?;
        Ok(CpuCache { shape, k: layer(), v: layer(), tables: rope_tables(config, context) })
    }

    fn embed(&mut self, table: &CpuMatrix, tokens: &[u32], out: &CpuBuffer, scale: f32) {
        let mut o = out.data.borrow_mut();
        let (block_bytes, block_elems) = (table.format.block_bytes(), table.format.block_elems());
        for (t, &id) in tokens.iter().enumerate() {
            let out_row = &mut o[t * out.width..][..table.cols];
            let (start, stride) = table.layout.locate(id as usize);
            // A plain row at once; an interleaved one block by block.
            let (run, runs) = if stride == 1 { (table.cols, 1) } else { (block_elems, table.cols / block_elems) };
            for (i, out) in out_row.chunks_exact_mut(run).take(runs).enumerate() {
                let at = (start + i * stride) * block_bytes;
                let bytes = &table.data[at..][..run / block_elems * block_bytes];
                crate::quant::dequantize(table.format, bytes, out).expect("a matrix row is whole blocks");
            }
            if scale != 1.0 {
                out_row.iter_mut().for_each(|v| *v *= scale);
            }
        }
    }

    fn rms_norm(&mut self, x: &CpuBuffer, weight: &Vec<f32>, out: &CpuBuffer, n: usize, groups: usize, eps: f32) {
        let xs = x.data.borrow();
        let mut o = out.data.borrow_mut();
        let (x_width, out_width) = (x.width, out.width);
        self.kernels.run(RmsNorm { x: &xs, x_width, gain: weight, groups, out: &mut o, out_width, n, eps });
    }

    fn add_bias(&mut self, x: &CpuBuffer, bias: &Vec<f32>, n: usize) {
        let mut xs = x.data.borrow_mut();
        for row in xs.chunks_exact_mut(x.width).take(n) {
            row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
        }
    }

    fn matmul(&mut self, w: &CpuMatrix, x: &CpuBuffer, x_row0: usize, out: &CpuBuffer, n: usize) {
        // Products are where a prefill step spends its seconds, with no turn for the event loop
        // between them: a watching page hears that the work goes on.
        #[cfg(target_arch = "wasm32")]
        crate::event_loop::heartbeat();
        let xs = x.data.borrow();
        let mut o = out.data.borrow_mut();
        assert!(w.cols <= x.width && (x_row0 + n) * x.width <= xs.len(), "matmul input too small");
        assert!(w.rows <= out.width && n * out.width <= o.len(), "matmul output too small");
        let product = Product {
            weights: Weights { format: w.format, rows: w.rows, cols: w.cols, layout: w.layout, bytes: &w.data },
            x: &xs[x_row0 * x.width..],
            x_width: x.width,
            n,
            out: &mut o,
            out_width: out.width,
        };
        product.run(&*self.workers, self.kernels, &mut self.scratch);
    }

    fn rope(&mut self, x: &CpuBuffer, cache: &CpuCache, layer: LayerAttention, heads: usize, n: usize, pos0: usize) {
        let s = cache.shape;
        let half = s.rope_dim / 2;
        let mut xs = x.data.borrow_mut();
        for t in 0..n {
            let angles = &cache.tables[layer.table][(pos0 + t) * half..][..half];
            for h in 0..heads {
                let head = &mut xs[t * x.width + h * s.head_dim..][..s.head_dim];
                for (i, &[c, sn]) in angles.iter().enumerate() {
                    let (a, b) = match s.rope_order {
                        RopeOrder::Normal => (2 * i, 2 * i + 1),
                        RopeOrder::Neox => (i, i + half),
                    };
                    let (x0, x1) = (head[a], head[b]);
                    head[a] = x0 * c - x1 * sn;
                    head[b] = x0 * sn + x1 * c;
                }
            }
        }
    }

    fn store_kv(&mut self, cache: &CpuCache, layer: usize, k: &CpuBuffer, v: &CpuBuffer, n: usize, pos0: usize) {
        let kv = k.width;
        cache.k[layer].borrow_mut()[pos0 * kv..][..n * kv].copy_from_slice(&k.data.borrow()[..n * kv]);
        cache.v[layer].borrow_mut()[pos0 * kv..][..n * kv].copy_from_slice(&v.data.borrow()[..n * kv]);
    }

    fn attention(&mut self, q: &CpuBuffer, cache: &CpuCache, layer: LayerAttention, out: &CpuBuffer, n: usize, pos0: usize) {
        let s = cache.shape;
        let (hd, heads, kv_heads) = (s.head_dim, s.n_heads, s.n_kv_heads);
        assert!(hd <= ops::MAX_HEAD_DIM && heads * hd <= q.width.min(out.width));
        let kv_width = kv_heads * hd;
        // Query heads sharing a key/value head run together, in batches of at most MAX_GROUP.
        let group = heads / kv_heads;
        let batches = group.div_ceil(ops::MAX_GROUP);
        let batch = group.div_ceil(batches);
        // A decode step has a few groups for many keys: split the keys into chunks, so that
        // every thread has work, and merge the chunks' partial results after.
        let wanted = 4 * self.workers.threads();
        // The keys any of the n queries sees: a sliding window starts past 0.
        let (lo, hi) = (layer.first_key(pos0), pos0 + n);
        let chunks = wanted.div_ceil(n * kv_heads * batches).min((hi - lo).div_ceil(MIN_CHUNK_KEYS)).max(1);
        let chunk_keys = (hi - lo).div_ceil(chunks);
        let entries = n * chunks * heads;
        let words = entries * (hd + 2);
        if self.scratch.len() < words {
            self.scratch.resize(words, 0);
        }
        let (max, rest) = bytemuck::cast_slice_mut::<u32, f32>(&mut self.scratch[..words]).split_at_mut(entries);
        let (sum, acc) = rest.split_at_mut(entries);
        let (shared_max, shared_sum, shared_acc) = (SharedOut::new(max), SharedOut::new(sum), SharedOut::new(acc));

        let (qs, ks, vs) = (q.data.borrow(), cache.k[layer.layer].borrow(), cache.v[layer.layer].borrow());
        let (qs, ks, vs): (&[f32], &[f32], &[f32]) = (&qs, &ks, &vs);
        assert!((n - 1) * q.width + heads * hd <= qs.len() && (pos0 + n) * kv_width <= ks.len().min(vs.len()));
        let (q_width, kernels) = (q.width, self.kernels);
        let scale = s.scale;
        self.workers.for_each(n * kv_heads * batches * chunks, &|task| {
            let (c, task) = (task % chunks, task / chunks);
            let (b, task) = (task % batches, task / batches);
            let (g, t) = (task % kv_heads, task / kv_heads);
            let h0 = g * group + b * batch;
            let h1 = (h0 + batch).min((g + 1) * group);
            let (first, n_keys) = (layer.first_key(pos0 + t), pos0 + t + 1);
            let keys = (lo + c * chunk_keys).clamp(first, n_keys)..(lo + (c + 1) * chunk_keys).clamp(first, n_keys);
            let entry = (t * chunks + c) * heads + h0;
            // SAFETY: task (t, g, b, c) alone writes the entries of its heads.
            let (max, sum, acc) = unsafe {
                (shared_max.slice(entry, h1 - h0), shared_sum.slice(entry, h1 - h0), shared_acc.slice(entry * hd, (h1 - h0) * hd))
            };
            let q = &qs[t * q_width + h0 * hd..][..(h1 - h0) * hd];
            kernels.run(AttendGroup { q, k: ks, v: vs, kv_width, offset: g * hd, keys, scale, max, sum, acc });
        });

        let partials = Partials { chunks, heads, max, sum, acc };
        let mut o = out.data.borrow_mut();
        for t in 0..n {
            for h in 0..heads {
                partials.merge(t, h, &mut o[t * out.width + h * hd..][..hd]);
            }
        }
    }

    fn glu(&mut self, gate: &CpuBuffer, up: &CpuBuffer, n: usize, act: Activation) {
        let len = n * gate.width;
        let mut g = gate.data.borrow_mut();
        let u = up.data.borrow();
        self.kernels.run(Glu { gate: &mut g[..len], up: &u[..len], act });
    }

    fn add(&mut self, x: &CpuBuffer, y: &CpuBuffer, n: usize) {
        let len = n * x.width;
        let mut xs = x.data.borrow_mut();
        let ys = y.data.borrow();
        for (a, b) in xs[..len].iter_mut().zip(&ys[..len]) {
            *a += b;
        }
    }

    async fn argmax(&mut self, logits: &CpuBuffer, row: usize, allowed: Option<&[u32]>) -> Result<u32, ModelError> {
        let l = logits.data.borrow();
        let row = &l[row * logits.width..][..logits.width];
        // A grammar's mask comes only after a refused pick: plain Rust is quick enough for it.
        if allowed.is_some() {
            return Ok(first_max(row, allowed));
        }
        Ok(self.kernels.run(Argmax(row)).map_or_else(|| first_max(row, None), |best| best as u32))
    }

    async fn read(&mut self, x: &CpuBuffer, rows: usize) -> Result<Vec<f32>, ModelError> {
        Ok(x.data.borrow()[..rows * x.width].to_vec())
    }
}

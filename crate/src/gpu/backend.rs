use super::context::{Gpu, GpuError};
use super::kernels::Kernel;
use super::recorder::{GpuStats, Recorder, Tracked};
use crate::gguf::TensorInfo;
use crate::model::{
    rope_tables, Activation, AttentionShape, Backend, LayerAttention, ModelConfig, ModelError, RopeOrder, Weights,
};
use crate::quant::QuantFormat;

/// f32 activations `[rows][width]`.
#[derive(Clone, Debug)]
pub struct GpuTensor {
    buf: Tracked,
    pub width: usize,
}

/// A weight matrix kept in its GGUF block format, split by rows into buffers that each fit one
/// storage binding.
pub struct GpuMatrix {
    pub format: QuantFormat,
    pub rows: usize,
    pub cols: usize,
    row_bytes: usize,
    /// (first row, rows, buffer)
    slices: Vec<(usize, usize, Tracked)>,
}

impl GpuMatrix {
    pub fn slice_count(&self) -> usize {
        self.slices.len()
    }
}

pub struct GpuCache {
    shape: AttentionShape,
    k: Vec<Tracked>,
    v: Vec<Tracked>,
    /// The rotary tables, by `LayerAttention::table`.
    tables: Vec<Tracked>,
}

/// Runs the model's ops as WGSL kernels. Weights stay quantized; each forward step is one
/// compute pass and one submit, ended by reading back a token id (or logits when asked).
pub struct GpuBackend {
    pub gpu: Gpu,
    recorder: Recorder,
    ids: Tracked,
    ids_written: bool,
    token: Tracked,
    /// The bits of the indices a masked argmax may pick; grown to the largest mask asked for.
    allowed: Tracked,
    /// Largest weight slice in bytes: the device's binding limit, or less in tests.
    weight_slice_limit: u64,
    /// Bytes of every buffer this backend created.
    pub allocated: u64,
}

const STORAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_DST)
    .union(wgpu::BufferUsages::COPY_SRC);

/// Up to this many tokens a matmul runs as matrix-vector products.
const MATVEC_MAX_TOKENS: usize = 4;
/// Output rows per matrix-vector workgroup.
const MATVEC_ROWS: u32 = 2;

/// Token ids one forward step may embed.
const MAX_STEP_TOKENS: u64 = 4096;

impl GpuBackend {
    pub fn new(gpu: Gpu) -> Self {
        let limit = gpu.binding_limit();
        Self::with_weight_slice_limit(gpu, limit)
    }

    /// As `new`, but splitting weights at `limit` bytes (tests use a small one to exercise it).
    pub fn with_weight_slice_limit(gpu: Gpu, limit: u64) -> Self {
        let recorder = Recorder::new(&gpu);
        let ids = Tracked::new(&gpu, "token ids", MAX_STEP_TOKENS * 4, STORAGE);
        let token = Tracked::new(&gpu, "argmax", 4, STORAGE);
        let allowed = Tracked::new(&gpu, "argmax mask", 4, STORAGE);
        let weight_slice_limit = limit.min(gpu.binding_limit());
        Self { gpu, recorder, ids, ids_written: false, token, allowed, weight_slice_limit, allocated: 0 }
    }

    pub fn stats(&self) -> GpuStats {
        self.recorder.stats
    }

    fn storage(&mut self, label: &str, bytes: u64) -> Result<Tracked, ModelError> {
        let limit = self.gpu.binding_limit();
        if bytes > limit {
            return Err(GpuError::TooLarge { what: label.to_string(), bytes, limit }.into());
        }
        self.allocated += bytes;
        Ok(Tracked::new(&self.gpu, label, bytes, STORAGE))
    }

    fn upload(&mut self, label: &str, data: &[u8]) -> Result<Tracked, ModelError> {
        let buf = self.storage(label, data.len() as u64)?;
        self.write(&buf, 0, data);
        Ok(buf)
    }

    /// `write_buffer` needs a multiple of 4 bytes; the tail is zero-padded.
    fn write(&self, buf: &Tracked, offset: u64, data: &[u8]) {
        if data.len() % 4 == 0 {
            self.gpu.queue.write_buffer(&buf.buffer, offset, data);
        } else {
            let mut padded = data.to_vec();
            padded.resize(data.len().next_multiple_of(4), 0);
            self.gpu.queue.write_buffer(&buf.buffer, offset, &padded);
        }
    }

    fn run(&mut self, kernel: Kernel, params: &[u32], buffers: &[&Tracked], groups: [u32; 3]) {
        self.recorder.dispatch(&self.gpu, kernel, params, buffers, groups);
    }
}

/// Workgroups for `count` items of `per_group` each, folded into two dimensions when one would
/// pass WebGPU's 65535 limit. Kernels recover the flat index from `num_workgroups`.
fn grid(count: usize, per_group: usize) -> [u32; 3] {
    let groups = count.div_ceil(per_group) as u32;
    let x = groups.min(65535);
    [x, groups.div_ceil(x.max(1)), 1]
}

impl Backend for GpuBackend {
    type Matrix = GpuMatrix;
    type Vector = GpuTensor;
    type Buffer = GpuTensor;
    type Cache = GpuCache;

    fn alloc_matrix(&mut self, info: &TensorInfo, format: QuantFormat) -> Result<GpuMatrix, ModelError> {
        let (cols, rows) = (info.dims[0] as usize, info.dims[1] as usize);
        if cols % 32 != 0 {
            return Err(ModelError::BadConfig(format!("tensor {}: rows of {cols} values (the kernels need a multiple of 32)", info.name)));
        }
        let row_bytes = cols / format.block_elems() * format.block_bytes();
        // Room for the 4 bytes a kernel may read past the last even-aligned field; an even row
        // count keeps every slice boundary on a 4-byte boundary, as buffer writes need.
        let fit = ((self.weight_slice_limit - 4) / row_bytes as u64) as usize;
        let rows_per_slice = if fit >= rows { rows } else { fit - fit % 2 };
        if rows_per_slice == 0 {
            return Err(GpuError::TooLarge { what: format!("a row of {}", info.name), bytes: 2 * row_bytes as u64, limit: self.weight_slice_limit }.into());
        }
        let mut slices = Vec::new();
        for first in (0..rows).step_by(rows_per_slice) {
            let n = rows_per_slice.min(rows - first);
            slices.push((first, n, self.storage(&info.name, (n * row_bytes) as u64 + 4)?));
        }
        Ok(GpuMatrix { format, rows, cols, row_bytes, slices })
    }

    fn write_matrix(&mut self, m: &mut GpuMatrix, offset: u64, bytes: &[u8]) {
        let slice_bytes = (m.slices[0].1 * m.row_bytes) as u64;
        let (mut offset, mut bytes) = (offset, bytes);
        while !bytes.is_empty() {
            let (index, within) = ((offset / slice_bytes) as usize, offset % slice_bytes);
            let len = bytes.len().min((slice_bytes - within) as usize);
            self.write(&m.slices[index].2, within, &bytes[..len]);
            offset += len as u64;
            bytes = &bytes[len..];
        }
    }

    fn finish_matrix(&mut self, _m: &mut GpuMatrix) -> Result<(), ModelError> {
        // Hand the staged bytes to the GPU now, so staging memory stays one tensor deep.
        self.gpu.queue.submit([]);
        Ok(())
    }

    fn vector(&mut self, name: &str, values: &[f32]) -> Result<GpuTensor, ModelError> {
        let buf = self.upload(name, bytemuck::cast_slice(values))?;
        Ok(GpuTensor { buf, width: values.len() })
    }

    fn buffer(&mut self, rows: usize, width: usize) -> Result<GpuTensor, ModelError> {
        let buf = self.storage("activations", (rows * width * 4) as u64)?;
        Ok(GpuTensor { buf, width })
    }

    fn buffer_from(&mut self, width: usize, data: &[f32]) -> Result<GpuTensor, ModelError> {
        let buf = self.upload("tensor", bytemuck::cast_slice(data))?;
        Ok(GpuTensor { buf, width })
    }

    fn prepare(&mut self, weights: &Weights<Self>) {
        let neox = weights.config.arch.rope_order == RopeOrder::Neox;
        let mut kernels = vec![
            Kernel::Embed { format: weights.token_embd.format },
            Kernel::RmsNorm,
            Kernel::Rope { neox },
            Kernel::Attention,
            Kernel::Glu { gelu: weights.config.arch.activation == Activation::GeluTanh },
            Kernel::Add { broadcast: false },
            Kernel::Copy,
            Kernel::Argmax,
        ];
        if weights.layers.iter().any(|l| l.bq.is_some()) {
            kernels.push(Kernel::Add { broadcast: true });
        }
        for m in weights.matrices() {
            kernels.extend([Kernel::Matvec { format: m.format, rows: MATVEC_ROWS }, Kernel::Matmul { format: m.format }]);
        }
        for kernel in kernels {
            self.recorder.build(&self.gpu, kernel);
        }
    }

    fn cache(&mut self, config: &ModelConfig, context: usize) -> Result<GpuCache, ModelError> {
        let bytes = config.kv_layer_bytes(context)?;
        let mut k = Vec::with_capacity(config.n_layers);
        let mut v = Vec::with_capacity(config.n_layers);
        for _ in 0..config.n_layers {
            k.push(self.storage("key cache", bytes)?);
            v.push(self.storage("value cache", bytes)?);
        }
        let tables = rope_tables(config, context)
            .iter()
            .map(|table| self.upload("rope angles", bytemuck::cast_slice(table)))
            .collect::<Result<_, _>>()?;
        Ok(GpuCache { shape: AttentionShape::of(config), k, v, tables })
    }

    fn embed(&mut self, table: &GpuMatrix, tokens: &[u32], out: &GpuTensor, scale: f32) {
        // The ids buffer is written at the next submit, ahead of every dispatch in it, so one
        // submit can hold only one embedding's ids.
        if self.ids_written && self.recorder.pending() {
            self.recorder.submit(&self.gpu, None);
        }
        let tokens = &tokens[..tokens.len().min(MAX_STEP_TOKENS as usize)];
        self.gpu.queue.write_buffer(&self.ids.buffer, 0, bytemuck::cast_slice(tokens));
        self.ids_written = true;
        let ids = self.ids.clone();
        for (first, rows, buf) in &table.slices {
            let params =
                [*rows as u32, *first as u32, table.cols as u32, tokens.len() as u32, table.row_bytes as u32, scale.to_bits()];
            let groups = [(table.cols / 4).div_ceil(64) as u32, tokens.len() as u32, 1];
            self.recorder.dispatch(&self.gpu, Kernel::Embed { format: table.format }, &params, &[buf, &ids, &out.buf], groups);
        }
    }

    fn rms_norm(&mut self, x: &GpuTensor, weight: &GpuTensor, out: &GpuTensor, n: usize, groups: usize, eps: f32) {
        let params = [(n * groups) as u32, weight.width as u32, groups as u32, x.width as u32, out.width as u32, eps.to_bits()];
        self.run(Kernel::RmsNorm, &params, &[&x.buf, &weight.buf, &out.buf], grid(n * groups, 1));
    }

    fn add_bias(&mut self, x: &GpuTensor, bias: &GpuTensor, n: usize) {
        let len = n * bias.width;
        let params = [len as u32, bias.width as u32, x.width as u32];
        self.run(Kernel::Add { broadcast: true }, &params, &[&x.buf, &bias.buf], grid(len, 64));
    }

    fn matmul(&mut self, w: &GpuMatrix, x: &GpuTensor, x_row0: usize, out: &GpuTensor, n: usize) {
        // A few tokens stream each weight once per token; more are worth tiling, which
        // dequantizes each weight once per 32 tokens.
        let (kernel, rows_per_group, tokens_per_group) = if n <= MATVEC_MAX_TOKENS {
            (Kernel::Matvec { format: w.format, rows: MATVEC_ROWS }, MATVEC_ROWS as usize, 1)
        } else {
            (Kernel::Matmul { format: w.format }, 32, 32)
        };
        for (first, rows, buf) in &w.slices {
            let params = [
                *rows as u32,
                w.cols as u32,
                n as u32,
                w.row_bytes as u32,
                x_row0 as u32,
                x.width as u32,
                out.width as u32,
                *first as u32,
            ];
            let [gx, gy, _] = grid(*rows, rows_per_group);
            let groups = [gx, gy, n.div_ceil(tokens_per_group) as u32];
            self.recorder.dispatch(&self.gpu, kernel, &params, &[buf, &x.buf, &out.buf], groups);
        }
    }

    fn rope(&mut self, x: &GpuTensor, cache: &GpuCache, layer: LayerAttention, heads: usize, n: usize, pos0: usize) {
        let s = cache.shape;
        let params = [n as u32, pos0 as u32, heads as u32, s.head_dim as u32, s.rope_dim as u32, x.width as u32];
        let groups = [(heads * s.rope_dim / 2).div_ceil(64) as u32, n as u32, 1];
        let kernel = Kernel::Rope { neox: s.rope_order == RopeOrder::Neox };
        self.run(kernel, &params, &[&x.buf, &cache.tables[layer.table]], groups);
    }

    fn store_kv(&mut self, cache: &GpuCache, layer: usize, k: &GpuTensor, v: &GpuTensor, n: usize, pos0: usize) {
        let len = n * k.width;
        let params = [len as u32, (pos0 * k.width) as u32];
        self.run(Kernel::Copy, &params, &[&k.buf, &cache.k[layer]], grid(len, 64));
        self.run(Kernel::Copy, &params, &[&v.buf, &cache.v[layer]], grid(len, 64));
    }

    fn attention(&mut self, q: &GpuTensor, cache: &GpuCache, layer: LayerAttention, out: &GpuTensor, n: usize, pos0: usize) {
        let s = cache.shape;
        let params = [
            n as u32,
            pos0 as u32,
            s.n_heads as u32,
            s.n_kv_heads as u32,
            s.head_dim as u32,
            q.width as u32,
            (s.n_kv_heads * s.head_dim) as u32,
            s.scale.to_bits(),
            layer.window.unwrap_or(0) as u32,
        ];
        let buffers = [&q.buf, &cache.k[layer.layer], &cache.v[layer.layer], &out.buf];
        self.run(Kernel::Attention, &params, &buffers, [s.n_heads as u32, n as u32, 1]);
    }

    fn glu(&mut self, gate: &GpuTensor, up: &GpuTensor, n: usize, act: Activation) {
        let len = n * gate.width;
        let kernel = Kernel::Glu { gelu: act == Activation::GeluTanh };
        self.run(kernel, &[len as u32], &[&gate.buf, &up.buf], grid(len, 64));
    }

    fn add(&mut self, x: &GpuTensor, y: &GpuTensor, n: usize) {
        let len = n * x.width;
        let params = [len as u32, x.width as u32, x.width as u32];
        self.run(Kernel::Add { broadcast: false }, &params, &[&x.buf, &y.buf], grid(len, 64));
    }

    async fn argmax(&mut self, logits: &GpuTensor, row: usize, allowed: Option<&[u32]>) -> Result<u32, ModelError> {
        if let Some(bits) = allowed {
            let bytes = logits.width.div_ceil(32) as u64 * 4;
            if self.allowed.buffer.size() < bytes {
                self.allowed = Tracked::new(&self.gpu, "argmax mask", bytes, STORAGE);
            }
            // Words the caller's mask lacks allow nothing.
            let mut words = bits[..bits.len().min(logits.width.div_ceil(32))].to_vec();
            words.resize(logits.width.div_ceil(32), 0);
            self.gpu.queue.write_buffer(&self.allowed.buffer, 0, bytemuck::cast_slice(&words));
        }
        let (token, mask) = (self.token.clone(), self.allowed.clone());
        let params = [logits.width as u32, (row * logits.width) as u32, allowed.is_some() as u32];
        self.run(Kernel::Argmax, &params, &[&logits.buf, &mask, &token], [1, 1, 1]);
        let bytes = self.recorder.read(&self.gpu, &token.buffer, 4).await?;
        self.ids_written = false;
        Ok(u32::from_le_bytes(bytes[..4].try_into().unwrap()))
    }

    async fn read(&mut self, x: &GpuTensor, rows: usize) -> Result<Vec<f32>, ModelError> {
        let bytes = self.recorder.read(&self.gpu, &x.buf.buffer, (rows * x.width * 4) as u64).await?;
        self.ids_written = false;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    async fn finish(&mut self) -> Result<(), ModelError> {
        if self.recorder.pending() {
            self.recorder.submit(&self.gpu, None);
            self.ids_written = false;
        }
        Ok(self.gpu.idle().await?)
    }
}

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use super::context::{Gpu, GpuError};
use super::kernels::{Kernel, Pipelines, PARAM_SLOT};

/// A GPU buffer with an identity, so bind groups can be cached by the buffers they bind.
#[derive(Clone, Debug)]
pub struct Tracked {
    pub id: u64,
    pub buffer: wgpu::Buffer,
}

impl Tracked {
    pub fn new(gpu: &Gpu, label: &str, size: u64, usage: wgpu::BufferUsages) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let buffer = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: size.next_multiple_of(4).max(4),
            usage,
            mapped_at_creation: false,
        });
        Self { id: NEXT.fetch_add(1, Ordering::Relaxed), buffer }
    }
}

/// Counters for the benchmark: how much GPU work a step costs.
#[derive(Debug, Default, Clone, Copy)]
pub struct GpuStats {
    pub dispatches: u64,
    pub submits: u64,
}

/// Parameter slots per submit. A llama step records about 15 ops per layer; a model deeper
/// than this allows is simply submitted in several pieces.
const SLOTS: u64 = 4096;
/// Most storage buffers a kernel binds.
const MAX_BINDINGS: usize = 4;

struct Dispatch {
    kernel: Kernel,
    bind_group: wgpu::BindGroup,
    offset: u32,
    groups: [u32; 3],
}

/// Collects one step's dispatches, then runs them in a single compute pass and submit.
///
/// Each dispatch's parameters go to its own 256-byte slot of one uniform buffer, bound with a
/// dynamic offset, so a bind group depends only on the kernel and its buffers: after the first
/// step, recording a dispatch creates no GPU objects at all.
pub(crate) struct Recorder {
    params: wgpu::Buffer,
    staging: Vec<u8>,
    dispatches: Vec<Dispatch>,
    bind_groups: HashMap<(Kernel, [u64; MAX_BINDINGS]), wgpu::BindGroup>,
    pipelines: Pipelines,
    readback: Option<wgpu::Buffer>,
    pub stats: GpuStats,
}

impl Recorder {
    pub fn new(gpu: &Gpu) -> Self {
        let params = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("params"),
            size: SLOTS * PARAM_SLOT,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Self {
            params,
            staging: Vec::new(),
            dispatches: Vec::new(),
            bind_groups: HashMap::new(),
            pipelines: Pipelines::default(),
            readback: None,
            stats: GpuStats::default(),
        }
    }

    /// Builds `kernel`'s pipeline now, where it would otherwise be built at its first dispatch.
    pub fn build(&mut self, gpu: &Gpu, kernel: Kernel) {
        self.pipelines.get(&gpu.device, kernel);
    }

    /// Records `kernel` over `groups` workgroups with `params` (32-bit words) and `buffers` at
    /// bindings 1, 2, ...
    pub fn dispatch(&mut self, gpu: &Gpu, kernel: Kernel, params: &[u32], buffers: &[&Tracked], groups: [u32; 3]) {
        if groups.contains(&0) {
            return;
        }
        if self.staging.len() as u64 >= SLOTS * PARAM_SLOT {
            self.submit(gpu, None);
        }
        let offset = self.staging.len() as u32;
        self.staging.extend(params.iter().flat_map(|p| p.to_le_bytes()));
        self.staging.resize(offset as usize + PARAM_SLOT as usize, 0);

        let mut ids = [0u64; MAX_BINDINGS];
        for (slot, b) in ids.iter_mut().zip(buffers) {
            *slot = b.id;
        }
        let bind_group = match self.bind_groups.get(&(kernel, ids)) {
            Some(bg) => bg.clone(),
            None => {
                let layout = &self.pipelines.get(&gpu.device, kernel).layout;
                let mut entries = vec![wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &self.params,
                        offset: 0,
                        size: wgpu::BufferSize::new(PARAM_SLOT),
                    }),
                }];
                for (i, b) in buffers.iter().enumerate() {
                    entries.push(wgpu::BindGroupEntry { binding: i as u32 + 1, resource: b.buffer.as_entire_binding() });
                }
                let bg = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor { label: None, layout, entries: &entries });
                self.bind_groups.insert((kernel, ids), bg.clone());
                bg
            }
        };
        self.dispatches.push(Dispatch { kernel, bind_group, offset, groups });
    }

    /// Whether anything is recorded and not yet submitted.
    pub fn pending(&self) -> bool {
        !self.dispatches.is_empty()
    }

    /// Submits what is recorded, then copies `copy = (buffer, bytes)` into the readback buffer.
    pub fn submit(&mut self, gpu: &Gpu, copy: Option<(&wgpu::Buffer, u64)>) {
        gpu.queue.write_buffer(&self.params, 0, &self.staging);
        let mut encoder = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
            for d in &self.dispatches {
                pass.set_pipeline(&self.pipelines.get(&gpu.device, d.kernel).pipeline);
                pass.set_bind_group(0, &d.bind_group, &[d.offset]);
                pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
            }
        }
        if let Some((src, bytes)) = copy {
            let readback = self.readback_buffer(gpu, bytes);
            encoder.copy_buffer_to_buffer(src, 0, &readback, 0, bytes);
        }
        gpu.queue.submit([encoder.finish()]);
        self.stats.dispatches += self.dispatches.len() as u64;
        self.stats.submits += 1;
        self.dispatches.clear();
        self.staging.clear();
    }

    fn readback_buffer(&mut self, gpu: &Gpu, bytes: u64) -> wgpu::Buffer {
        match &self.readback {
            Some(b) if b.size() >= bytes => b.clone(),
            _ => {
                let b = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("readback"),
                    size: bytes.next_multiple_of(4),
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                self.readback = Some(b.clone());
                b
            }
        }
    }

    /// Submits everything recorded and reads the first `bytes` of `src` back.
    pub async fn read(&mut self, gpu: &Gpu, src: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>, GpuError> {
        self.submit(gpu, Some((src, bytes)));
        let readback = self.readback.clone().expect("submit made the readback buffer");
        let slice = readback.slice(..bytes);
        let (tx, rx) = futures_channel::oneshot::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        // Natively nothing drives the map without a poll; on the web the browser does.
        #[cfg(not(target_arch = "wasm32"))]
        gpu.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError::Readback(e.to_string()))?;
        let mapped = rx.await.map_err(|_| GpuError::Readback("the map request was dropped".into()))?;
        gpu.check()?;
        mapped.map_err(|e| GpuError::Readback(e.to_string()))?;
        let data = slice.get_mapped_range().map_err(|e| GpuError::Readback(e.to_string()))?.to_vec();
        readback.unmap();
        Ok(data)
    }
}

use std::collections::HashMap;

use crate::quant::QuantFormat;

const QUANT: &str = include_str!("../../../shaders/quant.wgsl");
const MATVEC: &str = include_str!("../../../shaders/matvec.wgsl");
const MATMUL: &str = include_str!("../../../shaders/matmul.wgsl");
const EMBED: &str = include_str!("../../../shaders/embed.wgsl");
const RMSNORM: &str = include_str!("../../../shaders/rmsnorm.wgsl");
const ROPE: &str = include_str!("../../../shaders/rope.wgsl");
const ATTENTION: &str = include_str!("../../../shaders/attention.wgsl");
const GLU: &str = include_str!("../../../shaders/glu.wgsl");
const ADD: &str = include_str!("../../../shaders/add.wgsl");
const COPY: &str = include_str!("../../../shaders/copy.wgsl");
const ARGMAX: &str = include_str!("../../../shaders/argmax.wgsl");

/// One specialization of one kernel file: the key its pipeline is cached under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// `rows` output rows of one token per workgroup.
    Matvec { format: QuantFormat, rows: u32 },
    /// Tiles of 32 rows x 32 tokens.
    Matmul { format: QuantFormat },
    Embed { format: QuantFormat },
    RmsNorm,
    Rope { neox: bool },
    Attention,
    Glu { gelu: bool },
    /// `broadcast`: one row added to every row (a bias).
    Add { broadcast: bool },
    Copy,
    Argmax,
}

impl Kernel {
    /// The WGSL module: the specialization constants, then the shared quant reader where the
    /// kernel reads packed weights, then the kernel file.
    fn source(self) -> String {
        let format_id = |f: QuantFormat| QuantFormat::ALL.iter().position(|&x| x == f).unwrap();
        let mut defines = Vec::new();
        let body = match self {
            Kernel::Matvec { format, rows } => {
                defines.extend([("FORMAT", format_id(format) as u32), ("ROWS", rows)]);
                [QUANT, MATVEC].concat()
            }
            Kernel::Matmul { format } => {
                defines.push(("FORMAT", format_id(format) as u32));
                [QUANT, MATMUL].concat()
            }
            Kernel::Embed { format } => {
                defines.push(("FORMAT", format_id(format) as u32));
                [QUANT, EMBED].concat()
            }
            Kernel::RmsNorm => RMSNORM.to_string(),
            Kernel::Rope { neox } => {
                defines.push(("NEOX", neox as u32));
                ROPE.to_string()
            }
            Kernel::Attention => ATTENTION.to_string(),
            Kernel::Glu { gelu } => {
                defines.push(("GELU", gelu as u32));
                GLU.to_string()
            }
            Kernel::Add { broadcast } => {
                defines.push(("BROADCAST", broadcast as u32));
                ADD.to_string()
            }
            Kernel::Copy => COPY.to_string(),
            Kernel::Argmax => ARGMAX.to_string(),
        };
        let mut src: String = defines.iter().map(|(k, v)| format!("const {k}: u32 = {v}u;\n")).collect();
        src.push_str(&body);
        src
    }

    /// For each storage binding after the uniform at binding 0: whether the kernel only reads it.
    fn storage(self) -> &'static [bool] {
        match self {
            Kernel::Matvec { .. } | Kernel::Matmul { .. } | Kernel::Embed { .. } | Kernel::RmsNorm => &[true, true, false],
            Kernel::Rope { .. } => &[false, true],
            Kernel::Attention => &[true, true, true, false],
            Kernel::Glu { .. } | Kernel::Add { .. } => &[false, true],
            Kernel::Copy => &[true, false],
            Kernel::Argmax => &[true, true, false],
        }
    }
}

pub(crate) struct Pipeline {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

/// Every pipeline built so far, by kernel key: at load (`Backend::prepare`), or at first use
/// for any the load did not foresee; never again on the per-token path.
#[derive(Default)]
pub(crate) struct Pipelines {
    built: HashMap<Kernel, Pipeline>,
}

/// Bytes of one uniform parameter slot: WebGPU's minimum dynamic-offset alignment.
pub(crate) const PARAM_SLOT: u64 = 256;

impl Pipelines {
    pub fn get(&mut self, device: &wgpu::Device, kernel: Kernel) -> &Pipeline {
        self.built.entry(kernel).or_insert_with(|| build(device, kernel))
    }
}

fn build(device: &wgpu::Device, kernel: Kernel) -> Pipeline {
    let label = format!("{kernel:?}");
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(&label),
        source: wgpu::ShaderSource::Wgsl(kernel.source().into()),
    });
    let mut entries = vec![wgpu::BindGroupLayoutEntry {
        binding: 0,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: true,
            min_binding_size: None,
        },
        count: None,
    }];
    for (i, &read_only) in kernel.storage().iter().enumerate() {
        entries.push(wgpu::BindGroupLayoutEntry {
            binding: i as u32 + 1,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        });
    }
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(&label), entries: &entries });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(&label),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(&label),
        layout: Some(&pipeline_layout),
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    Pipeline { pipeline, layout }
}

use std::sync::{Arc, Mutex};

/// What can go wrong on the GPU, as the engine reports it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GpuError {
    #[error("no WebGPU adapter is available: {0}")]
    NoAdapter(String),
    #[error("the GPU refused to open a device: {0}")]
    RequestDevice(String),
    #[error("the GPU device was lost ({0}); load the model again")]
    DeviceLost(String),
    #[error("GPU error: {0}")]
    Validation(String),
    #[error("{what} needs {bytes} bytes in one GPU buffer binding, but this device allows {limit}")]
    TooLarge { what: String, bytes: u64, limit: u64 },
    #[error("reading back from the GPU failed: {0}")]
    Readback(String),
}

impl From<GpuError> for crate::model::ModelError {
    fn from(e: GpuError) -> Self {
        Self::Backend(Box::new(e))
    }
}

/// An open device and what it allows. Errors the device raises asynchronously (validation
/// failures, device loss) are kept and reported at the next readback instead of panicking.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    failure: Arc<Mutex<Option<GpuError>>>,
}

impl Gpu {
    /// Opens the best adapter on offer (any backend wgpu supports here, or `WGPU_BACKEND`).
    pub async fn new() -> Result<Self, GpuError> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                force_fallback_adapter: false,
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
        let offered = adapter.limits();
        // WebGPU's defaults, raised to what the adapter offers for the two limits that decide
        // how large a weight buffer may be.
        let limits = wgpu::Limits {
            max_storage_buffer_binding_size: offered.max_storage_buffer_binding_size,
            max_buffer_size: offered.max_buffer_size,
            ..wgpu::Limits::default()
        };
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("torchlight"),
                required_features: wgpu::Features::empty(),
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| GpuError::RequestDevice(e.to_string()))?;

        let failure = Arc::new(Mutex::new(None));
        let on_error = failure.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            on_error.lock().unwrap().get_or_insert(GpuError::Validation(e.to_string()));
        }));
        let on_lost = failure.clone();
        device.set_device_lost_callback(move |reason, message| {
            *on_lost.lock().unwrap() = Some(GpuError::DeviceLost(format!("{reason:?}: {message}")));
        });

        Ok(Self { device, queue, info: adapter.get_info(), limits, failure })
    }

    /// The first asynchronous error the device reported, if any.
    pub fn check(&self) -> Result<(), GpuError> {
        match self.failure.lock().unwrap().clone() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Waits until the GPU has finished everything queued so far (weight uploads included),
    /// then reports any error the device raised meanwhile.
    pub async fn idle(&self) -> Result<(), GpuError> {
        let (tx, rx) = futures_channel::oneshot::channel();
        self.queue.on_submitted_work_done(move || {
            let _ = tx.send(());
        });
        // Natively nothing runs the callback without a poll; on the web the browser does.
        #[cfg(not(target_arch = "wasm32"))]
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError::Readback(e.to_string()))?;
        // A lost device drops the callback unrun.
        rx.await.map_err(|_| GpuError::DeviceLost("the GPU stopped answering".into()))?;
        self.check()
    }

    /// Largest byte size of one storage binding (weights are split to respect it).
    pub fn binding_limit(&self) -> u64 {
        u64::from(self.limits.max_storage_buffer_binding_size).min(self.limits.max_buffer_size)
    }
}

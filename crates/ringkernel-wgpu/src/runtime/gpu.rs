//! The device side of a runtime that does not change while it runs: the wgpu instance (one per
//! process), the device and its layouts, pipelines (built outside the pump's lock), buffer
//! mapping with a deadline, and the errors wgpu reports outside any call.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringkernel_core::error::{Result, RingKernelError};
use ringkernel_core::layout::termination;

use super::abi::WgpuParams;
use super::lock;
use crate::compile;

/// Alignment of a dispatch's params in the params buffer (a storage binding's dynamic offset; the
/// largest `min_storage_buffer_offset_alignment` WebGPU allows).
pub(crate) const PARAMS_ALIGN: u64 = 256;
/// Bytes of one actor's params.
pub(crate) const PARAMS_BYTES: u64 = size_of::<WgpuParams>() as u64;

/// The CRC32C (Castagnoli, reflected) table the actor loop checksums with.
pub(crate) fn crc32c_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    for (i, entry) in table.iter_mut().enumerate() {
        let mut crc = i as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
        *entry = crc;
    }
    table
}

/// The process's wgpu instance for `backends`: created once and shared by every runtime, probe
/// and halo exchange (some drivers, NVIDIA's Vulkan among them, stop creating instances after a
/// few dozen in one process).
pub(crate) fn instance(backends: wgpu::Backends) -> wgpu::Instance {
    static INSTANCES: Mutex<Vec<(wgpu::Backends, wgpu::Instance)>> = Mutex::new(Vec::new());
    let mut instances = lock(&INSTANCES);
    if let Some((_, instance)) = instances.iter().find(|(b, _)| *b == backends) {
        return instance.clone();
    }
    let instance = compute_only_vulkan(backends).unwrap_or_else(|| {
        wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends,
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        })
    });
    instances.push((backends, instance.clone()));
    instance
}

/// On Linux, a Vulkan instance without the window-system surface extensions (Wayland, Xlib,
/// XCB), when Vulkan is the only backend asked for that Linux has.
///
/// A compute-only runtime never makes a surface; but when an instance enables
/// `VK_KHR_wayland_surface`, Mesa's implicit device-select layer connects to a Wayland display to
/// pick a default GPU, and libwayland prints `error: XDG_RUNTIME_DIR is invalid or not set in the
/// environment.` on a headless machine (a container, a CI runner) once per enumeration. Without
/// the extension the layer does not look for a display.
#[cfg(all(unix, not(target_vendor = "apple"), not(target_os = "android")))]
fn compute_only_vulkan(backends: wgpu::Backends) -> Option<wgpu::Instance> {
    use wgpu::hal::vulkan::{CreateInstanceCallbackArgs, Instance as VulkanInstance};
    if !backends.contains(wgpu::Backends::VULKAN) || backends.contains(wgpu::Backends::GL) {
        return None;
    }
    let flags = wgpu::InstanceFlags::default().with_env();
    let descriptor = wgpu::hal::InstanceDescriptor {
        name: "ringkernel",
        flags,
        memory_budget_thresholds: Default::default(),
        backend_options: wgpu::BackendOptions::from_env_or_default(),
        telemetry: None,
        display: None,
    };
    let callback = Box::new(|args: CreateInstanceCallbackArgs<'_, '_, '_>| {
        let window_systems = [c"VK_KHR_wayland_surface", c"VK_KHR_xlib_surface", c"VK_KHR_xcb_surface"];
        args.extensions.retain(|name| !window_systems.contains(name));
    });
    // SAFETY: the callback only removes window-system surface extensions. wgpu-hal 30 checks its
    // list of enabled extensions before it makes a surface of those kinds (and returns an error
    // when one is missing); nothing else of it uses them, and this instance is private to the
    // crate, which never makes surfaces. Every other extension and the create info are untouched.
    let hal = unsafe { VulkanInstance::init_with_callback(&descriptor, Some(callback)) };
    match hal {
        // SAFETY: a valid instance of the Vulkan backend, handed over whole.
        Ok(hal) => Some(unsafe { wgpu::Instance::from_hal::<wgpu::hal::api::Vulkan>(hal) }),
        Err(error) => {
            tracing::debug!("no compute-only Vulkan instance ({error}); wgpu's own instead");
            None
        }
    }
}

#[cfg(not(all(unix, not(target_vendor = "apple"), not(target_os = "android"))))]
fn compute_only_vulkan(_: wgpu::Backends) -> Option<wgpu::Instance> {
    None
}

/// An error wgpu reported outside any call (validation, out of memory, a lost device), kept
/// until the pump sees it.
#[derive(Default)]
pub(crate) struct ErrorSlot(Mutex<Option<String>>);

impl ErrorSlot {
    pub(crate) fn set(&self, reason: String) {
        let mut slot = lock(&self.0);
        if slot.is_none() {
            *slot = Some(reason);
        }
    }

    pub(crate) fn take(&self) -> Option<String> {
        lock(&self.0).take()
    }
}

/// What every round uses and nothing changes: the device, its queue, the layouts.
pub(crate) struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub bind_group_layout: wgpu::BindGroupLayout,
    pub pipeline_layout: wgpu::PipelineLayout,
    pub unified: bool,
    /// How long one round may take before the runtime gives up on the device.
    pub round_timeout: Duration,
    /// [`crc32c_table`] on the device.
    pub crc_table: wgpu::Buffer,
    /// Set when a wait ran past `round_timeout`: the GPU may still run that work, so nothing
    /// more is waited for (no inbox rescue).
    pub hung: std::sync::atomic::AtomicBool,
}

/// A kernel's compiled pipeline and its literal table (bind groups are made per arena buffer).
pub(crate) struct Pipeline {
    pub pipeline: wgpu::ComputePipeline,
    pub literals: wgpu::Buffer,
}

impl Gpu {
    /// A bind group of `pipeline` over `arena` and `params_bytes` of `params` (from the dynamic
    /// offset a dispatch gives).
    pub(crate) fn bind_group(
        &self,
        pipeline: &Pipeline,
        arena: &wgpu::Buffer,
        params: &wgpu::Buffer,
        params_bytes: u64,
    ) -> wgpu::BindGroup {
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("rk actor"),
            layout: &self.bind_group_layout,
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: arena.as_entire_binding() },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: params,
                        offset: 0,
                        size: std::num::NonZeroU64::new(params_bytes),
                    }),
                },
                wgpu::BindGroupEntry { binding: 2, resource: pipeline.literals.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 3, resource: self.crc_table.as_entire_binding() },
            ],
        })
    }

    /// Builds `module`'s pipeline and runs one dispatch of it on a control block that says
    /// "terminated" (it returns at once), so that drivers that compile lazily (lavapipe) compile
    /// now. Runs on the launching thread, without the pump's lock: running actors go on.
    pub(crate) fn build_pipeline(&self, module: &compile::Assembled) -> Result<Pipeline> {
        let name = module.kernel.as_str();
        let device = &self.device;
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(name),
            source: wgpu::ShaderSource::Wgsl(module.text.as_str().into()),
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(name),
            layout: Some(&self.pipeline_layout),
            module: &shader,
            entry_point: Some(compile::ACTOR_ENTRY),
            compilation_options: Default::default(),
            cache: None,
        });
        let literal_bytes: Vec<u8> = bytemuck::cast_slice(&module.literals).to_vec();
        let literals = self.buffer("rk literals", literal_bytes.len() as u64, wgpu::BufferUsages::STORAGE);
        self.queue.write_buffer(&literals, 0, &literal_bytes);
        let pipeline = Pipeline { pipeline, literals };
        // The warm-up's own arena (one stopped control block) and params, so that it touches
        // nothing a round uses.
        let mut stopped = [0u32; 64];
        stopped[core::mem::offset_of!(ringkernel_core::layout::ControlBlock, has_terminated) / 4] =
            termination::TERMINATED;
        let arena = self.buffer("rk warm-up arena", 256, wgpu::BufferUsages::STORAGE);
        self.queue.write_buffer(&arena, 0, bytemuck::cast_slice(&stopped));
        let params = self.buffer("rk warm-up params", PARAMS_BYTES, wgpu::BufferUsages::STORAGE);
        self.queue.write_buffer(&params, 0, bytemuck::bytes_of(&WgpuParams::default()));
        let bind_group = self.bind_group(&pipeline, &arena, &params, PARAMS_BYTES);
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("rk warm-up") });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
            pass.set_pipeline(&pipeline.pipeline);
            pass.set_bind_group(0, &bind_group, &[0]);
            pass.dispatch_workgroups(1, 1, 1);
        }
        let index = self.queue.submit([encoder.finish()]);
        if let Some(error) = pollster::block_on(scope.pop()) {
            return Err(RingKernelError::Compile {
                kernel: name.to_string(),
                log: format!("the driver refused the pipeline: {error}"),
            });
        }
        device.poll(wgpu::PollType::Wait { submission_index: Some(index), timeout: None }).map_err(|e| {
            RingKernelError::KernelFault {
                kernel: name.to_string(),
                reason: format!("the warm-up dispatch did not complete: {e}"),
            }
        })?;
        Ok(pipeline)
    }

    /// A buffer of `bytes` (rounded up to 4) with COPY_DST added to `usage`.
    pub(crate) fn buffer(&self, label: &str, bytes: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.next_multiple_of(4).max(4),
            usage: usage | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// Waits for submission `index`, at most `round_timeout` (no limit past what the clock can
    /// count).
    pub(crate) fn wait_for(&self, index: wgpu::SubmissionIndex) -> std::result::Result<(), String> {
        self.poll_until(Some(index), self.deadline(), "a submission", "")
    }

    /// When a wait that starts now gives up: `None` when `round_timeout` is longer than the clock
    /// can count (`Duration::MAX`: no limit).
    fn deadline(&self) -> Option<Instant> {
        Instant::now().checked_add(self.round_timeout)
    }

    /// Polls the device until submission `index` (or the last one) is done, or `deadline`
    /// passes: then the GPU counts as hung and the error says it did not finish `what`.
    fn poll_until(
        &self,
        index: Option<wgpu::SubmissionIndex>,
        deadline: Option<Instant>,
        what: &str,
        why: &str,
    ) -> std::result::Result<(), String> {
        loop {
            let left = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
            match self.device.poll(wgpu::PollType::Wait { submission_index: index.clone(), timeout: left }) {
                Ok(_) => return Ok(()),
                // Some backends end a wait early (wgpu's GL caps one at ~2 s): wait again.
                Err(wgpu::PollError::Timeout) if deadline.is_none_or(|deadline| Instant::now() < deadline) => {}
                Err(wgpu::PollError::Timeout) => {
                    return Err(self.hang(format!(
                        "the GPU did not finish {what} within {:?} (WgpuConfig::round_timeout){why}",
                        self.round_timeout
                    )));
                }
                Err(e) => return Err(format!("waiting for the GPU: {e}")),
            }
        }
    }

    /// Records that the GPU did not finish in time; returns `reason`.
    fn hang(&self, reason: String) -> String {
        self.hung.store(true, std::sync::atomic::Ordering::Release);
        reason
    }

    /// Maps `buffer` in `mode` and waits for wgpu's callback, at most `round_timeout` (polling
    /// the device until submission `index`, the last that uses the buffer, is done runs the
    /// callback; other work on a shared device is not waited for).
    pub(crate) fn map_wait(
        &self,
        buffer: &wgpu::Buffer,
        mode: wgpu::MapMode,
        index: Option<wgpu::SubmissionIndex>,
    ) -> std::result::Result<(), String> {
        let done: Arc<Mutex<Option<std::result::Result<(), wgpu::BufferAsyncError>>>> = Arc::default();
        let signal = done.clone();
        buffer.slice(..).map_async(mode, move |result| *lock(&signal) = Some(result));
        let result = self.map_done(&done, index);
        if result.is_err() {
            // A map still pending would make the next map of this buffer fail (a rescue reads
            // the arena after a failed round).
            buffer.unmap();
        }
        result
    }

    fn map_done(
        &self,
        done: &Mutex<Option<std::result::Result<(), wgpu::BufferAsyncError>>>,
        index: Option<wgpu::SubmissionIndex>,
    ) -> std::result::Result<(), String> {
        let deadline = self.deadline();
        loop {
            self.poll_until(index.clone(), deadline, "a round", ": a handler may loop without end")?;
            if let Some(result) = lock(done).take() {
                return result.map_err(|e| format!("mapping a buffer: {e}"));
            }
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return Err(self.hang(format!("the buffer map did not complete within {:?}", self.round_timeout)));
            }
        }
    }

    /// Maps `buffer` for reading, hands its bytes to `f`, unmaps.
    pub(crate) fn map_read(
        &self,
        buffer: &wgpu::Buffer,
        index: Option<wgpu::SubmissionIndex>,
        f: impl FnOnce(&[u8]),
    ) -> std::result::Result<(), String> {
        self.map_wait(buffer, wgpu::MapMode::Read, index)?;
        {
            let view = buffer.slice(..).get_mapped_range().map_err(|e| format!("reading a mapped buffer: {e}"))?;
            f(&view);
        }
        buffer.unmap();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_crc_table_gives_crc32c() {
        let table = super::crc32c_table();
        let crc =
            !b"123456789".iter().fold(!0u32, |crc, &b| table[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8));
        assert_eq!(crc, 0xE306_9283, "the CRC32C check value");
    }
}

//! The Vulkan floor of a "submit + readback" round trip, measured directly through `ash`.
//!
//! Same work per round as `bare_round_trips` in `bench_wgpu.rs`: write a 320-byte slot into a
//! host-visible staging buffer, copy it into a device-local `src` buffer (as wgpu's staged
//! `write_buffer` does), dispatch one workgroup of the same WGSL copy shader (compiled by naga),
//! copy `dst` into a host-visible readback buffer, submit, wait on a fence, check the bytes.
//!
//! It is a floor, not a replica: the command buffer is recorded once and resubmitted each round
//! (wgpu records a new one per round), both host buffers stay mapped, and the shader is emitted
//! without wgpu's bounds-check policies.

use std::time::Instant;

use ash::vk;

use crate::bench_wgpu::{BARE_WGSL, SLOT_BYTES};

const STAGING: usize = 0;
const SRC: usize = 1;
const DST: usize = 2;
const READBACK: usize = 3;

/// A Vulkan device set up to run the bare round trip; everything is destroyed on drop.
pub struct VulkanFloor {
    _entry: ash::Entry,
    instance: ash::Instance,
    device: ash::Device,
    name: String,
    queue: vk::Queue,
    buffers: [vk::Buffer; 4],
    memory: [vk::DeviceMemory; 4],
    staging: *mut u8,
    readback: *const u8,
    set_layout: vk::DescriptorSetLayout,
    pipeline_layout: vk::PipelineLayout,
    descriptor_pool: vk::DescriptorPool,
    shader: vk::ShaderModule,
    pipeline: vk::Pipeline,
    command_pool: vk::CommandPool,
    cmd: vk::CommandBuffer,
    fence: vk::Fence,
}

fn vkerr(call: &'static str) -> impl Fn(vk::Result) -> String {
    move |e| format!("{call} failed: {e:?}")
}

fn compile_wgsl() -> Result<Vec<u32>, String> {
    let module = naga::front::wgsl::parse_str(BARE_WGSL).map_err(|e| format!("naga WGSL parse: {e}"))?;
    let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), Default::default())
        .validate(&module)
        .map_err(|e| format!("naga validation: {e}"))?;
    let entry =
        naga::back::spv::PipelineOptions { shader_stage: naga::ShaderStage::Compute, entry_point: "main".into() };
    naga::back::spv::write_vec(&module, &info, &Default::default(), Some(&entry))
        .map_err(|e| format!("naga SPIR-V: {e}"))
}

/// Picks like wgpu's `HighPerformance`: discrete, integrated, other, virtual, CPU; ties keep
/// enumeration order; needs Vulkan 1.1. Returns the device, its first COMPUTE queue family, its name and a logical device.
fn open(instance: &ash::Instance) -> Result<(vk::PhysicalDevice, u32, String, ash::Device), String> {
    // SAFETY: `instance` is a live instance.
    let physicals = unsafe { instance.enumerate_physical_devices() }.map_err(vkerr("vkEnumeratePhysicalDevices"))?;
    let mut candidates = Vec::new();
    for pd in physicals {
        // SAFETY: `pd` was just enumerated from the live `instance`.
        let (props, families) = unsafe {
            (instance.get_physical_device_properties(pd), instance.get_physical_device_queue_family_properties(pd))
        };
        let rank = match props.device_type {
            vk::PhysicalDeviceType::DISCRETE_GPU => 1,
            vk::PhysicalDeviceType::INTEGRATED_GPU => 2,
            vk::PhysicalDeviceType::VIRTUAL_GPU => 4,
            vk::PhysicalDeviceType::CPU => 5,
            _ => 3,
        };
        let compute = families.iter().position(|f| f.queue_flags.contains(vk::QueueFlags::COMPUTE));
        // Vulkan 1.1 makes naga's SPV_KHR_storage_buffer_storage_class usable without an extension.
        if let (Some(family), true) = (compute, props.api_version >= vk::API_VERSION_1_1) {
            candidates.push((rank, pd, family as u32, props));
        }
    }
    candidates.sort_by_key(|c| c.0);
    let (_, pd, family, props) =
        candidates.into_iter().next().ok_or("no Vulkan 1.1 physical device with a COMPUTE queue family")?;
    let name = props.device_name_as_c_str().map_or_else(|_| "unknown".into(), |n| n.to_string_lossy().into_owned());
    let queues = [vk::DeviceQueueCreateInfo::default().queue_family_index(family).queue_priorities(&[1.0])];
    // SAFETY: `pd` belongs to `instance`; the create info and the arrays it points to outlive the call.
    let device =
        unsafe { instance.create_device(pd, &vk::DeviceCreateInfo::default().queue_create_infos(&queues), None) }
            .map_err(vkerr("vkCreateDevice"))?;
    Ok((pd, family, name, device))
}

/// Index of a memory type allowed by `bits` with `required` flags, preferring one that also has `preferred`.
fn memory_type(
    props: &vk::PhysicalDeviceMemoryProperties,
    bits: u32,
    required: vk::MemoryPropertyFlags,
    preferred: vk::MemoryPropertyFlags,
) -> Option<u32> {
    let types = &props.memory_types[..props.memory_type_count as usize];
    let find = |want: vk::MemoryPropertyFlags| {
        (0..types.len()).find(|&i| bits & (1 << i) != 0 && types[i].property_flags.contains(required | want))
    };
    find(preferred).or_else(|| find(vk::MemoryPropertyFlags::empty())).map(|i| i as u32)
}

impl VulkanFloor {
    /// Loads libvulkan, picks a device, and builds buffers, pipeline, command buffer and fence.
    pub fn new() -> Result<Self, String> {
        let spirv = compile_wgsl()?;
        // SAFETY: loading the system Vulkan loader runs its initialisers, which we trust; `entry`
        // is kept in `Self` so the library stays loaded while any handle made through it lives.
        let entry = unsafe { ash::Entry::load() }.map_err(|e| format!("no Vulkan loader (libvulkan): {e}"))?;
        let app = vk::ApplicationInfo::default().api_version(vk::API_VERSION_1_1);
        // SAFETY: the create info points to `app`, which outlives the call.
        let instance =
            unsafe { entry.create_instance(&vk::InstanceCreateInfo::default().application_info(&app), None) }
                .map_err(vkerr("vkCreateInstance"))?;
        let (physical, family, name, device) = open(&instance).inspect_err(|_| {
            // SAFETY: nothing was created from `instance`, and it is not used again.
            unsafe { instance.destroy_instance(None) }
        })?;
        // Every handle starts null, so `Drop` can clean up after a failure half-way through `init`.
        let mut floor = Self {
            _entry: entry,
            instance,
            device,
            name,
            queue: vk::Queue::null(),
            buffers: Default::default(),
            memory: Default::default(),
            staging: std::ptr::null_mut(),
            readback: std::ptr::null(),
            set_layout: Default::default(),
            pipeline_layout: Default::default(),
            descriptor_pool: Default::default(),
            shader: Default::default(),
            pipeline: Default::default(),
            command_pool: Default::default(),
            cmd: Default::default(),
            fence: Default::default(),
        };
        floor.init(physical, family, &spirv)?;
        Ok(floor)
    }

    fn init(&mut self, physical: vk::PhysicalDevice, family: u32, spirv: &[u32]) -> Result<(), String> {
        use vk::{AccessFlags as A, BufferUsageFlags as U, MemoryPropertyFlags as M, PipelineStageFlags as S};
        let d = &self.device;
        // SAFETY: `physical` belongs to the live instance; `d` was created with one queue of `family`.
        let mem_props = unsafe {
            self.queue = d.get_device_queue(family, 0);
            self.instance.get_physical_device_memory_properties(physical)
        };
        let host = M::HOST_VISIBLE | M::HOST_COHERENT;
        let specs = [
            (U::TRANSFER_SRC, host, M::empty()),
            (U::STORAGE_BUFFER | U::TRANSFER_DST, M::empty(), M::DEVICE_LOCAL),
            (U::STORAGE_BUFFER | U::TRANSFER_SRC, M::empty(), M::DEVICE_LOCAL),
            (U::TRANSFER_DST, host, M::HOST_CACHED),
        ];
        for (i, (usage, required, preferred)) in specs.into_iter().enumerate() {
            let info = vk::BufferCreateInfo::default().size(SLOT_BYTES).usage(usage);
            // SAFETY: `d` is live and the create info outlives the call.
            self.buffers[i] = unsafe { d.create_buffer(&info, None) }.map_err(vkerr("vkCreateBuffer"))?;
            // SAFETY: the buffer was just created on `d`.
            let req = unsafe { d.get_buffer_memory_requirements(self.buffers[i]) };
            let index = memory_type(&mem_props, req.memory_type_bits, required, preferred)
                .ok_or_else(|| format!("no Vulkan memory type with {required:?} for buffer {i}"))?;
            let alloc = vk::MemoryAllocateInfo::default().allocation_size(req.size).memory_type_index(index);
            // SAFETY: `d` is live; the memory, of a type and size the buffer accepts, is bound once at offset 0.
            unsafe {
                self.memory[i] = d.allocate_memory(&alloc, None).map_err(vkerr("vkAllocateMemory"))?;
                d.bind_buffer_memory(self.buffers[i], self.memory[i], 0).map_err(vkerr("vkBindBufferMemory"))?;
            }
        }
        // SAFETY: both allocations are HOST_VISIBLE, unmapped, and at least SLOT_BYTES long; they
        // stay mapped until `Drop` frees them (which unmaps them).
        unsafe {
            let map = |i: usize| d.map_memory(self.memory[i], 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty());
            self.staging = map(STAGING).map_err(vkerr("vkMapMemory"))?.cast();
            self.readback = map(READBACK).map_err(vkerr("vkMapMemory"))?.cast();
        }
        let storage = |b: u32| {
            vk::DescriptorSetLayoutBinding::default()
                .binding(b)
                .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                .descriptor_count(1)
                .stage_flags(vk::ShaderStageFlags::COMPUTE)
        };
        let bindings = [storage(0), storage(1)];
        let sizes = [vk::DescriptorPoolSize { ty: vk::DescriptorType::STORAGE_BUFFER, descriptor_count: 2 }];
        let infos = [SRC, DST]
            .map(|i| [vk::DescriptorBufferInfo { buffer: self.buffers[i], offset: 0, range: vk::WHOLE_SIZE }]);
        let region = [vk::BufferCopy { src_offset: 0, dst_offset: 0, size: SLOT_BYTES }];
        // SAFETY: every handle used here was created on `d` above and is live; each create info and
        // the arrays it points to outlive its call; `cmd` is freshly allocated and recorded once.
        unsafe {
            self.set_layout = d
                .create_descriptor_set_layout(&vk::DescriptorSetLayoutCreateInfo::default().bindings(&bindings), None)
                .map_err(vkerr("vkCreateDescriptorSetLayout"))?;
            let layouts = [self.set_layout];
            self.pipeline_layout = d
                .create_pipeline_layout(&vk::PipelineLayoutCreateInfo::default().set_layouts(&layouts), None)
                .map_err(vkerr("vkCreatePipelineLayout"))?;
            self.descriptor_pool = d
                .create_descriptor_pool(&vk::DescriptorPoolCreateInfo::default().max_sets(1).pool_sizes(&sizes), None)
                .map_err(vkerr("vkCreateDescriptorPool"))?;
            let alloc =
                vk::DescriptorSetAllocateInfo::default().descriptor_pool(self.descriptor_pool).set_layouts(&layouts);
            let set = d.allocate_descriptor_sets(&alloc).map_err(vkerr("vkAllocateDescriptorSets"))?[0];
            let write = |b: usize| {
                vk::WriteDescriptorSet::default()
                    .dst_set(set)
                    .dst_binding(b as u32)
                    .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                    .buffer_info(&infos[b])
            };
            d.update_descriptor_sets(&[write(0), write(1)], &[]);
            self.shader = d
                .create_shader_module(&vk::ShaderModuleCreateInfo::default().code(spirv), None)
                .map_err(vkerr("vkCreateShaderModule"))?;
            let stage = vk::PipelineShaderStageCreateInfo::default()
                .stage(vk::ShaderStageFlags::COMPUTE)
                .module(self.shader)
                .name(c"main");
            let info = vk::ComputePipelineCreateInfo::default().stage(stage).layout(self.pipeline_layout);
            self.pipeline = d
                .create_compute_pipelines(vk::PipelineCache::null(), &[info], None)
                .map_err(|(_, e)| vkerr("vkCreateComputePipelines")(e))?[0];
            self.command_pool = d
                .create_command_pool(&vk::CommandPoolCreateInfo::default().queue_family_index(family), None)
                .map_err(vkerr("vkCreateCommandPool"))?;
            let alloc =
                vk::CommandBufferAllocateInfo::default().command_pool(self.command_pool).command_buffer_count(1);
            let cmd = d.allocate_command_buffers(&alloc).map_err(vkerr("vkAllocateCommandBuffers"))?[0];
            self.cmd = cmd;
            self.fence = d.create_fence(&vk::FenceCreateInfo::default(), None).map_err(vkerr("vkCreateFence"))?;
            let barrier = |from: (S, A), to: (S, A)| {
                let memory = [vk::MemoryBarrier::default().src_access_mask(from.1).dst_access_mask(to.1)];
                d.cmd_pipeline_barrier(cmd, from.0, to.0, vk::DependencyFlags::empty(), &memory, &[], &[]);
            };
            // Host writes to the coherent staging buffer are made visible by vkQueueSubmit itself.
            d.begin_command_buffer(cmd, &vk::CommandBufferBeginInfo::default())
                .map_err(vkerr("vkBeginCommandBuffer"))?;
            d.cmd_copy_buffer(cmd, self.buffers[STAGING], self.buffers[SRC], &region);
            barrier((S::TRANSFER, A::TRANSFER_WRITE), (S::COMPUTE_SHADER, A::SHADER_READ));
            d.cmd_bind_pipeline(cmd, vk::PipelineBindPoint::COMPUTE, self.pipeline);
            d.cmd_bind_descriptor_sets(cmd, vk::PipelineBindPoint::COMPUTE, self.pipeline_layout, 0, &[set], &[]);
            d.cmd_dispatch(cmd, 1, 1, 1);
            barrier((S::COMPUTE_SHADER, A::SHADER_WRITE), (S::TRANSFER, A::TRANSFER_READ));
            d.cmd_copy_buffer(cmd, self.buffers[DST], self.buffers[READBACK], &region);
            barrier((S::TRANSFER, A::TRANSFER_WRITE), (S::HOST, A::HOST_READ));
            d.end_command_buffer(cmd).map_err(vkerr("vkEndCommandBuffer"))?;
        }
        Ok(())
    }

    /// Name of the Vulkan device used.
    pub fn device_name(&self) -> &str {
        &self.name
    }

    /// Runs `rounds` round trips (write slot, submit the pre-recorded command buffer, wait on the
    /// fence, read back); returns ns per round, or `Err` if a round reads back other bytes.
    pub fn round_trips(&mut self, rounds: usize) -> Result<Vec<u64>, String> {
        let mut times = Vec::with_capacity(rounds);
        let mut slot = [0u8; SLOT_BYTES as usize];
        let cmds = [self.cmd];
        let submit = [vk::SubmitInfo::default().command_buffers(&cmds)];
        for i in 0..rounds as u64 {
            slot[..8].copy_from_slice(&i.to_le_bytes());
            let mut back = [0u8; 8];
            let start = Instant::now();
            // SAFETY: `staging` and `readback` are live HOST_COHERENT mappings of at least SLOT_BYTES.
            // No submission is pending when staging is written (the last fence was waited on), and
            // readback is read after the fence signals, its copy made host-visible by the
            // TRANSFER->HOST barrier. `cmd` is executable and not pending; the fence is unsignalled.
            unsafe {
                std::ptr::copy_nonoverlapping(slot.as_ptr(), self.staging, slot.len());
                self.device.queue_submit(self.queue, &submit, self.fence).map_err(vkerr("vkQueueSubmit"))?;
                self.device.wait_for_fences(&[self.fence], true, u64::MAX).map_err(vkerr("vkWaitForFences"))?;
                self.device.reset_fences(&[self.fence]).map_err(vkerr("vkResetFences"))?;
                std::ptr::copy_nonoverlapping(self.readback, back.as_mut_ptr(), back.len());
            }
            times.push(start.elapsed().as_nanos() as u64);
            if back[..] != slot[..8] {
                return Err(format!("round {i} read back {back:?}, expected {:?}", &slot[..8]));
            }
        }
        Ok(times)
    }
}

impl Drop for VulkanFloor {
    fn drop(&mut self) {
        let d = &self.device;
        // SAFETY: after vkDeviceWaitIdle nothing is in use by the device. Each handle was created on
        // `d` (or is VK_NULL_HANDLE, which every destroy/free call ignores) and is destroyed once,
        // children first; freeing mapped memory unmaps it; the device goes before the instance.
        unsafe {
            let _ = d.device_wait_idle();
            d.destroy_fence(self.fence, None);
            d.destroy_command_pool(self.command_pool, None);
            d.destroy_pipeline(self.pipeline, None);
            d.destroy_shader_module(self.shader, None);
            d.destroy_descriptor_pool(self.descriptor_pool, None);
            d.destroy_pipeline_layout(self.pipeline_layout, None);
            d.destroy_descriptor_set_layout(self.set_layout, None);
            for (&buffer, &memory) in self.buffers.iter().zip(&self.memory) {
                d.destroy_buffer(buffer, None);
                d.free_memory(memory, None);
            }
            d.destroy_device(None);
            self.instance.destroy_instance(None);
        }
    }
}

//! [`WgpuHaloExchange`]: the halo exchange in WGSL (`src/wgsl/halo.wgsl`), tiles as workgroups,
//! faces as K2K messages between them.

use std::time::Instant;

use ringkernel_core::codegen::{Language, generate};
use ringkernel_core::error::{Result, RingKernelError};
use ringkernel_core::halo::{HaloExchange, HaloExchangeStats, HaloGrid, OFFSETS, check_cells};

/// The halo exchange shader.
pub const HALO_WGSL: &str = include_str!("wgsl/halo.wgsl");

/// The halo module as naga and the driver see it: the generated layout, then the shader.
pub fn halo_module() -> String {
    format!("{}\n{HALO_WGSL}", generate(Language::Wgsl))
}

/// A tiled grid on one wgpu device.
pub struct WgpuHaloExchange {
    grid: HaloGrid,
    device: wgpu::Device,
    queue: wgpu::Queue,
    params: wgpu::Buffer,
    cells: [wgpu::Buffer; 2],
    status: wgpu::Buffer,
    bind_groups: [wgpu::BindGroup; 2],
    pipelines: [wgpu::ComputePipeline; 3],
    /// Which of `cells` holds the current values.
    current: usize,
    step: u32,
    stats: HaloExchangeStats,
    adapter: String,
}

impl std::fmt::Debug for WgpuHaloExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WgpuHaloExchange").field("grid", &self.grid).field("adapter", &self.adapter).finish()
    }
}

impl WgpuHaloExchange {
    /// A zeroed grid on the best adapter of `backends`.
    ///
    /// # Errors
    /// [`RingKernelError::BackendUnavailable`] without an adapter; [`RingKernelError::InvalidConfig`]
    /// when the grid's buffers exceed the adapter's largest storage binding or its tiles its
    /// largest dispatch.
    pub async fn new(grid: HaloGrid, backends: wgpu::Backends) -> Result<Self> {
        let adapter = crate::runtime::fastest_adapter(backends).await?;
        let limits = adapter.limits();
        let cell_bytes = grid.padded_len() as u64 * 4 * u64::from(grid.tile_count());
        let inbox_bytes = u64::from(grid.inbox_stride()) * u64::from(grid.tile_count());
        let max_binding = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size);
        if cell_bytes.max(inbox_bytes) > max_binding || grid.tile_count() > limits.max_compute_workgroups_per_dimension
        {
            return Err(RingKernelError::InvalidConfig {
                field: "grid",
                reason: format!(
                    "{} tiles of {cell_bytes} cell bytes and {inbox_bytes} inbox bytes exceed the adapter's limits \
                     ({max_binding}-byte bindings, {} workgroups per dispatch)",
                    grid.tile_count(),
                    limits.max_compute_workgroups_per_dimension
                ),
            });
        }
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("ringkernel halo"),
                required_limits: limits,
                ..Default::default()
            })
            .await
            .map_err(|e| RingKernelError::BackendUnavailable(format!("the adapter refused a device: {e}")))?;
        let storage = |label: &str, size: u64, extra: wgpu::BufferUsages| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: size.max(16).next_multiple_of(16),
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_DST
                    | wgpu::BufferUsages::COPY_SRC
                    | extra,
                mapped_at_creation: false,
            })
        };
        // Geometry: direction offsets, the neighbourhood's directions, the stencil's points.
        let mut geom: Vec<i32> = OFFSETS.iter().flatten().copied().collect();
        let directions = grid.neighbourhood().directions();
        geom.extend((0..26).map(|i| directions.get(i).map_or(-1, |&d| d as i32)));
        geom.extend(grid.stencil_points().iter().flatten());
        let geom_buffer = storage("halo geometry", geom.len() as u64 * 4, wgpu::BufferUsages::empty());
        queue.write_buffer(&geom_buffer, 0, &geom.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>());
        let tables: Vec<u8> =
            (0..grid.tile_count()).flat_map(|t| bytemuck::bytes_of(&grid.routing_table(t)).to_vec()).collect();
        let routes = storage("halo routes", tables.len() as u64, wgpu::BufferUsages::empty());
        queue.write_buffer(&routes, 0, &tables);
        let inboxes = storage("halo inboxes", inbox_bytes, wgpu::BufferUsages::empty());
        let cells = [
            storage("halo cells a", cell_bytes, wgpu::BufferUsages::empty()),
            storage("halo cells b", cell_bytes, wgpu::BufferUsages::empty()),
        ];
        let status = storage("halo status", 16, wgpu::BufferUsages::empty());
        let params = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("halo params"),
            size: 80,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("ringkernel halo"),
            source: wgpu::ShaderSource::Wgsl(halo_module().into()),
        });
        let entry = |binding: u32, ty: wgpu::BufferBindingType| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer { ty, has_dynamic_offset: false, min_binding_size: None },
            count: None,
        };
        let read = wgpu::BufferBindingType::Storage { read_only: true };
        let write = wgpu::BufferBindingType::Storage { read_only: false };
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("halo"),
            entries: &[
                entry(0, wgpu::BufferBindingType::Uniform),
                entry(1, read),
                entry(2, read),
                entry(3, write),
                entry(4, write),
                entry(5, write),
                entry(6, write),
            ],
        });
        let bind_group = |a: &wgpu::Buffer, b: &wgpu::Buffer| {
            device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("halo"),
                layout: &layout,
                entries: &[
                    wgpu::BindGroupEntry { binding: 0, resource: params.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 1, resource: geom_buffer.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 2, resource: routes.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 3, resource: inboxes.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 4, resource: a.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 5, resource: b.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 6, resource: status.as_entire_binding() },
                ],
            })
        };
        let bind_groups = [bind_group(&cells[0], &cells[1]), bind_group(&cells[1], &cells[0])];
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("halo"),
            bind_group_layouts: &[Some(&layout)],
            ..Default::default()
        });
        let pipeline = |entry: &str| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        let pipelines = [pipeline("halo_send"), pipeline("halo_apply"), pipeline("halo_compute")];
        if let Some(error) = scope.pop().await {
            return Err(RingKernelError::Compile { kernel: "halo exchange".into(), log: error.to_string() });
        }
        Ok(Self {
            grid,
            device,
            queue,
            params,
            cells,
            status,
            bind_groups,
            pipelines,
            current: 0,
            step: 0,
            stats: HaloExchangeStats::default(),
            adapter: adapter.get_info().name,
        })
    }

    fn write_params(&self) {
        let g = &self.grid;
        let (t, p) = (g.tile(), g.padded());
        let words: [u32; 20] = [
            t[0],
            t[1],
            t[2],
            g.tile_count(),
            p[0],
            p[1],
            p[2],
            g.padded_len() as u32,
            g.pad(0),
            g.pad(1),
            g.pad(2),
            g.width(),
            g.neighbourhood().directions().len() as u32,
            g.slot_bytes(),
            g.inbox_stride(),
            self.step,
            g.stencil_points().len() as u32,
            g.stencil_weight().to_bits(),
            g.neighbourhood().code(),
            g.stencil().code(),
        ];
        self.queue.write_buffer(&self.params, 0, &words.iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<u8>>());
    }

    fn read(&self, buffer: &wgpu::Buffer) -> Result<Vec<u8>> {
        crate::runtime::read_buffer(&self.device, &self.queue, buffer)
    }

    /// The adapter's name.
    pub fn adapter(&self) -> &str {
        &self.adapter
    }
}

impl HaloExchange for WgpuHaloExchange {
    fn grid(&self) -> &HaloGrid {
        &self.grid
    }

    fn upload(&mut self, cells: &[f32]) -> Result<()> {
        check_cells(&self.grid, cells)?;
        let tiles: Vec<u8> = self.grid.load_tiles(cells).iter().flat_map(|v| v.to_le_bytes()).collect();
        // Both levels: a wave starts at rest (its previous level equals the current one).
        for buffer in &self.cells {
            self.queue.write_buffer(buffer, 0, &tiles);
        }
        self.current = 0;
        Ok(())
    }

    fn step(&mut self, steps: u32) -> Result<()> {
        let start = Instant::now();
        let (messages, bytes) = self.grid.step_traffic();
        let tiles = self.grid.tile_count();
        for _ in 0..steps {
            self.write_params();
            let mut encoder =
                self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("halo step") });
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
                pass.set_bind_group(0, &self.bind_groups[self.current], &[]);
                for pipeline in &self.pipelines {
                    pass.set_pipeline(pipeline);
                    pass.dispatch_workgroups(tiles, 1, 1);
                }
            }
            self.queue.submit([encoder.finish()]);
            self.current ^= 1;
            self.step = self.step.wrapping_add(1);
            self.stats.steps += 1;
            self.stats.messages += messages;
            self.stats.bytes += bytes;
        }
        let status = self.read(&self.status)?;
        let mismatches = u32::from_le_bytes(status[0..4].try_into().expect("4 bytes"));
        self.stats.elapsed_ns += start.elapsed().as_nanos() as u64;
        if u64::from(mismatches) != self.stats.mismatches {
            let tile = u32::from_le_bytes(status[4..8].try_into().expect("4 bytes")).wrapping_sub(1);
            self.stats.mismatches = u64::from(mismatches);
            return Err(RingKernelError::KernelFault {
                kernel: "halo exchange".into(),
                reason: format!(
                    "{mismatches} inbox slots held a face other than expected (tile {tile} and others); none was applied"
                ),
            });
        }
        Ok(())
    }

    fn download(&mut self) -> Result<Vec<f32>> {
        let bytes = self.read(&self.cells[self.current])?;
        let values: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4"))).collect();
        Ok(self.grid.store_tiles(&values))
    }

    fn stats(&self) -> HaloExchangeStats {
        self.stats
    }
}

//! [`CpuHaloExchange`]: the halo exchange on CPU threads, with the same inbox layout, routes and
//! stencil order as the GPU backends (everything comes from `ringkernel_core::halo`).

use std::time::Instant;

use ringkernel_core::error::Result;
use ringkernel_core::halo::{HaloExchange, HaloExchangeStats, HaloGrid, check_cells};

/// Tiles on worker threads. A step: every tile writes its faces into its neighbours' inbox slots
/// (tiles in parallel, each writing only the slots its routes name), then every tile applies
/// what arrived and computes its interior (tiles in parallel).
#[derive(Debug)]
pub struct CpuHaloExchange {
    grid: HaloGrid,
    tiles: Vec<Vec<f32>>,
    /// Each tile's other time level: the previous one for the wave, scratch otherwise; swapped
    /// with the tile each step.
    others: Vec<Vec<f32>>,
    inboxes: Vec<u8>,
    threads: usize,
    step: u32,
    stats: HaloExchangeStats,
}

impl CpuHaloExchange {
    /// A zeroed grid, run on as many threads as the machine has cores.
    pub fn new(grid: HaloGrid) -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            tiles: (0..grid.tile_count()).map(|_| vec![0.0; grid.padded_len()]).collect(),
            others: (0..grid.tile_count()).map(|_| vec![0.0; grid.padded_len()]).collect(),
            inboxes: vec![0; grid.inbox_stride() as usize * grid.tile_count() as usize],
            grid,
            threads,
            step: 0,
            stats: HaloExchangeStats::default(),
        }
    }

    fn one_step(&mut self) -> Result<()> {
        let grid = self.grid;
        let stride = grid.inbox_stride() as usize;
        let step = self.step;
        // Send: each tile writes into other tiles' inboxes, so the sends run on one scratch
        // buffer per worker and are merged slot by slot (slots are disjoint: one per route).
        let per = self.tiles.len().div_ceil(self.threads).max(1);
        let partials: Vec<Vec<u8>> = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .tiles
                .chunks(per)
                .enumerate()
                .map(|(chunk, tiles)| {
                    scope.spawn(move || {
                        let mut inboxes = vec![0u8; stride * grid.tile_count() as usize];
                        for (i, tile) in tiles.iter().enumerate() {
                            grid.send_faces((chunk * per + i) as u32, tile, step, &mut inboxes);
                        }
                        inboxes
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("send worker")).collect()
        });
        for (chunk, partial) in partials.iter().enumerate() {
            for t in chunk * per..((chunk + 1) * per).min(self.tiles.len()) {
                let table = grid.routing_table(t as u32);
                for route in &table.routes[..table.route_count as usize] {
                    let at = route.inbox_offset as usize;
                    let len = grid.slot_bytes() as usize;
                    self.inboxes[at..at + len].copy_from_slice(&partial[at..at + len]);
                }
            }
        }
        let inboxes = &self.inboxes;
        let results: Vec<Result<()>> = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .tiles
                .chunks_mut(per)
                .zip(self.others.chunks_mut(per))
                .enumerate()
                .map(|(chunk, (tiles, others))| {
                    scope.spawn(move || -> Result<()> {
                        for (i, (tile, other)) in tiles.iter_mut().zip(others).enumerate() {
                            grid.apply_faces((chunk * per + i) as u32, tile, step, inboxes)?;
                            grid.compute_tile(tile, other);
                            // The new level becomes the tile; its ghosts are refilled next step
                            // (those at the grid's edge stay zero).
                            std::mem::swap(tile, other);
                        }
                        Ok(())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("compute worker")).collect()
        });
        results.into_iter().collect::<Result<Vec<()>>>()?;
        self.step = self.step.wrapping_add(1);
        Ok(())
    }
}

impl HaloExchange for CpuHaloExchange {
    fn grid(&self) -> &HaloGrid {
        &self.grid
    }

    fn upload(&mut self, cells: &[f32]) -> Result<()> {
        check_cells(&self.grid, cells)?;
        self.tiles = (0..self.grid.tile_count()).map(|t| self.grid.load_tile(t, cells)).collect();
        // A wave starts at rest: the previous level equals the current one.
        self.others = self.tiles.clone();
        Ok(())
    }

    fn step(&mut self, steps: u32) -> Result<()> {
        let start = Instant::now();
        let (messages, bytes) = self.grid.step_traffic();
        for _ in 0..steps {
            self.one_step()?;
            self.stats.steps += 1;
            self.stats.messages += messages;
            self.stats.bytes += bytes;
        }
        self.stats.elapsed_ns += start.elapsed().as_nanos() as u64;
        Ok(())
    }

    fn download(&mut self) -> Result<Vec<f32>> {
        let mut cells = vec![0.0; self.grid.cell_count()];
        for (t, tile) in self.tiles.iter().enumerate() {
            self.grid.store_tile(t as u32, tile, &mut cells);
        }
        Ok(cells)
    }

    fn stats(&self) -> HaloExchangeStats {
        self.stats
    }
}

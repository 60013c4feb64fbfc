//! Halo exchange geometry: tiles of a 2D or 3D grid, their ghost cells, the directions their
//! faces travel in, the inbox every tile receives them in, and the CPU reference stencil that
//! every backend's tiled run must equal bit for bit.
//!
//! A step: every tile writes each boundary face its neighbour needs into that neighbour's inbox
//! (one slot per direction, indexed by the direction the data *arrives from*), then every tile
//! copies what arrived into the ghost cells on that side, then computes its interior from the
//! padded tile. The stencil sums its points in one fixed order and multiplies once by
//! [`HaloGrid::stencil_weight`], so every backend performs the same float operations in the same
//! order (no fused multiply-add can form); the wave adds one update with two time levels
//! ([`Stencil`]). [`reference_steps`] and [`reference_at`] are the oracles.
//!
//! Directions: the six faces keep the numbers of [`crate::layout::direction`]; edges and corners
//! follow, each next to its opposite, so that `opposite(d) == d ^ 1` for all 26.
//!
//! ```
//! use ringkernel_core::halo::{HaloGrid, Neighbourhood, reference_step};
//!
//! let grid = HaloGrid::new([8, 8, 1], [4, 4, 1], 1, Neighbourhood::Moore2D).unwrap();
//! assert_eq!(grid.tile_count(), 4);
//! let cells: Vec<f32> = (0..64).map(|i| i as f32).collect();
//! let next = reference_step(&grid, &cells);
//! assert_eq!(next.len(), 64);
//! ```

use crate::error::{Result, RingKernelError};
use crate::layout::{HaloMessageHeader, K2KRouteEntry, K2KRoutingTable};

/// Offsets `[dx, dy, dz]` of the 26 directions, indexed by direction number. x grows east, y
/// grows south, z grows up; entries `2k` and `2k + 1` are opposite.
pub const OFFSETS: [[i32; 3]; 26] = [
    [0, -1, 0],   // 0 NORTH
    [0, 1, 0],    // 1 SOUTH
    [-1, 0, 0],   // 2 WEST
    [1, 0, 0],    // 3 EAST
    [0, 0, 1],    // 4 UP
    [0, 0, -1],   // 5 DOWN
    [-1, -1, 0],  // 6 NORTH-WEST
    [1, 1, 0],    // 7 SOUTH-EAST
    [1, -1, 0],   // 8 NORTH-EAST
    [-1, 1, 0],   // 9 SOUTH-WEST
    [0, -1, 1],   // 10 UP-NORTH
    [0, 1, -1],   // 11 DOWN-SOUTH
    [0, 1, 1],    // 12 UP-SOUTH
    [0, -1, -1],  // 13 DOWN-NORTH
    [-1, 0, 1],   // 14 UP-WEST
    [1, 0, -1],   // 15 DOWN-EAST
    [1, 0, 1],    // 16 UP-EAST
    [-1, 0, -1],  // 17 DOWN-WEST
    [-1, -1, 1],  // 18 UP-NORTH-WEST
    [1, 1, -1],   // 19 DOWN-SOUTH-EAST
    [1, -1, 1],   // 20 UP-NORTH-EAST
    [-1, 1, -1],  // 21 DOWN-SOUTH-WEST
    [-1, 1, 1],   // 22 UP-SOUTH-WEST
    [1, -1, -1],  // 23 DOWN-NORTH-EAST
    [1, 1, 1],    // 24 UP-SOUTH-EAST
    [-1, -1, -1], // 25 DOWN-NORTH-WEST
];

/// The direction opposite to `direction` (valid for all 26).
pub const fn opposite(direction: u32) -> u32 {
    direction ^ 1
}

/// Which neighbours a tile exchanges faces with, and so which stencil it can compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Neighbourhood {
    /// 2D, 4 neighbours (faces); the stencil is the cross of radius `width`.
    VonNeumann2D,
    /// 2D, 8 neighbours (faces and corners); the stencil is the square of radius `width`.
    Moore2D,
    /// 3D, 6 neighbours (faces); the stencil is the 3D cross of radius `width`.
    VonNeumann3D,
    /// 3D, 26 neighbours; the stencil is the cube of radius `width`.
    Moore3D,
}

impl Neighbourhood {
    /// The directions exchanged, in inbox-slot order.
    pub fn directions(self) -> &'static [u32] {
        const ALL: [u32; 26] = {
            let mut all = [0u32; 26];
            let mut i = 0;
            while i < 26 {
                all[i] = i as u32;
                i += 1;
            }
            all
        };
        match self {
            Neighbourhood::VonNeumann2D => &ALL[..4],
            Neighbourhood::Moore2D => &[0, 1, 2, 3, 6, 7, 8, 9],
            Neighbourhood::VonNeumann3D => &ALL[..6],
            Neighbourhood::Moore3D => &ALL,
        }
    }

    /// Whether the grid is three-dimensional.
    pub fn is_3d(self) -> bool {
        matches!(self, Neighbourhood::VonNeumann3D | Neighbourhood::Moore3D)
    }

    /// Whether diagonal neighbours take part (and the stencil is a box, not a cross).
    pub fn is_moore(self) -> bool {
        matches!(self, Neighbourhood::Moore2D | Neighbourhood::Moore3D)
    }

    /// A stable number for device code: 0 to 3 in declaration order.
    pub fn code(self) -> u32 {
        match self {
            Neighbourhood::VonNeumann2D => 0,
            Neighbourhood::Moore2D => 1,
            Neighbourhood::VonNeumann3D => 2,
            Neighbourhood::Moore3D => 3,
        }
    }
}

/// What a step computes for each cell from its stencil's points (the neighbourhood's points
/// within the halo width, see [`HaloGrid::stencil_points`]). Every backend performs the same
/// float operations in the same order; see [`HaloGrid::compute_tile`].
#[derive(Debug, Clone, Copy)]
pub enum Stencil {
    /// The mean of the cell and its points: `sum(points) * (1 / points)`, the centre included.
    /// Any neighbourhood and width. The default.
    Mean,
    /// A Jacobi sweep for Laplace's equation: the mean of the points without the centre,
    /// `sum(neighbours) * (1 / neighbours)` — with the von Neumann neighbourhood of width 1, the
    /// 2D 5-point (4 neighbours) and 3D 7-point (6 neighbours) Jacobi iteration. Any neighbourhood
    /// and width.
    Jacobi,
    /// The wave equation `u_tt = c² ∇²u`, leapfrog in time (two time levels):
    /// `next = ((u + u) − previous) + c2 · (sum(neighbours) − n·u)`, `n` the number of neighbours,
    /// `c2` the squared Courant number `(c·dt/dx)²`. The von Neumann neighbourhood of width 1
    /// only; stable for `c2 ≤ 1/2` in 2D and `1/3` in 3D. A grid starts at rest (`previous` equals
    /// the uploaded cells). The CPU and CUDA backends equal the reference bit for bit; a WGSL
    /// driver may fuse its multiply-adds, so wgpu agrees within float rounding.
    Wave {
        /// The squared Courant number.
        c2: f32,
    },
}

impl PartialEq for Stencil {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Stencil::Wave { c2: a }, Stencil::Wave { c2: b }) => a.to_bits() == b.to_bits(),
            _ => self.code() == other.code(),
        }
    }
}

impl Eq for Stencil {}

impl Stencil {
    /// A stable number for device code: 0 mean, 1 Jacobi, 2 wave.
    pub fn code(self) -> u32 {
        match self {
            Stencil::Mean => 0,
            Stencil::Jacobi => 1,
            Stencil::Wave { .. } => 2,
        }
    }

    /// Its name on the command line: `mean`, `jacobi`, `wave`.
    pub fn name(self) -> &'static str {
        match self {
            Stencil::Mean => "mean",
            Stencil::Jacobi => "jacobi",
            Stencil::Wave { .. } => "wave",
        }
    }

    /// Whether a step reads the previous time level as well as the current one.
    pub fn two_levels(self) -> bool {
        matches!(self, Stencil::Wave { .. })
    }
}

/// A grid cut into equal tiles, each padded with ghost cells of `width` on every side it
/// exchanges (z is not padded in 2D), and the stencil its steps compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HaloGrid {
    grid: [u32; 3],
    tile: [u32; 3],
    width: u32,
    neighbourhood: Neighbourhood,
    stencil: Stencil,
}

/// Bytes per grid element (`f32`).
pub const ELEMENT_BYTES: u32 = 4;

fn invalid(field: &'static str, reason: String) -> RingKernelError {
    RingKernelError::InvalidConfig { field, reason }
}

impl HaloGrid {
    /// A grid of `grid` cells (x, y, z; z = 1 in 2D) cut into tiles of `tile` cells, exchanging
    /// halos of `width` cells with `neighbourhood`.
    ///
    /// # Errors
    /// [`RingKernelError::InvalidConfig`] naming the field when a size is zero, a tile does not
    /// divide the grid, the halo is wider than a tile (a face would need cells beyond the
    /// neighbour), a 2D grid has depth, or the sizes overflow 32-bit indices.
    pub fn new(grid: [u32; 3], tile: [u32; 3], width: u32, neighbourhood: Neighbourhood) -> Result<Self> {
        if width == 0 {
            return Err(invalid("halo_width", "the halo width must be at least 1".into()));
        }
        if !neighbourhood.is_3d() && (grid[2] != 1 || tile[2] != 1) {
            return Err(invalid("grid", format!("a 2D grid has depth 1 (grid z = {}, tile z = {})", grid[2], tile[2])));
        }
        let axes = if neighbourhood.is_3d() { 3 } else { 2 };
        for axis in 0..3 {
            if grid[axis] == 0 || tile[axis] == 0 {
                return Err(invalid("grid", format!("sizes must be positive: grid {grid:?}, tile {tile:?}")));
            }
            if !grid[axis].is_multiple_of(tile[axis]) {
                return Err(invalid(
                    "tile",
                    format!("tile {tile:?} does not divide grid {grid:?} along axis {}", ["x", "y", "z"][axis]),
                ));
            }
            if axis < axes && width > tile[axis] {
                return Err(invalid(
                    "halo_width",
                    format!(
                        "a halo of {width} is wider than the tile's {} cells along {}",
                        tile[axis],
                        ["x", "y", "z"][axis]
                    ),
                ));
            }
        }
        let total = grid.iter().try_fold(1u64, |acc, &n| acc.checked_mul(u64::from(n)));
        let padded: u64 =
            (0..3).map(|a| u64::from(tile[a]) + if a < axes { 2 * u64::from(width) } else { 0 }).product();
        if total.is_none_or(|t| t > u64::from(u32::MAX / 4)) || padded > u64::from(u32::MAX / 4) {
            return Err(invalid("grid", format!("grid {grid:?} is too large for 32-bit element indices")));
        }
        Ok(Self { grid, tile, width, neighbourhood, stencil: Stencil::Mean })
    }

    /// The same grid computing `stencil` (a new grid computes [`Stencil::Mean`]).
    ///
    /// # Errors
    /// [`RingKernelError::InvalidConfig`] when the wave equation is asked of a neighbourhood other
    /// than von Neumann, a width other than 1, or with a Courant number that is not finite,
    /// positive and within the stability limit (`c2 ≤ 1/2` in 2D, `1/3` in 3D).
    pub fn with_stencil(mut self, stencil: Stencil) -> Result<Self> {
        if let Stencil::Wave { c2 } = stencil {
            if self.neighbourhood.is_moore() || self.width != 1 {
                return Err(invalid(
                    "stencil",
                    format!(
                        "the wave stencil needs the von Neumann neighbourhood of width 1, not {:?} of width {}",
                        self.neighbourhood, self.width
                    ),
                ));
            }
            let limit = if self.neighbourhood.is_3d() { 1.0 / 3.0 } else { 0.5 };
            if !(c2.is_finite() && c2 > 0.0 && c2 <= limit) {
                return Err(invalid(
                    "courant",
                    format!("the squared Courant number {c2} must be in (0, {limit}] for a stable wave"),
                ));
            }
        }
        self.stencil = stencil;
        Ok(self)
    }

    /// The stencil its steps compute.
    pub fn stencil(&self) -> Stencil {
        self.stencil
    }

    /// Cells of the whole grid per axis.
    pub fn grid(&self) -> [u32; 3] {
        self.grid
    }
    /// Interior cells of a tile per axis.
    pub fn tile(&self) -> [u32; 3] {
        self.tile
    }
    /// Halo width in cells.
    pub fn width(&self) -> u32 {
        self.width
    }
    /// The neighbourhood.
    pub fn neighbourhood(&self) -> Neighbourhood {
        self.neighbourhood
    }
    /// Tiles per axis.
    pub fn tiles(&self) -> [u32; 3] {
        [self.grid[0] / self.tile[0], self.grid[1] / self.tile[1], self.grid[2] / self.tile[2]]
    }
    /// Number of tiles.
    pub fn tile_count(&self) -> u32 {
        self.tiles().iter().product()
    }
    /// Cells in the grid.
    pub fn cell_count(&self) -> usize {
        self.grid.iter().map(|&n| n as usize).product()
    }
    /// The ghost width along `axis` (0 for z in 2D).
    pub fn pad(&self, axis: usize) -> u32 {
        if axis < 2 || self.neighbourhood.is_3d() { self.width } else { 0 }
    }
    /// A padded tile's extent per axis.
    pub fn padded(&self) -> [u32; 3] {
        [0, 1, 2].map(|a| self.tile[a] + 2 * self.pad(a))
    }
    /// Elements of a padded tile.
    pub fn padded_len(&self) -> usize {
        self.padded().iter().map(|&n| n as usize).product()
    }
    /// Tile id of tile coordinates.
    pub fn tile_id(&self, t: [u32; 3]) -> u32 {
        let n = self.tiles();
        (t[2] * n[1] + t[1]) * n[0] + t[0]
    }
    /// Tile coordinates of a tile id.
    pub fn tile_coords(&self, id: u32) -> [u32; 3] {
        let n = self.tiles();
        [id % n[0], (id / n[0]) % n[1], id / (n[0] * n[1])]
    }
    /// The neighbour of `tile` in `direction`, if the grid has one there.
    pub fn neighbour(&self, tile: u32, direction: u32) -> Option<u32> {
        let t = self.tile_coords(tile);
        let n = self.tiles();
        let offset = OFFSETS[direction as usize];
        let mut out = [0u32; 3];
        for axis in 0..3 {
            let v = i64::from(t[axis]) + i64::from(offset[axis]);
            if v < 0 || v >= i64::from(n[axis]) {
                return None;
            }
            out[axis] = v as u32;
        }
        Some(self.tile_id(out))
    }

    /// The extent of the face a tile sends in `direction` (the same as the ghost region it fills
    /// at the receiver): the halo width along every axis the direction moves on, the tile along
    /// the others.
    pub fn face_extent(&self, direction: u32) -> [u32; 3] {
        let offset = OFFSETS[direction as usize];
        [0, 1, 2].map(|a| if offset[a] != 0 { self.width } else { self.tile[a] })
    }

    /// First interior coordinate (in padded-tile coordinates) of the face sent in `direction`.
    pub fn send_origin(&self, direction: u32) -> [u32; 3] {
        let offset = OFFSETS[direction as usize];
        [0, 1, 2].map(|a| {
            self.pad(a)
                + match offset[a] {
                    1 => self.tile[a] - self.width,
                    _ => 0,
                }
        })
    }

    /// First coordinate (padded-tile coordinates) of the ghost region filled by data that arrives
    /// from `direction` (the side the sender sits on).
    pub fn ghost_origin(&self, arrives_from: u32) -> [u32; 3] {
        let offset = OFFSETS[arrives_from as usize];
        [0, 1, 2].map(|a| match offset[a] {
            -1 => 0,
            1 => self.pad(a) + self.tile[a],
            _ => self.pad(a),
        })
    }

    /// Elements of the largest face.
    pub fn max_face_elements(&self) -> u32 {
        self.neighbourhood.directions().iter().map(|&d| self.face_extent(d).iter().product::<u32>()).max().unwrap_or(0)
    }

    /// Bytes of one inbox slot: the 32-byte [`HaloMessageHeader`] and the largest face, rounded
    /// up to 16.
    pub fn slot_bytes(&self) -> u32 {
        (size_of::<HaloMessageHeader>() as u32 + self.max_face_elements() * ELEMENT_BYTES).next_multiple_of(16)
    }

    /// Bytes from one tile's inbox to the next: one slot per direction, rounded up to 64. The one
    /// stride host code, senders and receivers use (it is the routing table's `inbox_stride`).
    pub fn inbox_stride(&self) -> u32 {
        (self.slot_bytes() * self.neighbourhood.directions().len() as u32).next_multiple_of(64)
    }

    /// Which inbox slot takes data arriving from `direction`.
    pub fn slot_of(&self, arrives_from: u32) -> Option<u32> {
        self.neighbourhood.directions().iter().position(|&d| d == arrives_from).map(|i| i as u32)
    }

    /// The routing table of `tile`: one route per direction that has a neighbour; each route's
    /// `inbox_offset` is the byte offset of the slot the face lands in at the neighbour.
    pub fn routing_table(&self, tile: u32) -> K2KRoutingTable {
        let n = self.tiles();
        let mut table: K2KRoutingTable = bytemuck::Zeroable::zeroed();
        table.self_id = tile;
        table.grid_dim_x = n[0];
        table.grid_dim_y = n[1];
        table.grid_dim_z = n[2];
        table.inbox_stride = self.inbox_stride();
        for &direction in self.neighbourhood.directions() {
            if let Some(dest) = self.neighbour(tile, direction) {
                let slot = self.slot_of(opposite(direction)).expect("neighbourhoods are symmetric");
                let mut route: K2KRouteEntry = bytemuck::Zeroable::zeroed();
                route.dest_threadgroup = dest;
                route.inbox_offset = dest * self.inbox_stride() + slot * self.slot_bytes();
                route.is_active = 1;
                route.hops = 1;
                route.bandwidth_hint = self.face_extent(direction).iter().product();
                route.priority = 1;
                route.direction = direction;
                table.routes[table.route_count as usize] = route;
                table.route_count += 1;
            }
        }
        table
    }

    /// The stencil's points, in the order every backend sums them (z, then y, then x, ascending):
    /// the neighbourhood's cells within the halo width, the centre included for
    /// [`Stencil::Mean`] only.
    pub fn stencil_points(&self) -> Vec<[i32; 3]> {
        let centre = matches!(self.stencil, Stencil::Mean);
        let r = self.width as i32;
        let rz = if self.neighbourhood.is_3d() { r } else { 0 };
        let mut points = Vec::new();
        for dz in -rz..=rz {
            for dy in -r..=r {
                for dx in -r..=r {
                    let nonzero = [dx, dy, dz].iter().filter(|&&v| v != 0).count();
                    if (self.neighbourhood.is_moore() || nonzero <= 1) && (centre || nonzero > 0) {
                        points.push([dx, dy, dz]);
                    }
                }
            }
        }
        points
    }

    /// The factor the stencil's sum is multiplied by: `1 / points` in `f32`, or `c2` for the
    /// wave.
    pub fn stencil_weight(&self) -> f32 {
        match self.stencil {
            Stencil::Wave { c2 } => c2,
            _ => 1.0 / self.stencil_points().len() as f32,
        }
    }

    /// Index of a padded-tile coordinate.
    pub fn padded_index(&self, c: [u32; 3]) -> usize {
        let p = self.padded();
        (c[2] as usize * p[1] as usize + c[1] as usize) * p[0] as usize + c[0] as usize
    }

    /// Copies the tile's cells out of the whole grid into a zeroed padded tile.
    pub fn load_tile(&self, tile: u32, cells: &[f32]) -> Vec<f32> {
        let mut padded = vec![0.0; self.padded_len()];
        let t = self.tile_coords(tile);
        for z in 0..self.tile[2] {
            for y in 0..self.tile[1] {
                for x in 0..self.tile[0] {
                    let g = [t[0] * self.tile[0] + x, t[1] * self.tile[1] + y, t[2] * self.tile[2] + z];
                    let gi =
                        (g[2] as usize * self.grid[1] as usize + g[1] as usize) * self.grid[0] as usize + g[0] as usize;
                    padded[self.padded_index([x + self.pad(0), y + self.pad(1), z + self.pad(2)])] = cells[gi];
                }
            }
        }
        padded
    }

    /// Every tile of the whole grid, padded, one after the other (tile-major): what a device's
    /// tile buffer holds.
    pub fn load_tiles(&self, cells: &[f32]) -> Vec<f32> {
        (0..self.tile_count()).flat_map(|t| self.load_tile(t, cells)).collect()
    }

    /// The whole grid from every tile's padded values one after the other (the inverse of
    /// [`HaloGrid::load_tiles`] on the interiors).
    ///
    /// # Panics
    /// If `tiles` holds fewer than `tile_count × padded_len` values.
    pub fn store_tiles(&self, tiles: &[f32]) -> Vec<f32> {
        let per = self.padded_len();
        let mut cells = vec![0.0; self.cell_count()];
        for t in 0..self.tile_count() {
            let start = t as usize * per;
            self.store_tile(t, &tiles[start..start + per], &mut cells);
        }
        cells
    }

    /// Writes a padded tile's interior back into the whole grid.
    pub fn store_tile(&self, tile: u32, padded: &[f32], cells: &mut [f32]) {
        let t = self.tile_coords(tile);
        for z in 0..self.tile[2] {
            for y in 0..self.tile[1] {
                for x in 0..self.tile[0] {
                    let g = [t[0] * self.tile[0] + x, t[1] * self.tile[1] + y, t[2] * self.tile[2] + z];
                    let gi =
                        (g[2] as usize * self.grid[1] as usize + g[1] as usize) * self.grid[0] as usize + g[0] as usize;
                    cells[gi] = padded[self.padded_index([x + self.pad(0), y + self.pad(1), z + self.pad(2)])];
                }
            }
        }
    }

    /// Writes the faces `tile` sends into its neighbours' inboxes (`inboxes` holds every tile's
    /// inbox at [`HaloGrid::inbox_stride`]), tagged with `step`.
    pub fn send_faces(&self, tile: u32, padded: &[f32], step: u32, inboxes: &mut [u8]) {
        let table = self.routing_table(tile);
        for route in &table.routes[..table.route_count as usize] {
            let extent = self.face_extent(route.direction);
            let origin = self.send_origin(route.direction);
            let header = HaloMessageHeader {
                source: tile,
                direction: opposite(route.direction),
                width: extent[0],
                height: extent[1],
                depth: extent[2],
                element_size: ELEMENT_BYTES,
                sequence: step,
                flags: 0,
            };
            let at = route.inbox_offset as usize;
            inboxes[at..at + 32].copy_from_slice(bytemuck::bytes_of(&header));
            let mut k = at + 32;
            for z in 0..extent[2] {
                for y in 0..extent[1] {
                    for x in 0..extent[0] {
                        let v = padded[self.padded_index([origin[0] + x, origin[1] + y, origin[2] + z])];
                        inboxes[k..k + 4].copy_from_slice(&v.to_le_bytes());
                        k += 4;
                    }
                }
            }
        }
    }

    /// Copies what arrived in `tile`'s inbox for `step` into its ghost cells.
    ///
    /// # Errors
    /// [`RingKernelError::KernelFault`] when a slot that should hold a face of this step does not
    /// (wrong sequence, direction, source or extent): a face is never applied to the wrong side.
    pub fn apply_faces(&self, tile: u32, padded: &mut [f32], step: u32, inboxes: &[u8]) -> Result<()> {
        for &from in self.neighbourhood.directions() {
            let Some(source) = self.neighbour(tile, from) else { continue };
            let slot = self.slot_of(from).expect("own direction");
            let at = (tile * self.inbox_stride() + slot * self.slot_bytes()) as usize;
            let header: HaloMessageHeader = bytemuck::pod_read_unaligned(&inboxes[at..at + 32]);
            let extent = self.face_extent(from);
            let expected = HaloMessageHeader {
                source,
                direction: from,
                width: extent[0],
                height: extent[1],
                depth: extent[2],
                element_size: ELEMENT_BYTES,
                sequence: step,
                flags: 0,
            };
            if header != expected {
                return Err(RingKernelError::KernelFault {
                    kernel: format!("halo tile {tile}"),
                    reason: format!("inbox slot {slot} holds {header:?}, expected {expected:?}"),
                });
            }
            let origin = self.ghost_origin(from);
            let mut k = at + 32;
            for z in 0..extent[2] {
                for y in 0..extent[1] {
                    for x in 0..extent[0] {
                        let v = f32::from_le_bytes(inboxes[k..k + 4].try_into().expect("4 bytes"));
                        padded[self.padded_index([origin[0] + x, origin[1] + y, origin[2] + z])] = v;
                        k += 4;
                    }
                }
            }
        }
        Ok(())
    }

    /// Computes the interior of a padded tile (ghosts filled) into `out` (same shape; its ghosts
    /// are left as they are): for each cell, the sum of its stencil points in
    /// [`HaloGrid::stencil_points`] order, then [`apply_stencil`] — which for the wave reads the
    /// cell's previous value from `out` before overwriting it.
    pub fn compute_tile(&self, padded: &[f32], out: &mut [f32]) {
        let points = self.stencil_points();
        let weight = self.stencil_weight();
        for z in 0..self.tile[2] {
            for y in 0..self.tile[1] {
                for x in 0..self.tile[0] {
                    let c = [x + self.pad(0), y + self.pad(1), z + self.pad(2)];
                    let mut sum = 0.0f32;
                    for p in &points {
                        let q = [0, 1, 2].map(|a| (c[a] as i32 + p[a]) as u32);
                        sum += padded[self.padded_index(q)];
                    }
                    let at = self.padded_index(c);
                    out[at] = apply_stencil(self.stencil, sum, weight, points.len(), padded[at], out[at]);
                }
            }
        }
    }
}

/// The last operations of a cell's update, shared by every Rust caller: `sum * weight`, or for
/// the wave `((u + u) − previous) + weight · (sum − points·u)`, in that order.
#[inline]
pub fn apply_stencil(stencil: Stencil, sum: f32, weight: f32, points: usize, centre: f32, previous: f32) -> f32 {
    match stencil {
        Stencil::Wave { .. } => {
            let laplacian = sum - points as f32 * centre;
            ((centre + centre) - previous) + weight * laplacian
        }
        _ => sum * weight,
    }
}

/// One step of the stencil over the whole grid, with zeros outside it: the oracle every tiled run
/// must equal (bit for bit for [`Stencil::Mean`] and [`Stencil::Jacobi`]). A wave starts at rest:
/// the previous level is `cells`.
///
/// # Panics
/// If `cells` is not [`HaloGrid::cell_count`] long.
pub fn reference_step(grid: &HaloGrid, cells: &[f32]) -> Vec<f32> {
    reference_steps(grid, cells, 1)
}

/// `steps` steps of the stencil over the whole grid from `cells` (a wave from rest), with zeros
/// outside it.
///
/// # Panics
/// If `cells` is not [`HaloGrid::cell_count`] long.
pub fn reference_steps(grid: &HaloGrid, cells: &[f32], steps: u32) -> Vec<f32> {
    assert_eq!(cells.len(), grid.cell_count(), "one value per grid cell");
    let mut current = cells.to_vec();
    let mut previous = cells.to_vec();
    for _ in 0..steps {
        let next = advance_box(grid, grid.grid(), &current, &previous);
        previous = std::mem::replace(&mut current, next);
    }
    current
}

/// The reference's value after `steps` steps at each of `points` (x, y, z cell coordinates),
/// computed on the window of cells that can influence it (`steps × width` around it, clipped to
/// the grid): for grids too large to step whole on the CPU. Equal, bit for bit, to
/// [`reference_steps`] at those cells.
///
/// # Panics
/// If `cells` is not [`HaloGrid::cell_count`] long or a point lies outside the grid.
pub fn reference_at(grid: &HaloGrid, cells: &[f32], steps: u32, points: &[[u32; 3]]) -> Vec<f32> {
    assert_eq!(cells.len(), grid.cell_count(), "one value per grid cell");
    let g = grid.grid();
    let reach = u64::from(steps) * u64::from(grid.width());
    points
        .iter()
        .map(|p| {
            assert!((0..3).all(|a| p[a] < g[a]), "point {p:?} lies outside the grid {g:?}");
            let lo = [0, 1, 2].map(|a| if grid.pad(a) == 0 { 0 } else { u64::from(p[a]).saturating_sub(reach) as u32 });
            let hi = [0, 1, 2].map(|a| {
                if grid.pad(a) == 0 { g[a] } else { (u64::from(p[a]) + reach + 1).min(u64::from(g[a])) as u32 }
            });
            let extent = [0, 1, 2].map(|a| hi[a] - lo[a]);
            let mut window = Vec::with_capacity(extent.iter().map(|&n| n as usize).product());
            for z in lo[2]..hi[2] {
                for y in lo[1]..hi[1] {
                    let row = (z as usize * g[1] as usize + y as usize) * g[0] as usize;
                    window.extend_from_slice(&cells[row + lo[0] as usize..row + hi[0] as usize]);
                }
            }
            // Outside the window but inside the grid the box sees zeros too: wrong values travel
            // `width` cells inwards per step and reach the point only after `steps` steps.
            let mut current = window.clone();
            let mut previous = window;
            for _ in 0..steps {
                let next = advance_box(grid, extent, &current, &previous);
                previous = std::mem::replace(&mut current, next);
            }
            let q = [0, 1, 2].map(|a| (p[a] - lo[a]) as usize);
            current[(q[2] * extent[1] as usize + q[1]) * extent[0] as usize + q[0]]
        })
        .collect()
}

/// One step of `grid`'s stencil over a box of `extent` cells with zeros outside it.
fn advance_box(grid: &HaloGrid, extent: [u32; 3], current: &[f32], previous: &[f32]) -> Vec<f32> {
    let points = grid.stencil_points();
    let weight = grid.stencil_weight();
    let g = extent;
    let index = |x: u32, y: u32, z: u32| ((z as usize * g[1] as usize) + y as usize) * g[0] as usize + x as usize;
    let at = |x: i64, y: i64, z: i64| -> f32 {
        if x < 0 || y < 0 || z < 0 || x >= i64::from(g[0]) || y >= i64::from(g[1]) || z >= i64::from(g[2]) {
            0.0
        } else {
            current[index(x as u32, y as u32, z as u32)]
        }
    };
    let mut out = vec![0.0; current.len()];
    for z in 0..g[2] {
        for y in 0..g[1] {
            for x in 0..g[0] {
                let mut sum = 0.0f32;
                for p in &points {
                    sum += at(
                        i64::from(x) + i64::from(p[0]),
                        i64::from(y) + i64::from(p[1]),
                        i64::from(z) + i64::from(p[2]),
                    );
                }
                let i = index(x, y, z);
                out[i] = apply_stencil(grid.stencil(), sum, weight, points.len(), current[i], previous[i]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opposites_pair_up() {
        for d in 0..26u32 {
            let (a, b) = (OFFSETS[d as usize], OFFSETS[opposite(d) as usize]);
            assert_eq!([a[0] + b[0], a[1] + b[1], a[2] + b[2]], [0, 0, 0], "direction {d}");
        }
        for (name, d) in crate::layout::direction::NAMED {
            let o = OFFSETS[*d as usize];
            assert_eq!(o.iter().filter(|v| **v != 0).count(), 1, "{name} is a face");
        }
    }

    #[test]
    fn neighbourhoods_are_symmetric() {
        for n in
            [Neighbourhood::VonNeumann2D, Neighbourhood::Moore2D, Neighbourhood::VonNeumann3D, Neighbourhood::Moore3D]
        {
            for &d in n.directions() {
                assert!(n.directions().contains(&opposite(d)), "{n:?} {d}");
                if !n.is_3d() {
                    assert_eq!(OFFSETS[d as usize][2], 0);
                }
            }
        }
    }

    #[test]
    fn bad_geometry_is_refused_by_name() {
        let err = HaloGrid::new([10, 8, 1], [4, 4, 1], 1, Neighbourhood::VonNeumann2D).unwrap_err();
        assert!(err.to_string().contains("does not divide"), "{err}");
        let err = HaloGrid::new([8, 8, 1], [4, 4, 1], 5, Neighbourhood::Moore2D).unwrap_err();
        assert!(err.to_string().contains("wider"), "{err}");
        assert!(HaloGrid::new([8, 8, 2], [4, 4, 2], 1, Neighbourhood::Moore2D).is_err());
        assert!(HaloGrid::new([8, 8, 1], [4, 4, 1], 0, Neighbourhood::Moore2D).is_err());
    }

    fn random(n: usize, mut seed: u32) -> Vec<f32> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                (seed % 2000) as f32 / 7.0 - 100.0
            })
            .collect()
    }

    #[test]
    // Safe code only, and minutes under miri: the other halo tests cover it there.
    #[cfg_attr(miri, ignore)]
    fn tiled_steps_equal_the_reference() {
        let cases = [
            ([12, 8, 1], [4, 4, 1], 1, Neighbourhood::VonNeumann2D, Stencil::Mean),
            ([12, 8, 1], [6, 4, 1], 2, Neighbourhood::Moore2D, Stencil::Mean),
            ([6, 6, 6], [3, 3, 3], 1, Neighbourhood::VonNeumann3D, Stencil::Mean),
            ([8, 4, 4], [4, 2, 2], 2, Neighbourhood::Moore3D, Stencil::Mean),
            ([12, 8, 1], [4, 4, 1], 1, Neighbourhood::VonNeumann2D, Stencil::Jacobi),
            ([6, 6, 6], [3, 3, 3], 1, Neighbourhood::VonNeumann3D, Stencil::Jacobi),
            ([12, 8, 1], [6, 4, 1], 2, Neighbourhood::Moore2D, Stencil::Jacobi),
            ([12, 8, 1], [4, 4, 1], 1, Neighbourhood::VonNeumann2D, Stencil::Wave { c2: 0.25 }),
            ([6, 6, 6], [3, 3, 3], 1, Neighbourhood::VonNeumann3D, Stencil::Wave { c2: 0.3 }),
        ];
        for (g, t, w, n, stencil) in cases {
            let grid = HaloGrid::new(g, t, w, n).unwrap().with_stencil(stencil).unwrap();
            let start = random(grid.cell_count(), 0x1234_5678);
            let mut cells = start.clone();
            let mut tiles: Vec<Vec<f32>> = (0..grid.tile_count()).map(|t| grid.load_tile(t, &cells)).collect();
            // The other time level (the previous one for the wave), swapped with each step.
            let mut others = tiles.clone();
            for step in 0..4 {
                let mut inboxes = vec![0u8; (grid.inbox_stride() * grid.tile_count()) as usize];
                for (t, tile) in tiles.iter().enumerate() {
                    grid.send_faces(t as u32, tile, step, &mut inboxes);
                }
                for (t, (tile, other)) in tiles.iter_mut().zip(&mut others).enumerate() {
                    grid.apply_faces(t as u32, tile, step, &inboxes).unwrap();
                    grid.compute_tile(tile, other);
                    std::mem::swap(tile, other);
                    grid.store_tile(t as u32, tile, &mut cells);
                }
                let expected = reference_steps(&grid, &start, step + 1);
                assert!(
                    cells.iter().zip(&expected).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{n:?} {stencil:?} width {w} step {step}"
                );
            }
        }
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn sampled_reference_equals_the_whole_one() {
        for (g, w, n, stencil) in [
            ([40, 30, 1], 1, Neighbourhood::VonNeumann2D, Stencil::Jacobi),
            ([40, 30, 1], 2, Neighbourhood::Moore2D, Stencil::Mean),
            ([14, 12, 10], 1, Neighbourhood::VonNeumann3D, Stencil::Wave { c2: 0.2 }),
        ] {
            let grid = HaloGrid::new(g, g, w, n).unwrap().with_stencil(stencil).unwrap();
            let cells = random(grid.cell_count(), 99);
            let steps = 5;
            let whole = reference_steps(&grid, &cells, steps);
            let points = [[0, 0, 0], [g[0] - 1, g[1] - 1, g[2] - 1], [g[0] / 2, g[1] / 2, g[2] / 2], [1, g[1] - 2, 0]];
            let sampled = reference_at(&grid, &cells, steps, &points);
            for (p, v) in points.iter().zip(&sampled) {
                let i = (p[2] as usize * g[1] as usize + p[1] as usize) * g[0] as usize + p[0] as usize;
                assert_eq!(v.to_bits(), whole[i].to_bits(), "{stencil:?} at {p:?}");
            }
        }
    }

    #[test]
    fn tiles_load_and_store_as_a_whole() {
        let grid = HaloGrid::new([12, 8, 4], [4, 4, 2], 1, Neighbourhood::VonNeumann3D).unwrap();
        let cells = random(grid.cell_count(), 5);
        let tiles = grid.load_tiles(&cells);
        assert_eq!(tiles.len(), grid.padded_len() * grid.tile_count() as usize);
        assert_eq!(tiles[..grid.padded_len()], grid.load_tile(0, &cells)[..]);
        assert_eq!(grid.store_tiles(&tiles), cells);
    }

    #[test]
    fn tiles_are_split_within_the_count() {
        assert_eq!(split_tiles([16384, 16384, 1], 1, false, 264), [1024, 1024, 1]);
        assert_eq!(split_tiles([512, 512, 512], 1, true, 264), [128, 64, 64]);
        assert_eq!(split_tiles([64, 64, 64], 1, true, 256), [16, 8, 8]);
        // Primes and small grids: never below the halo width, never more tiles than allowed.
        assert_eq!(split_tiles([7, 5, 1], 1, false, 100), [1, 1, 1]);
        assert_eq!(split_tiles([7, 5, 1], 2, false, 100), [7, 5, 1]);
        assert_eq!(split_tiles([12, 12, 1], 1, false, 1), [12, 12, 1]);
        for (g, w, d, m) in [([96, 40, 1], 1, false, 7), ([30, 18, 12], 2, true, 50), ([256, 256, 1], 1, false, 33)] {
            let t = split_tiles(g, w, d, m);
            let count: u32 = (0..3).map(|a| g[a] / t[a]).product();
            assert!(count <= m && (0..3).all(|a| g[a] % t[a] == 0), "{g:?} {t:?}");
            assert!(
                HaloGrid::new(g, t, w, if d { Neighbourhood::VonNeumann3D } else { Neighbourhood::VonNeumann2D })
                    .is_ok()
            );
        }
    }

    #[test]
    fn stencils_are_checked() {
        let grid = HaloGrid::new([8, 8, 1], [4, 4, 1], 1, Neighbourhood::VonNeumann2D).unwrap();
        assert_eq!(grid.stencil_points().len(), 5);
        let jacobi = grid.with_stencil(Stencil::Jacobi).unwrap();
        assert_eq!(jacobi.stencil_points(), vec![[0, -1, 0], [-1, 0, 0], [1, 0, 0], [0, 1, 0]]);
        assert_eq!(jacobi.stencil_weight(), 0.25);
        let cube = HaloGrid::new([8, 8, 8], [4, 4, 4], 1, Neighbourhood::VonNeumann3D).unwrap();
        assert_eq!(cube.with_stencil(Stencil::Jacobi).unwrap().stencil_points().len(), 6);
        assert_eq!(cube.stencil_points().len(), 7);
        let err = cube.with_stencil(Stencil::Wave { c2: 0.5 }).unwrap_err();
        assert!(err.to_string().contains("Courant"), "{err}");
        for bad in [0.0, -0.1, f32::NAN, f32::INFINITY] {
            assert!(grid.with_stencil(Stencil::Wave { c2: bad }).is_err(), "{bad}");
        }
        let moore = HaloGrid::new([8, 8, 1], [4, 4, 1], 1, Neighbourhood::Moore2D).unwrap();
        let err = moore.with_stencil(Stencil::Wave { c2: 0.1 }).unwrap_err();
        assert!(err.to_string().contains("von Neumann"), "{err}");
        // A wave at rest with a flat field stays flat; one step of a spike spreads it.
        let wave = grid.with_stencil(Stencil::Wave { c2: 0.25 }).unwrap();
        let mut spike = vec![0.0f32; 64];
        spike[3 * 8 + 3] = 1.0;
        let next = reference_step(&wave, &spike);
        assert_eq!(next[3 * 8 + 3], 0.0);
        assert_eq!(next[3 * 8 + 4], 0.25);
    }
}

/// What a halo exchange has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HaloExchangeStats {
    /// Steps run.
    pub steps: u64,
    /// Faces sent (one K2K message per route per step).
    pub messages: u64,
    /// Face bytes sent (headers included).
    pub bytes: u64,
    /// Slots that did not hold the face they should have (never applied): 0 unless a backend is
    /// broken.
    pub mismatches: u64,
    /// Wall time of all steps, nanoseconds.
    pub elapsed_ns: u64,
}

impl HaloGrid {
    /// Faces one step sends (routes over all tiles) and their bytes, headers included.
    pub fn step_traffic(&self) -> (u64, u64) {
        let mut messages = 0u64;
        let mut bytes = 0u64;
        for tile in 0..self.tile_count() {
            let table = self.routing_table(tile);
            for route in &table.routes[..table.route_count as usize] {
                messages += 1;
                bytes += 32 + u64::from(self.face_extent(route.direction).iter().product::<u32>() * ELEMENT_BYTES);
            }
        }
        (messages, bytes)
    }
}

/// A tiled stencil run with halo exchange, as every backend offers it: load the grid, run steps,
/// read the grid back. Each step equals [`reference_step`] bit for bit.
pub trait HaloExchange {
    /// The geometry.
    fn grid(&self) -> &HaloGrid;
    /// Loads the whole grid (one value per cell, x fastest).
    ///
    /// # Errors
    /// [`RingKernelError::InvalidConfig`] when `cells` is not one value per cell; a backend's
    /// error when it cannot take the data.
    fn upload(&mut self, cells: &[f32]) -> Result<()>;
    /// Runs `steps` steps.
    ///
    /// # Errors
    /// [`RingKernelError::KernelFault`] when a face arrived wrong (never applied); a backend's
    /// error.
    fn step(&mut self, steps: u32) -> Result<()>;
    /// Reads the whole grid back.
    ///
    /// # Errors
    /// A backend's error.
    fn download(&mut self) -> Result<Vec<f32>>;
    /// What it has done so far.
    fn stats(&self) -> HaloExchangeStats;
}

/// Tile sizes for `grid` with at most `max_tiles` tiles: the longest axis (the slowest one among
/// equals, so that rows along x stay long) is split by its smallest prime factor while the count
/// allows and tiles stay at least `width` wide. Every size divides the grid.
pub fn split_tiles(grid: [u32; 3], width: u32, is_3d: bool, max_tiles: u32) -> [u32; 3] {
    let mut tile = grid;
    let mut count = 1u32;
    let axes = if is_3d { 3 } else { 2 };
    loop {
        let mut best: Option<(usize, u32)> = None;
        for axis in (0..axes).rev() {
            let Some(factor) = (2..=tile[axis]).find(|f| tile[axis].is_multiple_of(*f)) else { continue };
            if count.saturating_mul(factor) > max_tiles || tile[axis] / factor < width.max(1) {
                continue;
            }
            if best.is_none_or(|(b, _)| tile[axis] > tile[b]) {
                best = Some((axis, factor));
            }
        }
        let Some((axis, factor)) = best else { return tile };
        tile[axis] /= factor;
        count *= factor;
    }
}

/// Checks that `cells` has one value per cell of `grid`.
///
/// # Errors
/// [`RingKernelError::InvalidConfig`] naming both lengths.
pub fn check_cells(grid: &HaloGrid, cells: &[f32]) -> Result<()> {
    if cells.len() == grid.cell_count() {
        Ok(())
    } else {
        Err(invalid(
            "cells",
            format!("{} values for a grid of {:?} = {} cells", cells.len(), grid.grid(), grid.cell_count()),
        ))
    }
}

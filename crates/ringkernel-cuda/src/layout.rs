//! The structs the CUDA pool shares with its device code, declared once with
//! `ringkernel_core::device_struct!`: Rust and the generated C (`declare_structs`, included before
//! the prelude) agree on every offset, checked at compile time on both sides. Pointers are
//! `[low, high]` word pairs, like every 64-bit value of the protocol.

use std::sync::atomic::AtomicU32;

use ringkernel_core::codegen::{Language, declare_structs};
use ringkernel_core::device_struct;
use ringkernel_core::layout::DeviceStruct;

/// Bytes of a kernel name a route entry and an actor's arguments keep (longer names match by
/// hash, length and this prefix).
pub(crate) const NAME_BYTES: usize = 32;

device_struct! {
    /// One running actor as K2K senders see it: an entry of the route table in device memory,
    /// written by the actor itself.
    #[layout(size = 64, align = 4)]
    #[repr(C)]
    pub struct RkRoute {
        /// 1 while the actor accepts K2K messages (release store by the actor; senders load it).
        pub alive: AtomicU32 => 0,
        /// Senders that entered the route and have not left it yet (they publish before leaving).
        pub in_flight: AtomicU32 => 4,
        /// The actor's kernel number.
        pub number: u32 => 8,
        /// FNV-1a of its kernel id.
        pub name_hash: u32 => 12,
        /// Its `K2KInboxHeader` in device memory, `[low, high]`.
        pub inbox: [u32; 2] => 16,
        /// Payload bytes an inbox slot holds.
        pub payload_capacity: u32 => 24,
        /// Bytes of its kernel id.
        pub name_len: u32 => 28,
        /// The first `NAME_BYTES` bytes of its kernel id.
        pub name: [u32; 8] => 32,
    }
}

device_struct! {
    /// An actor's launch arguments, written by the host into its pool slot before the slot is
    /// assigned.
    #[layout(size = 136, align = 4)]
    #[repr(C)]
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct RkArgs {
        /// `ControlBlock*` in pinned host memory, mapped.
        pub control: [u32; 2] => 0,
        /// The input ring's first slot (mapped).
        pub input: [u32; 2] => 8,
        /// The output ring's first slot (mapped).
        pub output: [u32; 2] => 16,
        /// The actor's state in device memory.
        pub state: [u32; 2] => 24,
        /// Its `K2KInboxHeader` in device memory.
        pub inbox: [u32; 2] => 32,
        /// The route table (`RK_ROUTE_CAPACITY` entries) in device memory.
        pub routes: [u32; 2] => 40,
        /// One slot's worth of device memory for a message whose payload is longer than a line.
        pub scratch: [u32; 2] => 48,
        /// Wall clock = `%globaltimer` + this (ns, two's complement).
        pub clock_offset_ns: [u32; 2] => 56,
        /// Largest accepted lead of a sender's clock (ns; 0: any).
        pub max_offset_ns: [u32; 2] => 64,
        /// Longest time between heartbeats (ns).
        pub heartbeat_ns: [u32; 2] => 72,
        /// Bytes of state.
        pub state_bytes: u32 => 80,
        /// This actor's entry in the route table.
        pub route_index: u32 => 84,
        /// Its kernel number.
        pub number: u32 => 88,
        /// FNV-1a of its kernel id.
        pub name_hash: u32 => 92,
        /// Bytes of its kernel id.
        pub name_len: u32 => 96,
        /// Which handler of the pool module runs it (`rk_dispatch`).
        pub kind: u32 => 100,
        /// The first `NAME_BYTES` bytes of its kernel id.
        pub name: [u32; 8] => 104,
    }
}

device_struct! {
    /// One actor slot of the resident pool, in pinned host memory: the host writes `args`, then
    /// `state` = assigned (release); the slot's block runs the actor, stores how it stopped in
    /// `stop_code`, and stores idle once it has left the actor. The runtime's monitor then copies
    /// a failed actor's inbox back and reports the stop in the control block's `has_terminated`.
    #[layout(size = 256, align = 4)]
    #[repr(C)]
    pub struct RkSlot {
        /// `RK_SLOT_IDLE`, `RK_SLOT_ASSIGNED` (host) or `RK_SLOT_RUNNING` (device).
        pub state: AtomicU32 => 0,
        /// Host: 1 when the pool should end; idle blocks exit.
        pub shutdown: AtomicU32 => 4,
        /// Device: `RK_TERMINATED` or `RK_FAILED`, stored before `state` goes back to idle.
        pub stop_code: AtomicU32 => 8,
        _gap: u32 => 12,
        /// `RK_PROFILE` only: seven `[low, high]` counters of the running actor (see
        /// `CudaRuntime::profile`), stored by the device with each publish.
        pub profile: [AtomicU32; 14] => 16,
        /// The actor's arguments.
        pub args: RkArgs => 72,
        /// Device (bus warp), stored whenever it goes idle: host messages it read in the same
        /// round trip as the tail and accepted by their slot check (wrapping).
        pub checked_reads: AtomicU32 => 208,
        /// ... and those it read again once the tail was known (a check that failed, or the rest
        /// of a burst), wrapping.
        pub confirmed_reads: AtomicU32 => 212,
        _reserved: [u32; 10] => 216,
    }
}

device_struct! {
    /// The parameters of one run of the halo exchange kernel (`cuda/halo.cu`), passed by value.
    #[layout(size = 176, align = 4)]
    #[repr(C)]
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct RkHaloParams {
        /// A tile's interior cells per axis.
        pub tile: [u32; 3] => 0,
        /// Tiles (blocks).
        pub tiles: u32 => 12,
        /// A padded tile's extent per axis.
        pub padded: [u32; 3] => 16,
        /// Elements of a padded tile.
        pub padded_len: u32 => 28,
        /// Ghost width per axis (0 for z in 2D).
        pub pad: [u32; 3] => 32,
        /// Halo width.
        pub width: u32 => 44,
        /// Directions of the neighbourhood (inbox slots per tile).
        pub directions: u32 => 48,
        /// Bytes of an inbox slot.
        pub slot_bytes: u32 => 52,
        /// Bytes of one tile's inbox.
        pub inbox_stride: u32 => 56,
        /// The number of the run's first step.
        pub first_step: u32 => 60,
        /// Steps to run.
        pub steps: u32 => 64,
        /// Stencil points.
        pub points: u32 => 68,
        /// The stencil's weight (`f32` bits; `c2` for the wave).
        pub weight_bits: u32 => 72,
        /// `Stencil::code`.
        pub stencil: u32 => 76,
        /// Bit 0: both levels of a tile live in shared memory for the run; bit 1: its face
        /// tables do too (after the levels).
        pub on_chip: u32 => 80,
        /// Bytes of one inbox set (`inbox_stride × tiles`); the odd steps use the second.
        pub set_bytes: u32 => 84,
        /// How long a tile waits for a face before it stops the run (ms).
        pub timeout_ms: u32 => 88,
        /// Tests only: 1 + the tile that sends a fault at `inject_step`, or 0.
        pub inject_tile: u32 => 92,
        /// Tests only: the step of the injected fault.
        pub inject_step: u32 => 96,
        /// Tests only: 1 a face with a wrong direction, 2 no faces at all.
        pub inject_kind: u32 => 100,
        /// The current level's padded tiles (tile-major).
        pub cells_current: [u32; 2] => 104,
        /// The other level's (the previous one for the wave).
        pub cells_other: [u32; 2] => 112,
        /// Two inbox sets.
        pub inboxes: [u32; 2] => 120,
        /// One `K2KRoutingTable` per tile.
        pub routes: [u32; 2] => 128,
        /// Direction offsets (78 ints), the neighbourhood's directions in slot order (26), the
        /// stencil's points (3 ints each).
        pub geom: [u32; 2] => 136,
        /// Status words (see `halo.cu`).
        pub status: [u32; 2] => 144,
        /// The tile whose first thread times the phases of each step (`RK_HALO_PROFILE`).
        pub profile_tile: u32 => 152,
        /// Entries per tile in each of the four face tables.
        pub table_stride: u32 => 156,
        /// The face tables, each `tiles × table_stride` words: what each pair a tile sends is
        /// made of (a padded-tile index, or `0x80000000 | route << 3 | header word`), the pair
        /// it goes to (index in an inbox set), the pair each received one comes from, and where
        /// it goes (a padded-tile index, or `0x80000000 | slot << 3 | header word`).
        pub tables: [u32; 2] => 160,
        /// Per tile: pairs it sends, pairs it receives.
        pub counts: [u32; 2] => 168,
    }
}

/// `RkSlot::state` values.
pub(crate) mod slot_state {
    /// No actor; the block waits.
    pub const IDLE: u32 = 0;
    /// The host wrote arguments; the block starts the actor.
    pub const ASSIGNED: u32 = 1;
    /// The block runs the actor.
    pub const RUNNING: u32 = 2;
}

/// The C declaration of the halo exchange's parameters.
pub(crate) fn halo_declarations() -> String {
    declare_structs(Language::Cuda, &[RkHaloParams::DESC])
}

/// The C declarations of the pool's structs and slot states, for the template.
pub(crate) fn declarations() -> String {
    let mut out = declare_structs(Language::Cuda, &[RkRoute::DESC, RkArgs::DESC, RkSlot::DESC]);
    for (name, value) in [
        ("RK_SLOT_IDLE", slot_state::IDLE),
        ("RK_SLOT_ASSIGNED", slot_state::ASSIGNED),
        ("RK_SLOT_RUNNING", slot_state::RUNNING),
        ("RK_NAME_BYTES", NAME_BYTES as u32),
    ] {
        out.push_str(&format!("#define {name} {value}u\n"));
    }
    out
}

/// FNV-1a, as `rk_fnv1a` computes it on the device.
pub(crate) fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(2_166_136_261u32, |hash, byte| (hash ^ u32::from(*byte)).wrapping_mul(16_777_619))
}

/// A 64-bit value as the `[low, high]` words of a device struct.
pub(crate) fn words(value: u64) -> [u32; 2] {
    [value as u32, (value >> 32) as u32]
}

/// A kernel name's first `NAME_BYTES` bytes as words.
pub(crate) fn name_words(name: &[u8]) -> [u32; 8] {
    let mut bytes = [0u8; NAME_BYTES];
    let kept = name.len().min(NAME_BYTES);
    bytes[..kept].copy_from_slice(&name[..kept]);
    std::array::from_fn(|i| u32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().expect("4 bytes")))
}

//! The protocol: every struct that both a host and a device touch, in one place.
//!
//! Each struct is declared once, here, with `device_struct!`. The macro
//!
//! * emits the `#[repr(C)]` Rust struct,
//! * asserts at compile time its size, its alignment and the offset of every field,
//! * records a [`StructDesc`] from which [`crate::codegen`] writes the C (CUDA), MSL and WGSL
//!   declarations that kernel templates include.
//!
//! Portable rules (so that one layout serves CUDA, Vulkan and Metal):
//!
//! * every field is 32 bits wide or an array of 32-bit words; every atomic is an `AtomicU32`
//!   (Metal has no 64-bit fetch-add, WGSL has no `u64`). A 64-bit value is a `lo`/`hi` pair (or a
//!   `[u32; 2]`, low word first) with one writer;
//! * every field has exactly one writer. In [`ControlBlock`], host-written fields fill the first
//!   64-byte line and device-written fields the second;
//! * queue indices are free-running `u32` counters: `count = tail.wrapping_sub(head)`, capacity is a
//!   power of two no larger than [`MAX_QUEUE_CAPACITY`], `slot = counter & (capacity - 1)`.

use crate::sync::AtomicU32;

/// Magic number at the start of every [`MessageHeader`]: `"RKMH"` read as a little-endian `u32`.
pub const MESSAGE_MAGIC: u32 = u32::from_le_bytes(*b"RKMH");
/// Protocol version written into every [`MessageHeader`]; decoders reject any other.
///
/// Version 2 moved every field a receiver validates or routes on into the header's first 64
/// bytes ([`MESSAGE_HEADER_HOT_BYTES`]); version 1 spread them over 88 bytes.
pub const PROTOCOL_VERSION: u32 = 2;
/// Size of a [`MessageHeader`] in bytes.
pub const MESSAGE_HEADER_BYTES: usize = 256;
/// Bytes of a [`MessageHeader`] that a receiver reads to validate and route a message: one cache
/// line. With the payload's first line, a small message costs two cache lines (or two PCIe reads).
pub const MESSAGE_HEADER_HOT_BYTES: usize = 64;
/// Bytes of a [`MessageHeader`] that writers write and decoders read: the hot line plus
/// `message_id` and `dest_kernel`, which receivers read only when asked. (`slot_check`, right
/// after them, is written only by a host whose device asks for it, and read only by that device;
/// see [`slot_check`](mod@crate::message::slot_check).)
///
/// The padding is reserved and zero: rings are zeroed when they are created, encoders never write
/// it again and decoders never read it, so the padding-only cache lines of a slot never travel
/// between cores (or over PCIe).
pub const MESSAGE_HEADER_USED_BYTES: usize = 84;
/// Byte offsets, within a slot, of the cache lines a reader of a small message reads: the header's
/// hot line and the first payload line (what to prefetch ahead of the next read).
pub const SLOT_READ_LINES: [usize; 2] = [0, MESSAGE_HEADER_BYTES];
/// Byte offsets, within a slot, of the cache lines a writer of a small message writes: the hot
/// line, the line with `message_id` and `dest_kernel`, and the first payload line.
pub const SLOT_WRITE_LINES: [usize; 3] = [0, MESSAGE_HEADER_HOT_BYTES, MESSAGE_HEADER_BYTES];
/// Payload capacities (and therefore slot sizes) are multiples of this many bytes.
pub const SLOT_ALIGN_BYTES: usize = 16;
/// Largest ring or inbox capacity, in slots (indices are free-running `u32`s).
pub const MAX_QUEUE_CAPACITY: u32 = 1 << 30;
/// Routes in a [`K2KRoutingTable`]: the 3D Moore neighbourhood.
pub const K2K_MAX_ROUTES: usize = 26;

/// [`MessageHeader::flags`] bits.
pub mod flags {
    /// `checksum` holds the CRC32C of the payload and must be verified.
    pub const CHECKSUM: u32 = 1 << 0;
    /// The message is a reply to the message with the same correlation id.
    pub const REPLY: u32 = 1 << 1;
    /// The message reports an error; the payload holds its description.
    pub const ERROR: u32 = 1 << 2;
    /// The message travelled kernel to kernel (K2K) rather than from the host.
    pub const K2K: u32 = 1 << 3;
    /// Every bit this version defines.
    pub const ALL: u32 = CHECKSUM | REPLY | ERROR | K2K;

    /// Every flag with its name (used by the layout generator).
    pub const NAMED: &[(&str, u32)] = &[("CHECKSUM", CHECKSUM), ("REPLY", REPLY), ("ERROR", ERROR), ("K2K", K2K)];
}

/// Values of [`ControlBlock::has_terminated`], written by the device.
pub mod termination {
    /// The kernel is running (or has not started).
    pub const RUNNING: u32 = 0;
    /// The kernel drained everything it had accepted and stopped.
    pub const TERMINATED: u32 = 1;
    /// The kernel stopped on a fault (`last_error` says which); what it had accepted but not
    /// handled is still in its input ring and inbox, for the host to take back.
    pub const FAILED: u32 = 2;

    /// Every value with its name (used by the layout generator).
    pub const NAMED: &[(&str, u32)] = &[("RUNNING", RUNNING), ("TERMINATED", TERMINATED), ("FAILED", FAILED)];
}

/// Values of [`ControlBlock::should_terminate`], written by the host.
pub mod terminate_request {
    /// Keep running.
    pub const NONE: u32 = 0;
    /// Handle everything accepted, then stop; wait for room in the output ring as usual.
    pub const DRAIN: u32 = 1;
    /// Handle everything accepted, then stop; nobody reads the output ring any more, so drop
    /// output that does not fit instead of waiting for room.
    pub const DRAIN_DETACHED: u32 = 2;

    /// Every value with its name (used by the layout generator).
    pub const NAMED: &[(&str, u32)] = &[("NONE", NONE), ("DRAIN", DRAIN), ("DRAIN_DETACHED", DRAIN_DETACHED)];
}

/// Face directions of halo exchange (`HaloMessageHeader::direction`, `K2KRouteEntry::direction`).
///
/// A direction names the side of a tile: data sent to the north neighbour arrives at that
/// neighbour *from the south*, so it is tagged `SOUTH` and applied to the receiver's south ghost
/// cells. Axes: x grows east, y grows south, z grows up.
pub mod direction {
    /// The −y side.
    pub const NORTH: u32 = 0;
    /// The +y side.
    pub const SOUTH: u32 = 1;
    /// The −x side.
    pub const WEST: u32 = 2;
    /// The +x side.
    pub const EAST: u32 = 3;
    /// The +z side.
    pub const UP: u32 = 4;
    /// The −z side.
    pub const DOWN: u32 = 5;

    /// Every face with its name (used by the layout generator).
    pub const NAMED: &[(&str, u32)] =
        &[("NORTH", NORTH), ("SOUTH", SOUTH), ("WEST", WEST), ("EAST", EAST), ("UP", UP), ("DOWN", DOWN)];

    /// The side opposite to `direction` (the side the data arrives from at the neighbour).
    pub const fn opposite(direction: u32) -> u32 {
        direction ^ 1
    }
}

/// What a field is, as device code sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// A plain 32-bit unsigned word.
    U32,
    /// A 32-bit unsigned word accessed only atomically.
    AtomicU32,
    /// A fixed-length array.
    Array {
        /// Element kind.
        element: &'static FieldKind,
        /// Number of elements.
        len: usize,
    },
    /// Another device struct, by name.
    Struct {
        /// The struct's name.
        name: &'static str,
        /// Its size in bytes.
        size: usize,
    },
}

impl FieldKind {
    /// Size in bytes on every target.
    pub const fn size(&self) -> usize {
        match self {
            FieldKind::U32 | FieldKind::AtomicU32 => 4,
            FieldKind::Array { element, len } => element.size() * *len,
            FieldKind::Struct { size, .. } => *size,
        }
    }
}

/// One field of a device struct.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldDesc {
    /// Field name, identical in every language.
    pub name: &'static str,
    /// Byte offset from the start of the struct.
    pub offset: usize,
    /// What the field is.
    pub kind: FieldKind,
    /// Its doc comment, copied into generated code.
    pub doc: &'static str,
}

/// One device struct: everything the generator needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StructDesc {
    /// Struct name, identical in every language.
    pub name: &'static str,
    /// Size in bytes.
    pub size: usize,
    /// Alignment in bytes of the Rust type.
    pub align: usize,
    /// Its doc comment.
    pub doc: &'static str,
    /// Fields in declaration (and offset) order.
    pub fields: &'static [FieldDesc],
}

/// A type that may appear in a device struct.
pub trait DeviceType: Sized {
    /// How device code declares it.
    const KIND: FieldKind;
    /// The all-zero value. (A function rather than `bytemuck::Zeroable` because under loom the
    /// atomics are loom's, which must be constructed.)
    fn zeroed() -> Self;
}

/// A struct shared with device code, declared with `device_struct!`.
pub trait DeviceStruct: DeviceType {
    /// Its description, for the generator.
    const DESC: StructDesc;
}

impl DeviceType for u32 {
    const KIND: FieldKind = FieldKind::U32;
    fn zeroed() -> Self {
        0
    }
}

impl DeviceType for AtomicU32 {
    const KIND: FieldKind = FieldKind::AtomicU32;
    fn zeroed() -> Self {
        AtomicU32::new(0)
    }
}

impl<T: DeviceType, const N: usize> DeviceType for [T; N] {
    const KIND: FieldKind = FieldKind::Array { element: &T::KIND, len: N };
    fn zeroed() -> Self {
        core::array::from_fn(|_| T::zeroed())
    }
}

/// Declares a device struct once: the Rust type, its compile-time layout assertions, and its
/// [`StructDesc`] for the C/MSL/WGSL generator.
///
/// Syntax: doc comments, then `#[layout(size = N, align = A)]`, then ordinary attributes (`repr`,
/// `derive`), then `pub struct Name { field: Type => offset, … }`.
///
/// Backends declare their own device structs with it too (the CUDA pool's slot, arguments and
/// routes) and write their C with [`crate::codegen::declare_structs`].
#[macro_export]
macro_rules! device_struct {
    (
        $(#[doc = $doc:literal])*
        #[layout(size = $size:literal, align = $align:literal)]
        $(#[$attr:meta])*
        pub struct $name:ident {
            $(
                $(#[doc = $fdoc:literal])*
                $fvis:vis $field:ident : $fty:ty => $offset:literal
            ),* $(,)?
        }
    ) => {
        $(#[doc = $doc])*
        $(#[$attr])*
        pub struct $name {
            $( $(#[doc = $fdoc])* $fvis $field: $fty, )*
        }

        // Loom's atomics are larger than the real ones, so the layout only holds outside loom.
        #[cfg(not(loom))]
        const _: () = {
            assert!(
                core::mem::size_of::<$name>() == $size,
                concat!("size of ", stringify!($name), " changed")
            );
            assert!(
                core::mem::align_of::<$name>() == $align,
                concat!("alignment of ", stringify!($name), " changed")
            );
            $(
                assert!(
                    core::mem::offset_of!($name, $field) == $offset,
                    concat!("offset of ", stringify!($name), "::", stringify!($field), " changed")
                );
                assert!(
                    core::mem::size_of::<$fty>() == <$fty as $crate::layout::DeviceType>::KIND.size(),
                    concat!("size of ", stringify!($name), "::", stringify!($field), " differs from its device kind")
                );
            )*
        };

        impl $crate::layout::DeviceType for $name {
            const KIND: $crate::layout::FieldKind =
                $crate::layout::FieldKind::Struct { name: stringify!($name), size: $size };
            fn zeroed() -> Self {
                Self { $( $field: <$fty as $crate::layout::DeviceType>::zeroed(), )* }
            }
        }

        impl $crate::layout::DeviceStruct for $name {
            const DESC: $crate::layout::StructDesc = $crate::layout::StructDesc {
                name: stringify!($name),
                size: $size,
                align: $align,
                doc: concat!($($doc, "\n",)*),
                fields: &[
                    $(
                        $crate::layout::FieldDesc {
                            name: stringify!($field),
                            offset: $offset,
                            kind: <$fty as $crate::layout::DeviceType>::KIND,
                            doc: concat!($($fdoc, "\n",)*),
                        },
                    )*
                ],
            };
        }
    };
}

device_struct! {
    /// Per-kernel control block: 128 bytes in two 64-byte lines.
    ///
    /// The first line is written only by the host, the second only by the device (or by the CPU
    /// backend's actor thread, which plays the device's part). Capacities and slot sizes are set
    /// once before the kernel starts and never change.
    ///
    /// Control handshake: the host changes `is_active` or `should_terminate`, then increments
    /// `control_sequence` (release). The device reads `control_sequence` (acquire) between messages;
    /// when it changed, it reads the flags, acts on them, and copies the sequence into
    /// `control_ack` (release). Once `control_ack` equals the host's sequence, the device handles
    /// nothing more under the old flags: a host that waits for it knows, for instance, that a
    /// deactivated kernel has stopped handling messages.
    #[layout(size = 128, align = 64)]
    #[repr(C, align(64))]
    #[derive(Debug)]
    pub struct ControlBlock {
        /// Host: 1 while the kernel should process messages, 0 while deactivated.
        pub is_active: AtomicU32 => 0,
        /// Host: `RK_TERMINATE_DRAIN` (1) asks the kernel to drain and stop;
        /// `RK_TERMINATE_DRAIN_DETACHED` (2) also says that nobody reads the output ring any more.
        pub should_terminate: AtomicU32 => 4,
        /// Host: free-running count of messages published into the input ring.
        pub input_tail: AtomicU32 => 8,
        /// Host: free-running count of replies consumed from the output ring.
        pub output_head: AtomicU32 => 12,
        /// Host, before start: input ring capacity in slots (power of two).
        pub input_capacity: u32 => 16,
        /// Host, before start: input ring slot size in bytes (header + payload).
        pub input_slot_bytes: u32 => 20,
        /// Host, before start: output ring capacity in slots (power of two).
        pub output_capacity: u32 => 24,
        /// Host, before start: output ring slot size in bytes (header + payload).
        pub output_slot_bytes: u32 => 28,
        /// Host, before start: numeric id of this kernel (source/destination in headers).
        pub kernel_id: u32 => 32,
        /// Host, before start: HLC node id of this kernel.
        pub node_id: u32 => 36,
        /// Host: incremented after every change of `is_active` or `should_terminate`.
        pub control_sequence: AtomicU32 => 40,
        /// Host, before start: 1 if every input slot the host publishes carries its slot check
        /// ([`MessageHeader::slot_check`]), so that a device may read a slot in the same round
        /// trip as `input_tail` and accept it by its check; 0 if not.
        pub input_slot_checks: AtomicU32 => 44,
        /// Host, before start: 1 if the host checks every output slot's whole-slot check
        /// ([`crate::message::whole_slot_check`]) before it reads it, so that a device may publish
        /// `output_tail` without a fence (the host waits until a slot's check matches); 0 if not.
        pub output_slot_checks: AtomicU32 => 48,
        _host_reserved: [u32; 3] => 52,
        /// Device: `RK_TERMINATED` (1) once the kernel has drained and stopped, `RK_FAILED` (2) once
        /// it stopped on a fault; 0 while it runs. Stored after everything else the kernel writes.
        pub has_terminated: AtomicU32 => 64,
        /// Device: free-running count of messages consumed from the input ring.
        pub input_head: AtomicU32 => 68,
        /// Device: free-running count of replies published into the output ring.
        pub output_tail: AtomicU32 => 72,
        /// Device: messages handled (wrapping; the host widens it to 64 bits).
        pub messages_processed: AtomicU32 => 76,
        /// Device: invalid or expired slots skipped (wrapping).
        pub messages_rejected: AtomicU32 => 80,
        /// Device: errors seen (wrapping).
        pub error_count: AtomicU32 => 84,
        /// Device: code of the most recent error (`RK_ERROR_*`).
        pub last_error: AtomicU32 => 88,
        /// Device: incremented by the kernel loop; a host watchdog reads it.
        pub heartbeat: AtomicU32 => 92,
        /// Device: seqlock word for the HLC fields below (odd while they are being written).
        pub hlc_sequence: AtomicU32 => 96,
        /// Device: HLC physical time, low 32 bits (ns since the Unix epoch).
        pub hlc_physical_lo: AtomicU32 => 100,
        /// Device: HLC physical time, high 32 bits.
        pub hlc_physical_hi: AtomicU32 => 104,
        /// Device: HLC logical counter.
        pub hlc_logical: AtomicU32 => 108,
        /// Device: the last `control_sequence` the kernel has acted on.
        pub control_ack: AtomicU32 => 112,
        _device_reserved: [u32; 3] => 116,
    }
}

device_struct! {
    /// Header of every message slot: 256 bytes, followed by the payload area.
    ///
    /// Everything a receiver validates or routes on sits in the first 64 bytes (the hot line);
    /// `message_id` and `dest_kernel` follow, then reserved zero padding. 64-bit values are stored
    /// as `[low, high]` word pairs. Build one with [`crate::message::HeaderBuilder`]; read one with
    /// [`crate::message::decode_slot`], which validates it.
    #[layout(size = 256, align = 4)]
    #[repr(C)]
    #[derive(Debug, Clone, Copy, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
    pub struct MessageHeader {
        /// Always `RK_MESSAGE_MAGIC`.
        pub magic: u32 => 0,
        /// Always `RK_PROTOCOL_VERSION`.
        pub version: u32 => 4,
        /// `RK_FLAG_*` bits.
        pub flags: u32 => 8,
        /// Application message type (a `RingMessage` type id).
        pub message_type: u32 => 12,
        /// Payload bytes that follow the header.
        pub payload_bytes: u32 => 16,
        /// CRC32C (Castagnoli) of the payload when `RK_FLAG_CHECKSUM` is set, else 0.
        pub checksum: u32 => 20,
        /// 64-bit correlation id shared by a request and its reply, `[low, high]`.
        pub correlation_id: [u32; 2] => 24,
        /// Numeric id of the sending kernel (`RK_HOST_KERNEL_ID` for the host).
        pub source_kernel: u32 => 32,
        /// Priority on the one scale, 0 (low) to `RK_PRIORITY_MAX`.
        pub priority: u32 => 36,
        /// HLC physical time of the send, ns since the Unix epoch, `[low, high]`.
        pub timestamp_physical_ns: [u32; 2] => 40,
        /// HLC logical counter of the send.
        pub timestamp_logical: u32 => 48,
        /// HLC node id of the sender.
        pub timestamp_node: u32 => 52,
        /// Deadline, physical ns since the Unix epoch, `[low, high]`; 0 means none.
        pub deadline_ns: [u32; 2] => 56,
        /// 128-bit message id, little-endian words (outside the hot line: read only when asked).
        pub message_id: [u32; 4] => 64,
        /// Numeric id of the destination kernel (outside the hot line).
        pub dest_kernel: u32 => 80,
        /// In the input ring of a kernel whose control block says `input_slot_checks`: the slot's
        /// check word ([`slot_check`](mod@crate::message::slot_check): its ring position, hot line and first
        /// payload line), written with the rest of the slot before the host publishes it; in the
        /// output ring of one that says `output_slot_checks`, the whole-slot check
        /// ([`crate::message::whole_slot_check`]); in a K2K inbox slot written by a device, the
        /// slot check of its inbox position; 0 elsewhere. Outside the used bytes: decoders
        /// neither read nor verify it.
        pub slot_check: u32 => 84,
        _padding: [u32; 42] => 88,
    }
}

device_struct! {
    /// Header of one bounded MPSC inbox for kernel-to-kernel messages: 64 bytes.
    ///
    /// It is followed by `capacity` per-slot sequence words (padded to 64 bytes) and then by
    /// `capacity` slots of `slot_bytes` each; [`K2KInboxLayout`] computes those offsets and the inbox
    /// stride. Producers reserve a slot by advancing `tail`, write it, then publish it through the
    /// slot's sequence word; the one consumer advances `head`. Full is reported, never overwritten.
    #[layout(size = 64, align = 4)]
    #[repr(C)]
    #[derive(Debug)]
    pub struct K2KInboxHeader {
        /// Set once: capacity in slots (power of two).
        pub capacity: u32 => 0,
        /// Set once: bytes per slot (multiple of 16).
        pub slot_bytes: u32 => 4,
        /// Producers: free-running reservation counter.
        pub tail: AtomicU32 => 8,
        /// Producers: sends refused because the inbox was full (wrapping).
        pub full_rejections: AtomicU32 => 12,
        /// Producers: id of the most recent sender (diagnostics only).
        pub last_source: AtomicU32 => 16,
        /// Consumer: free-running count of messages taken.
        pub head: AtomicU32 => 20,
        _reserved: [u32; 10] => 24,
    }
}

device_struct! {
    /// One route of a [`K2KRoutingTable`]: 32 bytes.
    #[layout(size = 32, align = 4)]
    #[repr(C)]
    #[derive(Debug, Clone, Copy, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
    pub struct K2KRouteEntry {
        /// Destination tile (threadgroup, block or actor) id.
        pub dest_threadgroup: u32 => 0,
        /// Byte offset of the destination's inbox in the inbox buffer (`id * inbox_stride`).
        pub inbox_offset: u32 => 4,
        /// 1 if this route may be used.
        pub is_active: u32 => 8,
        /// Hops to the destination (1 for a direct neighbour).
        pub hops: u32 => 12,
        /// Relative bandwidth hint for schedulers.
        pub bandwidth_hint: u32 => 16,
        /// Route priority on the message priority scale.
        pub priority: u32 => 20,
        /// Direction of the neighbour as seen from the sender (`RK_DIR_*`).
        pub direction: u32 => 24,
        _reserved: u32 => 28,
    }
}

device_struct! {
    /// A tile's routing table: its id, the grid, the inbox stride and up to 26 routes.
    #[layout(size = 864, align = 4)]
    #[repr(C)]
    #[derive(Debug, Clone, Copy, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
    pub struct K2KRoutingTable {
        /// This tile's id.
        pub self_id: u32 => 0,
        /// Routes in use.
        pub route_count: u32 => 4,
        /// Grid size in tiles along x.
        pub grid_dim_x: u32 => 8,
        /// Grid size in tiles along y.
        pub grid_dim_y: u32 => 12,
        /// Grid size in tiles along z (1 for 2D).
        pub grid_dim_z: u32 => 16,
        /// Bytes from one inbox to the next: the one stride every sender and receiver uses.
        pub inbox_stride: u32 => 20,
        _reserved: [u32; 2] => 24,
        /// Routes; entries past `route_count` are zero.
        pub routes: [K2KRouteEntry; 26] => 32,
    }
}

device_struct! {
    /// Header of one halo (ghost-cell) message: 32 bytes, followed by the face data.
    #[layout(size = 32, align = 4)]
    #[repr(C)]
    #[derive(Debug, Clone, Copy, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
    pub struct HaloMessageHeader {
        /// Sending tile id.
        pub source: u32 => 0,
        /// Direction the data arrives from, as seen by the receiver (`RK_DIR_*`).
        pub direction: u32 => 4,
        /// Face extent along its first axis, in elements.
        pub width: u32 => 8,
        /// Face extent along its second axis, in elements.
        pub height: u32 => 12,
        /// Face extent along its third axis (the halo width), in elements.
        pub depth: u32 => 16,
        /// Bytes per element.
        pub element_size: u32 => 20,
        /// Step number the face belongs to.
        pub sequence: u32 => 24,
        /// Reserved flag bits; 0.
        pub flags: u32 => 28,
    }
}

device_struct! {
    /// The fixed part of an error report: the payload of a message with `RK_FLAG_ERROR` set, sent
    /// back in place of a reply when a kernel did not handle a message. 24 bytes, then the reason
    /// as UTF-8 (see `message::ErrorReport`).
    #[layout(size = 24, align = 4)]
    #[repr(C)]
    #[derive(Debug, Clone, Copy, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
    pub struct ErrorReportHeader {
        /// What went wrong (`RK_ERROR_*`).
        pub code: u32 => 0,
        _reserved: u32 => 4,
        /// First number of the code (for a deadline: the deadline), `[low, high]`.
        pub value0: [u32; 2] => 8,
        /// Second number (for a deadline: the time it was checked), `[low, high]`.
        pub value1: [u32; 2] => 16,
    }
}

// SAFETY: `ControlBlock` and `K2KInboxHeader` are `repr(C)` structs of `u32`s, `AtomicU32`s and
// `u32` arrays; the all-zero bit pattern is a valid value of each of those.
#[cfg(not(loom))]
unsafe impl bytemuck::Zeroable for ControlBlock {}
// SAFETY: see above.
#[cfg(not(loom))]
unsafe impl bytemuck::Zeroable for K2KInboxHeader {}

/// Every device struct, in dependency order (a struct comes after those it contains).
pub const ALL_STRUCTS: &[StructDesc] = &[
    ControlBlock::DESC,
    MessageHeader::DESC,
    K2KInboxHeader::DESC,
    K2KRouteEntry::DESC,
    K2KRoutingTable::DESC,
    HaloMessageHeader::DESC,
    ErrorReportHeader::DESC,
];

/// How an atomic field is synchronised: what its writer does before storing it and its reader
/// after loading it. CUDA has acquire/release loads and stores at system scope (the generated
/// `rk_load_*` / `rk_store_*` helpers); MSL and WGSL have relaxed atomics only, so the generators
/// write next to every atomic field which fence those languages need ([`AtomicRole::msl_note`],
/// [`AtomicRole::wgsl_note`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AtomicRole {
    /// Publishes other memory (slots, counters, final state): the writer finishes those writes,
    /// then stores with release; the reader loads with acquire, then reads them.
    Publish,
    /// A control flag read together with the `Publish` word that announces its change.
    Flag,
    /// A statistic or diagnostic; relaxed. Whatever must be seen with it is ordered by a
    /// `Publish` store made after it.
    Counter,
    /// A seqlock sequence word: odd while the data words it guards are being written.
    SeqlockWord,
    /// Data guarded by a seqlock word.
    SeqlockData,
    /// Claimed by compare-and-swap from several producers (the K2K inbox tail).
    Claim,
}

impl AtomicRole {
    /// What a writer and a reader of such a field do, in words.
    pub fn rule(self) -> &'static str {
        match self {
            AtomicRole::Publish => {
                "writer: finish the writes it publishes, then store (release); reader: load (acquire), then read them"
            }
            AtomicRole::Flag => {
                "written before the control_sequence increment that announces it; read after loading that word (acquire)"
            }
            AtomicRole::Counter => "relaxed; ordered by the Publish store that follows it",
            AtomicRole::SeqlockWord => {
                "writer: make it odd, fence, write the data, fence, make it even; reader: retry while odd or changed"
            }
            AtomicRole::SeqlockData => {
                "written only while the seqlock word is odd; read between two equal even readings of it"
            }
            AtomicRole::Claim => {
                "compare-and-swap by every producer; safe with device-only or host-only producers, host and device together only where the device has host-native atomics"
            }
        }
    }

    /// The fence Metal's relaxed-only atomics need for this role.
    pub fn msl_note(self) -> &'static str {
        match self {
            AtomicRole::Publish => {
                "MSL: writer atomic_thread_fence(mem_flags::mem_device, memory_order_seq_cst, thread_scope_device) before the relaxed store; reader the same fence after the relaxed load"
            }
            AtomicRole::Flag => "MSL: relaxed load after the fenced load of control_sequence",
            AtomicRole::Counter => "MSL: relaxed; no fence",
            AtomicRole::SeqlockWord => {
                "MSL: relaxed, with atomic_thread_fence(mem_flags::mem_device, memory_order_seq_cst, thread_scope_device) between it and the data"
            }
            AtomicRole::SeqlockData => "MSL: relaxed, between the fenced seqlock-word accesses",
            AtomicRole::Claim => {
                "MSL: atomic_compare_exchange_weak_explicit relaxed, then the Publish fence before storing the slot's sequence"
            }
        }
    }

    /// The ordering WGSL (relaxed atomics only) can and cannot give for this role.
    pub fn wgsl_note(self) -> &'static str {
        match self {
            AtomicRole::Publish => {
                "WGSL: relaxed atomicStore/atomicLoad; nothing orders storage writes for the host inside a dispatch, so the host reads it after the dispatch completes (the dispatch boundary is the fence); between invocations of one workgroup use storageBarrier()"
            }
            AtomicRole::Flag => "WGSL: relaxed atomicLoad; the host changes it only between dispatches",
            AtomicRole::Counter => "WGSL: relaxed atomicAdd/atomicStore",
            AtomicRole::SeqlockWord => {
                "WGSL: relaxed; the host reads it after the dispatch completes, so the seqlock never retries there"
            }
            AtomicRole::SeqlockData => "WGSL: relaxed atomicStore",
            AtomicRole::Claim => {
                "WGSL: atomicCompareExchangeWeak (relaxed); producers within one dispatch, consumed in the next"
            }
        }
    }
}

/// The [`AtomicRole`] of every atomic field, by struct and field name.
pub const ATOMIC_ROLES: &[(&str, &str, AtomicRole)] = &[
    ("ControlBlock", "is_active", AtomicRole::Flag),
    ("ControlBlock", "should_terminate", AtomicRole::Flag),
    ("ControlBlock", "input_tail", AtomicRole::Publish),
    ("ControlBlock", "output_head", AtomicRole::Publish),
    ("ControlBlock", "control_sequence", AtomicRole::Publish),
    ("ControlBlock", "input_slot_checks", AtomicRole::Flag),
    ("ControlBlock", "output_slot_checks", AtomicRole::Flag),
    ("ControlBlock", "has_terminated", AtomicRole::Publish),
    ("ControlBlock", "input_head", AtomicRole::Publish),
    ("ControlBlock", "output_tail", AtomicRole::Publish),
    ("ControlBlock", "messages_processed", AtomicRole::Counter),
    ("ControlBlock", "messages_rejected", AtomicRole::Counter),
    ("ControlBlock", "error_count", AtomicRole::Counter),
    ("ControlBlock", "last_error", AtomicRole::Counter),
    ("ControlBlock", "heartbeat", AtomicRole::Counter),
    ("ControlBlock", "hlc_sequence", AtomicRole::SeqlockWord),
    ("ControlBlock", "hlc_physical_lo", AtomicRole::SeqlockData),
    ("ControlBlock", "hlc_physical_hi", AtomicRole::SeqlockData),
    ("ControlBlock", "hlc_logical", AtomicRole::SeqlockData),
    ("ControlBlock", "control_ack", AtomicRole::Publish),
    ("K2KInboxHeader", "tail", AtomicRole::Claim),
    ("K2KInboxHeader", "full_rejections", AtomicRole::Counter),
    ("K2KInboxHeader", "last_source", AtomicRole::Counter),
    ("K2KInboxHeader", "head", AtomicRole::Publish),
];

/// The role of `struct_name::field`, if it is an atomic field.
pub fn atomic_role(struct_name: &str, field: &str) -> Option<AtomicRole> {
    ATOMIC_ROLES.iter().find(|(s, f, _)| *s == struct_name && *f == field).map(|(_, _, role)| *role)
}

/// Geometry of a bounded ring of fixed-size slots, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingGeometry {
    capacity: u32,
    slot_bytes: u32,
}

impl RingGeometry {
    /// Validates a ring of `capacity` slots (power of two, 1 ..= [`MAX_QUEUE_CAPACITY`]) of
    /// `slot_bytes` bytes each (a positive multiple of [`SLOT_ALIGN_BYTES`]).
    pub fn new(capacity: u32, slot_bytes: u32) -> crate::error::Result<Self> {
        use crate::error::RingKernelError::InvalidConfig;
        if capacity == 0 || !capacity.is_power_of_two() || capacity > MAX_QUEUE_CAPACITY {
            return Err(InvalidConfig {
                field: "capacity",
                reason: format!("must be a power of two between 1 and {MAX_QUEUE_CAPACITY}, got {capacity}"),
            });
        }
        if slot_bytes == 0 || !(slot_bytes as usize).is_multiple_of(SLOT_ALIGN_BYTES) {
            return Err(InvalidConfig {
                field: "slot_bytes",
                reason: format!("must be a positive multiple of {SLOT_ALIGN_BYTES}, got {slot_bytes}"),
            });
        }
        if (capacity as u64) * (slot_bytes as u64) > isize::MAX as u64 {
            return Err(InvalidConfig {
                field: "slot_bytes",
                reason: format!("{capacity} slots of {slot_bytes} bytes exceed the address space"),
            });
        }
        Ok(Self { capacity, slot_bytes })
    }

    /// A ring of message slots: a [`MessageHeader`] plus `payload_bytes` (rounded up to 16).
    pub fn for_messages(capacity: u32, payload_bytes: u32) -> crate::error::Result<Self> {
        let payload = (payload_bytes as usize).next_multiple_of(SLOT_ALIGN_BYTES);
        let slot = MESSAGE_HEADER_BYTES + payload;
        let slot = u32::try_from(slot).map_err(|_| crate::error::RingKernelError::InvalidConfig {
            field: "payload_bytes",
            reason: format!("{payload_bytes} is too large"),
        })?;
        Self::new(capacity, slot)
    }

    /// Capacity in slots.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Bytes per slot.
    pub fn slot_bytes(&self) -> u32 {
        self.slot_bytes
    }

    /// Bytes of the whole slot array.
    pub fn bytes(&self) -> usize {
        self.capacity as usize * self.slot_bytes as usize
    }
}

/// Where everything of one K2K inbox lies, relative to the inbox's start.
///
/// ```text
/// 0                       K2KInboxHeader (64 B)
/// 64                      capacity × u32 sequence words, padded to a multiple of 64 B
/// slots_offset()          capacity × slot_bytes
/// stride()                the next inbox
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct K2KInboxLayout {
    geometry: RingGeometry,
}

impl K2KInboxLayout {
    /// The layout of an inbox with this geometry.
    ///
    /// # Errors
    /// [`crate::error::RingKernelError::InvalidConfig`] for a capacity of 1: with one slot, the
    /// sequence value "published on lap n" equals "free on lap n + 1", so a producer could claim
    /// a slot the consumer has not read yet (found by the loom model check).
    pub fn new(geometry: RingGeometry) -> crate::error::Result<Self> {
        if geometry.capacity() < 2 {
            return Err(crate::error::RingKernelError::InvalidConfig {
                field: "capacity",
                reason: format!("a K2K inbox needs at least 2 slots, got {}", geometry.capacity()),
            });
        }
        Ok(Self { geometry })
    }

    /// Its geometry.
    pub fn geometry(&self) -> RingGeometry {
        self.geometry
    }

    /// Offset of the first sequence word.
    pub const fn sequences_offset(&self) -> usize {
        core::mem::size_of::<u32>() * 16
    }

    /// Offset of the first slot.
    pub fn slots_offset(&self) -> usize {
        (self.sequences_offset() + 4 * self.geometry.capacity as usize).next_multiple_of(64)
    }

    /// Bytes from the start of one inbox to the start of the next (a multiple of 64).
    pub fn stride(&self) -> usize {
        (self.slots_offset() + self.geometry.bytes()).next_multiple_of(64)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_the_protocol() {
        assert_eq!(size_of::<ControlBlock>(), 128);
        assert_eq!(size_of::<MessageHeader>(), MESSAGE_HEADER_BYTES);
        assert_eq!(size_of::<K2KInboxHeader>(), 64);
        assert_eq!(size_of::<K2KRouteEntry>(), 32);
        assert_eq!(size_of::<K2KRoutingTable>(), 32 + 26 * 32);
        assert_eq!(size_of::<HaloMessageHeader>(), 32);
    }

    #[test]
    fn descriptors_are_contiguous_and_cover_every_byte() {
        for desc in ALL_STRUCTS {
            let mut expected = 0;
            for field in desc.fields {
                assert_eq!(field.offset, expected, "{}::{} leaves a gap", desc.name, field.name);
                expected += field.kind.size();
            }
            assert_eq!(expected, desc.size, "{} has trailing padding", desc.name);
        }
    }

    #[test]
    fn host_and_device_fields_of_the_control_block_sit_in_different_lines() {
        for field in ControlBlock::DESC.fields {
            let line = field.offset / 64;
            let end_line = (field.offset + field.kind.size() - 1) / 64;
            assert_eq!(line, end_line, "{} straddles a cache line", field.name);
            let device_written = field.doc.trim_start().starts_with("Device");
            let host_written = field.doc.trim_start().starts_with("Host");
            if device_written {
                assert_eq!(line, 1, "device-written {} must be in the second line", field.name);
            }
            if host_written {
                assert_eq!(line, 0, "host-written {} must be in the first line", field.name);
            }
        }
    }

    #[test]
    fn every_atomic_field_has_exactly_one_role() {
        for desc in ALL_STRUCTS {
            for field in desc.fields {
                let roles = ATOMIC_ROLES.iter().filter(|(s, f, _)| *s == desc.name && *f == field.name).count();
                let expected = usize::from(field.kind == FieldKind::AtomicU32);
                assert_eq!(roles, expected, "{}::{}", desc.name, field.name);
            }
        }
        assert_eq!(atomic_role("ControlBlock", "input_tail"), Some(AtomicRole::Publish));
        assert_eq!(atomic_role("ControlBlock", "kernel_id"), None);
    }

    #[test]
    fn header_hot_line_holds_everything_a_receiver_checks() {
        for field in [
            "magic",
            "version",
            "flags",
            "message_type",
            "payload_bytes",
            "checksum",
            "correlation_id",
            "source_kernel",
            "priority",
            "timestamp_physical_ns",
            "timestamp_logical",
            "timestamp_node",
            "deadline_ns",
        ] {
            let desc = MessageHeader::DESC.fields.iter().find(|f| f.name == field).unwrap();
            assert!(desc.offset + desc.kind.size() <= MESSAGE_HEADER_HOT_BYTES, "{field} is outside the hot line");
        }
        let id = MessageHeader::DESC.fields.iter().find(|f| f.name == "message_id").unwrap();
        assert_eq!(id.offset, MESSAGE_HEADER_HOT_BYTES);
        assert_eq!(std::mem::offset_of!(MessageHeader, dest_kernel) + 4, MESSAGE_HEADER_USED_BYTES);
    }

    #[test]
    fn zeroed_is_all_zero_bytes() {
        let header = MessageHeader::zeroed();
        assert!(bytemuck::bytes_of(&header).iter().all(|&b| b == 0));
        let control = <ControlBlock as DeviceType>::zeroed();
        assert_eq!(control.input_capacity, 0);
    }

    #[test]
    fn ring_geometry_rejects_bad_values_with_the_value() {
        let err = RingGeometry::new(3, 64).unwrap_err().to_string();
        assert!(err.contains("got 3"), "{err}");
        let err = RingGeometry::new(4, 65).unwrap_err().to_string();
        assert!(err.contains("got 65"), "{err}");
        assert!(RingGeometry::new(0, 64).is_err());
        assert!(RingGeometry::new(MAX_QUEUE_CAPACITY * 2, 16).is_err());
        let ok = RingGeometry::for_messages(8, 20).unwrap();
        assert_eq!(ok.slot_bytes(), 256 + 32);
    }

    #[test]
    fn inbox_layout_is_aligned() {
        let layout = K2KInboxLayout::new(RingGeometry::new(4, 288).unwrap()).unwrap();
        assert_eq!(layout.sequences_offset(), 64);
        assert_eq!(layout.slots_offset(), 128);
        assert_eq!(layout.stride(), 128 + 4 * 288);
        let big = K2KInboxLayout::new(RingGeometry::new(32, 16).unwrap()).unwrap();
        let err = K2KInboxLayout::new(RingGeometry::new(1, 16).unwrap()).unwrap_err().to_string();
        assert!(err.contains("at least 2 slots, got 1"), "{err}");
        assert_eq!(big.slots_offset(), 64 + 128);
        assert_eq!(big.stride() % 64, 0);
    }
}

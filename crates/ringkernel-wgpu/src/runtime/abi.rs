//! What the host and the WGSL actor loop share, declared once with `device_struct!`: the
//! per-dispatch parameters, the host's line of an actor's control block as the pump uploads it,
//! and a route table entry. `declarations()` is the WGSL the module template includes, so Rust and
//! WGSL read one layout (sizes and offsets are checked at compile time on the Rust side).

use core::mem::offset_of;

use ringkernel_core::codegen::{Language, declare_structs};
use ringkernel_core::device_struct;
use ringkernel_core::layout::{ControlBlock, DeviceStruct, K2KInboxHeader};

device_struct! {
    /// The parameters of one actor's dispatches (a uniform, one 256-byte slot per route index).
    /// Offsets into the arena are in words.
    #[layout(size = 96, align = 4)]
    #[repr(C)]
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
    pub struct WgpuParams {
        /// The actor's control block.
        pub control: u32 => 0,
        /// Its input ring's slots.
        pub input: u32 => 4,
        /// Its output ring's slots.
        pub output: u32 => 8,
        /// Its K2K inbox.
        pub inbox: u32 => 12,
        /// Its state.
        pub state: u32 => 16,
        /// Bytes of its state.
        pub state_bytes: u32 => 20,
        /// Its scratch area (`RK_SCRATCH_*` words of `actor.wgsl`).
        pub scratch: u32 => 24,
        /// Its kernel number.
        pub number: u32 => 28,
        /// The route table.
        pub routes: u32 => 32,
        /// Route entries to search (one past the highest in use).
        pub route_capacity: u32 => 36,
        /// Its own route entry.
        pub route_index: u32 => 40,
        /// The host's clock when the round was planned (ns since the Unix epoch), low word.
        pub now_lo: u32 => 44,
        /// ... high word.
        pub now_hi: u32 => 48,
        /// Largest clock lead of a sender the actor accepts (ns), low word.
        pub max_offset_lo: u32 => 52,
        /// ... high word.
        pub max_offset_hi: u32 => 56,
        /// Messages the actor may handle this round (`WgpuConfig::messages_per_dispatch`): the
        /// host keeps to it through `loop_budget` and the dispatches it records; kept for tools
        /// that read the params.
        pub in_budget: u32 => 60,
        /// Output slots the host reads back after the round: the actor takes no new message once
        /// it wrote this many (a message in hand still writes into the ring while it has room).
        pub out_budget: u32 => 64,
        /// Slots of its park (outputs of one message while the ring is full).
        pub park_capacity: u32 => 68,
        /// Words of its scratch area.
        pub scratch_words: u32 => 72,
        /// Always 0: loop bounds add it so that shader compilers do not unroll them.
        pub zero: u32 => 76,
        /// Its park.
        pub park: u32 => 80,
        /// Messages one dispatch may handle in a loop (1 where the driver bounds loop nests).
        pub loop_budget: u32 => 84,
        /// The round's number: the first dispatch of a round finds it new and starts the round's
        /// output count at zero.
        pub round: u32 => 88,
        pub(crate) _reserved1: u32 => 92,
    }
}

device_struct! {
    /// The host's line of an actor's control block (its first 64 bytes), as the pump uploads it
    /// before a round: a snapshot of the host's words taken in the protocol's order.
    #[layout(size = 64, align = 4)]
    #[repr(C)]
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
    pub struct WgpuHostLine {
        /// `ControlBlock::is_active`.
        pub is_active: u32 => 0,
        /// `ControlBlock::should_terminate`.
        pub should_terminate: u32 => 4,
        /// `ControlBlock::input_tail`.
        pub input_tail: u32 => 8,
        /// `ControlBlock::output_head`.
        pub output_head: u32 => 12,
        /// `ControlBlock::input_capacity`.
        pub input_capacity: u32 => 16,
        /// `ControlBlock::input_slot_bytes`.
        pub input_slot_bytes: u32 => 20,
        /// `ControlBlock::output_capacity`.
        pub output_capacity: u32 => 24,
        /// `ControlBlock::output_slot_bytes`.
        pub output_slot_bytes: u32 => 28,
        /// `ControlBlock::kernel_id`.
        pub kernel_id: u32 => 32,
        /// `ControlBlock::node_id`.
        pub node_id: u32 => 36,
        /// `ControlBlock::control_sequence`.
        pub control_sequence: u32 => 40,
        pub(crate) _reserved: [u32; 5] => 44,
    }
}

// The host line is the control block's first line, field by field.
const _: () = {
    assert!(offset_of!(WgpuHostLine, is_active) == offset_of!(ControlBlock, is_active));
    assert!(offset_of!(WgpuHostLine, should_terminate) == offset_of!(ControlBlock, should_terminate));
    assert!(offset_of!(WgpuHostLine, input_tail) == offset_of!(ControlBlock, input_tail));
    assert!(offset_of!(WgpuHostLine, output_head) == offset_of!(ControlBlock, output_head));
    assert!(offset_of!(WgpuHostLine, input_capacity) == offset_of!(ControlBlock, input_capacity));
    assert!(offset_of!(WgpuHostLine, input_slot_bytes) == offset_of!(ControlBlock, input_slot_bytes));
    assert!(offset_of!(WgpuHostLine, output_capacity) == offset_of!(ControlBlock, output_capacity));
    assert!(offset_of!(WgpuHostLine, output_slot_bytes) == offset_of!(ControlBlock, output_slot_bytes));
    assert!(offset_of!(WgpuHostLine, kernel_id) == offset_of!(ControlBlock, kernel_id));
    assert!(offset_of!(WgpuHostLine, node_id) == offset_of!(ControlBlock, node_id));
    assert!(offset_of!(WgpuHostLine, control_sequence) == offset_of!(ControlBlock, control_sequence));
    assert!(size_of::<WgpuHostLine>() == offset_of!(ControlBlock, has_terminated));
    // An actor's block starts with its kernel memory, control block first (the params' `control`
    // is the block's start).
    assert!(ringkernel_core::memory::KernelLayout::CONTROL_OFFSET == 0);
};

device_struct! {
    /// One entry of the route table at the start of the arena: how a K2K sender finds a running
    /// actor by name or number.
    #[layout(size = 64, align = 4)]
    #[repr(C)]
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
    pub struct WgpuRoute {
        /// 1 while the actor takes K2K messages (it clears it when it stops).
        pub used: u32 => 0,
        /// Its kernel number.
        pub number: u32 => 4,
        /// FNV-1a of its id.
        pub name_hash: u32 => 8,
        /// Bytes of its id.
        pub name_len: u32 => 12,
        /// Its K2K inbox (word offset in the arena).
        pub inbox: u32 => 16,
        pub(crate) _reserved: [u32; 3] => 20,
        /// The first 32 bytes of its id.
        pub name: [u32; 8] => 32,
    }
}

device_struct! {
    /// What an actor's dispatch reports to the host, in one place (its scratch area), so that a
    /// round reads back one range per actor (and its new output slots): the device line of its
    /// control block, its inbox's ends and its park.
    #[layout(size = 64, align = 4)]
    #[repr(C)]
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
    pub struct WgpuReport {
        /// `ControlBlock::has_terminated`.
        pub has_terminated: u32 => 0,
        /// `ControlBlock::input_head`.
        pub input_head: u32 => 4,
        /// `ControlBlock::output_tail`.
        pub output_tail: u32 => 8,
        /// `ControlBlock::messages_processed`.
        pub messages_processed: u32 => 12,
        /// `ControlBlock::messages_rejected`.
        pub messages_rejected: u32 => 16,
        /// `ControlBlock::error_count`.
        pub error_count: u32 => 20,
        /// `ControlBlock::last_error`.
        pub last_error: u32 => 24,
        /// `ControlBlock::heartbeat`.
        pub heartbeat: u32 => 28,
        /// `ControlBlock::hlc_physical_lo`.
        pub hlc_physical_lo: u32 => 32,
        /// `ControlBlock::hlc_physical_hi`.
        pub hlc_physical_hi: u32 => 36,
        /// `ControlBlock::hlc_logical`.
        pub hlc_logical: u32 => 40,
        /// `ControlBlock::control_ack`.
        pub control_ack: u32 => 44,
        /// The K2K inbox's tail (claimed by senders).
        pub inbox_tail: u32 => 48,
        /// The K2K inbox's head (the actor's next message).
        pub inbox_head: u32 => 52,
        /// Outputs parked because the ring was full.
        pub parked: u32 => 56,
        /// Outputs written into the ring this round.
        pub outputs: u32 => 60,
    }
}

/// Bytes read back per dispatched actor before its output slots: its [`WgpuReport`].
pub(crate) const READBACK_FIXED: u64 = size_of::<WgpuReport>() as u64;
/// Where the report lives in an actor's scratch area (`RK_SCRATCH_REPORT` words of `actor.wgsl`).
pub(crate) const SCRATCH_REPORT_BYTES: u64 = 160 * 4;

/// The little-endian word at byte `offset` of `bytes`.
pub(crate) fn word(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes"))
}

/// The control block's word `field` (a byte offset) in a copy of a control block.
pub(crate) fn control_word(record: &[u8], field: usize) -> u32 {
    word(record, field)
}

/// The report at the start of `record`.
pub(crate) fn report(record: &[u8]) -> WgpuReport {
    bytemuck::pod_read_unaligned(&record[..size_of::<WgpuReport>()])
}

/// Whether an inbox header (its bytes) says that messages are waiting.
/// K2K messages claimed in an inbox and not yet handled (its ends are free-running counters; a
/// claim whose message is still being written counts).
pub(crate) fn inbox_waiting(header: &[u8]) -> u32 {
    word(header, offset_of!(K2KInboxHeader, tail)).wrapping_sub(word(header, offset_of!(K2KInboxHeader, head)))
}

/// The WGSL declarations of this module's structs (with their `RK_WGPU_*` offset constants).
pub(crate) fn declarations() -> String {
    declare_structs(Language::Wgsl, &[WgpuParams::DESC, WgpuHostLine::DESC, WgpuRoute::DESC, WgpuReport::DESC])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wgsl_declarations_name_every_field_once() {
        let text = declarations();
        for name in ["struct WgpuParams", "struct WgpuHostLine", "struct WgpuRoute"] {
            assert_eq!(text.matches(name).count(), 1, "{name} in\n{text}");
        }
        assert!(text.contains("const RK_WGPU_ROUTE_INBOX_OFFSET: u32 = 16u;"), "{text}");
        assert!(text.contains("const RK_WGPU_PARAMS_LOOP_BUDGET_OFFSET: u32 = 84u;"), "{text}");
    }

    #[test]
    fn a_readback_record_finds_the_words_where_the_layout_puts_them() {
        let mut record = vec![0u8; READBACK_FIXED as usize + 8];
        record[offset_of!(WgpuReport, input_head)..][..4].copy_from_slice(&7u32.to_le_bytes());
        record[offset_of!(WgpuReport, parked)..][..4].copy_from_slice(&3u32.to_le_bytes());
        let report = report(&record);
        assert_eq!((report.input_head, report.parked), (7, 3));
        let mut header = vec![0u8; size_of::<K2KInboxHeader>()];
        header[offset_of!(K2KInboxHeader, tail)..][..4].copy_from_slice(&3u32.to_le_bytes());
        assert!(inbox_waiting(&header) > 0);
    }
}

//! Errors of every RingKernel crate.
//!
//! One enum, [`RingKernelError`], is returned by the runtime API. Each variant carries the offending
//! values so that the message tells the user what happened and what to do next. Decoding problems of
//! a single message have their own enum, [`MessageError`], wrapped by
//! [`RingKernelError::InvalidMessage`].

use std::time::Duration;

use crate::ids::{KernelState, UnknownBackend};

/// Result alias used across RingKernel.
pub type Result<T, E = RingKernelError> = std::result::Result<T, E>;

/// Everything that can go wrong in RingKernel.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RingKernelError {
    /// The requested backend cannot run here; the text says why (no driver, wrong OS, feature off).
    #[error("backend unavailable: {0}")]
    BackendUnavailable(String),

    /// A bounded queue had no free slot; nothing was written. Retry later or use a send with a
    /// timeout.
    #[error("queue full: {queue} holds {capacity} slots and all are in use")]
    QueueFull {
        /// Which queue pushed back (for example `"input ring"` or `"k2k inbox"`).
        queue: &'static str,
        /// Its capacity in slots.
        capacity: u32,
    },

    /// A message slot failed validation.
    #[error("invalid message: {0}")]
    InvalidMessage(#[from] MessageError),

    /// An operation did not complete in time.
    #[error("timed out after {waited:?} waiting for {operation}")]
    Timeout {
        /// What was being waited for.
        operation: &'static str,
        /// How long the caller waited.
        waited: Duration,
    },

    /// No kernel is registered under the requested name.
    #[error("kernel `{requested}` is not registered; registered kernels: [{}]", registered.join(", "))]
    KernelNotFound {
        /// The name that was asked for.
        requested: String,
        /// The names that exist.
        registered: Vec<String>,
    },

    /// The operation is not allowed in the kernel's current state.
    #[error("cannot {operation} kernel `{kernel}` while it is {state:?}")]
    InvalidState {
        /// The kernel concerned.
        kernel: String,
        /// What was attempted (`"activate"`, `"send"`, …).
        operation: &'static str,
        /// The state it was in.
        state: KernelState,
    },

    /// A kernel was used from inside its own `send_with` fill or `receive_with` visitor, which
    /// hold one of its locks: the operation would deadlock, so it is refused and nothing changed.
    /// Finish the fill or visitor first (collect what you need, then act after it returns).
    /// Reading its id, state and metrics from there is fine.
    #[error("cannot {operation} kernel `{kernel}` from inside its own {inside}: it would deadlock")]
    Reentrant {
        /// The kernel concerned.
        kernel: String,
        /// What was attempted: `"receive from"`, or `"send to or change the state of"`.
        operation: &'static str,
        /// Where it was attempted from (`"send_with fill"` or `"receive_with visitor"`).
        inside: &'static str,
    },

    /// Something with a fixed number of places is full: the actor slots of a CUDA pool, the route
    /// entries of a wgpu runtime, a runtime's kernel numbers. Nothing was launched and the kernels
    /// that run go on; `advice` says what frees a place (terminating an actor, a larger setting,
    /// or — kernel numbers are never reused — a new runtime).
    #[error("cannot launch `{kernel}`: all {limit} {what} are in use; {advice}")]
    CapacityExhausted {
        /// The kernel that did not get a place.
        kernel: String,
        /// What ran out, in the plural (`"actor slots of the pool (actors running or ending)"`,
        /// `"route entries of this runtime (one per running actor)"`, `"kernel numbers of this
        /// runtime"`).
        what: &'static str,
        /// How many there are.
        limit: u64,
        /// What to do about it (terminate an actor, or which setting raises the limit).
        advice: &'static str,
    },

    /// A configuration value is out of range.
    #[error("invalid configuration: `{field}` {reason}")]
    InvalidConfig {
        /// The option or field at fault.
        field: &'static str,
        /// Why it was rejected, including the value.
        reason: String,
    },

    /// A kernel failed (handler panic, device fault, watchdog); it no longer processes messages.
    #[error("kernel `{kernel}` faulted: {reason}")]
    KernelFault {
        /// The kernel concerned.
        kernel: String,
        /// What went wrong.
        reason: String,
    },

    /// A kernel's device handler does not compile (CUDA C under NVRTC, WGSL under naga). `log` is
    /// the compiler's output; its line numbers are those of the handler source the user gave,
    /// in a file named after the kernel (`echo.cu:3`). Nothing was launched.
    #[error("kernel `{kernel}` does not compile:\n{log}")]
    Compile {
        /// The kernel whose handler failed to compile.
        kernel: String,
        /// The compiler's log.
        log: String,
    },

    /// The kernel's handler returned an error for this message; the kernel keeps running.
    #[error("kernel `{kernel}` handler failed: {reason}")]
    HandlerError {
        /// The kernel concerned.
        kernel: String,
        /// What the handler reported.
        reason: String,
    },

    /// Memory for a kernel (its rings, inbox or state) could not be allocated; nothing was
    /// launched and the runtime stays usable. Lower the queue capacities or the slot payload size.
    #[error(
        "could not allocate {bytes} bytes for {what}; lower the queue capacity or the slot payload size (or free memory)"
    )]
    AllocationFailed {
        /// What the memory was for.
        what: &'static str,
        /// Bytes requested.
        bytes: usize,
    },

    /// A remote timestamp is further ahead of the local wall clock than the configured maximum.
    #[error(
        "clock skew: remote physical time {remote_ns} ns is {} ns ahead of local {local_ns} ns (max offset {max_offset_ns} ns)",
        remote_ns.saturating_sub(*local_ns)
    )]
    ClockSkew {
        /// Physical time of the received timestamp.
        remote_ns: u64,
        /// Local wall-clock reading.
        local_ns: u64,
        /// The configured maximum offset.
        max_offset_ns: u64,
    },
}

impl From<UnknownBackend> for RingKernelError {
    fn from(error: UnknownBackend) -> Self {
        RingKernelError::InvalidConfig { field: "backend", reason: error.to_string() }
    }
}

/// Why a message slot was rejected by [`crate::message::decode_slot`].
///
/// Each variant maps to a stable numeric code ([`MessageError::code`]) that device code writes to
/// `ControlBlock::last_error`, so host and device report the same problem with the same number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The slot cannot even hold a header.
    #[error("slot of {len} bytes is shorter than the {header_bytes}-byte message header")]
    SlotTooSmall {
        /// Bytes available.
        len: usize,
        /// Bytes a header needs.
        header_bytes: usize,
    },
    /// The magic number does not match; the slot is not a RingKernel message (or is corrupt).
    #[error("bad magic 0x{found:08x} (expected 0x{expected:08x})")]
    BadMagic {
        /// What was read.
        found: u32,
        /// What a valid header holds.
        expected: u32,
    },
    /// The header was written by an incompatible protocol version.
    #[error("unsupported protocol version {found} (this build speaks {supported})")]
    UnsupportedVersion {
        /// Version in the header.
        found: u32,
        /// Version this build understands.
        supported: u32,
    },
    /// Flag bits that this version does not define are set.
    #[error("unknown flag bits 0x{unknown:08x} set in flags 0x{flags:08x}")]
    UnknownFlags {
        /// The whole flags word.
        flags: u32,
        /// The undefined bits.
        unknown: u32,
    },
    /// The priority is outside the one priority scale.
    #[error("priority {value} is out of range (0..={max})")]
    InvalidPriority {
        /// Value read.
        value: u32,
        /// Largest valid value.
        max: u32,
    },
    /// The header claims more payload than the slot can carry.
    #[error("payload of {payload_bytes} bytes does not fit the slot's {capacity_bytes}-byte payload area")]
    PayloadTooLarge {
        /// Claimed payload size.
        payload_bytes: u32,
        /// Payload capacity of the slot.
        capacity_bytes: usize,
    },
    /// The CRC32C of the payload does not match the header.
    #[error("payload checksum mismatch: header says 0x{expected:08x}, payload hashes to 0x{computed:08x}")]
    ChecksumMismatch {
        /// Checksum stored in the header.
        expected: u32,
        /// Checksum of the payload as received.
        computed: u32,
    },
    /// The message's deadline passed before it was handled.
    #[error("deadline {deadline_ns} ns passed {} ns before handling (now {now_ns} ns)", now_ns.saturating_sub(*deadline_ns))]
    DeadlineExpired {
        /// Deadline (physical ns since the Unix epoch).
        deadline_ns: u64,
        /// The time at which it was checked.
        now_ns: u64,
    },
    /// A typed decode expected another message type.
    #[error("message type 0x{found:08x} is not the expected 0x{expected:08x}")]
    WrongMessageType {
        /// The type the decoder was asked for.
        expected: u32,
        /// The type in the header.
        found: u32,
    },
    /// A typed decode found a payload of the wrong size.
    #[error("payload of {found} bytes does not match the {expected}-byte message type")]
    PayloadSizeMismatch {
        /// Bytes the type occupies.
        expected: usize,
        /// Bytes present.
        found: usize,
    },
}

/// Numeric error codes shared with device code (`ControlBlock::last_error`).
///
/// The generated C, MSL and WGSL declare the same values as `RK_ERROR_*` constants.
pub mod codes {
    /// No error.
    pub const NONE: u32 = 0;
    /// [`super::MessageError::SlotTooSmall`].
    pub const SLOT_TOO_SMALL: u32 = 1;
    /// [`super::MessageError::BadMagic`].
    pub const BAD_MAGIC: u32 = 2;
    /// [`super::MessageError::UnsupportedVersion`].
    pub const UNSUPPORTED_VERSION: u32 = 3;
    /// [`super::MessageError::UnknownFlags`].
    pub const UNKNOWN_FLAGS: u32 = 4;
    /// [`super::MessageError::InvalidPriority`].
    pub const INVALID_PRIORITY: u32 = 5;
    /// [`super::MessageError::PayloadTooLarge`].
    pub const PAYLOAD_TOO_LARGE: u32 = 6;
    /// [`super::MessageError::ChecksumMismatch`].
    pub const CHECKSUM_MISMATCH: u32 = 7;
    /// [`super::MessageError::DeadlineExpired`].
    pub const DEADLINE_EXPIRED: u32 = 8;
    /// The device could not write a reply because the output ring was full.
    pub const OUTPUT_FULL: u32 = 9;
    /// A device-side K2K send found the destination inbox full.
    pub const K2K_INBOX_FULL: u32 = 10;
    /// The user handler panicked or the device faulted; the kernel stopped.
    pub const HANDLER_FAULT: u32 = 11;
    /// A received timestamp was further ahead than the clock's maximum offset.
    pub const CLOCK_SKEW: u32 = 12;
    /// The user handler returned an error for one message; the kernel keeps running.
    pub const HANDLER_ERROR: u32 = 13;
    /// [`super::MessageError::WrongMessageType`].
    pub const WRONG_MESSAGE_TYPE: u32 = 14;
    /// [`super::MessageError::PayloadSizeMismatch`].
    pub const PAYLOAD_SIZE_MISMATCH: u32 = 15;

    /// Every code with its name, in numeric order (used by the layout generator).
    pub const ALL: &[(&str, u32)] = &[
        ("NONE", NONE),
        ("SLOT_TOO_SMALL", SLOT_TOO_SMALL),
        ("BAD_MAGIC", BAD_MAGIC),
        ("UNSUPPORTED_VERSION", UNSUPPORTED_VERSION),
        ("UNKNOWN_FLAGS", UNKNOWN_FLAGS),
        ("INVALID_PRIORITY", INVALID_PRIORITY),
        ("PAYLOAD_TOO_LARGE", PAYLOAD_TOO_LARGE),
        ("CHECKSUM_MISMATCH", CHECKSUM_MISMATCH),
        ("DEADLINE_EXPIRED", DEADLINE_EXPIRED),
        ("OUTPUT_FULL", OUTPUT_FULL),
        ("K2K_INBOX_FULL", K2K_INBOX_FULL),
        ("HANDLER_FAULT", HANDLER_FAULT),
        ("CLOCK_SKEW", CLOCK_SKEW),
        ("HANDLER_ERROR", HANDLER_ERROR),
        ("WRONG_MESSAGE_TYPE", WRONG_MESSAGE_TYPE),
        ("PAYLOAD_SIZE_MISMATCH", PAYLOAD_SIZE_MISMATCH),
    ];

    /// The name of a code, or `None` for a value no version defines.
    pub fn name(code: u32) -> Option<&'static str> {
        ALL.iter().find(|(_, c)| *c == code).map(|(n, _)| *n)
    }
}

impl MessageError {
    /// The stable numeric code of this error (see [`codes`]).
    pub fn code(&self) -> u32 {
        match self {
            Self::SlotTooSmall { .. } => codes::SLOT_TOO_SMALL,
            Self::BadMagic { .. } => codes::BAD_MAGIC,
            Self::UnsupportedVersion { .. } => codes::UNSUPPORTED_VERSION,
            Self::UnknownFlags { .. } => codes::UNKNOWN_FLAGS,
            Self::InvalidPriority { .. } => codes::INVALID_PRIORITY,
            Self::PayloadTooLarge { .. } => codes::PAYLOAD_TOO_LARGE,
            Self::ChecksumMismatch { .. } => codes::CHECKSUM_MISMATCH,
            Self::DeadlineExpired { .. } => codes::DEADLINE_EXPIRED,
            Self::WrongMessageType { .. } => codes::WRONG_MESSAGE_TYPE,
            Self::PayloadSizeMismatch { .. } => codes::PAYLOAD_SIZE_MISMATCH,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_not_found_lists_registered_names() {
        let err = RingKernelError::KernelNotFound {
            requested: "ecko".into(),
            registered: vec!["echo".into(), "counter".into()],
        };
        assert_eq!(err.to_string(), "kernel `ecko` is not registered; registered kernels: [echo, counter]");
    }

    #[test]
    fn codes_are_unique_and_named() {
        for (i, (name, code)) in codes::ALL.iter().enumerate() {
            assert_eq!(*code as usize, i, "codes are dense and ordered");
            assert_eq!(codes::name(*code), Some(*name));
        }
        assert_eq!(codes::name(999), None);
    }

    #[test]
    fn message_errors_convert_and_keep_values() {
        let err: RingKernelError = MessageError::BadMagic { found: 0xdead_beef, expected: 1 }.into();
        assert!(err.to_string().contains("0xdeadbeef"), "{err}");
    }

    #[test]
    fn clock_skew_reports_the_distance() {
        let err = RingKernelError::ClockSkew { remote_ns: 1_500, local_ns: 1_000, max_offset_ns: 100 };
        assert!(err.to_string().contains("500 ns ahead"), "{err}");
    }
}

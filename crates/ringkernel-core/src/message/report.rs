//! [`ErrorReport`]: why a kernel did not handle a message, sent back in place of a reply.

use super::identity::{join_u64, split_u64};
use crate::error::{MessageError, RingKernelError, codes};
use crate::layout::ErrorReportHeader;

/// Why a kernel did not handle a message, sent back in place of a reply (the `ERROR` flag set,
/// the same correlation id, type [`ErrorReport::MESSAGE_TYPE`]).
///
/// Payload layout: an [`ErrorReportHeader`] (`code`, reserved, two `[low, high]` values; declared
/// for device code by the layout generator too), then the reason as UTF-8. `code` is one of
/// [`crate::error::codes`]; the values are the code's numbers (for a deadline: the deadline and
/// the time it was checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReport {
    /// What went wrong, one of [`crate::error::codes`].
    pub code: u32,
    /// Numbers that go with the code.
    pub values: [u64; 2],
    /// Human-readable detail.
    pub reason: String,
}

impl ErrorReport {
    /// The message type of error reports.
    pub const MESSAGE_TYPE: u32 = 0xFFFF_FFFE;
    /// Bytes before the reason text: one [`ErrorReportHeader`].
    pub const FIXED_BYTES: usize = size_of::<ErrorReportHeader>();

    /// The report of a message that was not handled because of `error`.
    pub fn from_message_error(error: &MessageError) -> Self {
        let values = match *error {
            MessageError::DeadlineExpired { deadline_ns, now_ns } => [deadline_ns, now_ns],
            _ => [0, 0],
        };
        Self { code: error.code(), values, reason: error.to_string() }
    }

    /// The payload bytes: an [`ErrorReportHeader`] and the reason.
    pub fn encode(&self) -> Vec<u8> {
        let mut fixed: ErrorReportHeader = bytemuck::Zeroable::zeroed();
        fixed.code = self.code;
        fixed.value0 = split_u64(self.values[0]);
        fixed.value1 = split_u64(self.values[1]);
        let mut bytes = Vec::with_capacity(Self::FIXED_BYTES + self.reason.len());
        bytes.extend_from_slice(bytemuck::bytes_of(&fixed));
        bytes.extend_from_slice(self.reason.as_bytes());
        bytes
    }

    /// Reads a report. A payload cut short by a small slot keeps what fits: the code needs 4
    /// bytes, each value 8 more; missing values read as 0 and a missing reason as empty. A payload
    /// too short for the code reads as a handler error saying so.
    pub fn decode(payload: &[u8]) -> Self {
        if payload.len() < 4 {
            return Self {
                code: codes::HANDLER_ERROR,
                values: [0, 0],
                reason: format!("malformed error report of {} bytes", payload.len()),
            };
        }
        let mut fixed: ErrorReportHeader = bytemuck::Zeroable::zeroed();
        let present = payload.len().min(Self::FIXED_BYTES);
        bytemuck::bytes_of_mut(&mut fixed)[..present].copy_from_slice(&payload[..present]);
        Self {
            code: fixed.code,
            values: [join_u64(fixed.value0), join_u64(fixed.value1)],
            reason: String::from_utf8_lossy(payload.get(Self::FIXED_BYTES..).unwrap_or_default()).into_owned(),
        }
    }

    /// The report as the error a caller of `kernel` receives.
    pub fn into_error(self, kernel: &str) -> RingKernelError {
        match self.code {
            codes::DEADLINE_EXPIRED => {
                MessageError::DeadlineExpired { deadline_ns: self.values[0], now_ns: self.values[1] }.into()
            }
            codes::CLOCK_SKEW => {
                RingKernelError::ClockSkew { remote_ns: self.values[0], local_ns: self.values[1], max_offset_ns: 0 }
            }
            codes::HANDLER_FAULT => RingKernelError::KernelFault { kernel: kernel.to_string(), reason: self.reason },
            code => RingKernelError::HandlerError {
                kernel: kernel.to_string(),
                reason: match codes::name(code) {
                    Some(name) if code != codes::HANDLER_ERROR => format!("{} ({name})", self.reason),
                    _ => self.reason,
                },
            },
        }
    }
}

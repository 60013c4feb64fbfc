//! The kernel's lifecycle on the host's side of the control block, typed: the host's own phase
//! ([`HostPhase`], kept in one atomic byte) and the device's report
//! ([`DeviceStop`](crate::control::DeviceStop), the control block's `has_terminated`
//! word) together make the [`KernelState`] users see.

use std::sync::atomic::{AtomicU8, Ordering};

use crate::control::DeviceStop;
use crate::runtime::KernelState;

/// What the host asked of the kernel (or found out about it) last. The device's own report of a
/// stop overrides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub(crate) enum HostPhase {
    /// Launched, not activated yet.
    Launched = 0,
    /// Asked to process messages.
    Active = 1,
    /// Asked to pause.
    Deactivated = 2,
    /// Asked to drain and stop.
    Terminating = 3,
    /// The host found the device breaking the protocol: the kernel failed on the host's side, and
    /// its memory is not trusted any more.
    Faulted = 4,
}

impl HostPhase {
    #[cfg(test)]
    const ALL: [HostPhase; 5] =
        [HostPhase::Launched, HostPhase::Active, HostPhase::Deactivated, HostPhase::Terminating, HostPhase::Faulted];

    /// The phase a lifecycle step asks for, if the host can ask for it (`Terminated` and `Failed`
    /// are reported by the device, or found by the host as [`HostPhase::Faulted`]).
    pub(crate) fn requested(state: KernelState) -> Option<Self> {
        match state {
            KernelState::Launched => Some(Self::Launched),
            KernelState::Active => Some(Self::Active),
            KernelState::Deactivated => Some(Self::Deactivated),
            KernelState::Terminating => Some(Self::Terminating),
            KernelState::Terminated | KernelState::Failed => None,
        }
    }

    /// Whether a kernel in this phase accepts messages (unless its device stopped).
    pub(crate) fn accepts(self) -> bool {
        matches!(self, Self::Launched | Self::Active | Self::Deactivated)
    }

    fn from_byte(byte: u8) -> Self {
        // On every send's state check: a jump table, not a search.
        match byte {
            0 => Self::Launched,
            1 => Self::Active,
            2 => Self::Deactivated,
            3 => Self::Terminating,
            _ => Self::Faulted,
        }
    }
}

/// The state users see, from the host's phase and the device's report.
pub(crate) fn kernel_state(phase: HostPhase, stop: DeviceStop) -> KernelState {
    match (phase, stop) {
        (HostPhase::Faulted, _) => KernelState::Failed,
        (HostPhase::Launched, DeviceStop::Running) => KernelState::Launched,
        (HostPhase::Active, DeviceStop::Running) => KernelState::Active,
        (HostPhase::Deactivated, DeviceStop::Running) => KernelState::Deactivated,
        (HostPhase::Terminating, DeviceStop::Running) => KernelState::Terminating,
        (_, DeviceStop::Terminated) => KernelState::Terminated,
        (_, DeviceStop::Failed | DeviceStop::Undefined(_)) => KernelState::Failed,
    }
}

/// The host's phase in one atomic byte.
#[derive(Debug)]
pub(crate) struct AtomicPhase(AtomicU8);

impl AtomicPhase {
    pub(crate) fn new(phase: HostPhase) -> Self {
        Self(AtomicU8::new(phase as u8))
    }

    pub(crate) fn load(&self) -> HostPhase {
        HostPhase::from_byte(self.0.load(Ordering::Acquire))
    }

    pub(crate) fn store(&self, phase: HostPhase) {
        self.0.store(phase as u8, Ordering::Release);
    }

    /// Moves from `current` to `next` unless another thread moved it meanwhile.
    pub(crate) fn replace(&self, current: HostPhase, next: HostPhase) -> bool {
        self.0.compare_exchange(current as u8, next as u8, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATES: [KernelState; 6] = [
        KernelState::Launched,
        KernelState::Active,
        KernelState::Deactivated,
        KernelState::Terminating,
        KernelState::Terminated,
        KernelState::Failed,
    ];

    /// The words (host phase, device stop) that stand for `state`.
    fn words(state: KernelState) -> Vec<(HostPhase, DeviceStop)> {
        let mut found = Vec::new();
        for phase in HostPhase::ALL {
            for stop in [DeviceStop::Running, DeviceStop::Terminated, DeviceStop::Failed, DeviceStop::Undefined(7)] {
                if kernel_state(phase, stop) == state {
                    found.push((phase, stop));
                }
            }
        }
        found
    }

    #[test]
    fn every_state_round_trips_through_both_sides_of_the_word() {
        for state in STATES {
            // The host asks for a state through its phase while the device runs …
            if let Some(phase) = HostPhase::requested(state) {
                assert_eq!(kernel_state(phase, DeviceStop::Running), state);
            }
            // … and every state has words that stand for it, each read back as that state after
            // going through the atomic byte and the control block's word.
            let words = words(state);
            assert!(!words.is_empty(), "{state:?} has no encoding");
            for (phase, stop) in words {
                let atomic = AtomicPhase::new(HostPhase::Launched);
                atomic.store(phase);
                assert_eq!(kernel_state(atomic.load(), DeviceStop::from_word(stop.word())), state);
            }
        }
        // Terminated and Failed are told apart by the device's word, never conflated on the host.
        assert_eq!(kernel_state(HostPhase::Terminating, DeviceStop::Terminated), KernelState::Terminated);
        assert_eq!(kernel_state(HostPhase::Terminating, DeviceStop::Failed), KernelState::Failed);
        assert_eq!(kernel_state(HostPhase::Faulted, DeviceStop::Terminated), KernelState::Failed);
        for phase in HostPhase::ALL {
            assert_eq!(HostPhase::from_byte(phase as u8), phase);
            assert_eq!(HostPhase::requested(kernel_state(phase, DeviceStop::Running)).unwrap_or(phase), phase);
        }
    }

    #[test]
    fn a_phase_moves_only_from_where_it_was() {
        let phase = AtomicPhase::new(HostPhase::Active);
        assert!(!phase.replace(HostPhase::Launched, HostPhase::Terminating));
        assert_eq!(phase.load(), HostPhase::Active);
        assert!(phase.replace(HostPhase::Active, HostPhase::Deactivated));
        assert_eq!(phase.load(), HostPhase::Deactivated);
    }
}

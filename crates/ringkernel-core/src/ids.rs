//! Names and states that every other module refers to: backends, kernel ids and the kernel
//! lifecycle. A leaf: it imports nothing from this crate, so every other module (the protocol
//! files, errors, the runtime API) can name a kernel state or backend without depending on
//! anything async.

use std::fmt;
use std::str::FromStr;

/// Separates a spec name from an instance name in a kernel id (`"counter#2"`).
pub const INSTANCE_SEPARATOR: char = '#';

/// A compute backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Backend {
    /// The best backend available at run time.
    #[default]
    Auto,
    /// One OS thread per actor; always available; the reference semantics.
    Cpu,
    /// Persistent kernels on NVIDIA GPUs.
    Cuda,
    /// Event-driven dispatches on Vulkan, DX12 or Metal through wgpu.
    Wgpu,
    /// Apple GPUs.
    Metal,
}

impl Backend {
    /// Every concrete backend, in the order `Auto` prefers them.
    pub const CONCRETE: [Backend; 4] = [Backend::Cuda, Backend::Metal, Backend::Wgpu, Backend::Cpu];

    /// Lower-case name, as accepted by [`FromStr`].
    pub fn name(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::Cpu => "cpu",
            Backend::Cuda => "cuda",
            Backend::Wgpu => "wgpu",
            Backend::Metal => "metal",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = UnknownBackend;
    fn from_str(s: &str) -> Result<Self, UnknownBackend> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Backend::Auto),
            "cpu" => Ok(Backend::Cpu),
            "cuda" => Ok(Backend::Cuda),
            "wgpu" => Ok(Backend::Wgpu),
            "metal" => Ok(Backend::Metal),
            _ => Err(UnknownBackend { name: s.to_string() }),
        }
    }
}

/// A backend name that [`Backend::from_str`] does not know. Converts into
/// `RingKernelError::InvalidConfig` (field `backend`) with `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownBackend {
    /// The name that was given.
    pub name: String,
}

impl fmt::Display for UnknownBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown backend `{}`; expected one of auto, cpu, cuda, wgpu, metal", self.name)
    }
}

impl std::error::Error for UnknownBackend {}

/// The name a kernel was launched under.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KernelId(String);

impl KernelId {
    /// A kernel id.
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The registered kernel this id launches: the part before
    /// [`INSTANCE_SEPARATOR`] (`"counter#2"` launches `counter`).
    pub fn spec_name(&self) -> &str {
        self.0.split(INSTANCE_SEPARATOR).next().unwrap_or_default()
    }
}

impl fmt::Display for KernelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for KernelId {
    fn from(name: &str) -> Self {
        Self::new(name)
    }
}

impl From<String> for KernelId {
    fn from(name: String) -> Self {
        Self(name)
    }
}

/// Lifecycle: `Launched → Active ⇄ Deactivated → Terminating → Terminated`, or `Failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KernelState {
    /// Resources exist; not processing yet.
    Launched,
    /// Processing messages.
    Active,
    /// Paused: queue and state kept, nothing processed.
    Deactivated,
    /// Draining what was accepted before stopping.
    Terminating,
    /// Stopped; every accepted message was processed or returned.
    Terminated,
    /// Stopped by a fault (handler panic, device error, watchdog).
    Failed,
}

impl KernelState {
    /// Whether the kernel has stopped for good.
    pub fn is_final(self) -> bool {
        matches!(self, KernelState::Terminated | KernelState::Failed)
    }

    /// Whether moving to `next` is a legal lifecycle step.
    pub fn can_become(self, next: KernelState) -> bool {
        use KernelState::*;
        match (self, next) {
            (_, Failed) => !self.is_final(),
            (Launched, Active) | (Active, Deactivated) | (Deactivated, Active) => true,
            (Launched | Active | Deactivated, Terminating) => true,
            (Terminating, Terminated) => true,
            _ => false,
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn backend_names_round_trip_and_unknown_names_are_explained() {
        for backend in [Backend::Auto, Backend::Cpu, Backend::Cuda, Backend::Wgpu, Backend::Metal] {
            assert_eq!(backend.name().parse::<Backend>().unwrap(), backend);
            assert_eq!(backend.to_string(), backend.name());
        }
        assert_eq!("CUDA".parse::<Backend>().unwrap(), Backend::Cuda);
        let err = "vulkan".parse::<Backend>().unwrap_err().to_string();
        assert_eq!(err, "unknown backend `vulkan`; expected one of auto, cpu, cuda, wgpu, metal");
        assert!(err.contains("`vulkan`") && err.contains("wgpu"), "{err}");
    }

    #[test]
    fn lifecycle_transitions() {
        use KernelState::*;
        assert!(Launched.can_become(Active));
        assert!(Active.can_become(Deactivated) && Deactivated.can_become(Active));
        assert!(Deactivated.can_become(Terminating) && Terminating.can_become(Terminated));
        assert!(Active.can_become(Failed));
        assert!(!Terminated.can_become(Active));
        assert!(!Terminated.can_become(Failed));
        assert!(!Launched.can_become(Terminated), "must pass through Terminating (drain)");
        assert!(Failed.is_final() && Terminated.is_final() && !Active.is_final());
    }
}

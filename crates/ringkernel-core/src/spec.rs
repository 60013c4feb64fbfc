//! Kernel specs by name: what a backend needs to launch one.
//!
//! A [`KernelSpec`] names a kernel and carries its initial state and one handler per backend: a
//! Rust closure for `cpu`, CUDA C for `cuda`, WGSL for `wgpu` and `metal`. Specs are collected in a
//! [`KernelRegistry`]; a runtime launches them by name. The [`builtin`] kernels (`echo`,
//! `counter`) are registered everywhere so that examples, tests and benchmarks share them.
//!
//! ```
//! use ringkernel_core::spec::{KernelRegistry, KernelSpec};
//!
//! let mut registry = KernelRegistry::with_builtins();
//! registry.register(KernelSpec::new("doubler").cpu(|ctx| {
//!     let value: u64 = ctx.payload_as()?;
//!     ctx.reply(1, &(value * 2).to_le_bytes())?;
//!     Ok(())
//! }))?;
//! assert_eq!(registry.names(), ["counter", "doubler", "echo"]);
//! # Ok::<(), ringkernel_core::error::RingKernelError>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::aligned::AlignedBytes;
use crate::error::{Result, RingKernelError};
use crate::handler::{CpuHandler, HandlerContext, HandlerError};
pub use crate::ids::INSTANCE_SEPARATOR;
use crate::ids::KernelId;

/// A kernel by name, with its state and a handler per backend.
#[derive(Clone)]
pub struct KernelSpec {
    name: String,
    initial_state: Vec<u8>,
    cpu: Option<Arc<CpuHandler>>,
    cuda_source: Option<Arc<str>>,
    wgsl_source: Option<Arc<str>>,
}

impl KernelSpec {
    /// A spec with no state and no handlers yet.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), initial_state: Vec::new(), cpu: None, cuda_source: None, wgsl_source: None }
    }

    /// The actor's state: `bytes.len()` bytes, initially `bytes`.
    pub fn with_state_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.initial_state = bytes.into();
        self
    }

    /// The actor's state: a plain-old-data value, initially `value`.
    pub fn with_state<T: bytemuck::Pod>(self, value: T) -> Self {
        self.with_state_bytes(bytemuck::bytes_of(&value).to_vec())
    }

    /// The handler the `cpu` backend runs.
    pub fn cpu(
        mut self,
        handler: impl Fn(&mut HandlerContext<'_>) -> std::result::Result<(), HandlerError> + Send + Sync + 'static,
    ) -> Self {
        self.cpu = Some(Arc::new(handler));
        self
    }

    /// The CUDA C handler the `cuda` backend compiles.
    pub fn cuda(mut self, source: impl Into<String>) -> Self {
        self.cuda_source = Some(source.into().into());
        self
    }

    /// The WGSL handler the `wgpu` and `metal` backends compile.
    pub fn wgsl(mut self, source: impl Into<String>) -> Self {
        self.wgsl_source = Some(source.into().into());
        self
    }

    /// The name it is registered under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bytes of actor state.
    pub fn state_bytes(&self) -> usize {
        self.initial_state.len()
    }

    /// The initial state.
    pub fn initial_state(&self) -> &[u8] {
        &self.initial_state
    }

    /// The CPU handler, if any.
    pub fn cpu_handler(&self) -> Option<&Arc<CpuHandler>> {
        self.cpu.as_ref()
    }

    /// The CUDA source, if any.
    pub fn cuda_source(&self) -> Option<&str> {
        self.cuda_source.as_deref()
    }

    /// The WGSL source, if any.
    pub fn wgsl_source(&self) -> Option<&str> {
        self.wgsl_source.as_deref()
    }

    /// The state a launch starts from: `override_state` if given (it must have the spec's size),
    /// else the spec's initial state.
    ///
    /// # Errors
    /// [`RingKernelError::InvalidConfig`] naming both sizes when they differ;
    /// [`RingKernelError::AllocationFailed`] when the memory is not there.
    pub fn launch_state(&self, override_state: Option<&[u8]>) -> Result<StateBuffer> {
        match override_state {
            None => StateBuffer::from_bytes(&self.initial_state),
            Some(state) if state.len() == self.initial_state.len() => StateBuffer::from_bytes(state),
            Some(state) => Err(RingKernelError::InvalidConfig {
                field: "initial_state",
                reason: format!(
                    "has {} bytes but kernel `{}` declares {} bytes of state",
                    state.len(),
                    self.name,
                    self.initial_state.len()
                ),
            }),
        }
    }
}

impl fmt::Debug for KernelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KernelSpec")
            .field("name", &self.name)
            .field("state_bytes", &self.initial_state.len())
            .field("cpu", &self.cpu.is_some())
            .field("cuda", &self.cuda_source.is_some())
            .field("wgsl", &self.wgsl_source.is_some())
            .finish()
    }
}

/// An actor's state bytes, aligned to [`StateBuffer::ALIGN`] bytes so that a handler can view them
/// in place as any plain-old-data type of that alignment or less.
#[derive(Clone, PartialEq, Eq)]
pub struct StateBuffer {
    bytes: AlignedBytes,
}

impl StateBuffer {
    /// Alignment of the state's first byte.
    pub const ALIGN: usize = AlignedBytes::ALIGN;

    /// A buffer holding a copy of `bytes`.
    ///
    /// # Errors
    /// [`RingKernelError::AllocationFailed`] when the memory is not there.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Ok(Self { bytes: AlignedBytes::copy_of(bytes, "a kernel's state")? })
    }

    /// The state.
    pub fn bytes(&self) -> &[u8] {
        self.bytes.as_slice()
    }

    /// The state, writable.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        self.bytes.as_mut_slice()
    }
}

impl fmt::Debug for StateBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateBuffer").field("len", &self.bytes.len()).finish()
    }
}

/// Kernel specs by name.
#[derive(Debug, Clone, Default)]
pub struct KernelRegistry {
    specs: BTreeMap<String, KernelSpec>,
}

impl KernelRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry holding the [`builtin`] kernels.
    pub fn with_builtins() -> Self {
        let mut registry = Self::new();
        for spec in builtin::all() {
            registry.register(spec).expect("built-in kernel names are distinct and valid");
        }
        registry
    }

    /// Adds a spec.
    ///
    /// # Errors
    /// [`RingKernelError::InvalidConfig`] if the name is empty, contains
    /// [`INSTANCE_SEPARATOR`], or is already registered.
    pub fn register(&mut self, spec: KernelSpec) -> Result<()> {
        let invalid = |reason: String| Err(RingKernelError::InvalidConfig { field: "kernel name", reason });
        if spec.name.is_empty() {
            return invalid("is empty".into());
        }
        if spec.name.contains(INSTANCE_SEPARATOR) {
            return invalid(format!(
                "`{}` contains `{INSTANCE_SEPARATOR}`, which separates instance names at launch",
                spec.name
            ));
        }
        if self.specs.contains_key(&spec.name) {
            return invalid(format!("`{}` is already registered", spec.name));
        }
        self.specs.insert(spec.name.clone(), spec);
        Ok(())
    }

    /// Adds a spec, replacing one of the same name.
    pub fn replace(&mut self, spec: KernelSpec) {
        self.specs.insert(spec.name.clone(), spec);
    }

    /// The spec a kernel id launches: the part of the id before [`INSTANCE_SEPARATOR`].
    ///
    /// # Errors
    /// [`RingKernelError::KernelNotFound`] listing the registered names.
    pub fn resolve(&self, kernel_id: &KernelId) -> Result<&KernelSpec> {
        self.specs.get(kernel_id.spec_name()).ok_or_else(|| RingKernelError::KernelNotFound {
            requested: kernel_id.spec_name().to_string(),
            registered: self.names(),
        })
    }

    /// Registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.specs.keys().cloned().collect()
    }

    /// Every spec, sorted by name.
    pub fn specs(&self) -> impl Iterator<Item = &KernelSpec> {
        self.specs.values()
    }
}

/// Kernels every backend provides under the same names and message types.
pub mod builtin {
    use super::KernelSpec;
    use crate::handler::HandlerError;

    /// Replies to every message with the same type and payload.
    pub const ECHO: &str = "echo";
    /// Adds up little-endian `u64` values and replies with the running total.
    pub const COUNTER: &str = "counter";

    /// `counter` request: the payload is zero or more little-endian `u64` values to add.
    pub const COUNTER_ADD: u32 = 0x0000_C001;
    /// `counter` reply: the payload is the running total, one little-endian `u64`.
    pub const COUNTER_TOTAL: u32 = 0x0000_C002;

    /// `echo` for the `cuda` backend (see the handler ABI in `ringkernel-cuda`).
    pub const ECHO_CUDA: &str = r#"
__device__ void rk_handle(RkContext& ctx) {
    if (rk_reply(ctx, ctx.message_type, ctx.payload, ctx.payload_bytes) != RK_OK) rk_error(ctx, nullptr);
}
"#;

    /// `counter` for the `cuda` backend: the same checks and messages as the CPU closure.
    pub const COUNTER_CUDA: &str = r#"
__device__ void rk_handle(RkContext& ctx) {
    if (ctx.message_type != 0xC001u) {
        rk_error(ctx, "counter accepts message type 0xc001");
        return;
    }
    if (ctx.payload_bytes % 8u != 0u) {
        rk_error(ctx, "counter payload must be whole u64 values");
        return;
    }
    __shared__ unsigned long long total;
    if (threadIdx.x == 0) {
        unsigned long long sum = 0, value = 0;
        for (unsigned int i = 0; i < ctx.payload_bytes / 8u; ++i) {
            memcpy(&value, ctx.payload + 8u * i, 8);
            sum += value;
        }
        memcpy(&value, ctx.state, 8);
        value += sum;
        memcpy(ctx.state, &value, 8);
        total = value;
    }
    __syncthreads();
    if (rk_reply(ctx, 0xC002u, &total, 8u) != RK_OK) rk_error(ctx, nullptr);
}
"#;

    /// `echo` for the `wgpu` and `metal` backends (see the handler ABI in `ringkernel-wgpu`).
    pub const ECHO_WGSL: &str = r#"
fn rk_handle() {
    let len = rk_out_payload();
    if (rk_reply(rk_message_type(), len) != RK_OK) {
        rk_error(RK_SEND_REASON);
    }
}
"#;

    /// `counter` for the `wgpu` and `metal` backends: the same checks and messages as the CPU
    /// closure (the total is a `[low, high]` word pair).
    pub const COUNTER_WGSL: &str = r#"
fn rk_handle() {
    if (rk_message_type() != 0xC001u) {
        rk_error("counter accepts message type 0xc001");
        return;
    }
    let len = rk_payload_len();
    if (len % 8u != 0u) {
        rk_error("counter payload must be whole u64 values");
        return;
    }
    var total = vec2<u32>(rk_state_word(0u), rk_state_word(1u));
    for (var i = 0u; i < len / 8u; i += 1u) {
        total = rk_add64(total, vec2<u32>(rk_payload_word(2u * i), rk_payload_word(2u * i + 1u)));
    }
    rk_set_state_word(0u, total.x);
    rk_set_state_word(1u, total.y);
    rk_out_word(0u, total.x);
    rk_out_word(1u, total.y);
    if (rk_reply(0xC002u, 8u) != RK_OK) {
        rk_error(RK_SEND_REASON);
    }
}
"#;

    /// The `echo` kernel.
    pub fn echo() -> KernelSpec {
        KernelSpec::new(ECHO).cuda(ECHO_CUDA).wgsl(ECHO_WGSL).cpu(|ctx| {
            // The payload borrows the slot, not the context, so it can be sent as it is.
            let (message_type, payload) = (ctx.message_type(), ctx.payload());
            Ok(ctx.reply(message_type, payload)?)
        })
    }

    /// The `counter` kernel: state is the running total (`u64`, wrapping).
    pub fn counter() -> KernelSpec {
        KernelSpec::new(COUNTER).with_state(0u64).cuda(COUNTER_CUDA).wgsl(COUNTER_WGSL).cpu(|ctx| {
            if ctx.message_type() != COUNTER_ADD {
                return Err(HandlerError(format!(
                    "counter accepts message type 0x{COUNTER_ADD:x}, got 0x{:x}",
                    ctx.message_type()
                )));
            }
            let payload = ctx.payload();
            if !payload.len().is_multiple_of(8) {
                return Err(HandlerError(format!(
                    "counter payload must be whole u64 values, got {} bytes",
                    payload.len()
                )));
            }
            let sum = payload
                .chunks_exact(8)
                .map(|chunk| u64::from_le_bytes(chunk.try_into().expect("8 bytes")))
                .fold(0u64, u64::wrapping_add);
            let total = ctx.state::<u64>()?;
            *total = total.wrapping_add(sum);
            let total = *total;
            Ok(ctx.reply(COUNTER_TOTAL, &total.to_le_bytes())?)
        })
    }

    /// Every built-in kernel.
    pub fn all() -> Vec<KernelSpec> {
        vec![echo(), counter()]
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::handler::{Destination, HandlerIo};
    use crate::hlc::HlcTimestamp;
    use crate::layout::MessageHeader;
    use crate::message::{HOST_KERNEL_ID, HeaderBuilder};

    /// Records what a handler delivers.
    #[derive(Default)]
    struct Recorder(Vec<(String, MessageHeader, Vec<u8>)>);

    impl HandlerIo for Recorder {
        fn deliver(&mut self, destination: Destination<'_>, header: MessageHeader, payload: &[u8]) -> Result<()> {
            let to = match destination {
                Destination::Host => "host".to_string(),
                Destination::Kernel(id) => id.to_string(),
                Destination::KernelNumber(n) => format!("#{n}"),
            };
            self.0.push((to, header, payload.to_vec()));
            Ok(())
        }
    }

    fn run(
        spec: &KernelSpec,
        state: &mut [u8],
        header: MessageHeader,
        payload: &[u8],
    ) -> (Recorder, Result<(), HandlerError>) {
        let mut io = Recorder::default();
        let id = KernelId::from(spec.name());
        let mut ctx = HandlerContext::new(&id, &header, payload, HlcTimestamp::default(), state, &mut io);
        let result = spec.cpu_handler().unwrap()(&mut ctx);
        (io, result)
    }

    #[test]
    fn counter_accumulates_and_replies_to_the_sender() {
        let spec = builtin::counter();
        let mut state = spec.launch_state(None).unwrap();
        let mut payload = Vec::new();
        for v in [3u64, 4, u64::MAX] {
            payload.extend_from_slice(&v.to_le_bytes());
        }
        let header = HeaderBuilder::new(builtin::COUNTER_ADD).source_kernel(HOST_KERNEL_ID).build();
        let (io, result) = run(&spec, state.bytes_mut(), header, &payload);
        result.unwrap();
        assert_eq!(u64::from_le_bytes(state.bytes()[..8].try_into().unwrap()), 6, "wrapping sum");
        assert_eq!(io.0.len(), 1);
        assert_eq!(io.0[0].0, "host");
        assert!(io.0[0].1.is_reply());
        assert_eq!(io.0[0].2, 6u64.to_le_bytes());

        let from_kernel = HeaderBuilder::new(builtin::COUNTER_ADD).source_kernel(4).build();
        let (io, _) = run(&spec, state.bytes_mut(), from_kernel, &1u64.to_le_bytes());
        assert_eq!(io.0[0].0, "#4", "replies go back over K2K to a kernel sender");

        let (_, result) = run(&spec, state.bytes_mut(), header, &[1, 2, 3]);
        assert!(result.unwrap_err().0.contains("3 bytes"));
        let (_, result) = run(&spec, state.bytes_mut(), HeaderBuilder::new(9).build(), &[]);
        assert!(result.unwrap_err().0.contains("message type"));
    }

    #[test]
    fn state_buffers_are_aligned_and_exact() {
        for len in [0, 1, 8, 17, 100] {
            let bytes: Vec<u8> = (0..len as u8).collect();
            let mut buffer = StateBuffer::from_bytes(&bytes).unwrap();
            assert_eq!(buffer.bytes(), bytes);
            assert_eq!(buffer.bytes_mut().as_ptr() as usize % StateBuffer::ALIGN, 0);
        }
    }

    #[test]
    fn registry_resolves_instances_and_lists_names() {
        let mut registry = KernelRegistry::with_builtins();
        assert_eq!(registry.resolve(&KernelId::from("echo#7")).unwrap().name(), "echo");
        let err = registry.resolve(&KernelId::from("ecko")).unwrap_err().to_string();
        assert!(err.contains("[counter, echo]"), "{err}");
        assert!(registry.register(builtin::echo()).unwrap_err().to_string().contains("already registered"));
        assert!(registry.register(KernelSpec::new("a#b")).is_err());
        assert!(registry.register(KernelSpec::new("")).is_err());
        let err = builtin::counter().launch_state(Some(&[0; 4])).unwrap_err().to_string();
        assert!(err.contains("4 bytes") && err.contains("8 bytes"), "{err}");
    }
}

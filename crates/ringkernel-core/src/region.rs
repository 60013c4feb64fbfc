//! Memory that host and device share: an abstraction over pointer + length, and what kind of
//! memory it is.
//!
//! Today's implementation is [`HeapRegion`], an aligned, zeroed heap allocation. GPU backends
//! implement [`Region`] for pinned, device-mapped or write-combined host memory, so the same queue
//! code runs over it unchanged; [`MemoryKind`] tells that code which fences the memory needs.

use std::alloc::Layout;
use std::any::Any;
use std::ptr::NonNull;

use crate::error::{Result, RingKernelError};

/// What memory a [`Region`] is, and so what its producers must do before publishing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemoryKind {
    /// Ordinary cached host memory (the CPU backend, tests).
    Heap,
    /// Page-locked host memory, cached on the host, that a device reads and writes over the bus.
    PinnedHost,
    /// Write-combined host memory: host stores are buffered and may reach memory out of order, so
    /// a producer issues a store fence (`sfence` on x86-64) before it publishes an index. Reading
    /// it from the host is very slow: only host-to-device rings belong there.
    WriteCombined,
    /// Device memory mapped into the host's address space (BAR or unified memory): host stores
    /// travel over the bus and are ordered like write-combined stores.
    DeviceMapped,
}

impl MemoryKind {
    /// Whether a producer must fence its slot writes before publishing the index that covers them
    /// (a release store is not enough for write-combined stores).
    pub fn needs_store_fence(self) -> bool {
        matches!(self, MemoryKind::WriteCombined | MemoryKind::DeviceMapped)
    }
}

/// A block of host-addressable memory that other agents (threads, a GPU) may access concurrently.
///
/// # Safety
/// Implementors guarantee that `as_ptr()` is non-null, stays the same, is aligned to at least 64
/// bytes, and is valid for reads and writes of `len()` bytes for as long as the region lives: the
/// pointer carries write provenance over all `len()` bytes (it comes from an allocation or mapping
/// made for writing, never from a shared reference). They also guarantee that nothing but the
/// protocols built on top (through this pointer, or by a device that maps the same memory)
/// accesses it, and that [`Region::kind`] is true of the memory.
pub unsafe trait Region: Any + Send + Sync {
    /// Start of the region.
    fn as_ptr(&self) -> *mut u8;
    /// Length in bytes.
    fn len(&self) -> usize;
    /// Whether the region is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// What memory this is (default: [`MemoryKind::Heap`]).
    fn kind(&self) -> MemoryKind {
        MemoryKind::Heap
    }
}

/// Alignment of every region (a cache line; also what device structs need).
pub const REGION_ALIGN_BYTES: usize = 64;

/// An owned, zero-initialised heap region aligned to [`REGION_ALIGN_BYTES`] (or more).
#[derive(Debug)]
pub struct HeapRegion {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: the region is plain memory owned by this value; every concurrent access to its contents
// goes through atomics or through the single-writer protocols of `queue`, whose types carry their
// own `Send`/`Sync` reasoning.
unsafe impl Send for HeapRegion {}
// SAFETY: as above; `&HeapRegion` only hands out the raw pointer.
unsafe impl Sync for HeapRegion {}

impl HeapRegion {
    /// Allocates `len` zeroed bytes aligned to `align` (a power of two; raised to at least 64).
    ///
    /// # Errors
    /// [`RingKernelError::InvalidConfig`] for a zero length or an invalid alignment or size;
    /// [`RingKernelError::AllocationFailed`] when the allocator has no such block (the process
    /// carries on).
    pub fn zeroed(len: usize, align: usize) -> Result<Self> {
        if len == 0 {
            return Err(RingKernelError::InvalidConfig { field: "len", reason: "must be positive, got 0".into() });
        }
        if !align.is_power_of_two() {
            return Err(RingKernelError::InvalidConfig {
                field: "align",
                reason: format!("must be a power of two, got {align}"),
            });
        }
        let layout = Layout::from_size_align(len, align.max(REGION_ALIGN_BYTES)).map_err(|e| {
            RingKernelError::InvalidConfig { field: "align", reason: format!("{len} bytes aligned to {align}: {e}") }
        })?;
        // SAFETY: `layout` has a non-zero size.
        let raw = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(raw)
            .ok_or(RingKernelError::AllocationFailed { what: "a shared memory region", bytes: len })?;
        Ok(Self { ptr, layout })
    }
}

impl Drop for HeapRegion {
    fn drop(&mut self) {
        // SAFETY: allocated in `zeroed` with this exact layout, freed once.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

// SAFETY: the pointer comes from a live allocation of `layout.size()` bytes aligned to at least 64,
// freed only on drop.
unsafe impl Region for HeapRegion {
    fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
    fn len(&self) -> usize {
        self.layout.size()
    }
}

/// Keeps the memory behind raw pointers alive.
pub(crate) type Owner = std::sync::Arc<dyn Any + Send + Sync>;

/// Checks that `bytes` at `offset` lie inside `region` and that the offset is aligned; returns the
/// start pointer.
pub(crate) fn subrange(
    region: &dyn Region,
    offset: usize,
    bytes: usize,
    align: usize,
    what: &'static str,
) -> Result<NonNull<u8>> {
    let end = offset.checked_add(bytes);
    if end.is_none_or(|end| end > region.len()) {
        return Err(RingKernelError::InvalidConfig {
            field: what,
            reason: format!("{bytes} bytes at offset {offset} overrun a region of {} bytes", region.len()),
        });
    }
    if !offset.is_multiple_of(align) {
        return Err(RingKernelError::InvalidConfig {
            field: what,
            reason: format!("offset {offset} is not a multiple of {align}"),
        });
    }
    // SAFETY: `offset + bytes <= len`, so the result stays inside (or one past) the allocation,
    // and the region's pointer is non-null.
    Ok(unsafe { NonNull::new_unchecked(region.as_ptr().add(offset)) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_region_is_zeroed_and_aligned() {
        let region = HeapRegion::zeroed(1000, 16).unwrap();
        assert_eq!(region.len(), 1000);
        assert_eq!(region.as_ptr() as usize % REGION_ALIGN_BYTES, 0);
        // SAFETY: the region is live, 1000 bytes, and nothing else uses it.
        let bytes = unsafe { std::slice::from_raw_parts(region.as_ptr(), region.len()) };
        assert!(bytes.iter().all(|&b| b == 0));
    }

    #[test]
    fn bad_requests_are_typed_errors() {
        assert!(HeapRegion::zeroed(0, 64).is_err());
        assert!(HeapRegion::zeroed(64, 3).is_err());
        let region = HeapRegion::zeroed(128, 64).unwrap();
        assert!(subrange(&region, 64, 64, 64, "x").is_ok());
        let err = subrange(&region, 64, 65, 64, "x").unwrap_err().to_string();
        assert!(err.contains("overrun"), "{err}");
        assert!(subrange(&region, 8, 16, 16, "x").unwrap_err().to_string().contains("multiple of 16"));
        assert!(subrange(&region, usize::MAX, 2, 1, "x").is_err());
        assert_eq!(region.kind(), MemoryKind::Heap);
    }

    /// An allocation the machine cannot hold is a typed error, not an abort.
    #[test]
    #[cfg_attr(miri, ignore = "miri reports huge allocations as unsupported instead of failing them")]
    fn impossible_allocations_fail_with_a_typed_error() {
        let err = HeapRegion::zeroed(1 << 46, 64).unwrap_err();
        assert!(matches!(err, RingKernelError::AllocationFailed { bytes, .. } if bytes == 1 << 46), "{err}");
        assert!(MemoryKind::WriteCombined.needs_store_fence() && !MemoryKind::Heap.needs_store_fence());
    }
}

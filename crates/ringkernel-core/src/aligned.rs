//! A heap buffer of bytes aligned to 16 (in fact 64), allocated fallibly and zeroed lazily: actor
//! state and private copies of message slots live in one, so that handlers can view them as any
//! plain-old-data type of that alignment or less, so that an allocation too large for the machine
//! is a typed error rather than an abort, and so that a large buffer costs nothing until used.

use crate::error::{Result, RingKernelError};
use crate::region::{HeapRegion, Region};

/// `len` zero-initialised bytes whose first byte is 16-byte aligned.
pub struct AlignedBytes {
    /// `None` for zero bytes (a region cannot be empty).
    region: Option<HeapRegion>,
    len: usize,
}

impl AlignedBytes {
    /// Alignment of the first byte.
    pub const ALIGN: usize = 16;

    /// `len` zero bytes.
    ///
    /// # Errors
    /// [`RingKernelError::AllocationFailed`] naming `what` when the memory is not there.
    pub fn zeroed(len: usize, what: &'static str) -> Result<Self> {
        if len == 0 {
            return Ok(Self { region: None, len });
        }
        let region = HeapRegion::zeroed(len, Self::ALIGN).map_err(|error| match error {
            RingKernelError::InvalidConfig { .. } | RingKernelError::AllocationFailed { .. } => {
                RingKernelError::AllocationFailed { what, bytes: len }
            }
            other => other,
        })?;
        Ok(Self { region: Some(region), len })
    }

    /// A copy of `bytes`.
    ///
    /// # Errors
    /// As [`AlignedBytes::zeroed`].
    pub fn copy_of(bytes: &[u8], what: &'static str) -> Result<Self> {
        let mut buffer = Self::zeroed(bytes.len(), what)?;
        buffer.as_mut_slice().copy_from_slice(bytes);
        Ok(buffer)
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        match &self.region {
            // SAFETY: the region is a live, initialised (zeroed) allocation of at least `len` bytes
            // owned by `self`; it is only ever reached through `self`, so the borrow rules of
            // `&self` / `&mut self` apply to it.
            Some(region) => unsafe { std::slice::from_raw_parts(region.as_ptr(), self.len) },
            // SAFETY: an empty slice at a dangling, non-null, 16-aligned address (so that even an
            // empty state keeps the alignment promise).
            None => unsafe { std::slice::from_raw_parts(Self::empty(), 0) },
        }
    }

    /// The bytes, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        match &mut self.region {
            // SAFETY: as in `as_slice`; `&mut self` makes this the only borrow.
            Some(region) => unsafe { std::slice::from_raw_parts_mut(region.as_ptr(), self.len) },
            // SAFETY: as in `as_slice`.
            None => unsafe { std::slice::from_raw_parts_mut(Self::empty(), 0) },
        }
    }

    /// A dangling, non-null address aligned to [`Self::ALIGN`].
    fn empty() -> *mut u8 {
        #[repr(align(16))]
        struct Align16;
        std::ptr::NonNull::<Align16>::dangling().as_ptr().cast()
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Clone for AlignedBytes {
    /// A copy. Panics like any allocation when the memory is not there; use
    /// [`AlignedBytes::copy_of`] to get an error instead.
    fn clone(&self) -> Self {
        Self::copy_of(self.as_slice(), "a copy of aligned bytes").unwrap_or_else(|error| panic!("{error}"))
    }
}

impl PartialEq for AlignedBytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for AlignedBytes {}

impl std::fmt::Debug for AlignedBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlignedBytes").field("len", &self.len).finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn aligned_exact_and_fallible() {
        for len in [0, 1, 8, 17, 100] {
            let bytes: Vec<u8> = (0..len as u8).collect();
            let mut buffer = AlignedBytes::copy_of(&bytes, "test").unwrap();
            assert_eq!(buffer.as_slice(), bytes);
            assert_eq!(buffer.len(), len);
            assert_eq!(buffer.as_mut_slice().as_ptr() as usize % AlignedBytes::ALIGN, 0);
        }
        assert_eq!(AlignedBytes::copy_of(b"ab", "test").unwrap().clone().as_slice(), b"ab");
    }

    #[test]
    #[cfg_attr(miri, ignore = "miri reports huge allocations as unsupported instead of failing them")]
    fn a_buffer_the_machine_cannot_hold_is_a_typed_error() {
        let err = AlignedBytes::zeroed(usize::MAX / 2, "a huge state").unwrap_err().to_string();
        assert!(err.contains("a huge state"), "{err}");
    }
}

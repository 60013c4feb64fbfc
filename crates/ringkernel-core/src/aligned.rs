//! A heap buffer of bytes aligned to 16, allocated fallibly: actor state and private copies of
//! message slots live in one, so that handlers can view them as any plain-old-data type of that
//! alignment or less, and so that an allocation too large for the machine is a typed error rather
//! than an abort.

use crate::error::{Result, RingKernelError};

#[repr(C, align(16))]
#[derive(Clone, Copy, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
struct Chunk([u8; 16]);

/// `len` zero-initialised bytes whose first byte is 16-byte aligned.
#[derive(Clone, PartialEq, Eq)]
pub struct AlignedBytes {
    chunks: Vec<Chunk>,
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
        let mut chunks = Vec::new();
        chunks
            .try_reserve_exact(len.div_ceil(16))
            .map_err(|_| RingKernelError::AllocationFailed { what, bytes: len })?;
        chunks.resize(len.div_ceil(16), Chunk([0; 16]));
        Ok(Self { chunks, len })
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
        &bytemuck::cast_slice(&self.chunks)[..self.len]
    }

    /// The bytes, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut bytemuck::cast_slice_mut(&mut self.chunks)[..self.len]
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
        let err = AlignedBytes::zeroed(usize::MAX / 2, "a huge state").unwrap_err().to_string();
        assert!(err.contains("a huge state"), "{err}");
    }
}

//! The arena's allocator: every actor's block lives in one storage buffer (so that a K2K send is
//! a store into the receiver's inbox), which grows as actors launch and shrinks as they end.
//!
//! The allocator only does arithmetic: it says how long the buffer must be ([`Arena::len`]); the
//! pump makes the buffer that long (a copy into a new buffer) before the next round uploads
//! anything.

/// Alignment of every block (and of the buffer's length).
pub(crate) const ARENA_ALIGN: u64 = 256;

/// First-fit allocator over `[start, len)`, growing `len` by doubling up to `limit`.
#[derive(Debug)]
pub(crate) struct Arena {
    /// Free ranges (offset, len), sorted by offset and merged; the last one may end at `len`.
    free: Vec<(u64, u64)>,
    /// What the buffer must hold now.
    len: u64,
    /// The smallest length (the configured arena size).
    initial: u64,
    /// The largest length (the adapter's largest storage binding and buffer).
    limit: u64,
}

/// Why an allocation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refused {
    /// Bytes asked for (aligned).
    pub bytes: u64,
    /// The largest length the arena may have.
    pub limit: u64,
    /// Bytes in use when it was refused.
    pub used: u64,
}

impl Arena {
    /// An arena whose first `start` bytes are reserved, `initial` bytes long, growing to `limit`.
    pub(crate) fn new(start: u64, initial: u64, limit: u64) -> Self {
        let limit = (limit / ARENA_ALIGN * ARENA_ALIGN).max(initial);
        Self { free: vec![(start, initial - start)], len: initial, initial, limit }
    }

    /// The length the buffer must have.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The largest length the arena may grow to.
    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes in blocks (the reserved start included).
    pub(crate) fn used(&self) -> u64 {
        self.len - self.free.iter().map(|&(_, l)| l).sum::<u64>()
    }

    /// A block of `bytes`, growing the arena when no free range holds it.
    pub(crate) fn alloc(&mut self, bytes: u64) -> Result<u64, Refused> {
        let bytes = bytes.next_multiple_of(ARENA_ALIGN);
        if let Some(i) = self.free.iter().position(|&(_, len)| len >= bytes) {
            let (offset, len) = self.free[i];
            if len == bytes {
                self.free.remove(i);
            } else {
                self.free[i] = (offset + bytes, len - bytes);
            }
            return Ok(offset);
        }
        // Grow: the new block starts at the free tail, or at the old end.
        let start = match self.free.last() {
            Some(&(offset, len)) if offset + len == self.len => offset,
            _ => self.len,
        };
        let needed = start + bytes;
        if needed > self.limit {
            return Err(Refused { bytes, limit: self.limit, used: self.used() });
        }
        let mut len = self.len;
        while len < needed {
            len = len.saturating_mul(2);
        }
        let len = len.min(self.limit);
        if start < self.len {
            self.free.pop();
        }
        if needed < len {
            self.free.push((needed, len - needed));
        }
        self.len = len;
        Ok(start)
    }

    /// Frees a block; halves the arena while its upper half is free and it stays at least
    /// `initial` long.
    pub(crate) fn release(&mut self, offset: u64, bytes: u64) {
        let bytes = bytes.next_multiple_of(ARENA_ALIGN);
        let i = self.free.partition_point(|&(o, _)| o < offset);
        self.free.insert(i, (offset, bytes));
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(self.free.len());
        for &(o, l) in &self.free {
            match merged.last_mut() {
                Some((mo, ml)) if *mo + *ml == o => *ml += l,
                _ => merged.push((o, l)),
            }
        }
        self.free = merged;
        while self.len > self.initial {
            let half = (self.len / 2).next_multiple_of(ARENA_ALIGN).max(self.initial);
            match self.free.last_mut() {
                Some((o, l)) if *o + *l == self.len && *o <= half => {
                    *l = half - *o;
                    if *l == 0 {
                        self.free.pop();
                    }
                    self.len = half;
                }
                _ => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn blocks_fit_first_then_the_arena_doubles_up_to_its_limit() {
        let mut arena = Arena::new(ARENA_ALIGN, 4 * MIB, 40 * MIB);
        let a = arena.alloc(3 * MIB).unwrap();
        assert_eq!(a, ARENA_ALIGN);
        assert_eq!(arena.len(), 4 * MIB);
        let b = arena.alloc(3 * MIB).unwrap();
        assert_eq!(b, ARENA_ALIGN + 3 * MIB, "the new block continues the free tail");
        assert_eq!(arena.len(), 8 * MIB);
        let c = arena.alloc(20 * MIB).unwrap();
        assert_eq!(arena.len(), 32 * MIB);
        let refused = arena.alloc(15 * MIB).unwrap_err();
        assert_eq!(refused.limit, 40 * MIB);
        let d = arena.alloc(6 * MIB).unwrap();
        assert_eq!(arena.len(), 40 * MIB, "capped at the limit, not doubled past it");
        for (offset, bytes) in [(a, 3 * MIB), (b, 3 * MIB), (c, 20 * MIB), (d, 6 * MIB)] {
            arena.release(offset, bytes);
        }
        assert_eq!(arena.len(), 4 * MIB, "all freed: back to the initial size");
        assert_eq!(arena.used(), ARENA_ALIGN);
    }

    #[test]
    fn a_block_near_the_end_keeps_the_arena_long() {
        let mut arena = Arena::new(0, MIB, 64 * MIB);
        let blocks: Vec<u64> = (0..16).map(|_| arena.alloc(MIB).unwrap()).collect();
        assert_eq!(arena.len(), 16 * MIB);
        for &b in &blocks[..15] {
            arena.release(b, MIB);
        }
        assert_eq!(arena.len(), 16 * MIB, "the last block still lives at the end");
        arena.release(blocks[15], MIB);
        assert_eq!(arena.len(), MIB);
        assert_eq!(arena.alloc(MIB).unwrap(), 0);
    }

    #[test]
    fn freed_ranges_merge_and_are_reused() {
        let mut arena = Arena::new(0, 8 * ARENA_ALIGN, 8 * ARENA_ALIGN);
        let a = arena.alloc(ARENA_ALIGN).unwrap();
        let b = arena.alloc(ARENA_ALIGN).unwrap();
        let c = arena.alloc(1).unwrap();
        arena.release(a, ARENA_ALIGN);
        arena.release(b, ARENA_ALIGN);
        assert_eq!(arena.alloc(2 * ARENA_ALIGN).unwrap(), a, "a and b merged");
        arena.release(c, 1);
        assert_eq!(arena.used(), 2 * ARENA_ALIGN);
    }
}

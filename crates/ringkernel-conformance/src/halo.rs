//! Helpers of the halo exchange tests every backend runs: a deterministic field and a bit-exact
//! comparison that names the first differing cell.

/// `n` cells from a xorshift generator seeded with `seed`, in [-1000, 1703).
pub fn random_cells(n: usize, seed: u32) -> Vec<f32> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x % 100_000) as f32 / 37.0 - 1000.0
        })
        .collect()
}

/// Panics naming `what` and the first cell whose bits differ from the reference's.
pub fn assert_bits(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    if let Some(i) = (0..got.len()).find(|&i| got[i].to_bits() != want[i].to_bits()) {
        panic!("{what}: cell {i} is {} but the reference has {}", got[i], want[i]);
    }
}

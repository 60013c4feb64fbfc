#![allow(missing_docs)] // criterion_group! generates an undocumented public function.
//! Criterion: RingKernel's SPSC ring against rtrb and crossbeam's ArrayQueue, 64-byte messages,
//! same run. `cargo bench -p ringkernel-bench --bench queue`.
//!
//! Percentiles and the JSON record come from `cargo run --release -p ringkernel-bench --bin
//! queue_report`, which runs the same scenarios (they live in the crate's library).

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ringkernel_bench::{Queue, ping_pong, throughput};

const MESSAGES: u64 = 1 << 20;

fn bench_throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("spsc_throughput_64B");
    group.throughput(Throughput::Elements(MESSAGES));
    group.sample_size(20);
    for queue in Queue::ALL {
        group.bench_function(queue.name(), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| throughput(queue, MESSAGES)).sum::<Duration>())
        });
    }
    group.finish();
}

fn bench_ping_pong(c: &mut Criterion) {
    let mut group = c.benchmark_group("spsc_ping_pong_64B");
    group.throughput(Throughput::Elements(1));
    for queue in [Queue::RingKernel, Queue::Rtrb, Queue::RtrbAligned, Queue::CrossbeamArrayQueue] {
        group.bench_function(queue.name(), |b| {
            b.iter_custom(|iters| {
                let total: u64 = ping_pong(queue, iters as usize).iter().sum();
                Duration::from_nanos(total)
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = bench_throughput, bench_ping_pong
}
criterion_main!(benches);

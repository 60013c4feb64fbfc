//! The specification's usage, end to end: launch a kernel, activate it, send, receive, terminate.
//!
//! ```text
//! cargo run --release -p ringkernel --example seed_usage
//! ```

use std::time::Duration;

use ringkernel::prelude::*;

#[tokio::main]
async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let runtime = RingKernel::builder().backend(Backend::Auto).build().await?;
    println!("backend: {}", runtime.backend());

    let kernel = runtime.launch("counter", Default::default()).await?;
    kernel.activate().await?;

    for value in [5u64, 10, 27] {
        kernel.send(Envelope::new(builtin::COUNTER_ADD, value.to_le_bytes())).await?;
    }
    for _ in 0..3 {
        let reply = kernel.receive_timeout(Duration::from_secs(5)).await?;
        let total = u64::from_le_bytes(reply.payload.as_slice().try_into()?);
        println!("running total {total} (stamped {})", reply.header.timestamp());
    }

    kernel.terminate().await?;
    let metrics = kernel.metrics();
    println!(
        "state {:?}: {} sent, {} processed, {} in flight",
        kernel.state(),
        metrics.messages_sent,
        metrics.messages_processed,
        metrics.messages_in_flight
    );
    runtime.shutdown().await?;
    Ok(())
}

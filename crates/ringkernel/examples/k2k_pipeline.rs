//! Two actors in a pipeline: the host sends readings to `scale`, which forwards each one kernel
//! to kernel (K2K) to `threshold`, which reports readings above a limit back to the host. The
//! hybrid logical clock timestamps show the causal order across both hops.
//!
//! ```text
//! cargo run --release -p ringkernel --example k2k_pipeline
//! ```

use std::time::Duration;

use ringkernel::prelude::*;

#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable, RingMessage)]
struct Reading {
    sensor: u32,
    _pad: u32,
    value: f64,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable, RingMessage)]
struct Alarm {
    sensor: u32,
    /// How many readings `threshold` has seen so far (its state).
    seen: u32,
    value: f64,
}

const LIMIT: f64 = 50.0;

#[tokio::main]
async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let ring = RingKernel::builder()
        .register(KernelSpec::new("scale").cpu(|ctx| {
            let mut reading: Reading = ctx.message()?;
            reading.value *= 1.8; // calibrate
            Ok(ctx.send_message_to(&KernelId::from("threshold"), &reading)?)
        }))
        .register(KernelSpec::new("threshold").with_state(0u32).cpu(|ctx| {
            let reading: Reading = ctx.message()?;
            let seen = ctx.state::<u32>()?;
            *seen += 1;
            let seen = *seen;
            if reading.value > LIMIT {
                ctx.emit(
                    Alarm::MESSAGE_TYPE,
                    bytemuck::bytes_of(&Alarm { sensor: reading.sensor, seen, value: reading.value }),
                )?;
            }
            Ok(())
        }))
        .build()
        .await?;
    let options = LaunchOptions::default().with_auto_activate(true);
    let threshold = ring.launch("threshold", options.clone()).await?;
    let scale = ring.launch("scale", options).await?;

    let readings = [12.0, 31.5, 40.0, 8.25, 29.0];
    for (sensor, value) in readings.iter().enumerate() {
        scale.send_message(&Reading { sensor: sensor as u32, _pad: 0, value: *value }).await?;
    }
    let expected = readings.iter().filter(|v| **v * 1.8 > LIMIT).count();
    for _ in 0..expected {
        let envelope = threshold.receive_timeout(Duration::from_secs(5)).await?;
        let alarm: Alarm = envelope.to_message()?;
        println!(
            "alarm: sensor {} at {:.1} after {} readings (stamped {})",
            alarm.sensor,
            alarm.value,
            alarm.seen,
            envelope.header.timestamp()
        );
    }
    ring.shutdown().await?;
    let (s, t) = (scale.metrics(), threshold.metrics());
    println!("scale handled {}, threshold handled {}, alarms {expected}", s.messages_processed, t.messages_processed);
    Ok(())
}

//! Each per-message cost the host engine removed, measured on its own against the variant that
//! pays it, interleaved over repeats in one run (see `ringkernel_bench::costs`). Prints medians and
//! optionally writes JSON.
//!
//! ```text
//! cargo run --release -p ringkernel-bench --bin cost_report -- [--repeats 7] [--json PATH]
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

use ringkernel_bench::{costs, machine_description, median};
use serde_json::json;

/// Name, unit, what "with" means, what "without" means, the samples of each.
type Row = (&'static str, &'static str, &'static str, &'static str, Vec<f64>, Vec<f64>);

fn main() {
    let mut repeats = 7usize;
    let mut json_path = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--repeats" => {
                repeats = args.next().and_then(|v| v.parse().ok()).filter(|n| *n > 0).unwrap_or_else(|| usage())
            }
            "--json" => json_path = Some(args.next().unwrap_or_else(|| usage())),
            _ => usage(),
        }
    }
    let mut rows: Vec<Row> = vec![
        (
            "wall clock",
            "ns/message",
            "a clock read per message (tick)",
            "one per batch of 64 (tick_many)",
            vec![],
            vec![],
        ),
        (
            "allocation",
            "ns/message",
            "from an Envelope, into an Envelope",
            "zero-copy: written in place, viewed",
            vec![],
            vec![],
        ),
        (
            "header padding",
            "ns/message",
            "encode_slot, padding checked",
            "seal_slot into a ring zeroed at creation",
            vec![],
            vec![],
        ),
        ("header lines", "M msg/s", "consumer copies 3 lines (used header)", "2 lines (hot line only)", vec![], vec![]),
        ("engine call()", "ns", "-", "host engine CPU per call, device inline", vec![], vec![]),
        ("engine send+receive", "ns/message", "-", "host engine CPU per envelope send + receive", vec![], vec![]),
        ("engine zero-copy", "ns/message", "-", "host engine CPU per message, batches of 64", vec![], vec![]),
    ];
    // Warm-up, then interleave every cost within each repeat so drift hits all alike.
    costs::engine(20_000);
    for repeat in 0..repeats {
        let measured = [
            costs::wall_clock(2_000_000),
            costs::allocation(2_000_000),
            costs::padding(2_000_000),
            costs::header_lines(2_000_000),
        ];
        for (row, (with, without)) in rows.iter_mut().zip(measured) {
            row.4.push(with);
            row.5.push(without);
        }
        let (call, send_receive, zero_copy) = costs::engine(200_000);
        for (row, value) in rows[4..].iter_mut().zip([call, send_receive, zero_copy]) {
            row.5.push(value);
        }
        eprintln!("repeat {}/{repeats} done", repeat + 1);
    }
    println!("{repeats} repeats, medians, {}", machine_description());
    println!("{:<22} {:>11} {:>11}  {:<12} with / without", "cost", "with", "without", "unit");
    let mut records = Vec::new();
    for (name, unit, with_what, without_what, mut with, mut without) in rows {
        let without_median = median(&mut without);
        let with_median = (!with.is_empty()).then(|| median(&mut with));
        match with_median {
            Some(w) => println!("{name:<22} {w:>11.2} {without_median:>11.2}  {unit:<12} {with_what} / {without_what}"),
            None => println!("{name:<22} {:>11} {without_median:>11.2}  {unit:<12} {without_what}", "-"),
        }
        records.push(json!({
            "cost": name, "unit": unit, "with": with_what, "without": without_what,
            "with_median": with_median, "without_median": without_median,
            "with_samples": with, "without_samples": without,
        }));
    }
    if let Some(path) = json_path {
        let record = json!({
            "benchmark": "host_engine_costs",
            "unix_time_s": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            "machine": machine_description(),
            "commit": std::env::var("RINGKERNEL_COMMIT").unwrap_or_else(|_| "unknown".into()),
            "repeats": repeats,
            "results": records,
        });
        std::fs::write(&path, serde_json::to_string_pretty(&record).expect("serialisable") + "\n")
            .unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
        eprintln!("wrote {path}");
    }
}

fn usage() -> ! {
    eprintln!("usage: cost_report [--repeats N] [--json PATH]");
    std::process::exit(2)
}

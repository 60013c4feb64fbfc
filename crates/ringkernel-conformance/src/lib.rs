//! # ringkernel-conformance
//!
//! One suite, run by every backend against the same kernels and inputs, so that every backend
//! behaves like the CPU reference. A backend's test file names an async constructor and gets one
//! test per check (as `crates/ringkernel-cpu/tests/conformance.rs` does):
//!
//! ```text
//! async fn make(registry: KernelRegistry) -> ringkernel_core::Result<Arc<dyn RingKernelRuntime>> {
//!     Ok(Arc::new(CpuRuntime::new(registry)))
//! }
//! ringkernel_conformance::conformance_tests!(make);
//! ```
//!
//! Each check launches kernels from [`registry`] (the built-ins plus the test kernels in
//! [`kernels`]), drives them through the public runtime API only, and panics with a message that
//! names what differed.

pub mod checks;
pub mod halo;
pub mod kernels;

pub use kernels::registry;

/// One `#[tokio::test]` per conformance check, each on a fresh runtime from `$make`, an async fn
/// taking a [`ringkernel_core::kernel::KernelRegistry`] and returning
/// `Result<Arc<dyn RingKernelRuntime>>`. With `skip_if = f`, each test first calls
/// `f() -> Option<String>` and, given a reason, prints `SKIPPED <check>: <reason>` and passes (a
/// backend whose hardware is absent; the backend's CI makes absence a failure instead). With
/// `slow_skip_if = g` as well, the checks that use the `slow` kernel (a long loop per message)
/// ask `g` instead (a backend mode whose driver bounds loop nests cannot run them).
#[macro_export]
macro_rules! conformance_tests {
    ($make:path) => {
        fn __conformance_always_runs() -> Option<String> {
            None
        }
        $crate::conformance_tests!($make, skip_if = __conformance_always_runs);
    };
    ($make:path, skip_if = $skip:path) => {
        $crate::conformance_tests!($make, skip_if = $skip, slow_skip_if = $skip);
    };
    ($make:path, skip_if = $skip:path, slow_skip_if = $slow:path) => {
        $crate::conformance_tests!(@each $make, $slow;
            deactivate_stops_handling_before_it_returns,
            deactivate_takes_effect_before_queued_messages,
        );
        $crate::conformance_tests!(@each $make, $skip;
            lifecycle,
            unknown_kernel_lists_registered_names,
            duplicate_launch_is_refused_and_instances_are_allowed,
            echo_and_counter_on_random_messages,
            per_sender_order_is_kept,
            concurrent_calls_get_their_own_replies,
            late_reply_of_a_timed_out_call_is_receivable,
            typed_messages_round_trip,
            k2k_pipeline_preserves_causality,
            k2k_fan_in_loses_nothing,
            full_queue_pushes_back,
            batches_keep_order_and_push_back,
            deadline_expiry_is_reported_not_handled,
            bad_slot_data_is_counted_and_skipped,
            handler_error_is_returned_and_kernel_continues,
            handler_panic_is_isolated,
            terminate_with_messages_in_flight_loses_nothing,
            runtime_lists_and_totals,
            raw_slots_are_checked_and_never_replay_stale_bytes,
            a_call_returns_its_reply_not_an_earlier_message_with_its_id,
            looping_callers_leave_room_for_other_tasks,
            launch_options_memory_cannot_hold_are_typed_errors,
            zero_copy_sends_and_receives,
        );
    };
    (@each $make:path, $skip:path; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                if let Some(reason) = $skip() {
                    eprintln!("SKIPPED {}: {reason}", stringify!($check));
                    return;
                }
                let runtime = $make($crate::registry()).await.expect("the runtime under test starts");
                $crate::checks::$check(runtime.clone()).await;
                runtime.shutdown().await.expect("shutdown succeeds");
            }
        )*
    };
}

//! Crash injection for tests: with the `fault-injection` feature, the N-th call of
//! [`point`] in a process aborts it when `PORTCTL_FAULT_AT=N` is set. Without the feature,
//! [`point`] does nothing.

#[cfg(feature = "fault-injection")]
pub fn point(name: &str) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let n = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
    if std::env::var("PORTCTL_FAULT_AT")
        .ok()
        .and_then(|v| v.parse().ok())
        == Some(n)
    {
        eprintln!("portctl: injected crash at step {n} ({name})");
        std::process::abort();
    }
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn point(_name: &str) {}

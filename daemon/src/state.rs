//! What the D-Bus objects share: the engine, PID 1, the exported image objects, the count of
//! operations in flight (for the idle exit and a clean shutdown).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use portctl_dbus::error::PortableError;
use portctl_engine::Host;

use crate::errors::to_wire;
use crate::pid1::SystemdManager;

pub struct State {
    pub host: Arc<Host>,
    pub pid1: Arc<SystemdManager>,
    in_flight: AtomicUsize,
    last_activity: Mutex<Instant>,
    /// Names of the images whose objects are exported.
    pub exported: Mutex<BTreeSet<String>>,
    /// Bounds the engine work that runs at once: each call reads at most
    /// [`portctl_engine::limits::METADATA_MAX`] bytes of an image, so memory stays bounded
    /// however many calls arrive (docs/security.md, "Limits").
    workers: tokio::sync::Semaphore,
    /// The version image objects are introspected as, asked once (PID 1 changes its version
    /// only by re-executing, and portctld exits when idle).
    introspected: tokio::sync::OnceCell<portctl_engine::version::Version>,
}

/// How many engine operations run at once; the others wait for a turn.
pub const WORKERS: usize = 4;

/// Counts one operation in flight while it lives.
pub struct Op<'a>(&'a State);

impl Drop for Op<'_> {
    fn drop(&mut self) {
        *self
            .0
            .last_activity
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl State {
    pub fn new(host: Host, pid1: SystemdManager) -> Self {
        Self {
            host: Arc::new(host),
            pid1: Arc::new(pid1),
            in_flight: AtomicUsize::new(0),
            last_activity: Mutex::new(Instant::now()),
            exported: Mutex::new(BTreeSet::new()),
            workers: tokio::sync::Semaphore::new(WORKERS),
            introspected: tokio::sync::OnceCell::new(),
        }
    }

    pub fn begin(&self) -> Op<'_> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        *self.last_activity.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        Op(self)
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    pub fn idle_for(&self) -> std::time::Duration {
        self.last_activity
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
    }

    /// The spelling of `ReattachWithExtensions` image objects leave out of their
    /// introspection data: the one PID 1's systemd does not introspect.
    pub async fn unlisted_reattach(&self) -> &'static str {
        use portctl_engine::version::Behaviour;
        let v = self
            .introspected
            .get_or_init(|| self.pid1.behave_as())
            .await;
        if v.has(Behaviour::ReattachSpelledRight) {
            "ReattacheWithExtensions"
        } else {
            "ReattachWithExtensions"
        }
    }

    /// Runs engine work on a blocking thread (loop devices, mounts and file writes never run
    /// on the async threads).
    pub async fn blocking<T, F>(&self, f: F) -> Result<T, PortableError>
    where
        T: Send + 'static,
        F: FnOnce(&Host, &SystemdManager) -> portctl_engine::Result<T> + Send + 'static,
    {
        let host = Arc::clone(&self.host);
        let pid1 = Arc::clone(&self.pid1);
        // The semaphore is never closed.
        let _turn = self.workers.acquire().await.expect("open semaphore");
        // An error is named as PID 1's version names it; asking PID 1 blocks, so it is asked
        // here on the blocking thread, and only when there is an error to name.
        let work = move || {
            f(&host, &pid1).map_err(|e| to_wire(e, portctl_engine::portable::behave_as(&*pid1)))
        };
        match tokio::task::spawn_blocking(work).await {
            Ok(r) => r,
            Err(e) => Err(PortableError::new(
                portctl_dbus::error::FAILED,
                format!("internal error: {e}"),
            )),
        }
    }
}

//! portctld, the org.freedesktop.portable1 service.
//!
//! Scaffolding only: the D-Bus service is issue 5 and not written yet. The binary exists so
//! that the workspace, packaging and CI have their final shape; it refuses to start rather
//! than pretend to serve.

fn main() -> anyhow::Result<()> {
    anyhow::bail!(
        "portctld {}: the D-Bus service is not implemented yet; use `portctl validate` offline",
        env!("CARGO_PKG_VERSION")
    )
}

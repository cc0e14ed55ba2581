//! The root-free tier of the engine's tests: image trees, discovery, compliance, attach,
//! detach, reattach, extensions, crashes and what the attack found, on scratch host roots in
//! /var/tmp (a disk file system), with real static binaries and real files. Needs no root:
//! `scripts/test-unprivileged` runs it as nobody.

mod attach;
mod compliance;
mod crash;
mod discovery;
mod extensions;
mod image_tree;
mod security;

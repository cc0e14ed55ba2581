//! The portctl engine: portable-service images, read, checked and attached without D-Bus.
//!
//! Everything the daemon and the client do goes through [`Host`], the host's file system under
//! an injectable root (`/` in production, a scratch directory in tests). Its operations, by
//! the file that holds them:
//!
//! | operation | `Host::` | file |
//! |---|---|---|
//! | find images | `list_images`, `image_names`, `find_image`, `find_image_by_name`, `image_from_path` | image.rs |
//! | open an image's tree | `open_image`, `open_image_with` (directory, raw file, block device) | raw.rs |
//! | attach | `attach` (inspect → plan → apply) | portable/apply.rs |
//! | detach, reattach | `detach`, `reattach` | portable/detach.rs, portable/reattach.rs |
//! | what is attached | `image_state`, `image_states` | portable/state.rs |
//! | what an image carries | `image_metadata`, `image_os_release` | portable/metadata.rs |
//! | profiles | `find_profile`, `service_profile`, `list_profiles` | profile.rs |
//! | manage images | `remove_image`, `mark_read_only`, `set_image_limit`, `set_pool_limit`, `pool_usage` | manage.rs |
//! | after a crash | `recover`, `set_aside_journals` | txn.rs |
//! | `portctl run` | `prepare_run` | run.rs |
//! | the host itself | `new`, `system`, `root`, `fs`, `has_unit` | host.rs |
//!
//! The layers below, each using only those beneath it:
//!
//! * [`parse`]: pure parsers of untrusted bytes (names, unit files, markers, GPT, superblocks,
//!   ELF, escaping), shared with the fuzz targets and the client;
//! * [`root`]: an image's tree (or the host's), every path resolved inside its root;
//! * [`os_release`], [`units`], [`profile`]: what an image carries and what a profile mounts;
//! * [`compliance`], [`confine`]: the image requirements rule by rule, and what a unit may
//!   ask of its profile (docs/image-requirements.md, docs/security.md);
//! * [`txn`]: journaled, crash-safe changes to the host's unit directories;
//! * [`portable`]: attach, detach, reattach, state and metadata, over the above.
//!
//! System calls without a safe wrapper live in the `portctl-sys` crate (sys/) only, behind
//! functions of plain data. [`Error`] is the one error type; the D-Bus layer maps its
//! variants onto systemd's error names.

pub mod compliance;
pub mod confine;
pub mod error;
mod fault;
pub mod host;
pub mod image;
pub mod limits;
pub mod manage;
pub mod os_release;
pub mod parse;
pub mod policy;
pub mod portable;
pub mod profile;
pub mod raw;
pub mod root;
pub mod run;
pub(crate) use portctl_sys as sys;
pub mod txn;
pub mod units;
pub mod version;

pub use error::{Error, Result};
pub use host::Host;
pub use image::{Image, ImageType};
pub use root::ImageRoot;

/// What the command-line tools need of the process itself.
pub mod process {
    /// SIGPIPE ends the process quietly, as it does a C tool (see `sys::default_sigpipe`).
    pub fn default_sigpipe() {
        crate::sys::default_sigpipe();
    }
}

//! The portctl engine: portable-service images, read and checked without D-Bus.
//!
//! * [`host`]: the host's file system under an injectable root, and its search paths;
//! * [`image`]: image discovery, names, types, read-only state, timestamps, usage;
//! * [`root`]: reading an image's tree safely, inside its root;
//! * [`os_release`], [`units`], [`profile`]: what an image carries and what a profile mounts;
//! * [`compliance`]: the image requirements, rule by rule, and the repair of writable images.
//!
//! System calls without a safe wrapper live in the `portctl-sys` crate (sys/) only, behind
//! functions of plain data.

pub mod compliance;
pub mod confine;
pub mod elf;
pub mod error;
mod fault;
pub mod fsdetect;
pub mod gpt;
pub mod host;
pub mod image;
pub mod limits;
pub mod manage;
pub mod marker;
pub mod names;
pub mod os_release;
pub mod portable;
pub mod profile;
pub mod raw;
pub mod root;
pub mod run;
pub(crate) use portctl_sys as sys;
pub mod text;
pub mod txn;
pub mod unit_file;
pub mod units;

pub use error::{Error, Result};

/// What the command-line tools need of the process itself.
pub mod process {
    /// SIGPIPE ends the process quietly, as it does a C tool (see `sys::default_sigpipe`).
    pub fn default_sigpipe() {
        crate::sys::default_sigpipe();
    }
}
pub use host::Host;
pub use image::{Image, ImageType};
pub use root::ImageRoot;

impl Host {
    /// Opens an image's tree: read-only, or for writing when `want_write` and the image allows
    /// it (see [`raw::OpenImage::can_write`]).
    pub fn open_image_with(&self, image: &Image, want_write: bool) -> Result<raw::OpenImage> {
        match image.kind {
            ImageType::Directory | ImageType::Subvolume => Ok(raw::OpenImage {
                root: self.open_directory_image(image)?,
                can_write: !image.read_only,
                writable: want_write && !image.read_only,
                layout: image.kind.to_string(),
                loop_devices: 0,
            }),
            ImageType::Raw | ImageType::Block => Ok(self.open_raw_image(image, want_write)?),
        }
    }

    /// Opens an image's tree for reading.
    pub fn open_image(&self, image: &Image) -> Result<ImageRoot> {
        Ok(self.open_image_with(image, false)?.root)
    }
}

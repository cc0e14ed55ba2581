//! The portctl engine: portable-service images, read and checked without D-Bus.
//!
//! * [`host`]: the host's file system under an injectable root, and its search paths;
//! * [`image`]: image discovery, names, types, read-only state, timestamps, usage;
//! * [`root`]: reading an image's tree safely, inside its root;
//! * [`os_release`], [`units`], [`profile`]: what an image carries and what a profile mounts;
//! * [`compliance`]: the image requirements, rule by rule, and the repair of writable images.
//!
//! `unsafe` code lives in [`sys`] only.

pub mod compliance;
pub mod elf;
pub mod error;
pub mod host;
pub mod image;
pub mod limits;
pub mod names;
pub mod os_release;
pub mod profile;
pub mod root;
mod sys;
pub mod unit_file;
pub mod units;

pub use error::{Error, Result};
pub use host::Host;
pub use image::{Image, ImageType};
pub use root::ImageRoot;

impl Host {
    /// Opens an image's tree for reading.
    pub fn open_image(&self, image: &Image) -> Result<ImageRoot> {
        match image.kind {
            ImageType::Directory | ImageType::Subvolume => self.open_directory_image(image),
            ImageType::Raw | ImageType::Block => Err(Error::Io {
                what: "Raw and block images are not supported yet",
                path: image.path.clone(),
                source: std::io::Error::from_raw_os_error(libc::EOPNOTSUPP),
            }),
        }
    }
}

//! The flag words of the wire: the `t flags` of the `*WithExtensions` methods and of
//! `org.portctl.Run1.Run`. The daemon parses them here, the client builds them here.

use crate::error::{self, PortableError};

/// The `t flags` argument of the `*WithExtensions` methods.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// `SD_SYSTEMD_PORTABLE_RUNTIME`
    pub runtime: bool,
    /// `SD_SYSTEMD_PORTABLE_FORCE_ATTACH`
    pub force_attach: bool,
    /// `SD_SYSTEMD_PORTABLE_FORCE_EXTENSION` (v252: `FORCE_SYSEXT`)
    pub force_extension: bool,
}

impl Flags {
    pub const RUNTIME: u64 = 1 << 0;
    pub const FORCE_ATTACH: u64 = 1 << 1;
    pub const FORCE_EXTENSION: u64 = 1 << 2;

    /// Parses the wire value; any bit outside 0x7 is refused as v252 does.
    pub fn from_bits(bits: u64) -> Result<Self, PortableError> {
        if bits & !(Self::RUNTIME | Self::FORCE_ATTACH | Self::FORCE_EXTENSION) != 0 {
            return Err(PortableError::new(
                error::INVALID_ARGS,
                format!("Invalid 'flags' parameter '{bits}'"),
            ));
        }
        Ok(Self {
            runtime: bits & Self::RUNTIME != 0,
            force_attach: bits & Self::FORCE_ATTACH != 0,
            force_extension: bits & Self::FORCE_EXTENSION != 0,
        })
    }

    /// The wire value.
    pub fn bits(self) -> u64 {
        [
            (self.runtime, Self::RUNTIME),
            (self.force_attach, Self::FORCE_ATTACH),
            (self.force_extension, Self::FORCE_EXTENSION),
        ]
        .into_iter()
        .filter(|(set, _)| *set)
        .fold(0, |bits, (_, bit)| bits | bit)
    }
}

/// The `t flags` of `org.portctl.Run1.Run`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunFlags {
    /// A writable overlay (in memory) over the image.
    pub writable: bool,
    /// A dynamic user even where the profile does not ask for one.
    pub dynamic_user: bool,
}

impl RunFlags {
    pub const WRITABLE: u64 = 1 << 0;
    pub const DYNAMIC_USER: u64 = 1 << 1;

    pub fn from_bits(bits: u64) -> Result<Self, PortableError> {
        if bits & !(Self::WRITABLE | Self::DYNAMIC_USER) != 0 {
            return Err(PortableError::new(
                error::INVALID_ARGS,
                format!("Invalid 'flags' parameter '{bits}'"),
            ));
        }
        Ok(Self {
            writable: bits & Self::WRITABLE != 0,
            dynamic_user: bits & Self::DYNAMIC_USER != 0,
        })
    }

    pub fn bits(self) -> u64 {
        [
            (self.writable, Self::WRITABLE),
            (self.dynamic_user, Self::DYNAMIC_USER),
        ]
        .into_iter()
        .filter(|(set, _)| *set)
        .fold(0, |bits, (_, bit)| bits | bit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_round_trip() {
        for bits in 0..8 {
            assert_eq!(Flags::from_bits(bits).unwrap().bits(), bits);
        }
        for bits in 0..4 {
            assert_eq!(RunFlags::from_bits(bits).unwrap().bits(), bits);
        }
        assert!(RunFlags::from_bits(4).is_err());
    }
}

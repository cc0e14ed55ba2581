//! File-system detection by superblock magic. No guessing by trying every mount type.

use std::fmt;

/// The file systems portable images may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FsType {
    Squashfs,
    Erofs,
    Ext4,
    Xfs,
    Btrfs,
}

impl FsType {
    /// The kernel's name of the file system (ext2 and ext3 are mounted by the ext4 driver).
    pub fn kernel_name(self) -> &'static str {
        match self {
            Self::Squashfs => "squashfs",
            Self::Erofs => "erofs",
            Self::Ext4 => "ext4",
            Self::Xfs => "xfs",
            Self::Btrfs => "btrfs",
        }
    }

    /// The mount options portctld sets, beyond `source` and `ro` (docs/security.md, "Mounts"):
    /// chosen here, so that what an image's superblock asks for (ext4 `errors=panic`, say)
    /// is overridden. A read-only mount never replays a journal: an image in use by a
    /// running service has one to replay, and replaying would write to it.
    pub fn mount_options(self, writable: bool) -> &'static [(&'static str, Option<&'static str>)] {
        match (self, writable) {
            (Self::Ext4, false) => &[("errors", Some("remount-ro")), ("norecovery", None)],
            (Self::Ext4, true) => &[("errors", Some("remount-ro"))],
            (Self::Xfs, false) => &[("norecovery", None)],
            (Self::Btrfs, false) => &[("rescue", Some("nologreplay"))],
            _ => &[],
        }
    }

    /// File systems that cannot be written to at all.
    pub fn is_read_only(self) -> bool {
        matches!(self, Self::Squashfs | Self::Erofs)
    }
}

impl fmt::Display for FsType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kernel_name())
    }
}

/// How many bytes [`detect`] wants to see (the btrfs superblock is at 64 KiB).
pub const PROBE_SIZE: usize = 0x10040 + 8;

/// Identifies the file system whose first bytes are `b` (at least [`PROBE_SIZE`] bytes, or the
/// whole image when it is smaller).
pub fn detect(b: &[u8]) -> Option<FsType> {
    let at = |off: usize, magic: &[u8]| b.get(off..off + magic.len()) == Some(magic);
    if at(0, b"hsqs") {
        Some(FsType::Squashfs)
    } else if at(1024, &0xE0F5_E1E2u32.to_le_bytes()) {
        Some(FsType::Erofs)
    } else if at(1080, &0xEF53u16.to_le_bytes()) {
        Some(FsType::Ext4)
    } else if at(0, b"XFSB") {
        Some(FsType::Xfs)
    } else if at(0x10040, b"_BHRfS_M") {
        Some(FsType::Btrfs)
    } else {
        None
    }
}

/// A short description of what unrecognised content looks like, for error messages.
pub fn describe_unknown(b: &[u8]) -> String {
    let at = |off: usize, magic: &[u8]| b.get(off..off + magic.len()) == Some(magic);
    if b.is_empty() {
        "the file is empty".into()
    } else if b.iter().all(|&c| c == 0) {
        "only zero bytes".into()
    } else if at(0, b"LUKS\xba\xbe") {
        "a LUKS encrypted volume".into()
    } else if at(0x8001, b"CD001") {
        "an ISO 9660 file system".into()
    } else if at(0, b"\x1f\x8b") || at(0, b"\xfd7zXZ\0") || at(0, b"\x28\xb5\x2f\xfd") {
        "compressed data".into()
    } else if at(510, b"\x55\xaa") {
        "a partition table or boot sector without a usable partition".into()
    } else {
        format!(
            "no known superblock (first bytes {})",
            b.iter()
                .take(8)
                .map(|c| format!("{c:02x}"))
                .collect::<String>()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(off: usize, magic: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; PROBE_SIZE];
        b[off..off + magic.len()].copy_from_slice(magic);
        b
    }

    #[test]
    fn magics() {
        assert_eq!(detect(&with(0, b"hsqs")), Some(FsType::Squashfs));
        assert_eq!(
            detect(&with(1024, &[0xe2, 0xe1, 0xf5, 0xe0])),
            Some(FsType::Erofs)
        );
        assert_eq!(detect(&with(1080, &[0x53, 0xef])), Some(FsType::Ext4));
        assert_eq!(detect(&with(0, b"XFSB")), Some(FsType::Xfs));
        assert_eq!(detect(&with(0x10040, b"_BHRfS_M")), Some(FsType::Btrfs));
        assert_eq!(detect(&[]), None);
        assert_eq!(detect(&[0u8; 100]), None);
    }

    #[test]
    fn descriptions() {
        assert_eq!(describe_unknown(&[]), "the file is empty");
        assert_eq!(describe_unknown(&[0; 4096]), "only zero bytes");
        assert!(describe_unknown(b"\x01\x02junk").contains("0102"));
        assert!(describe_unknown(&with(510, b"\x55\xaa")).contains("partition table"));
    }
}

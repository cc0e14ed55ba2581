//! What the engine reads out of an image, at most. An image that exceeds one of these is
//! refused with an error naming the limit; see docs/security.md.

/// Largest os-release or extension-release file.
pub const OS_RELEASE_MAX: u64 = 256 * 1024;
/// Largest unit file (systemd itself refuses lines over 1 MiB).
pub const UNIT_FILE_MAX: u64 = 1024 * 1024;
/// Most bytes of unit files and release files read out of one image with its extensions for
/// one call, all together: the metadata of an image must fit into one D-Bus reply, which
/// dbus-daemon caps at 32 MiB, and the daemon's memory is this times the calls it serves at once.
pub const METADATA_MAX: u64 = 4 * 1024 * 1024;
/// Most unit files taken from one image (after prefix matching).
pub const UNITS_MAX: usize = 4096;
/// Most directory entries looked at in one unit directory of an image.
pub const UNIT_DIR_ENTRIES_MAX: usize = 65536;
/// Largest profile drop-in.
pub const PROFILE_MAX: u64 = 1024 * 1024;
/// Most bytes of an executable's program headers that are read to find its interpreter.
pub const ELF_HEADERS_MAX: u64 = 64 * 1024;

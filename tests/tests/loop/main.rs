//! The root tier of the engine's tests: raw images on loop devices (squashfs, erofs, ext4,
//! GPT, MBR, block devices), detached mounts, btrfs subvolumes and quotas, immutable
//! directories, read-only bind mounts. Needs root.

mod attach;
mod compliance;
mod concurrent_reads;
mod discovery;
mod extensions;
mod manage;
mod raw_images;
mod security;

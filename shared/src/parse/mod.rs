//! Parsers of untrusted input: pure functions of bytes and strings, no file system and no
//! system calls, so that the fuzz targets (fuzz/) and the client use exactly what the daemon
//! runs.

pub mod elf;
pub mod fsdetect;
pub mod gpt;
pub mod marker;
pub mod names;
pub mod text;
pub mod unit_file;
pub mod vpick;

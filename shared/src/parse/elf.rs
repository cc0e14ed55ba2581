//! The little of ELF that compliance needs: class, byte order, machine, and the program
//! interpreter (`PT_INTERP`). Reads headers only, with bounds on everything.

use std::io;
use std::os::unix::fs::FileExt;

use crate::limits::ELF_HEADERS_MAX;

const PT_INTERP: u32 = 3;
const INTERP_MAX: u64 = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfInfo {
    pub class64: bool,
    pub little_endian: bool,
    pub machine: u16,
    pub interpreter: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("not an ELF file")]
    NotElf,
    #[error("malformed ELF header: {0}")]
    Malformed(&'static str),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// What an executable file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Executable {
    Elf(ElfInfo),
    /// `#!` script, with its interpreter path.
    Script(String),
    Unknown,
}

fn u16_at(b: &[u8], off: usize, le: bool) -> Option<u16> {
    let a: [u8; 2] = b.get(off..off + 2)?.try_into().ok()?;
    Some(if le {
        u16::from_le_bytes(a)
    } else {
        u16::from_be_bytes(a)
    })
}

fn u32_at(b: &[u8], off: usize, le: bool) -> Option<u32> {
    let a: [u8; 4] = b.get(off..off + 4)?.try_into().ok()?;
    Some(if le {
        u32::from_le_bytes(a)
    } else {
        u32::from_be_bytes(a)
    })
}

fn u64_at(b: &[u8], off: usize, le: bool) -> Option<u64> {
    let a: [u8; 8] = b.get(off..off + 8)?.try_into().ok()?;
    Some(if le {
        u64::from_le_bytes(a)
    } else {
        u64::from_be_bytes(a)
    })
}

fn read_exact_at(f: &impl FileExt, off: u64, len: u64) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len as usize];
    f.read_exact_at(&mut buf, off)?;
    Ok(buf)
}

/// Identifies an executable by its first bytes and, for ELF, its program headers.
pub fn identify(f: &impl FileExt) -> Result<Executable, ElfError> {
    let mut head = [0u8; 256];
    let n = f.read_at(&mut head, 0)?;
    let head = &head[..n];
    if head.starts_with(b"#!") {
        let line = head[2..].split(|&c| c == b'\n').next().unwrap_or_default();
        let line = String::from_utf8_lossy(line);
        let interp = line
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        return Ok(Executable::Script(interp));
    }
    match parse(f) {
        Ok(info) => Ok(Executable::Elf(info)),
        Err(ElfError::NotElf) => Ok(Executable::Unknown),
        Err(e) => Err(e),
    }
}

/// Parses the ELF header and finds `PT_INTERP`.
pub fn parse(f: &impl FileExt) -> Result<ElfInfo, ElfError> {
    let mut eh = [0u8; 64];
    let n = f.read_at(&mut eh, 0)?;
    let eh = &eh[..n];
    if !eh.starts_with(b"\x7fELF") {
        return Err(ElfError::NotElf);
    }
    if eh.len() < 52 {
        return Err(ElfError::Malformed("truncated header"));
    }
    let class64 = match eh[4] {
        1 => false,
        2 => true,
        _ => return Err(ElfError::Malformed("bad EI_CLASS")),
    };
    let le = match eh[5] {
        1 => true,
        2 => false,
        _ => return Err(ElfError::Malformed("bad EI_DATA")),
    };
    let short = ElfError::Malformed("truncated header");
    let machine = u16_at(eh, 18, le).ok_or(short)?;
    let (phoff, phentsize, phnum) = if class64 {
        (u64_at(eh, 32, le), u16_at(eh, 54, le), u16_at(eh, 56, le))
    } else {
        (
            u32_at(eh, 28, le).map(u64::from),
            u16_at(eh, 42, le),
            u16_at(eh, 44, le),
        )
    };
    let (Some(phoff), Some(phentsize), Some(phnum)) = (phoff, phentsize, phnum) else {
        return Err(ElfError::Malformed("truncated header"));
    };
    let min_entsize = if class64 { 56 } else { 32 };
    let mut interpreter = None;
    if phnum > 0 {
        if u64::from(phentsize) < min_entsize {
            return Err(ElfError::Malformed("program header entries too small"));
        }
        let total = u64::from(phentsize) * u64::from(phnum);
        if total > ELF_HEADERS_MAX {
            return Err(ElfError::Malformed("program header table too large"));
        }
        let table = read_exact_at(f, phoff, total)
            .map_err(|_| ElfError::Malformed("program header table outside the file"))?;
        for i in 0..usize::from(phnum) {
            let ph = &table[i * usize::from(phentsize)..];
            if u32_at(ph, 0, le) != Some(PT_INTERP) {
                continue;
            }
            let (off, size) = if class64 {
                (u64_at(ph, 8, le), u64_at(ph, 32, le))
            } else {
                (
                    u32_at(ph, 4, le).map(u64::from),
                    u32_at(ph, 16, le).map(u64::from),
                )
            };
            let (Some(off), Some(size)) = (off, size) else {
                return Err(ElfError::Malformed("truncated PT_INTERP"));
            };
            if size == 0 || size > INTERP_MAX {
                return Err(ElfError::Malformed("bad PT_INTERP size"));
            }
            let raw = read_exact_at(f, off, size)
                .map_err(|_| ElfError::Malformed("PT_INTERP outside the file"))?;
            let raw = raw.split(|&c| c == 0).next().unwrap_or_default();
            interpreter = Some(String::from_utf8_lossy(raw).into_owned());
            break;
        }
    }
    Ok(ElfInfo {
        class64,
        little_endian: le,
        machine,
        interpreter,
    })
}

/// A readable name for an ELF machine.
pub fn machine_name(machine: u16) -> String {
    match machine {
        3 => "x86".into(),
        8 => "mips".into(),
        20 => "ppc".into(),
        21 => "ppc64".into(),
        22 => "s390".into(),
        40 => "arm".into(),
        62 => "x86-64".into(),
        183 => "arm64".into(),
        243 => "riscv".into(),
        258 => "loongarch".into(),
        m => format!("machine {m}"),
    }
}

/// The (machine, 64-bit, little-endian) triples this host runs.
fn host_machines() -> &'static [(u16, bool, bool)] {
    match std::env::consts::ARCH {
        "x86_64" => &[(62, true, true), (3, false, true)],
        "x86" => &[(3, false, true)],
        "aarch64" => &[(183, true, true), (40, false, true)],
        "arm" => &[(40, false, true)],
        "riscv64" => &[(243, true, true)],
        "powerpc64" => &[(21, true, false)],
        "s390x" => &[(22, true, false)],
        "loongarch64" => &[(258, true, true)],
        _ => &[],
    }
}

/// Whether this host can run code built for `info`'s architecture. Unknown host
/// architectures accept everything rather than refuse images wrongly.
pub fn runs_on_host(info: &ElfInfo) -> bool {
    let machines = host_machines();
    machines.is_empty()
        || machines
            .iter()
            .any(|&(m, c, le)| m == info.machine && c == info.class64 && le == info.little_endian)
}

/// The host's architecture, named as [`machine_name`] does.
pub fn host_machine_name() -> String {
    host_machines()
        .first()
        .map(|&(m, ..)| machine_name(m))
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// The host's architecture as systemd names it (`ARCHITECTURE=` of os-release files).
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x86-64",
        "x86" => "x86",
        "aarch64" => "arm64",
        "arm" => "arm",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64-le",
        "powerpc64" => "ppc64",
        "loongarch64" => "loongarch64",
        other => other,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal ELF64 little-endian executable header with an optional PT_INTERP.
    pub fn fake_elf64(machine: u16, interp: Option<&str>) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[6] = 1;
        b[16..18].copy_from_slice(&2u16.to_le_bytes());
        b[18..20].copy_from_slice(&machine.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        let phnum: u16 = if interp.is_some() { 1 } else { 0 };
        b[56..58].copy_from_slice(&phnum.to_le_bytes());
        if let Some(interp) = interp {
            let mut ph = vec![0u8; 56];
            ph[..4].copy_from_slice(&PT_INTERP.to_le_bytes());
            let off = 64u64 + 56;
            let size = interp.len() as u64 + 1;
            ph[8..16].copy_from_slice(&off.to_le_bytes());
            ph[32..40].copy_from_slice(&size.to_le_bytes());
            b.extend(ph);
            b.extend(interp.as_bytes());
            b.push(0);
        }
        b
    }

    fn file(bytes: &[u8]) -> std::fs::File {
        use std::io::Write;
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    #[test]
    fn interpreter_and_machine() {
        let f = file(&fake_elf64(62, Some("/lib64/ld-linux-x86-64.so.2")));
        let info = parse(&f).unwrap();
        assert_eq!(info.machine, 62);
        assert_eq!(
            info.interpreter.as_deref(),
            Some("/lib64/ld-linux-x86-64.so.2")
        );
        let f = file(&fake_elf64(183, None));
        let info = parse(&f).unwrap();
        assert_eq!(info.interpreter, None);
        assert_eq!(machine_name(info.machine), "arm64");
    }

    #[test]
    fn real_binary_of_this_host() {
        let f = std::fs::File::open(std::env::current_exe().unwrap()).unwrap();
        let info = parse(&f).unwrap();
        assert!(runs_on_host(&info));
    }

    #[test]
    fn scripts_junk_and_truncation() {
        let f = file(b"#!/bin/sh -e\necho hi\n");
        assert_eq!(identify(&f).unwrap(), Executable::Script("/bin/sh".into()));
        assert_eq!(identify(&file(b"hello")).unwrap(), Executable::Unknown);
        assert!(matches!(
            parse(&file(b"\x7fELF\x02\x01")),
            Err(ElfError::Malformed(_))
        ));
        let mut bad = fake_elf64(62, Some("/x"));
        bad[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(parse(&file(&bad)), Err(ElfError::Malformed(_))));
        let mut huge = fake_elf64(62, None);
        huge[56..58].copy_from_slice(&u16::MAX.to_le_bytes());
        assert!(matches!(parse(&file(&huge)), Err(ElfError::Malformed(_))));
    }
}

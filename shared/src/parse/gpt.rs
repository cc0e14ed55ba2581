//! GPT parsing in user space (this kernel has no partition-table parser), with CRC checks, and
//! the choice of partitions by the Discoverable Partitions Specification.

use std::fmt;

/// A GUID as the 16 bytes stored on disk (first three fields little-endian).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// From the canonical text form `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
    pub const fn parse(s: &str) -> Guid {
        let s = s.as_bytes();
        let mut raw = [0u8; 16];
        let mut i = 0;
        let mut n = 0;
        while i < s.len() {
            if s[i] != b'-' {
                raw[n / 2] = (raw[n / 2] << 4) | hex(s[i]);
                n += 1;
            }
            i += 1;
        }
        // Mixed endianness: the first three fields are stored little-endian.
        Guid([
            raw[3], raw[2], raw[1], raw[0], raw[5], raw[4], raw[7], raw[6], raw[8], raw[9],
            raw[10], raw[11], raw[12], raw[13], raw[14], raw[15],
        ])
    }

    pub fn is_zero(&self) -> bool {
        self.0 == [0; 16]
    }
}

const fn hex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => panic!("bad hex digit"),
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-",
            b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9]
        )?;
        for c in &b[10..] {
            write!(f, "{c:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Partition type UUIDs of the Discoverable Partitions Specification.
pub mod types {
    use super::Guid;
    pub const ROOT_X86_64: Guid = Guid::parse("4f68bce3-e8cd-4db1-96e7-fbcaf984b709");
    pub const USR_X86_64: Guid = Guid::parse("8484680c-9521-48c6-9c11-b0720656f69e");
    pub const ROOT_X86: Guid = Guid::parse("44479540-f297-41b2-9af7-d131d5f0458a");
    pub const USR_X86: Guid = Guid::parse("75250d76-8cc6-458e-bd66-bd47cc81a812");
    pub const ROOT_ARM64: Guid = Guid::parse("b921b045-1df0-41c3-af44-4c6f280d3fae");
    pub const USR_ARM64: Guid = Guid::parse("b0e01050-ee5f-4390-949a-9101b17104e9");
    pub const ROOT_ARM: Guid = Guid::parse("69dad710-2ce4-4e3c-b16c-21a1d49abed3");
    pub const USR_ARM: Guid = Guid::parse("7d0359a3-02b3-4f0a-865c-654403e70625");
    pub const ROOT_RISCV64: Guid = Guid::parse("72ec70a6-cf74-40e6-bd49-4bda08e8f224");
    pub const USR_RISCV64: Guid = Guid::parse("beaec34b-8442-439b-a40b-984381ed097d");
    pub const ROOT_VERITY_X86_64: Guid = Guid::parse("2c7357ed-ebd2-46d9-aec1-23d437ec2bf5");
    pub const USR_VERITY_X86_64: Guid = Guid::parse("77ff5f63-e7b6-4633-acf4-1565b864c0e6");
    pub const ROOT_VERITY_SIG_X86_64: Guid = Guid::parse("41092b05-9fc8-4523-994f-2def0408b176");
    pub const USR_VERITY_SIG_X86_64: Guid = Guid::parse("e7bb33fb-06cf-4e81-8273-e543b413e2e2");
    pub const HOME: Guid = Guid::parse("933ac7e1-2eb4-4f13-b844-0e14e2aef915");
    pub const SRV: Guid = Guid::parse("3b8f8425-20e0-4f3b-907f-1a25a76f98e8");
    pub const VAR: Guid = Guid::parse("4d21b016-b534-45c2-a9fb-5c16e091fd2d");
    pub const TMP: Guid = Guid::parse("7ec6f557-3bc5-4aca-b293-16ef5df639d1");
    pub const ESP: Guid = Guid::parse("c12a7328-f81f-11d2-ba4b-00a0c93ec93b");
    pub const XBOOTLDR: Guid = Guid::parse("bc13c2ff-59e6-4262-a352-b275fd6f7172");
    pub const SWAP: Guid = Guid::parse("0657fd6d-a4ab-43c4-84e5-0933c84b4f4f");
    /// "Linux filesystem data", the generic type.
    pub const LINUX_GENERIC: Guid = Guid::parse("0fc63daf-8483-4772-8e79-3d69d8477de4");
}

/// GPT attribute bits of the specification.
pub const FLAG_GROWFS: u64 = 1 << 59;
pub const FLAG_READ_ONLY: u64 = 1 << 60;
pub const FLAG_NO_AUTO: u64 = 1 << 63;

/// The root and /usr partition types for the host architecture.
pub fn host_types() -> (Guid, Guid) {
    match std::env::consts::ARCH {
        "x86" => (types::ROOT_X86, types::USR_X86),
        "aarch64" => (types::ROOT_ARM64, types::USR_ARM64),
        "arm" => (types::ROOT_ARM, types::USR_ARM),
        "riscv64" => (types::ROOT_RISCV64, types::USR_RISCV64),
        _ => (types::ROOT_X86_64, types::USR_X86_64),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// 1-based index in the table.
    pub number: u32,
    pub type_guid: Guid,
    pub first_lba: u64,
    pub last_lba: u64,
    pub attributes: u64,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub sector_size: u64,
    pub partitions: Vec<Partition>,
}

impl Partition {
    pub fn offset(&self, sector: u64) -> u64 {
        self.first_lba * sector
    }
    pub fn size(&self, sector: u64) -> u64 {
        (self.last_lba - self.first_lba + 1) * sector
    }
    pub fn read_only(&self) -> bool {
        self.attributes & FLAG_READ_ONLY != 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GptError {
    #[error("GPT header checksum mismatch")]
    HeaderCrc,
    #[error("GPT partition entry array checksum mismatch")]
    EntriesCrc,
    #[error("malformed GPT header: {0}")]
    Header(&'static str),
    #[error("partition {0} lies outside the image")]
    OutOfBounds(u32),
    #[error("partitions {0} and {1} overlap")]
    Overlap(u32, u32),
}

/// Most partition entries accepted (the specification's minimum array holds 128).
pub const MAX_ENTRIES: u32 = 1024;

/// CRC-32 (IEEE 802.3), as GPT uses it.
pub fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut crc = !0u32;
    for &b in data {
        crc = TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"))
}
fn le64(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"))
}

/// Whether a GPT header signature sits at LBA 1 for `sector` in `head`.
pub fn has_signature(head: &[u8], sector: u64) -> bool {
    let o = sector as usize;
    head.get(o..o + 8) == Some(b"EFI PART")
}

/// Parses the GPT of a disk of `disk_size` bytes with sectors of `sector` bytes. `read` reads
/// `len` bytes at an offset (erroring when that is beyond the disk).
pub fn parse(
    sector: u64,
    disk_size: u64,
    read: &mut dyn FnMut(u64, usize) -> std::io::Result<Vec<u8>>,
) -> Result<Table, GptError> {
    let hdr = read(sector, sector as usize).map_err(|_| GptError::Header("cannot read header"))?;
    if &hdr[..8] != b"EFI PART" {
        return Err(GptError::Header("no signature"));
    }
    let header_size = le32(&hdr, 12) as usize;
    if !(92..=sector as usize).contains(&header_size) {
        return Err(GptError::Header("bad header size"));
    }
    let mut h = hdr[..header_size].to_vec();
    let crc = le32(&h, 16);
    h[16..20].fill(0);
    if crc32(&h) != crc {
        return Err(GptError::HeaderCrc);
    }
    if le64(&hdr, 24) != 1 {
        return Err(GptError::Header("header is not at LBA 1"));
    }
    let first_usable = le64(&hdr, 40);
    let last_usable = le64(&hdr, 48);
    let entries_lba = le64(&hdr, 72);
    let count = le32(&hdr, 80);
    let entry_size = le32(&hdr, 84);
    let entries_crc = le32(&hdr, 88);
    let sectors = disk_size / sector;
    if count > MAX_ENTRIES {
        return Err(GptError::Header("too many partition entries"));
    }
    if !(128..=4096).contains(&entry_size) || entry_size % 8 != 0 {
        return Err(GptError::Header("bad partition entry size"));
    }
    if first_usable > last_usable || last_usable >= sectors {
        return Err(GptError::Header("usable range outside the image"));
    }
    let array_len = u64::from(count) * u64::from(entry_size);
    let array_off = entries_lba
        .checked_mul(sector)
        .ok_or(GptError::Header("bad entry LBA"))?;
    if entries_lba < 2 || array_off.saturating_add(array_len) > disk_size {
        return Err(GptError::Header("partition entries outside the image"));
    }
    let array =
        read(array_off, array_len as usize).map_err(|_| GptError::Header("cannot read entries"))?;
    if crc32(&array) != entries_crc {
        return Err(GptError::EntriesCrc);
    }
    let mut partitions = Vec::new();
    for (i, e) in array.chunks_exact(entry_size as usize).enumerate() {
        let type_guid = Guid(e[..16].try_into().expect("16 bytes"));
        if type_guid.is_zero() {
            continue;
        }
        let number = i as u32 + 1;
        let first_lba = le64(e, 32);
        let last_lba = le64(e, 40);
        if first_lba > last_lba || first_lba < first_usable || last_lba > last_usable {
            return Err(GptError::OutOfBounds(number));
        }
        let units: Vec<u16> = e[56..128]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&c| c != 0)
            .collect();
        partitions.push(Partition {
            number,
            type_guid,
            first_lba,
            last_lba,
            attributes: le64(e, 48),
            name: String::from_utf16_lossy(&units),
        });
    }
    let mut sorted: Vec<&Partition> = partitions.iter().collect();
    sorted.sort_by_key(|p| p.first_lba);
    for w in sorted.windows(2) {
        if w[1].first_lba <= w[0].last_lba {
            return Err(GptError::Overlap(w[0].number, w[1].number));
        }
    }
    Ok(Table {
        sector_size: sector,
        partitions,
    })
}

/// The partitions to use, by the Discoverable Partitions Specification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub root: Option<Partition>,
    pub usr: Option<Partition>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChoiceError {
    #[error("Multiple suitable root partitions found")]
    MultipleRoot,
    #[error("Multiple suitable /usr partitions found")]
    MultipleUsr,
    #[error("No suitable root partition found")]
    NoRoot,
}

/// Picks the root (and /usr) partition for the host architecture; partitions marked
/// "no-auto" are ignored. A table whose only partition has the generic Linux type is accepted
/// as a root.
pub fn choose(table: &Table) -> Result<Choice, ChoiceError> {
    let (root_type, usr_type) = host_types();
    let auto = || {
        table
            .partitions
            .iter()
            .filter(|p| p.attributes & FLAG_NO_AUTO == 0)
    };
    let roots: Vec<&Partition> = auto().filter(|p| p.type_guid == root_type).collect();
    let usrs: Vec<&Partition> = auto().filter(|p| p.type_guid == usr_type).collect();
    if roots.len() > 1 {
        return Err(ChoiceError::MultipleRoot);
    }
    if usrs.len() > 1 {
        return Err(ChoiceError::MultipleUsr);
    }
    let mut choice = Choice {
        root: roots.first().map(|p| (*p).clone()),
        usr: usrs.first().map(|p| (*p).clone()),
    };
    if choice.root.is_none() && choice.usr.is_none() {
        match table.partitions.as_slice() {
            [only] if only.type_guid == types::LINUX_GENERIC => choice.root = Some(only.clone()),
            _ => return Err(ChoiceError::NoRoot),
        }
    }
    Ok(choice)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a GPT disk image in memory: `parts` as (type, first LBA, last LBA, attributes).
    pub fn build(sectors: u64, parts: &[(Guid, u64, u64, u64)]) -> Vec<u8> {
        let ss = 512usize;
        let mut disk = vec![0u8; sectors as usize * ss];
        let count = 128u32;
        let mut array = vec![0u8; count as usize * 128];
        for (i, (t, first, last, attrs)) in parts.iter().enumerate() {
            let e = &mut array[i * 128..(i + 1) * 128];
            e[..16].copy_from_slice(&t.0);
            e[16] = i as u8 + 1;
            e[32..40].copy_from_slice(&first.to_le_bytes());
            e[40..48].copy_from_slice(&last.to_le_bytes());
            e[48..56].copy_from_slice(&attrs.to_le_bytes());
            for (j, c) in "part".encode_utf16().enumerate() {
                e[56 + 2 * j..58 + 2 * j].copy_from_slice(&c.to_le_bytes());
            }
        }
        let mut h = vec![0u8; 92];
        h[..8].copy_from_slice(b"EFI PART");
        h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        h[12..16].copy_from_slice(&92u32.to_le_bytes());
        h[24..32].copy_from_slice(&1u64.to_le_bytes());
        h[32..40].copy_from_slice(&(sectors - 1).to_le_bytes());
        h[40..48].copy_from_slice(&34u64.to_le_bytes());
        h[48..56].copy_from_slice(&(sectors - 34).to_le_bytes());
        h[72..80].copy_from_slice(&2u64.to_le_bytes());
        h[80..84].copy_from_slice(&count.to_le_bytes());
        h[84..88].copy_from_slice(&128u32.to_le_bytes());
        h[88..92].copy_from_slice(&crc32(&array).to_le_bytes());
        let crc = crc32(&h);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        disk[ss..ss + 92].copy_from_slice(&h);
        disk[2 * ss..2 * ss + array.len()].copy_from_slice(&array);
        disk
    }

    pub fn parse_mem(disk: &[u8]) -> Result<Table, GptError> {
        let mut read = |off: u64, len: usize| {
            disk.get(off as usize..off as usize + len)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EIO))
        };
        parse(512, disk.len() as u64, &mut read)
    }

    #[test]
    fn guids_and_crc() {
        assert_eq!(
            types::ROOT_X86_64.to_string(),
            "4f68bce3-e8cd-4db1-96e7-fbcaf984b709"
        );
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn parse_and_choose() {
        let (root, usr) = host_types();
        let disk = build(
            4096,
            &[(root, 2048, 3071, FLAG_READ_ONLY), (usr, 100, 1000, 0)],
        );
        let t = parse_mem(&disk).unwrap();
        assert_eq!(t.partitions.len(), 2);
        let c = choose(&t).unwrap();
        let r = c.root.unwrap();
        assert_eq!(
            (r.offset(512), r.size(512), r.read_only()),
            (2048 * 512, 1024 * 512, true)
        );
        assert_eq!(c.usr.unwrap().number, 2);
    }

    #[test]
    fn errors() {
        let (root, _) = host_types();
        let two = build(4096, &[(root, 100, 200, 0), (root, 300, 400, 0)]);
        assert_eq!(
            choose(&parse_mem(&two).unwrap()),
            Err(ChoiceError::MultipleRoot)
        );
        let none = build(
            4096,
            &[
                (types::LINUX_GENERIC, 100, 200, 0),
                (types::LINUX_GENERIC, 300, 400, 0),
            ],
        );
        assert_eq!(choose(&parse_mem(&none).unwrap()), Err(ChoiceError::NoRoot));
        let one = build(4096, &[(types::LINUX_GENERIC, 100, 200, 0)]);
        assert!(choose(&parse_mem(&one).unwrap()).unwrap().root.is_some());
        let noauto = build(4096, &[(root, 100, 200, FLAG_NO_AUTO)]);
        assert_eq!(
            choose(&parse_mem(&noauto).unwrap()),
            Err(ChoiceError::NoRoot)
        );
        let mut bad = build(4096, &[(root, 100, 200, 0)]);
        bad[512 + 40] ^= 1;
        assert_eq!(parse_mem(&bad), Err(GptError::HeaderCrc));
        let mut bad = build(4096, &[(root, 100, 200, 0)]);
        bad[1024 + 33] ^= 1;
        assert_eq!(parse_mem(&bad), Err(GptError::EntriesCrc));
        let outside = build(4096, &[(root, 100, 9000, 0)]);
        assert_eq!(parse_mem(&outside), Err(GptError::OutOfBounds(1)));
        let overlap = build(
            4096,
            &[(root, 100, 300, 0), (types::LINUX_GENERIC, 200, 400, 0)],
        );
        assert_eq!(parse_mem(&overlap), Err(GptError::Overlap(1, 2)));
        let truncated = &build(4096, &[(root, 100, 200, 0)])[..2048];
        assert!(parse_mem(truncated).is_err());
    }
}

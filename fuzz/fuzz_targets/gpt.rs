//! GPT parsing of a fuzzed disk. The checksums are fixed up first (when the header is there)
//! so that the fuzzer gets past them to the header fields, the entries and the choice of
//! partitions.
#![no_main]
use libfuzzer_sys::fuzz_target;
use portctl_engine::parse::gpt;

fuzz_target!(|data: &[u8]| {
    let mut disk = data.to_vec();
    if disk.len() >= 1024 && &disk[512..520] == b"EFI PART" {
        let le32 = |d: &[u8], o: usize| u32::from_le_bytes(d[o..o + 4].try_into().unwrap());
        let count = le32(&disk, 512 + 80) as usize;
        let size = le32(&disk, 512 + 84) as usize;
        let start = 1024usize;
        let end = start.saturating_add(count.saturating_mul(size)).min(disk.len());
        let array_crc = gpt::crc32(&disk[start..end]);
        disk[512 + 88..512 + 92].copy_from_slice(&array_crc.to_le_bytes());
        let hsize = (le32(&disk, 512 + 12) as usize).clamp(92, 512);
        disk[512 + 16..512 + 20].fill(0);
        let crc = gpt::crc32(&disk[512..512 + hsize]);
        disk[512 + 16..512 + 20].copy_from_slice(&crc.to_le_bytes());
    }
    let mut read = |off: u64, len: usize| {
        let start = usize::try_from(off).map_err(|_| std::io::Error::other("offset"))?;
        disk.get(start..start.saturating_add(len))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| std::io::Error::other("beyond the disk"))
    };
    if let Ok(table) = gpt::parse(512, disk.len() as u64, &mut read) {
        let _ = gpt::choose(&table);
    }
});

//! os-release parsing: any bytes parse (with warnings), never panic; the keys that come out
//! are valid environment names.
#![no_main]
use libfuzzer_sys::fuzz_target;
use portctl_engine::os_release::{env_name_is_valid, OsRelease};

fuzz_target!(|data: &[u8]| {
    let r = OsRelease::parse(data);
    for (k, _) in &r.pairs {
        assert!(env_name_is_valid(k), "{k:?}");
    }
    let _ = r.portable_prefixes();
    let _ = r.non_empty("ID");
});

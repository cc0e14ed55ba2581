//! File system detection from the first bytes of an image.
#![no_main]
use libfuzzer_sys::fuzz_target;
use portctl_engine::parse::fsdetect;

fuzz_target!(|data: &[u8]| {
    if fsdetect::detect(data).is_none() {
        assert!(!fsdetect::describe_unknown(data).is_empty());
    }
});

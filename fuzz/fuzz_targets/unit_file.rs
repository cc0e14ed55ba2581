//! Unit file syntax (what the compliance check reads): assignments, word splitting,
//! ExecStart= programs.
#![no_main]
use libfuzzer_sys::fuzz_target;
use portctl_engine::parse::unit_file;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    for a in unit_file::parse(s) {
        let _ = unit_file::split_words(&a.value);
        let _ = unit_file::exec_program(&a.value);
        let _ = unit_file::parse_bool(&a.value);
    }
});

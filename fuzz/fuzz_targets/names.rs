//! Image and unit names, prefixes, image references: no panics, and what is called valid is.
#![no_main]
use libfuzzer_sys::fuzz_target;
use portctl_engine::parse::names;

fuzz_target!(|data: &[u8]| {
    let _ = names::filename_is_valid(data);
    if names::image_name_is_valid(data) {
        assert!(!data.is_empty() && !data.contains(&b'/') && data != b"." && data != b"..");
    }
    for raw in [false, true] {
        if let Some(n) = names::image_name_from_file_name(data, raw) {
            assert!(names::image_name_is_valid(n.as_bytes()), "{n:?}");
        }
    }
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let (unit, prefix) = s.split_once('\0').unwrap_or((s, "x"));
    if names::unit_name_is_valid(unit) {
        assert!(!unit.contains('/') && unit.len() <= 256, "{unit:?}");
        let _ = names::unit_suffix(unit);
        let _ = names::unit_is_portable_type(unit);
    }
    let _ = names::unit_matches_prefix(unit, prefix);
    let _ = names::unit_matches(unit, &[prefix.to_string()]);
    let _ = names::default_prefix(s);
    let _ = names::parse_image_ref(s);
    let _ = names::path_is_normalized(s);
});

//! The 20-portable.conf marker: escaping round-trips, parsing and matching never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use portctl_engine::parse::marker;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    assert_eq!(marker::unescape(&marker::escape(s)), s);
    let (line, arg) = s.split_once('\n').unwrap_or((s, "image"));
    if let Some(m) = marker::parse_marker_line(line) {
        let _ = marker::tokens(m);
        let _ = marker::matches(m, arg, &[]);
        let _ = marker::matches(m, arg, &[arg.to_string()]);
    }
    let built = marker::marker_line(line, &[arg.to_string()]);
    assert!(marker::parse_marker_line(&built).is_some(), "{built:?}");
});

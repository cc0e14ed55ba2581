//! Image object paths: every image name escapes to a valid D-Bus object path label, and the
//! escaping round-trips.
#![no_main]
use libfuzzer_sys::fuzz_target;
use portctl_dbus::path::{escape_label, image_object_path, unescape_label};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let label = escape_label(s);
    assert!(!label.is_empty());
    assert!(label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "{label:?}");
    assert_eq!(unescape_label(&label).as_deref(), Some(s));
    let path = image_object_path(s);
    assert!(zbus::ObjectPath::try_from(path.as_str()).is_ok(), "{path:?}");
    let _ = unescape_label(s);
});

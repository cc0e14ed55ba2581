//! Object-path labels: systemd's `bus_label_escape` / `bus_label_unescape`.

/// Escapes an image name into one object-path label: every byte that is not an ASCII letter,
/// and a digit in the first position, becomes `_` and two lowercase hex digits; the empty
/// string becomes `_`.
pub fn escape_label(s: &str) -> String {
    if s.is_empty() {
        return "_".into();
    }
    let mut out = String::with_capacity(s.len() * 3);
    for (i, b) in s.bytes().enumerate() {
        if b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()) {
            out.push(b as char);
        } else {
            out.push('_');
            out.push(char::from_digit(u32::from(b >> 4), 16).expect("nibble"));
            out.push(char::from_digit(u32::from(b & 0xf), 16).expect("nibble"));
        }
    }
    out
}

/// Reverses [`escape_label`]. `None` for a label that no name escapes to.
pub fn unescape_label(label: &str) -> Option<String> {
    if label == "_" {
        return Some(String::new());
    }
    let b = label.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'_' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else if b[i].is_ascii_alphanumeric() {
            out.push(b[i]);
            i += 1;
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

/// The object path of an image.
pub fn image_object_path(name: &str) -> String {
    format!("{}/{}", crate::IMAGE_PATH_PREFIX, escape_label(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_examples() {
        for (name, label) in [
            ("probe_1", "probe_5f1"),
            (".hidden_1", "_2ehidden_5f1"),
            ("1app", "_31app"),
            ("A-b.c", "A_2db_2ec"),
            ("bad~name", "bad_7ename"),
            ("minimal_1", "minimal_5f1"),
            ("", "_"),
            ("ü", "_c3_bc"),
        ] {
            assert_eq!(escape_label(name), label, "{name}");
            assert_eq!(unescape_label(label).as_deref(), Some(name), "{label}");
        }
        assert_eq!(
            image_object_path("probe_1"),
            "/org/freedesktop/portable1/image/probe_5f1"
        );
    }

    #[test]
    fn labels_are_valid_object_path_elements() {
        for name in ["a b", "x@y", "-", "9", "é"] {
            let p = image_object_path(name);
            assert!(zbus::ObjectPath::try_from(p.as_str()).is_ok(), "{p}");
        }
        assert_eq!(unescape_label("bad-label"), None);
        assert_eq!(unescape_label("_zz"), None);
    }
}

//! Text that came out of an image, made safe to show: control characters escaped as systemd's
//! `cescape()` does, so that an os-release or a unit file cannot move the cursor, retitle the
//! terminal or write to the clipboard of whoever reads it (docs/security.md).

/// Escapes C0 and C1 control characters and DEL as systemd's `cescape()` escapes them (`\n`,
/// `\t`, ... by name, the others in octal), and a backslash as `\\`. Printable characters,
/// non-ASCII ones included, stay as they are (unlike `cescape()`, which escapes every byte
/// over 126).
pub fn cescape(s: &str) -> String {
    escape(s, "")
}

/// [`cescape`], keeping the characters in `keep` (`"\n\t"` for a file shown whole).
pub fn escape(s: &str, keep: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if keep.contains(c) {
            out.push(c);
            continue;
        }
        match c {
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\{b:03o}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Whether `s` has a control character (a path with one cannot be written into a unit file).
pub fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Escapes `%` as `%%`, so that systemd does not expand specifiers in a value we write.
pub fn specifier_escape(s: &str) -> String {
    s.replace('%', "%%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(cescape("Débian\x1b]0;x\x07\n"), "Débian\\033]0;x\\a\\n");
        assert_eq!(cescape("a\\b\u{9b}"), "a\\\\b\\302\\233");
        assert_eq!(escape("l1\n\tl2\x1b[2J", "\n\t"), "l1\n\tl2\\033[2J");
        assert!(has_control("/tmp/a\nb") && !has_control("/tmp/ü b"));
        assert_eq!(specifier_escape("/srv/%n"), "/srv/%%n");
    }
}

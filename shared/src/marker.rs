//! The first line of `20-portable.conf`: which image(s) a unit was attached from, and how an
//! image argument is matched against it (v252 `marker_matches_images`, section 7.3).

use crate::names::image_name_is_valid;

pub const MARKER_BEGIN: &str = "# Drop-in created for image '";
pub const MARKER_END: &str = "', do not edit.";

/// systemd's `xescape(s, ":")`: control characters, bytes ≥ 127, `\` and `:` become `\xNN`.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if !(b' '..127).contains(&b) || b == b'\\' || b == b':' {
            out.push_str(&format!("\\x{b:02x}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

/// Reverses [`escape`] (and plain `\c` escapes).
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            if b[i + 1] == b'x' && i + 4 <= b.len() {
                let hex = std::str::from_utf8(&b[i + 2..i + 4]).ok();
                if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
            out.push(b[i + 1]);
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The marker line (without newline) for a root image path and its extensions' paths.
pub fn marker_line(root: &str, extensions: &[String]) -> String {
    let mut s = format!("{MARKER_BEGIN}{}", escape(root));
    for e in extensions {
        s.push(':');
        s.push_str(&escape(e));
    }
    s.push_str(MARKER_END);
    s
}

/// The marker of a drop-in's first line, if it has the marker format.
pub fn parse_marker_line(line: &str) -> Option<&str> {
    line.strip_prefix(MARKER_BEGIN)?.strip_suffix(MARKER_END)
}

/// Splits a marker on `:`, keeping backslash escapes as they are.
pub fn tokens(marker: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = marker.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                cur.push('\\');
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            ':' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn last_component(p: &str) -> &str {
    let t = p.trim_end_matches('/');
    match t.rfind('/') {
        Some(i) => &p[i + 1..],
        None => p,
    }
}

/// [`matches`], and the marker names exactly these layers (no more): what detach and reattach
/// require, so that detaching one of two services that share a base image leaves the other
/// (as systemd does since v254).
pub fn matches_every_layer(marker: &str, name_or_path: &str, extensions: &[String]) -> bool {
    tokens(marker).len() == 1 + extensions.len() && matches(marker, name_or_path, extensions)
}

/// v252's `marker_matches_images`: the root argument and each extension argument need a
/// marker token, compared by name (version after `_` ignored) or by the last path component.
/// Extra marker tokens are ignored.
pub fn matches(marker: &str, name_or_path: &str, extensions: &[String]) -> bool {
    let toks = tokens(marker);
    let args = std::iter::once(name_or_path).chain(extensions.iter().map(String::as_str));
    for (i, arg) in args.enumerate() {
        let Some(token) = toks.get(i) else {
            return false;
        };
        let a = last_component(token);
        if image_name_is_valid(arg.as_bytes()) {
            if let Some(us) = arg.find('_') {
                if a.as_bytes().starts_with(&arg.as_bytes()[..us]) {
                    continue;
                }
                return false;
            }
            let Some(rest) = a.strip_prefix(arg) else {
                return false;
            };
            if !(rest.trim_start_matches('/').is_empty() || rest == ".raw") {
                return false;
            }
        } else {
            let b = last_component(arg);
            let l = a.find('/').unwrap_or(a.len());
            if b.find('/').unwrap_or(b.len()) != l {
                return false;
            }
            let l = b.find('_').unwrap_or(l);
            if a.as_bytes().get(..l) != b.as_bytes().get(..l) {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_round_trip_and_escapes() {
        let l = marker_line("/var/lib/portables/app_1.raw", &[]);
        assert_eq!(
            l,
            "# Drop-in created for image '/var/lib/portables/app_1.raw', do not edit."
        );
        assert_eq!(parse_marker_line(&l), Some("/var/lib/portables/app_1.raw"));
        let l = marker_line("/tmp/a:b", &["/tmp/ext_1".into()]);
        assert_eq!(parse_marker_line(&l), Some("/tmp/a\\x3ab:/tmp/ext_1"));
        assert_eq!(
            tokens("/tmp/a\\x3ab:/tmp/ext_1"),
            ["/tmp/a\\x3ab", "/tmp/ext_1"]
        );
        assert_eq!(unescape("/tmp/a\\x3ab"), "/tmp/a:b");
        assert_eq!(parse_marker_line("# something else"), None);
    }

    #[test]
    fn matching_as_v252() {
        let m = "/var/lib/portables/probe_1";
        assert!(matches(m, "probe_1", &[]));
        assert!(matches(m, "probe_2", &[]), "version-insensitive");
        assert!(
            !matches(m, "probe", &[]),
            "no version: the name must be all of it (or .raw)"
        );
        assert!(!matches(m, "prob", &[]));
        assert!(matches("/x/sq_1.raw", "sq_2", &[]));
        assert!(matches("/x/sq.raw", "sq", &[]));
        assert!(!matches("/x/sq.img", "sq", &[]));
        assert!(matches(m, "/other/dir/probe_7", &[]));
        assert!(!matches(m, "/other/dir/other_1", &[]));
        let layered = "/tmp/images/app_2.0:/tmp/images/app-ext_1";
        assert!(
            matches(layered, "/tmp/images/app_2.0", &[]),
            "extra tokens ignored"
        );
        assert!(matches(layered, "app_2.0", &["app-ext_1".into()]));
        assert!(
            !matches(m, "probe_1", &["ext".into()]),
            "more arguments than tokens"
        );
    }
}

//! The first line of `20-portable.conf`: which image(s) a unit was attached from, and how an
//! image argument is matched against it (systemd's `marker_matches_images()`;
//! docs/compatibility.md, "Matching images to attachments").

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

/// How an image argument matches the image a marker names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Match {
    /// The same image name, another version (`app_1` for `app_2.raw`).
    OtherVersion,
    /// The same file name (`app_2` or `/x/app_2.raw` for `/y/app_2.raw`).
    Exact,
}

/// The last component of a path, without trailing slashes, and whether it had one (a
/// directory).
fn file_name(p: &str) -> (&str, bool) {
    let t = p.trim_end_matches('/');
    let dir = t.len() != p.len();
    (t.rsplit('/').next().unwrap_or(t), dir)
}

/// The file name without the suffixes of raw images (none for a directory).
fn stem(p: &str) -> &str {
    let (name, dir) = file_name(p);
    if dir {
        return name;
    }
    [".sysext.raw", ".confext.raw", ".raw"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name)
}

/// The image name of a path or name without its version: [`stem`] cut at the first `_` or
/// `+` (systemd's `path_extract_image_name()`, v254 and later).
pub fn base_image_name(p: &str) -> &str {
    let s = stem(p);
    &s[..s.find(['_', '+']).unwrap_or(s.len())]
}

/// How the argument `arg` (a name or a path) matches the marker token `token`.
pub fn match_image(token: &str, arg: &str) -> Option<Match> {
    let token = unescape(token);
    if stem(&token) == stem(arg) {
        Some(Match::Exact)
    } else if base_image_name(&token) == base_image_name(arg) && !base_image_name(arg).is_empty() {
        Some(Match::OtherVersion)
    } else {
        None
    }
}

/// [`matches`], and the marker names exactly these layers (no more): what detach and reattach
/// require, so that detaching one of two services that share a base image leaves the other
/// (as systemd does since v254).
pub fn matches_every_layer(
    marker: &str,
    name_or_path: &str,
    extensions: &[String],
) -> Option<Match> {
    if tokens(marker).len() != 1 + extensions.len() {
        return None;
    }
    matches(marker, name_or_path, extensions)
}

/// Whether the marker names the image `name_or_path` and then the `extensions`, in order, by
/// image name (the version after `_` ignored, as systemd's `marker_matches_images()`); the
/// weakest match of the layers. Extra marker tokens are ignored.
///
/// v252 compared names as prefixes, so that `app_1` also matched `apple_2` and `app-ext_1`;
/// like systemd 254 and later we compare whole image names (docs/compatibility.md).
pub fn matches(marker: &str, name_or_path: &str, extensions: &[String]) -> Option<Match> {
    let toks = tokens(marker);
    let args = std::iter::once(name_or_path).chain(extensions.iter().map(String::as_str));
    let mut weakest = Match::Exact;
    for (i, arg) in args.enumerate() {
        weakest = weakest.min(match_image(toks.get(i)?, arg)?);
    }
    Some(weakest)
}

/// Whether any layer of the marker is one of the images asked about, for the state of an
/// image (systemd 256 and later, `marker_matches_images()` without `match_all`): marker token
/// `k` is compared with image `k` modulo their number, the root first, and the first match
/// counts. An extension is thus in the state of every attachment it is a layer of.
pub fn matches_any_layer(marker: &str, name_or_path: &str, extensions: &[String]) -> Option<Match> {
    let args: Vec<&str> = std::iter::once(name_or_path)
        .chain(extensions.iter().map(String::as_str))
        .collect();
    tokens(marker)
        .iter()
        .enumerate()
        .find_map(|(k, t)| match_image(t, args[k % args.len()]))
}

/// Of the items whose markers matched (`m`), the exact matches if there are any, else all:
/// `detach app_1` leaves `app_2` alone when both are attached, and still finds `app_2` when
/// it is the only version attached (as systemd does).
pub fn best<T>(found: Vec<(Match, T)>) -> Vec<T> {
    let exact = found.iter().any(|(m, _)| *m == Match::Exact);
    found
        .into_iter()
        .filter(|(m, _)| !exact || *m == Match::Exact)
        .map(|(_, t)| t)
        .collect()
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
        use Match::*;
        assert_eq!(matches(m, "probe_1", &[]), Some(Exact));
        assert_eq!(matches(m, "probe_2", &[]), Some(OtherVersion));
        assert_eq!(matches(m, "probe", &[]), Some(OtherVersion));
        assert_eq!(matches(m, "prob", &[]), None);
        assert_eq!(matches("/x/sq_1.raw", "sq_2", &[]), Some(OtherVersion));
        assert_eq!(matches("/x/sq_1.raw", "sq_1", &[]), Some(Exact));
        assert_eq!(matches("/x/sq.raw", "sq", &[]), Some(Exact));
        assert_eq!(matches("/x/sq.img", "sq", &[]), None);
        assert_eq!(matches(m, "/other/dir/probe_7", &[]), Some(OtherVersion));
        assert_eq!(matches(m, "/other/dir/other_1", &[]), None);
        // Whole names, not prefixes (v252 matched both).
        assert_eq!(matches("/x/apple_2", "app_1", &[]), None);
        assert_eq!(matches("/x/app-ext_1", "/y/app_1", &[]), None);
        let layered = "/tmp/images/app_2.0:/tmp/images/app-ext_1";
        assert_eq!(
            matches(layered, "/tmp/images/app_2.0", &[]),
            Some(Exact),
            "extra tokens ignored"
        );
        assert_eq!(
            matches(layered, "app_2.0", &["app-ext_1".into()]),
            Some(Exact)
        );
        assert_eq!(
            matches(layered, "app_3", &["app-ext_1".into()]),
            Some(OtherVersion)
        );
        assert_eq!(matches_every_layer(layered, "app_2.0", &[]), None);
        assert_eq!(
            matches(m, "probe_1", &["ext".into()]),
            None,
            "more arguments than tokens"
        );
        assert_eq!(matches("/tmp/app1.v/:x", "/tmp/app1.v/", &[]), Some(Exact));
        assert_eq!(
            best(vec![(OtherVersion, 1), (Exact, 2), (Exact, 3)]),
            [2, 3]
        );
        assert_eq!(best(vec![(OtherVersion, 1)]), [1]);
    }

    #[test]
    fn any_layer_for_the_state() {
        use Match::*;
        let layered = "/usr/share/minimal_0.raw:/tmp/app0.raw";
        assert_eq!(matches_any_layer(layered, "app0", &[]), Some(Exact));
        assert_eq!(matches_any_layer(layered, "minimal_0", &[]), Some(Exact));
        assert_eq!(matches_any_layer(layered, "app1", &[]), None);
        assert_eq!(
            matches_any_layer(layered, "minimal_0", &["app0".into()]),
            Some(Exact)
        );
        assert_eq!(
            matches_any_layer(layered, "other", &["app0_2".into()]),
            Some(OtherVersion)
        );
        assert_eq!(matches(layered, "app0", &[]), None, "v252: the root only");
    }
}

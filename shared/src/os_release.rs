//! os-release(5) and extension-release parsing, with systemd's `parse_env_file` rules:
//! `KEY=VALUE` lines, single quotes (literal), double quotes (backslash escapes only `"`, `\`,
//! `` ` ``, `$` and a newline), unquoted backslash escapes, `#`/`;` comments, blank lines, and
//! quoted strings that concatenate. Invalid lines are skipped with a warning.

use std::path::Path;

use crate::limits::OS_RELEASE_MAX;
use crate::root::{ImageRoot, ReadError};

/// Where os-release lives inside an image, in order of preference.
pub const OS_RELEASE_PATHS: [&str; 2] = ["/etc/os-release", "/usr/lib/os-release"];
/// Directory of the extension-release files of system extensions.
pub const EXTENSION_RELEASE_DIR: &str = "/usr/lib/extension-release.d";

/// A line of an os-release file that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Warning {
    pub line: usize,
    pub message: String,
}

/// Which kind of image a release file describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseClass {
    /// os-release of a portable (root) image.
    Portable,
    /// extension-release of a system extension.
    Sysext,
    /// extension-release of a configuration extension.
    Confext,
}

/// Parsed os-release data: assignments in file order (a repeated key keeps its first position
/// and its last value), plus the warnings for what was skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OsRelease {
    pub pairs: Vec<(String, String)>,
    pub warnings: Vec<Warning>,
}

impl OsRelease {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of the first of `keys` that is given (its last value, as systemd reads it).
    fn first_of(&self, keys: &[&str]) -> Option<&str> {
        keys.iter().find_map(|k| self.get(k))
    }

    /// `ID_VERSION` of a `*_NAME_AND_VERSION=` journal field (systemd 254 and later): the most
    /// specific ID and version fields of the release file's class, a value with control
    /// characters left out, `None` when neither is there.
    pub fn name_and_version(&self, class: ReleaseClass) -> Option<String> {
        let (ids, versions): (&[&str], &[&str]) = match class {
            ReleaseClass::Portable => (
                &["IMAGE_ID", "ID"],
                &["IMAGE_VERSION", "VERSION_ID", "BUILD_ID"],
            ),
            ReleaseClass::Sysext => (
                &["SYSEXT_IMAGE_ID", "SYSEXT_ID"],
                &[
                    "SYSEXT_IMAGE_VERSION",
                    "SYSEXT_VERSION_ID",
                    "SYSEXT_BUILD_ID",
                ],
            ),
            ReleaseClass::Confext => (
                &["CONFEXT_IMAGE_ID", "CONFEXT_ID"],
                &[
                    "CONFEXT_IMAGE_VERSION",
                    "CONFEXT_VERSION_ID",
                    "CONFEXT_BUILD_ID",
                ],
            ),
        };
        // systemd's char_is_cc(): bytes below 0x20 and DEL.
        let clean = |v: &str| !v.bytes().any(|b| b < 0x20 || b == 0x7f);
        let id = self.first_of(ids).filter(|v| clean(v));
        let version = self.first_of(versions).filter(|v| clean(v));
        match (id, version) {
            (None, None) => None,
            (Some(id), Some(v)) => Some(format!("{id}_{v}")),
            (id, v) => Some(id.or(v).unwrap_or_default().to_string()),
        }
    }

    /// A key's value, `None` when missing or empty.
    pub fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    /// `PORTABLE_PREFIXES=`: a whitespace-separated list.
    pub fn portable_prefixes(&self) -> Vec<String> {
        self.get("PORTABLE_PREFIXES")
            .map(|v| v.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    }

    pub fn parse(data: &[u8]) -> Self {
        Parser::default().run(data)
    }

    fn push(&mut self, line: usize, key: Vec<u8>, value: Vec<u8>) {
        let key = match String::from_utf8(key) {
            Ok(k) if env_name_is_valid(&k) => k,
            Ok(k) => {
                return self.warn(
                    line,
                    format!("invalid variable name '{}', ignoring", k.escape_debug()),
                )
            }
            Err(_) => return self.warn(line, "variable name is not valid UTF-8, ignoring".into()),
        };
        let value = match String::from_utf8(value) {
            Ok(v) if !v.contains('\0') => v,
            Ok(_) => {
                return self.warn(
                    line,
                    format!("value of {key} contains a NUL byte, ignoring"),
                )
            }
            Err(_) => {
                return self.warn(line, format!("value of {key} is not valid UTF-8, ignoring"))
            }
        };
        match self.pairs.iter_mut().find(|(k, _)| *k == key) {
            Some(pair) => pair.1 = value,
            None => self.pairs.push((key, value)),
        }
    }

    fn warn(&mut self, line: usize, message: String) {
        tracing::warn!(line, "os-release: {message}");
        self.warnings.push(Warning { line, message });
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`
pub fn env_name_is_valid(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && bytes.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    PreKey,
    Key,
    PreValue,
    Value,
    ValueEscape,
    SingleQuote,
    DoubleQuote,
    DoubleQuoteEscape,
    Comment,
    CommentEscape,
}

struct Parser {
    out: OsRelease,
    state: State,
    line: usize,
    start_line: usize,
    key: Vec<u8>,
    value: Vec<u8>,
    /// Length of `value` up to its last byte that was quoted or escaped: trailing unquoted
    /// white space after it is trimmed.
    keep: usize,
}

impl Default for Parser {
    fn default() -> Self {
        Self {
            out: OsRelease::default(),
            state: State::PreKey,
            line: 1,
            start_line: 1,
            key: Vec::new(),
            value: Vec::new(),
            keep: 0,
        }
    }
}

impl Parser {
    fn finish_value(&mut self) {
        let mut value = std::mem::take(&mut self.value);
        let mut end = value.len();
        while end > self.keep && value[end - 1].is_ascii_whitespace() {
            end -= 1;
        }
        value.truncate(end);
        let mut key = std::mem::take(&mut self.key);
        while key.last().is_some_and(u8::is_ascii_whitespace) {
            key.pop();
        }
        self.out.push(self.start_line, key, value);
        self.keep = 0;
        self.state = State::PreKey;
    }

    fn run(mut self, data: &[u8]) -> OsRelease {
        use State::*;
        for &c in data {
            let newline = c == b'\n';
            match self.state {
                PreKey => {
                    if c == b'#' || c == b';' {
                        self.state = Comment;
                    } else if !c.is_ascii_whitespace() {
                        self.start_line = self.line;
                        self.key.push(c);
                        self.state = Key;
                    }
                }
                Key => {
                    if newline {
                        let key = String::from_utf8_lossy(&self.key).trim().to_string();
                        self.out.warn(
                            self.start_line,
                            format!("line without '=' ('{}'), ignoring", key.escape_debug()),
                        );
                        self.key.clear();
                        self.state = PreKey;
                    } else if c == b'=' {
                        self.state = PreValue;
                    } else {
                        self.key.push(c);
                    }
                }
                PreValue => match c {
                    b'\n' => self.finish_value(),
                    b'\'' => self.state = SingleQuote,
                    b'"' => self.state = DoubleQuote,
                    b'\\' => self.state = ValueEscape,
                    c if c.is_ascii_whitespace() => {}
                    c => {
                        self.value.push(c);
                        self.state = Value;
                    }
                },
                Value => match c {
                    b'\n' => self.finish_value(),
                    b'\\' => self.state = ValueEscape,
                    c => self.value.push(c),
                },
                ValueEscape => {
                    if !newline {
                        self.value.push(c);
                        self.keep = self.value.len();
                    }
                    self.state = Value;
                }
                SingleQuote => {
                    if c == b'\'' {
                        self.keep = self.value.len();
                        self.state = PreValue;
                    } else {
                        self.value.push(c);
                    }
                }
                DoubleQuote => match c {
                    b'"' => {
                        self.keep = self.value.len();
                        self.state = PreValue;
                    }
                    b'\\' => self.state = DoubleQuoteEscape,
                    c => self.value.push(c),
                },
                DoubleQuoteEscape => {
                    if b"\"\\`$".contains(&c) {
                        self.value.push(c);
                    } else if !newline {
                        self.value.push(b'\\');
                        self.value.push(c);
                    }
                    self.state = DoubleQuote;
                }
                Comment => {
                    if c == b'\\' {
                        self.state = CommentEscape;
                    } else if newline {
                        self.state = PreKey;
                    }
                }
                CommentEscape => self.state = Comment,
            }
            if newline {
                self.line += 1;
            }
        }
        match self.state {
            PreValue | Value | ValueEscape => self.finish_value(),
            SingleQuote | DoubleQuote | DoubleQuoteEscape => {
                let key = String::from_utf8_lossy(&self.key).trim().to_string();
                self.out.warn(
                    self.start_line,
                    format!(
                        "unterminated quote in the value of '{}', ignoring",
                        key.escape_debug()
                    ),
                );
            }
            Key => {
                let key = String::from_utf8_lossy(&self.key).trim().to_string();
                self.out.warn(
                    self.start_line,
                    format!("line without '=' ('{}'), ignoring", key.escape_debug()),
                );
            }
            PreKey | Comment | CommentEscape => {}
        }
        self.out
    }
}

/// An os-release file read out of an image: where it was found, its bytes, and what they say.
#[derive(Debug, Clone)]
pub struct ReleaseFile {
    /// The path inside the image.
    pub path: String,
    pub raw: Vec<u8>,
    pub parsed: OsRelease,
}

/// Why an os-release file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}: {source}")]
pub struct ReleaseReadError {
    pub path: String,
    #[source]
    pub source: ReadError,
}

fn read_release(root: &ImageRoot, path: &str) -> Result<Option<ReleaseFile>, ReleaseReadError> {
    match root.read_file(Path::new(path), OS_RELEASE_MAX) {
        Ok(Some(raw)) => Ok(Some(ReleaseFile {
            path: path.to_string(),
            parsed: OsRelease::parse(&raw),
            raw,
        })),
        Ok(None) => Ok(None),
        Err(source) => Err(ReleaseReadError {
            path: path.to_string(),
            source,
        }),
    }
}

/// Reads `/etc/os-release`, or else `/usr/lib/os-release`, of an image.
pub fn read_os_release(root: &ImageRoot) -> Result<Option<ReleaseFile>, ReleaseReadError> {
    for path in OS_RELEASE_PATHS {
        if let Some(file) = read_release(root, path)? {
            return Ok(Some(file));
        }
    }
    Ok(None)
}

/// Reads `/usr/lib/extension-release.d/extension-release.NAME` of an extension image.
pub fn read_extension_release(
    root: &ImageRoot,
    name: &str,
) -> Result<Option<ReleaseFile>, ReleaseReadError> {
    if name.contains('/') {
        return Ok(None);
    }
    read_release(
        root,
        &format!("{EXTENSION_RELEASE_DIR}/extension-release.{name}"),
    )
}

/// Where confext images keep their extension-release file.
pub const CONFEXT_RELEASE_DIR: &str = "/etc/extension-release.d";

/// An extension image's release file: sysext (`/usr/lib/extension-release.d/`) or confext
/// (`/etc/extension-release.d/`).
#[derive(Debug, Clone)]
pub struct ExtensionRelease {
    pub file: ReleaseFile,
    pub confext: bool,
}

/// Finds the extension-release file of the extension image `name` (systemd's
/// `open_extension_release()`): `extension-release.NAME` in the sysext directory, then in the
/// confext one. Failing that, the one `extension-release.*` file of a directory that may stand
/// for it: any file when `relax` (FORCE_EXTENSION) is set; else one whose xattr
/// `user.extension-release.strict` is false, or (with `versioned`, systemd 256 and later) one
/// named after the image without its version (`extension-release.app` for `app_1.0.raw`).
/// Two such files are ambiguous, and none is taken.
pub fn find_extension_release(
    root: &ImageRoot,
    name: &str,
    relax: bool,
    versioned: bool,
) -> Result<Option<ExtensionRelease>, ReleaseReadError> {
    use crate::root::NodeKind;
    let base = crate::parse::marker::base_image_name(name);
    for (dir, confext) in [(EXTENSION_RELEASE_DIR, false), (CONFEXT_RELEASE_DIR, true)] {
        if !name.contains('/') {
            if let Some(file) = read_release(root, &format!("{dir}/extension-release.{name}"))? {
                return Ok(Some(ExtensionRelease { file, confext }));
            }
        }
        let Ok(Some(entries)) = root.read_dir(Path::new(dir)) else {
            continue;
        };
        let mut candidates = entries
            .iter()
            .filter(|e| matches!(e.kind, NodeKind::File | NodeKind::Unknown))
            .filter_map(|e| e.name.to_str())
            .filter_map(|n| Some((n, n.strip_prefix("extension-release.")?)))
            .filter(|(_, image)| crate::parse::names::image_name_is_valid(image.as_bytes()))
            .filter(|(n, image)| {
                relax || (versioned && *image == base) || not_strict(root, &format!("{dir}/{n}"))
            })
            .map(|(n, _)| format!("{dir}/{n}"));
        let (Some(only), None) = (candidates.next(), candidates.next()) else {
            continue;
        };
        if let Some(file) = read_release(root, &only)? {
            return Ok(Some(ExtensionRelease { file, confext }));
        }
    }
    Ok(None)
}

/// Whether the file's xattr `user.extension-release.strict` says false (systemd parses it as a
/// boolean; absent or unreadable means strict).
fn not_strict(root: &ImageRoot, path: &str) -> bool {
    root.open_regular(Path::new(path)).ok().is_some_and(|fd| {
        let mut buf = [0u8; 8];
        matches!(
            rustix::fs::fgetxattr(&fd, "user.extension-release.strict", &mut buf),
            Ok(n) if matches!(&buf[..n], b"false" | b"0" | b"no" | b"n" | b"off")
        )
    })
}

/// systemd's `extension_release_validate` for the scope `portable`: why the extension does
/// not fit the root image, or `None` when it does. With `id_like` (systemd 258 and later) the
/// extension's ID may also be one of the root's `ID_LIKE=`.
pub fn extension_mismatch(
    ext: &ExtensionRelease,
    root: &OsRelease,
    id_like: bool,
) -> Option<String> {
    let e = &ext.file.parsed;
    let (prefix, level_key) = if ext.confext {
        ("CONFEXT_", "CONFEXT_LEVEL")
    } else {
        ("SYSEXT_", "SYSEXT_LEVEL")
    };
    let Some(id) = e.non_empty("ID") else {
        return Some("it has no ID".into());
    };
    let like = root.non_empty("ID_LIKE").filter(|_| id_like);
    let is_like = like.is_some_and(|l| l.split_whitespace().any(|w| w == id));
    if id != "_any" && Some(id) != root.non_empty("ID") && !is_like {
        let also = like
            .map(|l| format!(" nor in its ID_LIKE={l}"))
            .unwrap_or_default();
        return Some(format!(
            "its ID={id} is not the root's ID={}{also}",
            root.non_empty("ID").unwrap_or("")
        ));
    }
    if let Some(scope) = e.non_empty(&format!("{prefix}SCOPE")) {
        if !scope.split_whitespace().any(|s| s == "portable") {
            return Some(format!(
                "its {prefix}SCOPE={scope} does not include portable"
            ));
        }
    }
    let root_level = root.non_empty(level_key);
    let root_version = root.non_empty("VERSION_ID");
    match (root_level, e.non_empty(level_key)) {
        (Some(r), Some(x)) if r != x => {
            return Some(format!("its {level_key}={x} is not the root's {r}"));
        }
        (Some(_), Some(_)) => {}
        _ => {
            if id != "_any" {
                if let Some(r) = root_version {
                    match e.non_empty("VERSION_ID") {
                        None => return Some("it has no VERSION_ID".into()),
                        Some(x) if x != r => {
                            return Some(format!("its VERSION_ID={x} is not the root's {r}"))
                        }
                        Some(_) => {}
                    }
                }
            }
        }
    }
    if let Some(arch) = e.non_empty("ARCHITECTURE") {
        if arch != "_any" && arch != crate::parse::elf::host_architecture() {
            return Some(format!(
                "its ARCHITECTURE={arch} is not the host's {}",
                crate::parse::elf::host_architecture()
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(s: &str) -> Vec<(String, String)> {
        OsRelease::parse(s.as_bytes()).pairs
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn extension_id_may_match_id_like_from_258() {
        let ext = |text: &str| ExtensionRelease {
            file: ReleaseFile {
                path: "/usr/lib/extension-release.d/extension-release.app".into(),
                raw: text.as_bytes().to_vec(),
                parsed: OsRelease::parse(text.as_bytes()),
            },
            confext: false,
        };
        let root = OsRelease::parse(b"ID=raspbian\nID_LIKE=debian\nVERSION_ID=12\n");
        let e = ext("ID=debian\nVERSION_ID=12\n");
        assert_eq!(
            extension_mismatch(&e, &root, false).as_deref(),
            Some("its ID=debian is not the root's ID=raspbian")
        );
        assert_eq!(extension_mismatch(&e, &root, true), None);
        assert_eq!(
            extension_mismatch(&ext("ID=fedora\nVERSION_ID=12\n"), &root, true).as_deref(),
            Some("its ID=fedora is not the root's ID=raspbian nor in its ID_LIKE=debian")
        );
    }

    #[test]
    fn plain_and_quoted() {
        let text = "ID=debian\nNAME=\"Debian GNU/Linux\"\nPRETTY_NAME='Debian 12 (bookworm)'\n";
        assert_eq!(
            kv(text),
            pairs(&[
                ("ID", "debian"),
                ("NAME", "Debian GNU/Linux"),
                ("PRETTY_NAME", "Debian 12 (bookworm)")
            ])
        );
    }

    #[test]
    fn escapes() {
        assert_eq!(
            kv(r#"A="a \"q\" \\ \$x \` \n""#),
            pairs(&[("A", r#"a "q" \ $x ` \n"#)])
        );
        assert_eq!(
            kv(r"A='no \escape here'"),
            pairs(&[("A", r"no \escape here")])
        );
        assert_eq!(kv("A=un\\ quoted\\\\x"), pairs(&[("A", "un quoted\\x")]));
        assert_eq!(
            kv("A=con\\\ntinued\nB=1"),
            pairs(&[("A", "continued"), ("B", "1")])
        );
        assert_eq!(kv("A=\"x\"'y'z"), pairs(&[("A", "xyz")]));
    }

    #[test]
    fn whitespace_comments_blank_lines() {
        let text =
            "# comment\n\n  ; other comment\n  KEY = value with spaces   \n\tB=\"  kept  \"  \n";
        assert_eq!(
            kv(text),
            pairs(&[("KEY", "value with spaces"), ("B", "  kept  ")])
        );
        assert_eq!(kv("A=\nB= \n"), pairs(&[("A", ""), ("B", "")]));
        assert_eq!(kv("A=1"), pairs(&[("A", "1")]), "no final newline");
        assert_eq!(kv("A=1\r\n"), pairs(&[("A", "1")]), "CRLF");
    }

    #[test]
    fn later_assignment_wins() {
        assert_eq!(kv("A=1\nB=2\nA=3\n"), pairs(&[("A", "3"), ("B", "2")]));
    }

    #[test]
    fn malformed_lines_are_skipped_with_warnings() {
        let r =
            OsRelease::parse(b"ID=ok\njunk line\n1BAD=x\nBAD-NAME=y\nV=\xff\xfe\nNAME=\"open\n");
        assert_eq!(r.pairs, pairs(&[("ID", "ok")]));
        let lines: Vec<usize> = r.warnings.iter().map(|w| w.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5, 6], "{:?}", r.warnings);
        assert!(r.warnings[0].message.contains("without '='"));
        assert!(r.warnings[4].message.contains("unterminated quote"));
    }

    #[test]
    fn binary_junk_does_not_panic() {
        let junk: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
        let r = OsRelease::parse(&junk);
        assert!(r.pairs.iter().all(|(k, _)| env_name_is_valid(k)));
        let r = OsRelease::parse(b"A=\0\nB=2");
        assert_eq!(r.pairs, pairs(&[("B", "2")]));
    }

    #[test]
    fn prefixes() {
        let r = OsRelease::parse(b"PORTABLE_PREFIXES=\"foo  bar\"\n");
        assert_eq!(r.portable_prefixes(), vec!["foo", "bar"]);
        assert!(OsRelease::parse(b"").portable_prefixes().is_empty());
    }
}

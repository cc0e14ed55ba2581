//! Names: image names, unit names, unit-name prefixes and image paths, with systemd's rules.

use std::path::{Component, Path};

/// Longest file name (`NAME_MAX`).
pub const FILENAME_MAX: usize = 255;
/// `UNIT_NAME_MAX`: unit names are shorter than this.
pub const UNIT_NAME_MAX: usize = 256;

/// The unit types a portable image may carry, in systemd's order.
pub const PORTABLE_UNIT_SUFFIXES: [&str; 5] = ["service", "socket", "target", "timer", "path"];

/// All unit types systemd knows (for unit name validity).
const UNIT_TYPES: [&str; 11] = [
    "service",
    "mount",
    "swap",
    "socket",
    "target",
    "device",
    "automount",
    "timer",
    "path",
    "slice",
    "scope",
];

/// systemd's `filename_is_valid`: not empty, not `.` or `..`, no `/`, at most 255 bytes.
pub fn filename_is_valid(name: &[u8]) -> bool {
    !name.is_empty()
        && name != b"."
        && name != b".."
        && !name.contains(&b'/')
        && !name.contains(&0)
        && name.len() <= FILENAME_MAX
}

/// systemd's `image_name_is_valid`: a valid file name, valid UTF-8 without control characters,
/// and not a lock file (`.#…`). `~`, `@` and a leading `.` are allowed.
pub fn image_name_is_valid(name: &[u8]) -> bool {
    if !filename_is_valid(name) || name.starts_with(b".#") {
        return false;
    }
    match std::str::from_utf8(name) {
        Ok(s) => !s.chars().any(char::is_control),
        Err(_) => false,
    }
}

/// The image name of a directory entry: for raw images the file name without `.raw`.
/// `None` when that name is not a valid image name.
pub fn image_name_from_file_name(file_name: &[u8], raw: bool) -> Option<String> {
    let name = if raw {
        file_name.strip_suffix(b".raw")?
    } else {
        file_name
    };
    image_name_is_valid(name).then(|| String::from_utf8(name.to_vec()).expect("checked UTF-8"))
}

fn unit_name_char_is_valid(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b":-_.\\@".contains(&c)
}

/// systemd's `unit_name_is_valid` for plain, template and instance names.
pub fn unit_name_is_valid(name: &str) -> bool {
    let b = name.as_bytes();
    if b.is_empty() || b.len() >= UNIT_NAME_MAX {
        return false;
    }
    let Some(dot) = name.rfind('.') else {
        return false;
    };
    if dot == 0 || !UNIT_TYPES.contains(&&name[dot + 1..]) {
        return false;
    }
    if !b[..dot].iter().all(|&c| unit_name_char_is_valid(c)) {
        return false;
    }
    // A template or instance needs a prefix before the '@'.
    name[..dot].find('@') != Some(0)
}

/// The type suffix of a unit name (`service` for `foo.service`).
pub fn unit_suffix(name: &str) -> Option<&str> {
    name.rfind('.').map(|i| &name[i + 1..])
}

/// The template of an instance name: `getty@tty9.service` gives `getty@.service`; `None` for a
/// name that is no instance (a template or a plain name).
pub fn template_of(name: &str) -> Option<String> {
    let (prefix, rest) = name.split_once('@')?;
    let dot = rest.rfind('.')?;
    (dot > 0).then(|| format!("{prefix}@{}", &rest[dot..]))
}

/// Whether a unit name is a template (`foo@.service`).
pub fn is_template(name: &str) -> bool {
    name.split_once('@')
        .is_some_and(|(_, rest)| rest.starts_with('.'))
}

/// The instance `instance` of the template `template`: `getty@.service` and `tty9` give
/// `getty@tty9.service`.
pub fn instance_of(template: &str, instance: &str) -> Option<String> {
    let (prefix, rest) = template.split_once("@.")?;
    let name = format!("{prefix}@{instance}.{rest}");
    unit_name_is_valid(&name).then_some(name)
}

/// Whether a valid unit name has one of the five portable unit types.
pub fn unit_is_portable_type(name: &str) -> bool {
    unit_suffix(name).is_some_and(|s| PORTABLE_UNIT_SUFFIXES.contains(&s))
}

/// Prefix matching of unit names: `foo` matches `foo.service`, `foo-bar.service`, `foo@.service`,
/// `foo.socket` and `foo` itself, but not `foobar.service`. A full unit name matches itself.
pub fn unit_matches_prefix(unit: &str, prefix: &str) -> bool {
    match unit.strip_prefix(prefix) {
        Some(rest) => matches!(rest.bytes().next(), None | Some(b'-' | b'.' | b'@')),
        None => false,
    }
}

/// Whether `unit` matches any of `matches`; an empty list matches everything.
pub fn unit_matches(unit: &str, matches: &[String]) -> bool {
    matches.is_empty() || matches.iter().any(|m| unit_matches_prefix(unit, m))
}

/// The default unit prefix portablectl derives from an image argument: its file name cut at the
/// first `_`, otherwise without a trailing `.raw`. It must consist of `[A-Za-z0-9.-]` only.
pub fn default_prefix(image: &str) -> Option<String> {
    let base = image
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(image);
    let prefix = match base.find('_') {
        Some(i) => &base[..i],
        None => base.strip_suffix(".raw").unwrap_or(base),
    };
    let ok = filename_is_valid(prefix.as_bytes())
        && prefix
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-');
    ok.then(|| prefix.to_string())
}

/// What an image argument is: a name to look up in the search path, or an absolute path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef<'a> {
    Name(&'a str),
    Path(&'a Path),
}

/// Why an image argument was refused (the messages are the reference's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageRefError {
    #[error("Image name '{0}' is not valid or not a valid path.")]
    Invalid(String),
    #[error("Image path '{0}' is not normalized.")]
    NotNormalized(String),
    /// A path that would break the unit files it is written into (docs/security.md).
    #[error("Image path '{}' contains control characters, refusing.", crate::parse::text::cescape(.0))]
    ControlCharacters(String),
}

/// Classifies an image argument: a valid image name, or an absolute, normalized path.
pub fn parse_image_ref(s: &str) -> Result<ImageRef<'_>, ImageRefError> {
    if image_name_is_valid(s.as_bytes()) {
        return Ok(ImageRef::Name(s));
    }
    if !s.starts_with('/') || s.contains('\0') {
        return Err(ImageRefError::Invalid(s.to_string()));
    }
    if !path_is_normalized(s) {
        return Err(ImageRefError::NotNormalized(s.to_string()));
    }
    if crate::parse::text::has_control(s) {
        return Err(ImageRefError::ControlCharacters(s.to_string()));
    }
    Ok(ImageRef::Path(Path::new(s)))
}

/// systemd's `path_is_normalized`: no `.` or `..` components, no `//`, no trailing `/.`.
pub fn path_is_normalized(s: &str) -> bool {
    if s.is_empty() || s.contains("//") {
        return false;
    }
    if s.split('/').any(|c| c == "." || c == "..") {
        return false;
    }
    Path::new(s)
        .components()
        .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_and_instances() {
        assert_eq!(
            template_of("user@0.service").as_deref(),
            Some("user@.service")
        );
        assert_eq!(
            template_of("getty@tty9.service").as_deref(),
            Some("getty@.service")
        );
        assert_eq!(template_of("user@.service"), None);
        assert_eq!(template_of("plain.service"), None);
        assert!(is_template("user@.service") && !is_template("user@0.service"));
        assert_eq!(
            instance_of("getty@.service", "tty9").as_deref(),
            Some("getty@tty9.service")
        );
        assert_eq!(instance_of("plain.service", "x"), None);
    }

    #[test]
    fn image_names() {
        for ok in [
            "foo",
            "foo_1.2",
            "bad~name",
            "a@b",
            ".hidden_1",
            "foo.raw",
            "ü",
        ] {
            assert!(image_name_is_valid(ok.as_bytes()), "{ok}");
        }
        let long_ok = "a".repeat(255);
        let long_bad = "a".repeat(256);
        assert!(image_name_is_valid(long_ok.as_bytes()));
        assert!(!image_name_is_valid(long_bad.as_bytes()));
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            ".#lock",
            "tab\tname",
            "nl\nname",
            "del\x7f",
        ] {
            assert!(!image_name_is_valid(bad.as_bytes()), "{bad:?}");
        }
        assert!(!image_name_is_valid(b"caf\xe9"), "non-UTF-8");
    }

    #[test]
    fn raw_names() {
        assert_eq!(
            image_name_from_file_name(b"sq_1.raw", true).as_deref(),
            Some("sq_1")
        );
        assert_eq!(image_name_from_file_name(b".raw", true), None);
        assert_eq!(image_name_from_file_name(b"x.img", true), None);
        assert_eq!(
            image_name_from_file_name(b"foo.raw", false).as_deref(),
            Some("foo.raw")
        );
    }

    #[test]
    fn unit_names() {
        for ok in [
            "foo.service",
            "foo@.service",
            "foo@bar.service",
            "a-b_c:d\\x2d.socket",
            ".foo.service",
            "foo.d.timer",
            "x.mount",
        ] {
            assert!(unit_name_is_valid(ok), "{ok}");
        }
        let too_long = format!("{}.service", "a".repeat(250));
        for bad in [
            "",
            "foo",
            ".service",
            "foo.bar",
            "@foo.service",
            "foo bar.service",
            "foo/bar.service",
            "../x.service",
            "f\u{e9}.service",
            too_long.as_str(),
        ] {
            assert!(!unit_name_is_valid(bad), "{bad:?}");
        }
        assert!(unit_is_portable_type("a.timer"));
        assert!(!unit_is_portable_type("a.mount"));
        assert!(!unit_is_portable_type("a.slice"));
    }

    #[test]
    fn prefix_matching() {
        for u in [
            "foo.service",
            "foo-bar.service",
            "foo@.service",
            "foo.socket",
            "foo.d.service",
        ] {
            assert!(unit_matches_prefix(u, "foo"), "{u}");
        }
        assert!(!unit_matches_prefix("foobar.service", "foo"));
        assert!(!unit_matches_prefix("fo.service", "foo"));
        assert!(unit_matches_prefix("foo.service", "foo.service"));
        assert!(unit_matches("anything.service", &[]));
        assert!(unit_matches("b.service", &["a".into(), "b".into()]));
    }

    #[test]
    fn default_prefixes() {
        assert_eq!(default_prefix("foo_1.2.raw").as_deref(), Some("foo"));
        assert_eq!(
            default_prefix("/var/lib/portables/foo.raw").as_deref(),
            Some("foo")
        );
        assert_eq!(default_prefix("/x/foo-bar/").as_deref(), Some("foo-bar"));
        assert_eq!(default_prefix("foo.v2").as_deref(), Some("foo.v2"));
        assert_eq!(default_prefix("bad~name"), None);
        assert_eq!(default_prefix("_1.raw"), None);
        assert_eq!(default_prefix("a@b"), None);
    }

    #[test]
    fn image_refs() {
        assert_eq!(parse_image_ref("foo_1"), Ok(ImageRef::Name("foo_1")));
        assert_eq!(
            parse_image_ref("/var/lib/portables/foo.raw"),
            Ok(ImageRef::Path(Path::new("/var/lib/portables/foo.raw")))
        );
        assert!(matches!(
            parse_image_ref("rel/path"),
            Err(ImageRefError::Invalid(_))
        ));
        assert!(matches!(
            parse_image_ref(""),
            Err(ImageRefError::Invalid(_))
        ));
        for bad in ["/a/../b", "/a//b", "/a/./b", "/a/..", "/.."] {
            assert!(
                matches!(parse_image_ref(bad), Err(ImageRefError::NotNormalized(_))),
                "{bad}"
            );
        }
        assert_eq!(
            ImageRefError::NotNormalized("/a/../b".into()).to_string(),
            "Image path '/a/../b' is not normalized."
        );
        assert!(path_is_normalized("/a/b/"));
    }
}

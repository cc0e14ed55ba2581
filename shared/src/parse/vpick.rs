//! The vpick protocol of systemd 256 and later: a directory `NAME.v/` holds versions of one
//! image, `NAME_VERSION.raw` files or `NAME_VERSION` directories, and stands for the newest
//! (docs/compatibility.md, "By systemd version").

use std::cmp::Ordering;

/// The image name of a `.v` directory (`app1` of `/tmp/app1.v/`), if the path names one.
pub fn versioned_dir_name(path: &str) -> Option<&str> {
    let name = path.trim_end_matches('/').rsplit('/').next()?;
    name.strip_suffix(".v").filter(|n| !n.is_empty())
}

/// The version in an entry's name (`2.0` of `app1_2.0.raw`), when the entry belongs to the
/// image `name`: `NAME_VERSION`, for a file with `.raw`.
pub fn entry_version<'a>(name: &str, entry: &'a str, is_dir: bool) -> Option<&'a str> {
    let rest = entry.strip_prefix(name)?.strip_prefix('_')?;
    let version = if is_dir {
        rest
    } else {
        rest.strip_suffix(".raw")?
    };
    (!version.is_empty() && !version.contains('/')).then_some(version)
}

/// The entry of the newest version among `(entry name, is a directory)`.
pub fn newest<'a>(name: &str, entries: &[(&'a str, bool)]) -> Option<&'a str> {
    entries
        .iter()
        .filter_map(|&(e, dir)| Some((e, entry_version(name, e, dir)?)))
        .max_by(|a, b| version_cmp(a.1, b.1).then_with(|| a.0.cmp(b.0)))
        .map(|(e, _)| e)
}

/// Compares two versions as the UAPI version format orders them (systemd's
/// `strverscmp_improved()`): runs of digits numerically, runs of letters alphabetically, a
/// `~` before anything (pre-releases), a version that goes on after the other is newer.
pub fn version_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    let sep = |c: u8| !c.is_ascii_alphanumeric() && c != b'~';
    loop {
        while a.first().is_some_and(|&c| sep(c)) {
            a = &a[1..];
        }
        while b.first().is_some_and(|&c| sep(c)) {
            b = &b[1..];
        }
        match (a.first(), b.first()) {
            (Some(b'~'), Some(b'~')) => {
                a = &a[1..];
                b = &b[1..];
                continue;
            }
            (Some(b'~'), _) => return Ordering::Less,
            (_, Some(b'~')) => return Ordering::Greater,
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            _ => {}
        }
        let digits = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
        let letters = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_alphabetic()).count();
        let (da, db) = (digits(a), digits(b));
        let o = match (da, db) {
            (0, 0) => {
                let (la, lb) = (letters(a), letters(b));
                let o = a[..la].cmp(&b[..lb]);
                a = &a[la..];
                b = &b[lb..];
                o
            }
            // A number is newer than letters at the same place.
            (0, _) => Ordering::Less,
            (_, 0) => Ordering::Greater,
            _ => {
                let na = trim_zeros(&a[..da]);
                let nb = trim_zeros(&b[..db]);
                let o = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
                a = &a[da..];
                b = &b[db..];
                o
            }
        };
        if o != Ordering::Equal {
            return o;
        }
    }
}

fn trim_zeros(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&c| c == b'0').count();
    &s[n..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_as_uapi() {
        use Ordering::*;
        for (a, b, o) in [
            ("1.0", "2.0", Less),
            ("2.0", "10.0", Less),
            ("1.0", "1.0", Equal),
            ("1.0", "1.0.1", Less),
            ("1.0~rc1", "1.0", Less),
            ("1.0a", "1.0b", Less),
            ("1.0a", "1.01", Less),
            ("007", "7", Equal),
        ] {
            assert_eq!(version_cmp(a, b), o, "{a} vs {b}");
            assert_eq!(version_cmp(b, a), o.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn the_newest_entry_of_the_image() {
        assert_eq!(versioned_dir_name("/tmp/app1.v/"), Some("app1"));
        assert_eq!(versioned_dir_name("/tmp/app1.v"), Some("app1"));
        assert_eq!(versioned_dir_name("/tmp/app1"), None);
        assert_eq!(versioned_dir_name("/tmp/.v/"), None);
        let entries = [
            ("app1_1.0.raw", false),
            ("app1_2.0.raw", false),
            ("app1_10.0", false),
            ("other_9.raw", false),
            ("app1_1.5", true),
        ];
        assert_eq!(newest("app1", &entries), Some("app1_2.0.raw"));
        assert_eq!(newest("app1", &entries[..1]), Some("app1_1.0.raw"));
        assert_eq!(newest("app1", &entries[4..]), Some("app1_1.5"));
        assert_eq!(newest("app1", &entries[3..4]), None);
    }
}

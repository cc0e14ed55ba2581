//! Just enough of systemd's unit file syntax to read profiles and `Exec*=` lines: sections,
//! `Key=Value` assignments, comments, and backslash line continuations.

/// One `Key=Value` assignment of a unit file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub section: String,
    pub key: String,
    pub value: String,
    /// The line the assignment starts on (1-based).
    pub line: usize,
}

/// Parses a unit file into its assignments, in order. Lines that are neither a section header,
/// an assignment nor a comment are ignored, as systemd ignores them with a warning.
pub fn parse(text: &str) -> Vec<Assignment> {
    let mut out = Vec::new();
    let mut section = String::new();
    let mut pending: Option<(String, usize)> = None;
    for (idx, raw) in text.lines().enumerate() {
        let line_no = idx + 1;
        let (mut logical, start) = match pending.take() {
            Some((mut acc, start)) => {
                let t = raw.trim_start();
                // Comment lines inside a continuation are skipped, as systemd does.
                if t.starts_with('#') || t.starts_with(';') {
                    pending = Some((acc, start));
                    continue;
                }
                acc.push(' ');
                acc.push_str(raw);
                (acc, start)
            }
            None => (raw.to_string(), line_no),
        };
        if logical.ends_with('\\') && !logical.ends_with("\\\\") {
            logical.pop();
            pending = Some((logical, start));
            continue;
        }
        let t = logical.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        if t.starts_with('[') && t.ends_with(']') {
            section = t[1..t.len() - 1].to_string();
            continue;
        }
        if let Some((k, v)) = t.split_once('=') {
            out.push(Assignment {
                section: section.clone(),
                key: k.trim().to_string(),
                value: v.trim().to_string(),
                line: start,
            });
        }
    }
    if let Some((acc, start)) = pending {
        if let Some((k, v)) = acc.trim().split_once('=') {
            out.push(Assignment {
                section,
                key: k.trim().to_string(),
                value: v.trim().to_string(),
                line: start,
            });
        }
    }
    out
}

/// Splits a value into words with systemd's quoting: `"..."` and `'...'` group, a backslash
/// escapes the next character. Returns `None` on an unterminated quote.
pub fn split_words(value: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => cur.push(chars.next()?),
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '\\') => {
                cur.push(chars.next()?);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return None;
    }
    if in_word {
        words.push(cur);
    }
    Some(words)
}

/// The other unit names that enabling a unit creates links for, from its `[Install]`
/// section: every `Alias=` and `Also=` name, and for a template (`name` is `foo@.service`) the
/// instance its `DefaultInstance=` names. Names with specifiers (`%`) are left out.
pub fn install_names(name: &str, text: &str) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = Vec::new();
    for a in parse(text) {
        if a.section != "Install" {
            continue;
        }
        let key: &'static str = match a.key.as_str() {
            "Alias" => "Alias",
            "Also" => "Also",
            "DefaultInstance" => "DefaultInstance",
            _ => continue,
        };
        if a.value.is_empty() {
            out.retain(|(k, _)| *k != key);
            continue;
        }
        for w in split_words(&a.value).unwrap_or_default() {
            if w.contains('%') {
                continue;
            }
            let unit = if key == "DefaultInstance" {
                match crate::parse::names::instance_of(name, &w) {
                    Some(u) => u,
                    None => continue,
                }
            } else {
                w
            };
            if !out.iter().any(|(_, u)| *u == unit) {
                out.push((key, unit));
            }
        }
    }
    out
}

/// systemd's boolean parsing.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "yes" | "y" | "true" | "t" | "on" => Some(true),
        "0" | "no" | "n" | "false" | "f" | "off" => Some(false),
        _ => None,
    }
}

/// The program of an `Exec*=` value: the first word after the special prefixes
/// (`@`, `-`, `:`, `+`, `!`, `!!`). `None` for an empty value (a reset) or a bad one.
pub fn exec_program(value: &str) -> Option<String> {
    let rest = value.trim_start_matches(['@', '-', ':', '+', '!']);
    split_words(rest)?.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_continuations_comments() {
        let text = "# c\n[Unit]\nDescription=x\n\n[Service]\nExecStart=/bin/a \\\n  --flag\n; x\nA = b = c\nnot an assignment\n";
        let a = parse(text);
        assert_eq!(a.len(), 3);
        assert_eq!(a[0].section, "Unit");
        assert_eq!(
            (a[1].key.as_str(), a[1].value.as_str(), a[1].line),
            ("ExecStart", "/bin/a    --flag", 6)
        );
        assert_eq!((a[2].key.as_str(), a[2].value.as_str()), ("A", "b = c"));
    }

    #[test]
    fn continuation_skips_comment_lines() {
        let a = parse("[S]\nCaps=A \\\n# note\n\tB\n");
        assert_eq!(a[0].value, "A  \tB");
    }

    #[test]
    fn install_section_names() {
        let text = "[Unit]\nAlias=not-here.service\n[Install]\nWantedBy=multi-user.target\nAlias=a.service b.service\nAlso=debug-shell.service %p-x.service\nDefaultInstance=tty9\n";
        assert_eq!(
            install_names("getty@.service", text),
            [
                ("Alias", "a.service".to_string()),
                ("Alias", "b.service".to_string()),
                ("Also", "debug-shell.service".to_string()),
                ("DefaultInstance", "getty@tty9.service".to_string()),
            ]
        );
        assert!(install_names("x.service", "[Install]\nAlias=a.service\nAlias=\n").is_empty());
    }

    #[test]
    fn words_and_programs() {
        assert_eq!(
            split_words("a 'b c' \"d\\\"e\" f\\ g").unwrap(),
            ["a", "b c", "d\"e", "f g"]
        );
        assert_eq!(split_words("\"open"), None);
        assert_eq!(
            exec_program("-/usr/bin/x --y").as_deref(),
            Some("/usr/bin/x")
        );
        assert_eq!(
            exec_program("!!@/bin/sh sh -c x").as_deref(),
            Some("/bin/sh")
        );
        assert_eq!(
            exec_program("\"/opt/my app/bin\" a").as_deref(),
            Some("/opt/my app/bin")
        );
        assert_eq!(exec_program(""), None);
        assert_eq!(parse_bool("Yes"), Some(true));
        assert_eq!(parse_bool("maybe"), None);
    }
}

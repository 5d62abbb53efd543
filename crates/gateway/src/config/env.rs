//! `${NAME}` expansion in the configuration text, for secrets kept in the environment.
//!
//! Expansion happens on the raw text before TOML parsing, so that TOML's own error messages
//! keep their line and column, but only inside double-quoted (basic) strings: comments may
//! mention `${NAME}` freely, and a single-quoted literal string keeps its text as written.
//! Each value is escaped for a TOML basic string, so a secret with a quote, a backslash or a
//! control character cannot break the file. Only `${NAME}` is recognised (NAME of letters,
//! digits and underscores); `$$` is a literal `$`. An unset variable is an error naming it and
//! its line, never a silent empty string.

/// Why expansion failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    /// A variable the file uses is not set.
    #[error("line {line}: environment variable {name} is not set")]
    Unset {
        /// Its name.
        name: String,
        /// 1-based line.
        line: usize,
    },
    /// `${` without a closing `}` or with a bad name.
    #[error("line {line}: malformed ${{...}} reference")]
    Malformed {
        /// 1-based line.
        line: usize,
    },
}

/// Where the scanner is in the TOML text.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    /// Keys, values other than strings, whitespace.
    Bare,
    /// From `#` to the end of the line.
    Comment,
    /// `"..."`, or `"""..."""` when multi-line: expanded.
    Basic { multiline: bool },
    /// `'...'`, or `'''...'''` when multi-line: kept as written.
    Literal { multiline: bool },
}

/// Expands `${NAME}` inside the basic strings of `text` with `lookup`.
pub fn expand(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, EnvError> {
    let mut out = String::with_capacity(text.len());
    let mut line = 1;
    let mut context = Context::Bare;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        // How many bytes to copy unchanged, and the context after them.
        let (len, next) = match (context, c) {
            (_, '\n') => {
                line += 1;
                (1, if context == Context::Comment { Context::Bare } else { context })
            }
            (Context::Bare, '#') => (1, Context::Comment),
            (Context::Bare, '"') if rest.starts_with(r#"""""#) => (3, Context::Basic { multiline: true }),
            (Context::Bare, '"') => (1, Context::Basic { multiline: false }),
            (Context::Bare, '\'') if rest.starts_with("'''") => (3, Context::Literal { multiline: true }),
            (Context::Bare, '\'') => (1, Context::Literal { multiline: false }),
            (Context::Literal { multiline: false }, '\'') => (1, Context::Bare),
            (Context::Literal { multiline: true }, '\'') if rest.starts_with("'''") => (3, Context::Bare),
            (Context::Basic { multiline: false }, '"') => (1, Context::Bare),
            (Context::Basic { multiline: true }, '"') if rest.starts_with(r#"""""#) => (3, Context::Bare),
            (Context::Basic { .. }, '\\') => {
                // An escape: the character after it cannot end the string or start a reference.
                let escaped = rest[1..].chars().next().map_or(0, char::len_utf8);
                if rest[1..].starts_with('\n') {
                    line += 1;
                }
                (1 + escaped, context)
            }
            (Context::Basic { .. }, '$') => {
                rest = &rest[1 + reference(&rest[1..], line, &lookup, &mut out)?..];
                continue;
            }
            _ => (c.len_utf8(), context),
        };
        out.push_str(&rest[..len]);
        rest = &rest[len..];
        context = next;
    }
    Ok(out)
}

/// Expands what follows a `$` in a basic string into `out`; returns the bytes consumed after
/// the `$`.
fn reference(after: &str, line: usize, lookup: &impl Fn(&str) -> Option<String>, out: &mut String) -> Result<usize, EnvError> {
    if after.starts_with('$') {
        out.push('$');
        return Ok(1);
    }
    let Some(body) = after.strip_prefix('{') else {
        out.push('$');
        return Ok(0);
    };
    let end = body.find('}').ok_or(EnvError::Malformed { line })?;
    let name = &body[..end];
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(EnvError::Malformed { line });
    }
    let value = lookup(name).ok_or_else(|| EnvError::Unset { name: name.to_owned(), line })?;
    for c in value.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '"' => out.push_str(r#"\""#),
            '\n' => out.push_str(r"\n"),
            '\r' => out.push_str(r"\r"),
            '\t' => out.push_str(r"\t"),
            c if c.is_control() => out.push_str(&format!(r"\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    Ok(end + 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("abc".into()),
            "TRICKY" => Some(r#"a"b\c"#.into()),
            "CTRL" => Some("a\tb\u{7}".into()),
            _ => None,
        }
    }

    #[test]
    fn expands_and_escapes() {
        assert_eq!(expand("token = \"${TOKEN}\"", env).as_deref(), Ok("token = \"abc\""));
        assert_eq!(expand("p = \"${TRICKY}\"", env).as_deref(), Ok(r#"p = "a\"b\\c""#));
        assert_eq!(expand("cost = \"$$5 and $x\"", env).as_deref(), Ok("cost = \"$5 and $x\""));
        assert_eq!(expand("c = \"${CTRL}\"", env).as_deref(), Ok(r#"c = "a\tb\u0007""#));
    }

    #[test]
    fn unset_and_malformed_name_the_line() {
        assert_eq!(expand("a = 1\nb = \"${NOPE}\"", env), Err(EnvError::Unset { name: "NOPE".into(), line: 2 }));
        assert_eq!(expand("\n\nb = \"${BAD NAME}\"", env), Err(EnvError::Malformed { line: 3 }));
        assert_eq!(expand("b = \"${OPEN", env), Err(EnvError::Malformed { line: 1 }));
        let multiline = "a = \"\"\"x\ny\\\nz\"\"\"\nb = \"${NOPE}\"";
        assert_eq!(expand(multiline, env), Err(EnvError::Unset { name: "NOPE".into(), line: 4 }));
    }

    #[test]
    fn only_basic_strings_are_expanded() {
        let untouched = "# \"${UNSET}\" in a comment\nk = '${UNSET}' # or ${UNSET}\nm = '''\n${UNSET}'''\n";
        assert_eq!(expand(untouched, env).as_deref(), Ok(untouched));
        assert_eq!(expand("t = \"\"\"\n${TOKEN}\"\"\" # ${X}", env).as_deref(), Ok("t = \"\"\"\nabc\"\"\" # ${X}"));
        assert_eq!(expand(r#"q = "a\"${TOKEN}" # é ${X}"#, env).as_deref(), Ok(r#"q = "a\"abc" # é ${X}"#));
        assert_eq!(expand("l = 'it''s' # ${X}", env).as_deref(), Ok("l = 'it''s' # ${X}"));
    }

    #[test]
    fn expanded_text_parses_to_the_values() {
        for name in ["TOKEN", "TRICKY", "CTRL"] {
            let text = expand(&format!("v = \"${{{name}}}\""), env).expect("expands");
            let table: toml::Table = toml::from_str(&text).expect("valid TOML");
            assert_eq!(table["v"].as_str(), env(name).as_deref(), "{text}");
        }
    }
}

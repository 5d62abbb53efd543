//! Lexical helpers shared by the header parsers: splitting lists and parameters while honouring
//! quoted strings (RFC 3261 §25.1) and angle brackets.

/// Splits `s` at every top-level `sep`: not inside a quoted string, nor inside `<...>`.
pub(crate) fn split_top(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    let mut angle = 0u32;
    for (i, c) in s.char_indices() {
        if quoted {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            '<' => angle += 1,
            '>' => angle = angle.saturating_sub(1),
            _ if c == sep && angle == 0 => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// Splits a comma-separated header value into its trimmed, non-empty elements.
pub(crate) fn split_list(value: &str) -> impl Iterator<Item = &str> {
    split_top(value, ',').into_iter().map(str::trim).filter(|p| !p.is_empty())
}

/// Whether `c` may appear in a token (RFC 3261 §25.1).
pub(crate) fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

/// Whether `s` is a non-empty token.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_token_char)
}

/// The content of a quoted string (`"..."` with backslash escapes), or `s` itself when it is
/// not quoted.
pub(crate) fn unquote(s: &str) -> String {
    let s = s.trim();
    if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        let mut out = String::with_capacity(s.len() - 2);
        let mut escaped = false;
        for c in s[1..s.len() - 1].chars() {
            if escaped {
                out.push(c);
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else {
                out.push(c);
            }
        }
        out
    } else {
        s.to_owned()
    }
}

/// `s` as a quoted string, escaping `"` and `\`.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Generic parameters (`;name=value;flag`), in order, names kept as received.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, Option<String>)>);

impl Params {
    /// No parameters.
    pub fn new() -> Self {
        Params(Vec::new())
    }

    /// Parses `;a=b;c` (the leading `;` optional), trimming whitespace around names and values.
    pub(crate) fn parse(s: &str) -> Params {
        let mut out = Vec::new();
        for part in split_top(s, ';') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            match part.split_once('=') {
                Some((n, v)) => out.push((n.trim().to_owned(), Some(v.trim().to_owned()))),
                None => out.push((part.to_owned(), None)),
            }
        }
        Params(out)
    }

    /// The value of `name` (case-insensitive): `Some(None)` for a flag without a value.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_deref())
    }

    /// The value of `name`, if it has one.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.get(name).flatten()
    }

    /// Whether `name` is present.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets `name` (replacing a present one), keeping its position.
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        match self.0.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            Some(p) => p.1 = value.map(str::to_owned),
            None => self.0.push((name.to_owned(), value.map(str::to_owned))),
        }
    }

    /// Removes `name`.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// Iterates `(name, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_deref()))
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Display for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (n, v) in &self.0 {
            match v {
                Some(v) => write!(f, ";{n}={v}")?,
                None => write!(f, ";{n}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_honours_quotes_and_angles() {
        assert_eq!(split_top(r#""a,b" <sip:x;y,z>, c"#, ','), vec![r#""a,b" <sip:x;y,z>"#, " c"]);
        assert_eq!(split_top(r#""a\"," ; b"#, ';'), vec![r#""a\"," "#, " b"]);
        assert_eq!(split_list(" a , , b,").collect::<Vec<_>>(), vec!["a", "b"]);
    }

    #[test]
    fn quoting_round_trips() {
        let s = r#"Say "hi" \ bye"#;
        assert_eq!(unquote(&quote(s)), s);
        assert_eq!(unquote("token"), "token");
    }

    #[test]
    fn params() {
        let mut p = Params::parse(";branch=z9hG4bK1; rport ;received= 1.2.3.4");
        assert_eq!(p.value("BRANCH"), Some("z9hG4bK1"));
        assert_eq!(p.get("rport"), Some(None));
        assert_eq!(p.value("received"), Some("1.2.3.4"));
        p.set("rport", Some("5060"));
        p.remove("received");
        assert_eq!(p.to_string(), ";branch=z9hG4bK1;rport=5060");
    }
}

//! What the demo caller says: the built-in lines, or one line per turn from a file.

use std::path::Path;

/// The built-in script: questions the sample assistant's knowledge answers, then a goodbye.
pub const BUILT_IN: [&str; 5] = [
    "Hello, what are your opening hours?",
    "What is your address?",
    "How much does a sourdough loaf cost?",
    "Is there parking near the bakery?",
    "Thank you, goodbye.",
];

/// The built-in lines.
pub fn built_in() -> Vec<String> {
    BUILT_IN.iter().map(|&l| l.to_owned()).collect()
}

/// Reads a script file: one line per turn; blank lines and lines starting with `#` are skipped.
pub fn load(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read the caller script {}: {e}", path.display()))?;
    let lines = parse(&text);
    if lines.is_empty() {
        return Err(format!("{}: no lines to say (blank lines and # comments are skipped)", path.display()));
    }
    Ok(lines)
}

/// The lines of a script text, trimmed, without blank lines and `#` comments.
pub fn parse(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_trimmed_and_comments_and_blanks_skipped() {
        let text = "# a caller who wants bread\n\n  Do you bake rye bread?  \r\n#skip me\nBye now.\n   \n";
        assert_eq!(parse(text), ["Do you bake rye bread?", "Bye now."]);
    }

    #[test]
    fn a_hash_inside_a_line_is_kept() {
        assert_eq!(parse("Is order #12 ready?"), ["Is order #12 ready?"]);
    }

    #[test]
    fn a_file_without_lines_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("test setup");
        let path = dir.path().join("empty.txt");
        std::fs::write(&path, "# nothing\n\n").expect("test setup");
        let e = load(&path).expect_err("an error");
        assert!(e.contains("empty.txt") && e.contains("no lines"), "{e}");
        let e = load(&dir.path().join("missing.txt")).expect_err("an error");
        assert!(e.contains("missing.txt"), "{e}");
    }

    #[test]
    fn the_built_in_script_ends_with_a_goodbye() {
        let lines = built_in();
        assert!((4..=6).contains(&lines.len()));
        assert!(lines.last().expect("test setup").to_lowercase().contains("goodbye"));
    }
}

//! From written phrases to the spoken words a recogniser's dictionary knows: lowercase words,
//! numbers spelled out the way callers say them, and a sentence break wherever punctuation or a
//! word without a pronunciation interrupts the phrase.

use std::collections::{BTreeMap, BTreeSet};

/// A pronunciation dictionary in CMU format (`word PH ON EMES`, variants as `word(2) ...`), as
/// shipped with pocketsphinx.
#[derive(Clone, Debug, Default)]
pub struct Dictionary {
    /// Word → its lines (the base entry and its variants), verbatim.
    entries: BTreeMap<String, Vec<String>>,
}

impl Dictionary {
    /// Reads a dictionary's text. Lines that are not `word phones...` are skipped.
    pub fn parse(text: &str) -> Self {
        let mut entries: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for line in text.lines() {
            let Some((head, phones)) = line.split_once(' ') else { continue };
            if phones.trim().is_empty() {
                continue;
            }
            let word = head.split_once('(').map_or(head, |(w, _)| w);
            entries.entry(word.to_owned()).or_default().push(line.trim_end().to_owned());
        }
        Self { entries }
    }

    /// Whether `word` has a pronunciation.
    pub fn contains(&self, word: &str) -> bool {
        self.entries.contains_key(word)
    }

    /// Number of words (variants counted once).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the dictionary is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The dictionary restricted to `words`, as text: what the decoder loads per session (a
    /// few hundred lines instead of 135,000, so a recogniser starts in milliseconds).
    pub fn subset<'a>(&self, words: impl IntoIterator<Item = &'a str>) -> String {
        let mut out = String::new();
        for w in words.into_iter().collect::<BTreeSet<_>>() {
            for line in self.entries.get(w).into_iter().flatten() {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

/// Splits `text` into sentences of dictionary words. Punctuation that ends a clause ends a
/// sentence; so does a word the dictionary lacks (the model must not learn a bigram across a
/// gap it cannot hear). Numbers are spelled out.
pub fn sentences(text: &str, dict: &Dictionary) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut flush = |current: &mut Vec<String>| {
        if !current.is_empty() {
            out.push(std::mem::take(current));
        }
    };
    for token in tokens(text) {
        match token {
            Token::Break => flush(&mut current),
            Token::Word(w) => {
                if dict.contains(&w) {
                    current.push(w);
                } else {
                    flush(&mut current);
                }
            }
            Token::Number(digits) => current.extend(number_words(&digits).into_iter().map(str::to_owned)),
        }
    }
    flush(&mut current);
    out
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Number(String),
    Break,
}

fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_alphabetic() {
            let mut w = String::new();
            while let Some(&c) = chars.peek() {
                // Apostrophes inside words (`don't`, `we're`) are part of them in the dictionary.
                if c.is_alphabetic() || (c == '\'' && !w.is_empty()) {
                    w.extend(c.to_lowercase());
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(Token::Word(w.trim_end_matches('\'').to_owned()));
        } else if c.is_ascii_digit() {
            let mut d = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_ascii_digit() {
                    d.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(Token::Number(d));
        } else {
            // Not ':': "9:30" is said "nine thirty", in one breath.
            if matches!(c, '.' | ',' | ';' | '!' | '?' | '(' | ')' | '"' | '\n') {
                out.push(Token::Break);
            }
            chars.next();
        }
    }
    out
}

const ONES: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [&str; 10] = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];

/// The words for a run of digits: up to four digits as a number ("1990" → "nineteen ninety" is
/// a year reading; we say "one thousand nine hundred ninety", which callers also use for
/// amounts), longer runs (phone and order numbers) digit by digit.
pub fn number_words(digits: &str) -> Vec<&'static str> {
    let digits = if digits.len() > 1 { digits.trim_start_matches('0') } else { digits };
    if digits.is_empty() {
        return vec!["zero"];
    }
    if digits.len() > 4 {
        return digits.bytes().map(|b| ONES[usize::from(b - b'0')]).collect();
    }
    let n: usize = digits.parse().unwrap_or(0);
    let mut out = Vec::new();
    if n >= 1000 {
        out.extend([ONES[n / 1000], "thousand"]);
    }
    let rest = n % 1000;
    if rest >= 100 {
        out.extend([ONES[rest / 100], "hundred"]);
    }
    let rest = rest % 100;
    if rest >= 20 {
        out.push(TENS[rest / 10]);
        if !rest.is_multiple_of(10) {
            out.push(ONES[rest % 10]);
        }
    } else if rest > 0 || out.is_empty() {
        out.push(ONES[rest]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dict() -> Dictionary {
        Dictionary::parse(
            "we W IY\nare AA R\nare(2) ER\nopen OW P AH N\nfrom F R AH M\nnine N AY N\nto T UW\nfive F AY V\nthirty TH ER D IY\n\
             don't D OW N T\nknow N OW\nbroken\n",
        )
    }

    #[test]
    fn parses_variants_and_skips_bad_lines() {
        let d = dict();
        assert!(d.contains("are") && d.contains("don't") && !d.contains("broken") && !d.contains("are(2)"));
        assert_eq!(d.subset(["are", "we", "missing"]), "are AA R\nare(2) ER\nwe W IY\n");
        assert_eq!(d.len(), 10);
    }

    #[test]
    fn splits_at_punctuation_and_unknown_words() {
        let d = dict();
        assert_eq!(
            sentences("We are open from 9:30 to 5. I don't know Zanzibar, we are open!", &d),
            vec![vec!["we", "are", "open", "from", "nine", "thirty", "to", "five"], vec!["don't", "know"], vec!["we", "are", "open"]]
        );
    }

    #[test]
    fn numbers_are_spelled_as_said() {
        assert_eq!(number_words("0"), ["zero"]);
        assert_eq!(number_words("007"), ["seven"]);
        assert_eq!(number_words("15"), ["fifteen"]);
        assert_eq!(number_words("42"), ["forty", "two"]);
        assert_eq!(number_words("300"), ["three", "hundred"]);
        assert_eq!(number_words("1205"), ["one", "thousand", "two", "hundred", "five"]);
        assert_eq!(number_words("5550123"), ["five", "five", "five", "zero", "one", "two", "three"]);
    }
}

//! English text for retrieval and intents: words, stems, stop words and sentences.

/// Words too common to tell passages apart. Question words other than "what" and "how" are kept out of this list on
/// purpose: [`expand`] turns "where" and "how much" into the nouns a knowledge entry would use.
const STOP_WORDS: &[&str] = &[
    "a",
    "about",
    "am",
    "an",
    "and",
    "any",
    "anything",
    "are",
    "as",
    "at",
    "be",
    "been",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "for",
    "from",
    "get",
    "got",
    "had",
    "has",
    "have",
    "he",
    "her",
    "here",
    "him",
    "his",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "just",
    "know",
    "let",
    "like",
    "me",
    "might",
    "my",
    "of",
    "on",
    "or",
    "our",
    "ours",
    "please",
    "she",
    "should",
    "so",
    "some",
    "tell",
    "than",
    "that",
    "the",
    "their",
    "them",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "to",
    "us",
    "was",
    "we",
    "were",
    "what",
    "which",
    "who",
    "whom",
    "will",
    "with",
    "would",
    "you",
    "your",
    "yours",
    "im",
    "ive",
    "id",
    "youre",
    "dont",
    "isnt",
    "whats",
    "thats",
    "also",
    "okay",
    "ok",
    "well",
    "yes",
    "hi",
    "hello",
    "hey",
    "somewhere",
    "anywhere",
    "something",
    "how",
];

/// Question words and everyday phrasings mapped to the words a knowledge entry uses for the same
/// thing, so "where are you" finds an address and "how much" finds prices. Added to a query at
/// a lower weight than its own words (see [`crate::local::retrieval`]); compared by stem.
const EXPANSIONS: &[(&str, &[&str])] = &[
    ("where", &["address", "located", "street", "find"]),
    ("location", &["address", "street", "located"]),
    ("located", &["address", "street"]),
    ("when", &["hours", "open", "time", "days"]),
    ("open", &["hours"]),
    ("close", &["hours"]),
    ("hours", &["open"]),
    ("much", &["price", "cost", "fee"]),
    ("cost", &["price", "fee"]),
    ("price", &["cost", "fee"]),
    ("expensive", &["price", "cost"]),
    ("cheap", &["price", "cost"]),
    ("pay", &["payment", "price", "card"]),
    ("charge", &["price", "fee"]),
    ("refund", &["return", "money"]),
    ("return", &["refund"]),
    ("back", &["return", "refund"]),
    ("send", &["return", "shipping"]),
    ("buy", &["purchase"]),
    ("bought", &["purchase"]),
    ("deliver", &["shipping", "delivery"]),
    ("delivery", &["shipping", "deliver"]),
    ("shipping", &["delivery", "deliver"]),
    ("phone", &["call", "number"]),
    ("email", &["mail", "contact"]),
    ("contact", &["phone", "email"]),
    ("park", &["parking"]),
    ("book", &["appointment", "reservation"]),
    ("appointment", &["book", "booking"]),
    ("reservation", &["book", "booking"]),
];

/// The lowercase words of `text`: runs of letters and digits; apostrophes inside words vanish
/// ("don't" is "dont").
pub(crate) fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’'))
        .map(|w| w.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect::<String>())
        .filter(|w| !w.is_empty())
}

/// Whether `word` (lowercase) is a stop word.
pub(crate) fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.contains(&word)
}

/// The index terms of `text`: words without stop words, stemmed.
pub(crate) fn terms(text: &str) -> Vec<String> {
    words(text).filter(|w| !is_stop_word(w)).map(|w| stem(&w)).collect()
}

/// Related terms (stems) of a query term (a stem), from [`EXPANSIONS`].
pub(crate) fn expand(term: &str) -> Vec<String> {
    EXPANSIONS.iter().filter(|(k, _)| stem(k) == term).flat_map(|(_, v)| v.iter().map(|w| stem(w))).collect()
}

/// A light English stemmer: plural, past and gerund endings and a final `e`, so that "opening",
/// "opens" and "open", or "prices", "priced" and "price", meet. Not Porter's: it only needs to
/// map a question's words and a passage's words to the same key, and over-stemming two unrelated
/// words together costs little in a base of a few dozen entries.
pub(crate) fn stem(word: &str) -> String {
    let mut w = word.strip_suffix("'s").unwrap_or(word).to_owned();
    if w.len() <= 3 || w.chars().any(|c| c.is_ascii_digit()) {
        return w;
    }
    let cut = |w: &mut String, suffix: &str, min_stem: usize| -> bool {
        if w.len() >= suffix.len() + min_stem && w.ends_with(suffix) {
            w.truncate(w.len() - suffix.len());
            true
        } else {
            false
        }
    };
    if w.ends_with("ies") && w.len() > 4 {
        w.truncate(w.len() - 3);
        w.push('y');
    } else if w.ends_with("sses") {
        w.truncate(w.len() - 2);
    } else if !cut(&mut w, "ing", 3)
        && !cut(&mut w, "ed", 3)
        && !cut(&mut w, "ion", 4)
        && !cut(&mut w, "ly", 4)
        && !w.ends_with("ss")
        && !w.ends_with("us")
        && !w.ends_with("is")
        && !cut(&mut w, "es", 4)
    {
        cut(&mut w, "s", 3);
    }
    // "shipping" and "ship", "stopped" and "stop".
    let b = w.as_bytes();
    if b.len() >= 4 && b[b.len() - 1] == b[b.len() - 2] && !matches!(b[b.len() - 1], b'l' | b's' | b'z' | b'e' | b'o') && b[b.len() - 1].is_ascii_alphabetic() {
        w.pop();
    }
    if w.len() > 3 && w.ends_with('e') && !w.ends_with("ee") {
        w.pop();
    }
    w
}

/// The sentences of `text`: split after `.`, `!` or `?` followed by a space, and at line breaks
/// (lists and FAQ lines). A dot inside a number ("5.30") has no space after it; a dot after a
/// single letter ends an abbreviation ("a.m.", "e.g."), not a sentence, unless the abbreviation
/// is dotted twice and a capital follows ("6 p.m. We").
pub(crate) fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut current = String::new();
        let chars: Vec<char> = line.chars().collect();
        for (i, &c) in chars.iter().enumerate() {
            current.push(c);
            let end_mark = matches!(c, '.' | '!' | '?');
            let space_follows = chars.get(i + 1).is_none_or(|n| n.is_whitespace());
            // "a.m." and "e.g.": one letter between dots; the end of a sentence too when a capital
            // follows ("until 6 p.m. We are..."). A lone initial ("J. Smith") never ends one.
            let dotted = c == '.' && i >= 2 && chars[i - 2] == '.' && chars[i - 1].is_alphabetic();
            let capital_follows = chars.get(i + 2).is_some_and(|n| n.is_uppercase());
            let initial = c == '.' && i >= 1 && chars[i - 1].is_alphabetic() && (i == 1 || !chars[i - 2].is_alphanumeric());
            let abbreviation = if dotted { !capital_follows } else { initial };
            if end_mark && space_follows && !abbreviation {
                push_sentence(&mut out, &current);
                current.clear();
            }
        }
        push_sentence(&mut out, &current);
    }
    out
}

/// Adds a sentence without list markers and surplus spaces, if anything is left.
fn push_sentence(out: &mut Vec<String>, raw: &str) {
    let trimmed = raw.trim().trim_start_matches(['-', '*', '•', '#']).trim();
    let clean = trimmed.split_whitespace().collect::<Vec<_>>().join(" ");
    if clean.chars().any(char::is_alphanumeric) {
        out.push(clean);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_meet() {
        for group in [
            &["open", "opens", "opening", "opened"][..],
            &["price", "prices", "priced", "pricing"],
            &["return", "returns", "returned", "returning"],
            &["ship", "shipping", "shipped", "ships"],
            &["close", "closes", "closed", "closing"],
            &["delivery", "deliveries"],
            &["address", "addresses"],
            &["hour", "hours"],
            &["location", "located", "locate"],
        ] {
            let stems: Vec<String> = group.iter().map(|w| stem(w)).collect();
            assert!(stems.iter().all(|s| *s == stems[0]), "{group:?} gave {stems:?}");
        }
        assert_eq!(stem("bus"), "bus");
        assert_eq!(stem("24"), "24");
    }

    #[test]
    fn splits_sentences_but_not_times_or_abbreviations() {
        let text = "We open at 9 a.m. and close at 5.30 p.m. on weekdays. Closed on Sundays!\n- Parking is free\nQ: Do you deliver? A: Yes. Open to 4 p.m. Sundays too.";
        assert_eq!(
            sentences(text),
            [
                "We open at 9 a.m. and close at 5.30 p.m. on weekdays.",
                "Closed on Sundays!",
                "Parking is free",
                "Q: Do you deliver?",
                "A: Yes.",
                "Open to 4 p.m.",
                "Sundays too."
            ]
        );
    }

    #[test]
    fn terms_drop_stop_words() {
        assert_eq!(terms("What are your opening hours, please?"), ["open", "hour"]);
        assert_eq!(expand(&stem("where")), ["address", "locat", "street", "find"]);
        assert_eq!(words("Don't").collect::<Vec<_>>(), ["dont"]);
    }
}

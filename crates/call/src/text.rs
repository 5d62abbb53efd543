//! Text the conversation handles: an LLM's streamed answer cut into sentences for speech, the
//! words of a transcript, backchannels, and the assistant's own words heard back as echo.

/// Cuts a streamed answer into sentences as soon as each is complete, so the caller hears the
/// first sentence while the model still writes the rest.
///
/// A sentence ends at `.`, `!`, `?` or `…` followed by whitespace (so `2.50` and `e.g.x` stay
/// whole), at a newline, or, for a first piece that grows long without an end, at a clause
/// boundary (`,` `;` `:`) past [`SentenceSplitter::LONG_CLAUSE`] characters: a long first sentence
/// would otherwise hold the first audio back. Common abbreviations (`Mr.`, `Dr.`, `e.g.`) do not
/// end a sentence.
#[derive(Clone, Debug, Default)]
pub struct SentenceSplitter {
    buf: String,
    /// Sentences given so far (the clause rule applies to the first only).
    given: usize,
}

impl SentenceSplitter {
    /// Characters after which a first sentence may be cut at a clause boundary.
    pub const LONG_CLAUSE: usize = 80;

    /// Adds text; returns the sentences it completed, in order.
    pub fn push(&mut self, text: &str) -> Vec<String> {
        self.buf.push_str(text);
        let mut out = Vec::new();
        while let Some(end) = self.boundary() {
            let sentence: String = self.buf.drain(..end).collect();
            let sentence = sentence.trim();
            if !sentence.is_empty() {
                out.push(sentence.to_owned());
                self.given += 1;
            }
        }
        out
    }

    /// The end of the text: what is left, if anything.
    pub fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.buf);
        let rest = rest.trim();
        (!rest.is_empty()).then(|| {
            self.given += 1;
            rest.to_owned()
        })
    }

    /// Byte index just past the first complete sentence in the buffer.
    fn boundary(&self) -> Option<usize> {
        let b = self.buf.as_bytes();
        let mut clause = None;
        for (i, ch) in self.buf.char_indices() {
            let next = i + ch.len_utf8();
            match ch {
                '\n' => return Some(next),
                '.' | '!' | '?' | '…' => {
                    let &after = b.get(next)?;
                    if after.is_ascii_whitespace() && !(ch == '.' && is_abbreviation(&self.buf[..i])) {
                        return Some(next);
                    }
                }
                ',' | ';' | ':' if self.given == 0 && i >= Self::LONG_CLAUSE && b.get(next).is_some_and(u8::is_ascii_whitespace) => {
                    clause.get_or_insert(next);
                }
                _ => {}
            }
        }
        clause
    }
}

/// The sentences of a whole text, cut as a streamed answer is.
pub fn sentences(text: &str) -> Vec<String> {
    let mut splitter = SentenceSplitter::default();
    let mut out = splitter.push(text);
    out.extend(splitter.finish());
    out
}

/// Whether the word before a `.` at the end of `before` is an abbreviation.
fn is_abbreviation(before: &str) -> bool {
    let word = before.rsplit(|c: char| c.is_whitespace()).next().unwrap_or("").to_ascii_lowercase();
    const ABBREVIATIONS: [&str; 14] = ["mr", "mrs", "ms", "dr", "st", "vs", "etc", "e.g", "i.e", "approx", "no", "tel", "jr", "sr"];
    ABBREVIATIONS.contains(&word.as_str()) || (word.len() == 1 && word.chars().all(|c| c.is_ascii_alphabetic()))
}

/// The words of `text`, lowercased, without punctuation.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| c.is_whitespace() || matches!(c, ',' | '.' | '!' | '?' | ';' | ':' | '"' | '…'))
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'' && c != '-').to_lowercase())
        .filter(|w| !w.is_empty())
}

/// Phrases that acknowledge without taking the turn (Vocode's "low interrupt sensitivity" list,
/// LiveKit's and Pipecat's users' complaints): said while the assistant speaks, they neither
/// interrupt it nor become a turn.
pub const BACKCHANNELS: &[&str] = &[
    "uh-huh",
    "uh huh",
    "uhuh",
    "mhm",
    "mm-hmm",
    "mm hmm",
    "mmhmm",
    "hmm",
    "mm",
    "okay",
    "ok",
    "right",
    "yeah",
    "yep",
    "sure",
    "i see",
    "got it",
    "alright",
    "all right",
    "oh",
    "ah",
    "uh",
    "um",
];

/// Whether `text` is nothing but backchannels (or empty).
pub fn is_backchannel(text: &str) -> bool {
    let words: Vec<String> = words(text).collect();
    let mut i = 0;
    'outer: while i < words.len() {
        for phrase in BACKCHANNELS {
            let parts: Vec<&str> = phrase.split(' ').collect();
            if words.len() - i >= parts.len() && parts.iter().zip(&words[i..]).all(|(p, w)| p == w) {
                i += parts.len();
                continue 'outer;
            }
        }
        return false;
    }
    true
}

/// Whether the words of `heard` are the assistant's own (`said`) coming back: at least 80 % of
/// them, and at least two, occur in what it said. A recogniser that hears the assistant's echo
/// writes its words; a caller who interrupts rarely repeats them.
pub fn is_echo_of(heard: &str, said: &str) -> bool {
    let heard: Vec<String> = words(heard).collect();
    if heard.len() < 2 {
        return false;
    }
    let said: std::collections::HashSet<String> = words(said).collect();
    let common = heard.iter().filter(|w| said.contains(*w)).count();
    common * 5 >= heard.len() * 4
}

/// The first `fraction` (0 to 1) of `text`, cut back to a whole word: the part of a sentence
/// that was heard when playback stopped `fraction` of the way through its audio.
pub fn heard_part(text: &str, fraction: f64) -> &str {
    if fraction >= 1.0 {
        return text;
    }
    if fraction <= 0.0 {
        return "";
    }
    let want = (text.chars().count() as f64 * fraction).floor() as usize;
    let cut = text.char_indices().nth(want).map_or(text.len(), |(i, _)| i);
    // A word counts as heard only when playback went past its end.
    let whole = match text[cut..].chars().next() {
        Some(c) if !c.is_whitespace() => text[..cut].rfind(char::is_whitespace).unwrap_or(0),
        _ => cut,
    };
    text[..whole].trim_end_matches(|c: char| c.is_whitespace() || c == ',')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_come_out_as_they_complete() {
        let mut s = SentenceSplitter::default();
        assert!(s.push("Hello there").is_empty());
        assert_eq!(s.push(". How are"), ["Hello there."]);
        assert_eq!(s.push(" you? It costs 2.50 dollars. Mr. Smith is in"), ["How are you?", "It costs 2.50 dollars."]);
        assert_eq!(s.push("!\nNext line\n"), ["Mr. Smith is in!", "Next line"]);
        assert_eq!(s.finish(), None);
        assert!(s.push("No end").is_empty());
        assert_eq!(s.finish().as_deref(), Some("No end"));
    }

    #[test]
    fn a_whole_text_is_cut_as_the_stream_is() {
        assert_eq!(sentences("Hello there. How are you? Fine!"), ["Hello there.", "How are you?", "Fine!"]);
        assert_eq!(sentences("It costs 2.50 dollars. Bye"), ["It costs 2.50 dollars.", "Bye"]);
        assert!(sentences("  ").is_empty());
    }

    #[test]
    fn a_long_first_sentence_is_cut_at_a_clause() {
        let mut s = SentenceSplitter::default();
        let long = "We are open from nine in the morning until six in the evening on weekdays and Saturdays, but closed on Sundays";
        assert_eq!(s.push(long), ["We are open from nine in the morning until six in the evening on weekdays and Saturdays,"]);
        assert_eq!(s.finish().as_deref(), Some("but closed on Sundays"));
    }

    #[test]
    fn backchannels_and_echo() {
        assert!(is_backchannel("Uh-huh."));
        assert!(is_backchannel("okay, yeah"));
        assert!(is_backchannel("mm hmm right"));
        assert!(!is_backchannel("okay but what about Sunday"));
        assert!(is_echo_of("open from nine", "We are open from nine to six."));
        assert!(!is_echo_of("wait, what about Sunday", "We are open from nine to six."));
        assert!(!is_echo_of("nine", "We are open from nine to six."));
    }

    #[test]
    fn heard_part_keeps_whole_words() {
        let t = "We are open from nine to six.";
        assert_eq!(heard_part(t, 1.0), t);
        assert_eq!(heard_part(t, 0.0), "");
        assert_eq!(heard_part(t, 0.5), "We are open");
        assert_eq!(heard_part(t, 0.58), "We are open from");
        assert_eq!(heard_part(t, 0.05), "");
        assert_eq!(heard_part(t, 0.22), "We are");
    }
}

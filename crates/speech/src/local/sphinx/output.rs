//! Reading what `pocketsphinx_continuous -time yes` prints, sans IO.
//!
//! For every utterance its voice activity detector closes, the recogniser prints the hypothesis
//! on one line, then one line per segment: `word start end confidence`, times in seconds of the
//! input stream (`<sil>`, `(NULL)`, `<s>`, `</s>` and noise words among them), and flushes.
//! An utterance is complete when the next hypothesis starts, when the input ends, or when the
//! driver sees that the flush is over ([`OutputParser::flush`]): the whole group is written
//! at once, so an empty pipe after a segment line means the group is complete.

use std::time::Duration;

use crate::Transcript;

/// One recognised utterance.
#[derive(Clone, Debug, PartialEq)]
pub struct Utterance {
    /// The words, space-separated (may be empty: the recogniser heard only noise).
    pub text: String,
    /// First and last word time, when segments were printed.
    pub span: Option<(Duration, Duration)>,
}

impl Utterance {
    /// As a final transcript. The recogniser's VAD closed the utterance, so it is the end of
    /// the caller's turn as far as it can tell.
    pub fn into_transcript(self) -> Transcript {
        let (start, end) = self.span.unwrap_or_default();
        Transcript { text: self.text, start, end, confidence: None, end_of_turn: true }
    }
}

/// Incremental parser of the recogniser's standard output, one line at a time.
#[derive(Debug, Default)]
pub struct OutputParser {
    current: Option<Utterance>,
}

impl OutputParser {
    /// A parser at the start of the output.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one line (without its newline); returns the utterance that the line completed, if
    /// any: a hypothesis line completes the previous one.
    pub fn line(&mut self, line: &str) -> Option<Utterance> {
        let line = line.trim_end_matches('\r');
        if let Some((word, start, end)) = segment(line) {
            if let Some(u) = &mut self.current
                && is_word(word)
            {
                let (s, _) = *u.span.get_or_insert((start, end));
                u.span = Some((s, end));
            }
            // A segment without a hypothesis before it (output started mid-group) is ignored.
            return None;
        }
        let done = self.current.take();
        self.current = Some(Utterance { text: line.split_whitespace().collect::<Vec<_>>().join(" "), span: None });
        done
    }

    /// The output paused or ended: the utterance being read is complete.
    pub fn flush(&mut self) -> Option<Utterance> {
        self.current.take()
    }
}

/// `word start end confidence`, with the three numbers parsing.
fn segment(line: &str) -> Option<(&str, Duration, Duration)> {
    let mut f = line.split(' ');
    let (word, start, end, conf) = (f.next()?, f.next()?, f.next()?, f.next()?);
    if f.next().is_some() {
        return None;
    }
    let seconds = |s: &str| s.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0).map(Duration::from_secs_f64);
    conf.parse::<f64>().ok()?;
    Some((word, seconds(start)?, seconds(end)?))
}

/// Whether a segment is a spoken word rather than silence, a filler or a grammar node.
fn is_word(w: &str) -> bool {
    !(w.starts_with('<') || w.starts_with('(') || w.starts_with('[') || w.starts_with('+'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = "one\n<sil> 0.180 0.310 1.000000\none 0.320 0.470 1.000000\n<sil> 0.480 0.940 1.000000\n\
                       five eight oh\n<sil> 1.860 1.920 1.000000\nfive 1.930 2.220 1.000000\n(NULL) 2.220 2.220 1.000000\n\
                       eight 2.230 2.300 1.000000\noh 2.310 2.350 1.000000\n<sil> 2.360 2.750 1.000000\n";

    #[test]
    fn groups_hypotheses_with_their_word_times() {
        let mut p = OutputParser::new();
        let mut got: Vec<Utterance> = OUT.lines().filter_map(|l| p.line(l)).collect();
        got.extend(p.flush());
        let ms = Duration::from_millis;
        assert_eq!(
            got,
            vec![
                Utterance { text: "one".into(), span: Some((ms(320), ms(470))) },
                Utterance { text: "five eight oh".into(), span: Some((ms(1930), ms(2350))) }
            ]
        );
        assert_eq!(p.flush(), None);
    }

    #[test]
    fn only_three_numbers_make_a_segment() {
        // Hypotheses whose words look numeric are still hypotheses: only 4 fields with three
        // numbers are a segment.
        let text = "one two three four\nnine 0.1 0.2 1.0\n\n<sil> 1.0 1.5 1.0\nseven 3 4\n";
        let mut p = OutputParser::new();
        let mut got: Vec<Utterance> = text.lines().filter_map(|l| p.line(l)).collect();
        got.extend(p.flush());
        let texts: Vec<&str> = got.iter().map(|u| u.text.as_str()).collect();
        assert_eq!(texts, ["one two three four", "", "seven 3 4"]);
        assert_eq!(got[0].span, Some((Duration::from_millis(100), Duration::from_millis(200))));
        assert_eq!(got[1].span, None);
        assert!(got[1].clone().into_transcript().end_of_turn);
    }

    #[test]
    fn garbage_is_text_not_a_panic() {
        let mut p = OutputParser::new();
        for l in ["", "x 1e999 2 3", "x -1 2 3", "x NaN 1 1", "\u{fffd}\u{0} a b c d e"] {
            let _ = p.line(l);
        }
        assert!(p.flush().is_some());
    }
}

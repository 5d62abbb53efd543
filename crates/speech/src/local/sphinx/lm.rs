//! A back-off bigram language model in ARPA text form, built from the phrases a caller is likely
//! to say: the built-in conversational phrases plus the assistant's own words (its knowledge,
//! names, products).
//!
//! Why a model of our own instead of the recogniser's general English model: on telephone audio
//! the acoustic evidence is weak (half the spectrum is gone), and a 130,000-word trigram model
//! lets the decoder wander into rare words that fit the noise. A few hundred words the call is
//! about, with their word order, keep it on track: measured on the spoken-digit fixtures, the
//! general model recognised 8 of 40 digits, a model of the digits alone 36 of 40.
//!
//! Smoothing: absolute discounting (D = 0.1) for seen bigrams, add-half for unigrams, and the
//! back-off weights that make every history's distribution sum to one (checked by a test).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// The discount taken from every seen bigram count and given to the back-off distribution.
/// Small, because the phrases are few and their word order is what we know best: with 0.5
/// (the textbook value for large corpora) most singletons' mass went to back-off, the model
/// was nearly a unigram, and the espeak-ng test sentences came out at 36 % WER; with 0.1, 14 %.
const DISCOUNT: f64 = 0.1;
/// Added to every unigram count, so words of the vocabulary never seen in a phrase position
/// still have a probability.
const UNIGRAM_PRIOR: f64 = 0.5;

/// `P(</s> | <s>)`: an utterance without words. Left to back-off it would get the unigram mass
/// of `</s>`, which is large when phrases are short (ten one-word digit phrases make `</s>` half
/// of all tokens), and the decoder would happily hear nothing: on the spoken digits that turned
/// a quarter of them into empty results. Listed explicitly, it is all but impossible.
const EMPTY_UTTERANCE: f64 = 1e-6;

const START: &str = "<s>";
const END: &str = "</s>";

/// A bigram model over a closed vocabulary.
#[derive(Clone, Debug, Default)]
pub struct BigramModel {
    unigrams: BTreeMap<String, u64>,
    bigrams: BTreeMap<(String, String), u64>,
    /// How often each word (or `<s>`) is followed by something.
    histories: BTreeMap<String, u64>,
}

impl BigramModel {
    /// An empty model.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one sentence (already tokenised into vocabulary words). Empty sentences are ignored.
    pub fn add_sentence<S: AsRef<str>>(&mut self, words: &[S]) {
        if words.is_empty() {
            return;
        }
        let mut prev = START.to_owned();
        for w in words.iter().map(AsRef::as_ref).chain(std::iter::once(END)) {
            *self.unigrams.entry(w.to_owned()).or_default() += 1;
            *self.bigrams.entry((prev.clone(), w.to_owned())).or_default() += 1;
            *self.histories.entry(prev).or_default() += 1;
            prev = w.to_owned();
        }
    }

    /// The words of the model (without `<s>` and `</s>`), sorted.
    pub fn vocabulary(&self) -> BTreeSet<&str> {
        self.unigrams.keys().map(String::as_str).filter(|w| *w != END).collect()
    }

    /// Whether no sentence was added.
    pub fn is_empty(&self) -> bool {
        self.unigrams.is_empty()
    }

    /// The unigram probability of `w` (`</s>` included, `<s>` never predicted).
    fn unigram(&self, w: &str) -> f64 {
        let total: u64 = self.unigrams.values().sum();
        let v = self.unigrams.len() as f64;
        (self.unigrams.get(w).copied().unwrap_or(0) as f64 + UNIGRAM_PRIOR) / (total as f64 + UNIGRAM_PRIOR * v)
    }

    /// The discounted probability of a seen bigram.
    fn seen_bigram(&self, h: &str, count: u64) -> f64 {
        (count as f64 - DISCOUNT) / self.histories[h] as f64
    }

    /// The back-off weight of history `h`: the mass left by discounting, spread over the words
    /// not seen after `h` in proportion to their unigram probability.
    fn backoff(&self, h: &str) -> f64 {
        let (mut left, mut covered) = if h == START { (1.0 - EMPTY_UTTERANCE, self.unigram(END)) } else { (1.0, 0.0) };
        for ((_, w), &c) in self.bigrams.range((h.to_owned(), String::new())..).take_while(|((hh, _), _)| hh == h) {
            left -= self.seen_bigram(h, c);
            covered += self.unigram(w);
        }
        // Every word seen after `h`: nothing to back off to; the left mass is lost, which only
        // happens for one-word vocabularies.
        if covered >= 1.0 - 1e-12 { 1.0 } else { left / (1.0 - covered) }
    }

    /// The conditional probability `P(w | h)` the ARPA file encodes (for tests and scoring).
    pub fn probability(&self, h: &str, w: &str) -> f64 {
        if (h, w) == (START, END) {
            return EMPTY_UTTERANCE;
        }
        match self.bigrams.get(&(h.to_owned(), w.to_owned())) {
            Some(&c) => self.seen_bigram(h, c),
            None => self.backoff(h) * self.unigram(w),
        }
    }

    /// The model as an ARPA text file, what pocketsphinx's `-lm` reads.
    pub fn to_arpa(&self) -> String {
        let mut words: Vec<&str> = self.unigrams.keys().map(String::as_str).collect();
        words.push(START);
        words.sort_unstable();
        words.dedup();
        let mut out = String::with_capacity(64 * (words.len() + self.bigrams.len()));
        out.push_str("\\data\\\n");
        let _ = writeln!(out, "ngram 1={}", words.len());
        let _ = writeln!(out, "ngram 2={}", self.bigrams.len() + 1);
        out.push_str("\n\\1-grams:\n");
        for w in &words {
            // `<s>` is never predicted: the conventional -99 (log10 of zero).
            let p = if *w == START { -99.0 } else { self.unigram(w).log10() };
            if self.histories.contains_key(*w) {
                let _ = writeln!(out, "{p:.6} {w} {:.6}", self.backoff(w).log10());
            } else {
                let _ = writeln!(out, "{p:.6} {w}");
            }
        }
        out.push_str("\n\\2-grams:\n");
        let _ = writeln!(out, "{:.6} {START} {END}", EMPTY_UTTERANCE.log10());
        for ((h, w), &c) in &self.bigrams {
            let _ = writeln!(out, "{:.6} {h} {w}", self.seen_bigram(h, c).log10());
        }
        out.push_str("\n\\end\\\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> BigramModel {
        let mut m = BigramModel::new();
        for s in ["we are open from nine to five", "we are closed on sunday", "yes please", "no thank you", "thank you"] {
            m.add_sentence(&s.split(' ').collect::<Vec<_>>());
        }
        m
    }

    #[test]
    fn every_history_sums_to_one() {
        let m = model();
        let mut predicted: Vec<&str> = m.unigrams.keys().map(String::as_str).collect();
        predicted.sort_unstable();
        for h in m.histories.keys() {
            let sum: f64 = predicted.iter().map(|w| m.probability(h, w)).sum();
            assert!((sum - 1.0).abs() < 1e-9, "history {h}: {sum}");
        }
        let unigram_sum: f64 = predicted.iter().map(|w| m.unigram(w)).sum();
        assert!((unigram_sum - 1.0).abs() < 1e-9);
    }

    #[test]
    fn seen_word_order_is_preferred() {
        let m = model();
        assert!(m.probability("thank", "you") > 0.5);
        assert!(m.probability("are", "open") > m.probability("are", "sunday"));
        assert!(m.probability("<s>", "we") > m.probability("<s>", "five"));
        assert!(m.probability("<s>", "</s>") < 1e-5, "an utterance has words");
    }

    #[test]
    fn arpa_layout() {
        let arpa = model().to_arpa();
        assert!(arpa.starts_with("\\data\\\nngram 1=17\nngram 2="), "{arpa}");
        assert!(arpa.contains("\n-99.000000 <s> "), "{arpa}");
        assert!(arpa.trim_end().ends_with("\\end\\"));
        // Every bigram line names two words and a log probability at most 0.
        let bigrams = arpa.split("\\2-grams:\n").nth(1).expect("bigram section");
        for line in bigrams.lines().take_while(|l| !l.is_empty()) {
            let f: Vec<&str> = line.split(' ').collect();
            assert_eq!(f.len(), 3, "{line}");
            assert!(f[0].parse::<f64>().expect("log prob") <= 0.0);
        }
        assert_eq!(model().vocabulary().len(), 15);
    }
}

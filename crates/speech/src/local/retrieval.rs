//! BM25 over the sentences of knowledge entries.
//!
//! Each sentence is a document, indexed with its own terms and its entry's title terms (a
//! sentence of "Return policy" is about returns even when it only says "within 30 days"). A
//! query's own terms weigh 1; the related terms [`expand`] adds weigh [`EXPANSION_WEIGHT`], so a
//! passage that uses the caller's own words wins over one that only matches a paraphrase.
//!
//! BM25 scores are not comparable between queries, so whether a passage answers at all is decided
//! by coverage instead: the share of the query's own terms, each weighed by its IDF, that the
//! passage matches; a term matched only through a related term counts half. Words the base never
//! uses weigh half the highest IDF: a question about something the base does not mention ("do
//! you sell gift cards", where only "card" is known) covers too little of itself and falls back.

use std::collections::HashMap;

use super::text::{expand, terms};

const K1: f64 = 1.2;
const B: f64 = 0.75;
/// Weight of a related term relative to the query's own words.
const EXPANSION_WEIGHT: f64 = 0.5;
/// Weight, in the coverage, of a query word the base never uses, relative to the highest IDF of
/// a word it does use. Such a word is either the topic the base lacks ("cars") or context around a
/// topic it has ("park my car"): half weight lets one such word sit next to one matched word.
const UNKNOWN_WEIGHT: f64 = 0.5;

/// One indexed sentence.
#[derive(Debug, Clone)]
pub(crate) struct Passage {
    /// The entry it comes from and its position there.
    pub(crate) entry: usize,
    pub(crate) position: usize,
    /// Term frequencies: the sentence's terms and its entry's title terms.
    tf: HashMap<String, u32>,
    len: usize,
}

/// A passage's match for a query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Hit {
    /// Index into [`Index::passages`].
    pub(crate) passage: usize,
    /// BM25 score.
    pub(crate) score: f64,
    /// The share of the query's weight it matches, 0 to 1.
    pub(crate) coverage: f64,
}

/// The index of a knowledge base.
#[derive(Debug, Clone, Default)]
pub(crate) struct Index {
    pub(crate) passages: Vec<Passage>,
    /// In how many passages each term occurs.
    df: HashMap<String, usize>,
    avg_len: f64,
}

impl Index {
    /// Indexes the sentences of `entries`, given as (title, sentences).
    pub(crate) fn new(entries: &[(String, Vec<String>)]) -> Self {
        let mut passages = Vec::new();
        for (entry, (title, sentences)) in entries.iter().enumerate() {
            let title_terms = terms(title);
            for (position, sentence) in sentences.iter().enumerate() {
                let mut tf = HashMap::new();
                let all = terms(sentence).into_iter().chain(title_terms.iter().cloned());
                let mut len = 0;
                for term in all {
                    *tf.entry(term).or_insert(0) += 1;
                    len += 1;
                }
                passages.push(Passage { entry, position, tf, len });
            }
        }
        let mut df = HashMap::new();
        for p in &passages {
            for term in p.tf.keys() {
                *df.entry(term.clone()).or_insert(0) += 1;
            }
        }
        let avg_len = if passages.is_empty() { 1.0 } else { passages.iter().map(|p| p.len).sum::<usize>() as f64 / passages.len() as f64 };
        Self { passages, df, avg_len: avg_len.max(1.0) }
    }

    fn idf(&self, term: &str) -> f64 {
        let n = self.passages.len() as f64;
        let df = self.df.get(term).copied().unwrap_or(0) as f64;
        (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
    }

    /// The passages matching `query`, best first (ties in document order).
    pub(crate) fn search(&self, query: &str) -> Vec<Hit> {
        let mut own = terms(query);
        own.dedup();
        own.sort();
        own.dedup();
        // Each related term with the own terms it stands for.
        let mut related: Vec<(String, Vec<usize>)> = Vec::new();
        for (i, term) in own.iter().enumerate() {
            for r in expand(term).into_iter().filter(|r| !own.contains(r)) {
                match related.iter_mut().find(|(t, _)| *t == r) {
                    Some((_, sources)) => sources.push(i),
                    None => related.push((r, vec![i])),
                }
            }
        }
        let own_idf: Vec<f64> = own.iter().map(|t| if self.df.contains_key(t) { self.idf(t) } else { UNKNOWN_WEIGHT * self.idf(t) }).collect();
        let total: f64 = own_idf.iter().sum();
        if total <= 0.0 {
            return Vec::new();
        }
        let mut hits = Vec::new();
        let mut matched = vec![0.0; own.len()];
        for (i, p) in self.passages.iter().enumerate() {
            let mut score = 0.0;
            matched.iter_mut().for_each(|m| *m = 0.0);
            for (k, term) in own.iter().enumerate() {
                if let Some(&tf) = p.tf.get(term) {
                    score += own_idf[k] * self.saturate(tf, p.len);
                    matched[k] = 1.0;
                }
            }
            for (term, sources) in &related {
                if let Some(&tf) = p.tf.get(term) {
                    score += EXPANSION_WEIGHT * self.idf(term) * self.saturate(tf, p.len);
                    // A paraphrase covers part of the word it stands for.
                    for &k in sources {
                        matched[k] = f64::max(matched[k], EXPANSION_WEIGHT);
                    }
                }
            }
            if score > 0.0 {
                let coverage = own_idf.iter().zip(&matched).map(|(idf, m)| idf * m).sum::<f64>() / total;
                hits.push(Hit { passage: i, score, coverage });
            }
        }
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.passage.cmp(&b.passage)));
        hits
    }

    /// BM25's term-frequency part, normalised by the passage's length.
    fn saturate(&self, tf: u32, len: usize) -> f64 {
        let tf = f64::from(tf);
        tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * len as f64 / self.avg_len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> Index {
        Index::new(&[
            ("Opening hours".into(), vec!["We are open Monday to Friday from 9 am to 6 pm.".into(), "We are closed on Sundays.".into()]),
            ("Address".into(), vec!["Our shop is at 12 Harbour Street, next to the station.".into()]),
        ])
    }

    #[test]
    fn own_words_beat_paraphrases() {
        let idx = index();
        let hits = idx.search("Are you closed on Sunday?");
        let best = &idx.passages[hits[0].passage];
        assert_eq!((best.entry, best.position), (0, 1), "the sentence about Sundays");
        assert!(hits[0].coverage > 0.99);
        let hits = idx.search("Where are you?");
        assert_eq!(idx.passages[hits[0].passage].entry, 1);
    }

    #[test]
    fn unknown_words_lower_coverage() {
        let idx = index();
        assert!(idx.search("Do you sell bicycles?").is_empty());
        let hits = idx.search("Is the station parking expensive?");
        assert!(hits[0].coverage < 0.4, "{hits:?}");
    }
}

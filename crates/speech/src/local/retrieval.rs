//! BM25 over the sentences of knowledge entries.
//!
//! Each sentence is a document, indexed with its own terms and its entry's title terms (a
//! sentence of "Return policy" is about returns even when it only says "within 30 days"). A
//! query's own terms weigh 1; the related terms [`expand`] adds weigh [`EXPANSION_WEIGHT`], so a
//! passage that uses the caller's own words wins over one that only matches a paraphrase.
//!
//! BM25 scores are not comparable between queries, so whether a passage answers at all is decided
//! by coverage instead: the share of the query's weight (each term by its IDF) that the passage
//! matches. Words the base never uses get the highest IDF: a question about something the base
//! does not mention ("do you sell cars") covers little of itself and falls back.

use std::collections::HashMap;

use super::text::{expand, terms};

const K1: f64 = 1.2;
const B: f64 = 0.75;
/// Weight of a related term relative to the query's own words.
const EXPANSION_WEIGHT: f64 = 0.5;

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
        let own = terms(query);
        let mut weights: Vec<(String, f64)> = Vec::new();
        for term in &own {
            if !weights.iter().any(|(t, _)| t == term) {
                weights.push((term.clone(), 1.0));
            }
        }
        for term in &own {
            for related in expand(term) {
                if !weights.iter().any(|(t, _)| *t == related) {
                    weights.push((related, EXPANSION_WEIGHT));
                }
            }
        }
        let own_weight: f64 = weights.iter().filter(|(_, w)| *w == 1.0).map(|(t, _)| self.idf(t)).sum();
        if own_weight <= 0.0 {
            return Vec::new();
        }
        let mut hits: Vec<Hit> = self
            .passages
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let mut score = 0.0;
                let mut matched = 0.0;
                for (term, weight) in &weights {
                    let Some(&tf) = p.tf.get(term) else { continue };
                    let idf = self.idf(term);
                    let tf = f64::from(tf);
                    score += weight * idf * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * p.len as f64 / self.avg_len));
                    matched += weight * idf;
                }
                (score > 0.0).then(|| Hit { passage: i, score, coverage: (matched / own_weight).min(1.0) })
            })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.passage.cmp(&b.passage)));
        hits
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

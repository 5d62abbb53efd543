//! Reading a paginated listing to the end without trusting the server: a pure state machine fed
//! one page at a time.
//!
//! The listing is read with `page = 1, 2, …` and a fixed `take` until as many distinct items as
//! `totalCount` announced have been seen. A server that misbehaves cannot make it loop forever:
//!
//! - an empty page ends the listing (the count was too high, or items were deleted meanwhile);
//! - a page with no item not seen before ends it (the server ignores `page`, or repeats a page);
//! - items seen on an earlier page are dropped (items shift between pages when new ones are
//!   inserted at the front while reading), so no item is returned twice;
//! - at most `max_pages` pages and `max_items` items are read.
//!
//! A server that sends no `totalCount` is read until a page shorter than `take` comes back.
//!
//! When the listing ends for any reason but [`Stop::Complete`] or [`Stop::ShortPage`], the client
//! logs a warning and returns what it read.

use std::collections::HashSet;

use crate::model::Identified;

/// Limits of one listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PagingLimits {
    /// Page size requested (`take`).
    pub take: u32,
    /// Most pages read. Default 10 000.
    pub max_pages: u32,
    /// Most items kept. Default 200 000.
    pub max_items: usize,
}

impl Default for PagingLimits {
    fn default() -> Self {
        Self { take: 20, max_pages: 10_000, max_items: 200_000 }
    }
}

/// Why a listing ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// All `totalCount` items were read.
    Complete,
    /// No `totalCount` was sent and a page shorter than `take` came back: the last page.
    ShortPage,
    /// A page came back empty before `totalCount` was reached.
    EmptyPage,
    /// A page held only items already seen.
    NoNewItems,
    /// `max_pages` pages were read.
    PageLimit,
    /// `max_items` items were read.
    ItemLimit,
}

impl Stop {
    /// Whether the listing is known to be whole.
    pub fn is_complete(self) -> bool {
        matches!(self, Self::Complete | Self::ShortPage)
    }
}

/// What to do after a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Fetch this page (1-based) next.
    Fetch(u32),
    /// The listing is over.
    Done(Stop),
}

/// The state of one listing.
#[derive(Debug)]
pub struct Paginator {
    limits: PagingLimits,
    page: u32,
    seen: HashSet<String>,
    total: Option<u64>,
}

impl Paginator {
    /// A listing that starts at page 1.
    pub fn new(limits: PagingLimits) -> Self {
        Self { limits, page: 1, seen: HashSet::new(), total: None }
    }

    /// The page to fetch first.
    pub fn first(&self) -> u32 {
        self.page
    }

    /// The `totalCount` of the last page read.
    pub fn total(&self) -> Option<u64> {
        self.total
    }

    /// Feeds the items of the page last fetched and its `totalCount`; keeps the items not seen
    /// before in `out` (up to `max_items`) and says what to do next.
    pub fn on_page<T: Identified>(&mut self, items: Vec<T>, total_count: Option<u64>, out: &mut Vec<T>) -> Next {
        let received = items.len();
        let mut fresh = 0;
        for item in items {
            if self.seen.len() >= self.limits.max_items {
                return Next::Done(Stop::ItemLimit);
            }
            if self.seen.insert(item.id_str().to_owned()) {
                fresh += 1;
                out.push(item);
            }
        }
        self.total = total_count;
        let seen = u64::try_from(self.seen.len()).unwrap_or(u64::MAX);
        let take = usize::try_from(self.limits.take).unwrap_or(usize::MAX);
        if total_count.is_some_and(|total| seen >= total) {
            Next::Done(Stop::Complete)
        } else if total_count.is_none() && received < take {
            Next::Done(Stop::ShortPage)
        } else if received == 0 {
            Next::Done(Stop::EmptyPage)
        } else if fresh == 0 {
            Next::Done(Stop::NoNewItems)
        } else if self.seen.len() >= self.limits.max_items {
            Next::Done(Stop::ItemLimit)
        } else if self.page >= self.limits.max_pages {
            Next::Done(Stop::PageLimit)
        } else {
            self.page += 1;
            Next::Fetch(self.page)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Item(String);

    impl Identified for Item {
        fn id_str(&self) -> &str {
            &self.0
        }
    }

    fn items(range: std::ops::Range<u32>) -> Vec<Item> {
        range.map(|i| Item(i.to_string())).collect()
    }

    fn limits(take: u32) -> PagingLimits {
        PagingLimits { take, ..PagingLimits::default() }
    }

    #[test]
    fn reads_every_page_of_an_honest_listing() {
        let mut p = Paginator::new(limits(20));
        let mut out = Vec::new();
        let mut page = p.first();
        loop {
            let start = (page - 1) * 20;
            let end = (start + 20).min(237);
            match p.on_page(items(start..end), Some(237), &mut out) {
                Next::Fetch(n) => page = n,
                Next::Done(stop) => {
                    assert_eq!(stop, Stop::Complete);
                    break;
                }
            }
        }
        assert_eq!(page, 12);
        assert_eq!(out.len(), 237);
    }

    #[test]
    fn stops_on_an_empty_page_when_the_count_lies() {
        let mut p = Paginator::new(limits(20));
        let mut out = Vec::new();
        assert_eq!(p.on_page(items(0..20), Some(1_000_000), &mut out), Next::Fetch(2));
        assert_eq!(p.on_page(items(0..0), Some(1_000_000), &mut out), Next::Done(Stop::EmptyPage));
        assert_eq!(out.len(), 20);
    }

    #[test]
    fn stops_when_the_server_repeats_a_page() {
        let mut p = Paginator::new(limits(20));
        let mut out = Vec::new();
        assert_eq!(p.on_page(items(0..20), Some(50), &mut out), Next::Fetch(2));
        assert_eq!(p.on_page(items(0..20), Some(50), &mut out), Next::Done(Stop::NoNewItems));
        assert_eq!(out.len(), 20);
    }

    #[test]
    fn drops_items_shifted_onto_the_next_page() {
        let mut p = Paginator::new(limits(3));
        let mut out = Vec::new();
        assert_eq!(p.on_page(items(0..3), Some(6), &mut out), Next::Fetch(2));
        // One new item was inserted at the front meanwhile: item 2 is seen again.
        assert_eq!(p.on_page(items(2..5), Some(7), &mut out), Next::Fetch(3));
        assert_eq!(p.on_page(items(5..7), Some(7), &mut out), Next::Done(Stop::Complete));
        let ids: Vec<&str> = out.iter().map(|i| i.0.as_str()).collect();
        assert_eq!(ids, ["0", "1", "2", "3", "4", "5", "6"]);
    }

    #[test]
    fn a_count_that_grows_forever_hits_the_page_limit() {
        let mut p = Paginator::new(PagingLimits { take: 2, max_pages: 5, max_items: 1000 });
        let mut out = Vec::new();
        let mut n = 0;
        loop {
            let next = p.on_page(items(n..n + 2), Some(u64::MAX), &mut out);
            n += 2;
            if let Next::Done(stop) = next {
                assert_eq!(stop, Stop::PageLimit);
                break;
            }
        }
        assert_eq!(out.len(), 10);
    }

    #[test]
    fn item_limit_caps_memory() {
        let mut p = Paginator::new(PagingLimits { take: 100, max_pages: 1000, max_items: 150 });
        let mut out = Vec::new();
        assert_eq!(p.on_page(items(0..100), Some(1000), &mut out), Next::Fetch(2));
        assert_eq!(p.on_page(items(100..200), Some(1000), &mut out), Next::Done(Stop::ItemLimit));
        assert_eq!(out.len(), 150);
    }

    #[test]
    fn without_a_count_reads_until_a_short_page() {
        let mut p = Paginator::new(limits(3));
        let mut out = Vec::new();
        assert_eq!(p.on_page(items(0..3), None, &mut out), Next::Fetch(2));
        assert_eq!(p.on_page(items(3..6), None, &mut out), Next::Fetch(3));
        assert_eq!(p.on_page(items(6..7), None, &mut out), Next::Done(Stop::ShortPage));
        assert_eq!(out.len(), 7);
        assert!(Stop::ShortPage.is_complete());
        assert!(!Stop::EmptyPage.is_complete());
        // A count-less server that ignores `page` repeats itself: stopped, not looped.
        let mut p = Paginator::new(limits(3));
        let mut out = Vec::new();
        assert_eq!(p.on_page(items(0..3), None, &mut out), Next::Fetch(2));
        assert_eq!(p.on_page(items(0..3), None, &mut out), Next::Done(Stop::NoNewItems));
    }
}

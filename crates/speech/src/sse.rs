//! An incremental Server-Sent Events parser, sans-IO: bytes in, events out.
//!
//! It follows the WHATWG HTML "event stream interpretation": lines end in `\r\n`, `\n` or `\r`
//! (a `\r\n` split across two chunks counts once); a line starting with `:` is a comment
//! (keep-alive); `field: value` sets a field, one space after the colon is dropped; `data` lines
//! accumulate joined by `\n`; an empty line dispatches the event if it has data; a leading UTF-8
//! BOM is skipped; an event left incomplete at the end of the stream is discarded.
//!
//! Unlike a browser, it reports lines whose field is not one of `data`, `event`, `id` and `retry`
//! ([`SseItem::Unknown`]) instead of silently ignoring them: an API that streams only `data:` lines
//! uses them to tell garbage (an HTML error page with a 200) from a slow stream. The `retry` field
//! is parsed but has no effect: the adapters never reconnect to resume a stream.
//!
//! Lines and events are bounded ([`SseParser::with_limits`]) so a broken server cannot make the
//! parser buffer without end.

use std::collections::VecDeque;

/// A dispatched event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event` field, empty when absent (a `message`).
    pub event: String,
    /// The `data` lines joined with `\n`.
    pub data: String,
    /// The last `id` field seen, if any.
    pub id: Option<String>,
}

/// What the parser produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SseItem {
    /// A complete event.
    Event(SseEvent),
    /// A line with a field name outside the SSE vocabulary (the name, cut to 64 bytes).
    Unknown(String),
}

/// Input the parser refuses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// A line longer than the line limit.
    #[error("SSE line longer than {0} bytes")]
    LineTooLong(usize),
    /// An event whose data exceeds the event limit.
    #[error("SSE event data longer than {0} bytes")]
    EventTooLong(usize),
}

/// The parser. Feed bytes with [`handle_bytes`](Self::handle_bytes), take items with
/// [`poll_item`](Self::poll_item).
#[derive(Debug)]
pub struct SseParser {
    /// The current, unfinished line.
    line: Vec<u8>,
    /// The last byte seen was a `\r`: a `\n` starting the next chunk belongs to it.
    after_cr: bool,
    /// Still at the very start of the stream (a BOM may follow).
    at_start: bool,
    /// The event being built.
    data: String,
    has_data: bool,
    event: String,
    id: Option<String>,
    items: VecDeque<SseItem>,
    max_line: usize,
    max_event: usize,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl SseParser {
    /// A parser with limits of 1 MiB per line and 4 MiB per event.
    pub fn new() -> Self {
        Self::with_limits(1 << 20, 4 << 20)
    }

    /// A parser with the given line and event-data limits, in bytes.
    pub fn with_limits(max_line: usize, max_event: usize) -> Self {
        Self {
            line: Vec::new(),
            after_cr: false,
            at_start: true,
            data: String::new(),
            has_data: false,
            event: String::new(),
            id: None,
            items: VecDeque::new(),
            max_line,
            max_event,
        }
    }

    /// Parses more of the stream. Complete items queue up for [`poll_item`](Self::poll_item).
    /// After an error the parser must not be fed again.
    pub fn handle_bytes(&mut self, mut bytes: &[u8]) -> Result<(), SseError> {
        if self.at_start {
            // The BOM may itself arrive split: hold back a prefix of it until it is decided.
            const BOM: &[u8] = b"\xEF\xBB\xBF";
            self.line.extend_from_slice(bytes);
            if self.line.len() < BOM.len() && BOM.starts_with(&self.line) {
                return Ok(());
            }
            self.at_start = false;
            let held = std::mem::take(&mut self.line);
            let rest = held.strip_prefix(BOM).unwrap_or(&held);
            return self.handle_bytes(rest);
        }
        if self.after_cr && bytes.first() == Some(&b'\n') {
            bytes = &bytes[1..];
        }
        self.after_cr = false;
        while let Some(pos) = bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
            let (head, tail) = bytes.split_at(pos);
            self.extend_line(head)?;
            self.end_line()?;
            // `tail` starts with the terminator: skip it, and the `\n` of a `\r\n`.
            bytes = match tail {
                [b'\r', b'\n', rest @ ..] => rest,
                [b'\r'] => {
                    self.after_cr = true;
                    &[]
                }
                [_, rest @ ..] => rest,
                [] => &[],
            };
        }
        self.extend_line(bytes)
    }

    /// The end of the stream: an unfinished event is discarded (per the standard). Returns whether
    /// something was discarded, which tells a truncated stream from a clean end.
    pub fn handle_eof(&mut self) -> bool {
        let discarded = !self.line.is_empty() || self.has_data || !self.event.is_empty();
        self.line.clear();
        self.reset_event();
        discarded
    }

    /// The next parsed item.
    pub fn poll_item(&mut self) -> Option<SseItem> {
        self.items.pop_front()
    }

    fn extend_line(&mut self, bytes: &[u8]) -> Result<(), SseError> {
        if self.line.len() + bytes.len() > self.max_line {
            return Err(SseError::LineTooLong(self.max_line));
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn end_line(&mut self) -> Result<(), SseError> {
        let line = std::mem::take(&mut self.line);
        let result = self.process_line(&line);
        // Keep the allocation: most lines are about the same length.
        self.line = line;
        self.line.clear();
        result
    }

    fn process_line(&mut self, line: &[u8]) -> Result<(), SseError> {
        if line.is_empty() {
            if self.has_data {
                let event = SseEvent { event: std::mem::take(&mut self.event), data: std::mem::take(&mut self.data), id: self.id.clone() };
                self.items.push_back(SseItem::Event(event));
            }
            self.reset_event();
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        let value = String::from_utf8_lossy(value);
        match field {
            b"data" => {
                if self.data.len() + value.len() + 1 > self.max_event {
                    return Err(SseError::EventTooLong(self.max_event));
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&value);
                self.has_data = true;
            }
            b"event" => self.event = value.into_owned(),
            // An id with a NUL is ignored, per the standard.
            b"id" if !value.contains('\0') => self.id = Some(value.into_owned()),
            b"id" | b"retry" => {}
            other => {
                let name = String::from_utf8_lossy(&other[..other.len().min(64)]).into_owned();
                self.items.push_back(SseItem::Unknown(name));
            }
        }
        Ok(())
    }

    fn reset_event(&mut self) {
        self.data.clear();
        self.has_data = false;
        self.event.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_chunks(input: &[u8], cuts: &[usize]) -> Vec<SseItem> {
        let mut p = SseParser::new();
        let mut start = 0;
        for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
            p.handle_bytes(&input[start..cut]).expect("valid input");
            start = cut;
        }
        std::iter::from_fn(|| p.poll_item()).collect()
    }

    fn data(s: &str) -> SseItem {
        SseItem::Event(SseEvent { data: s.into(), ..SseEvent::default() })
    }

    const OPENAI: &[u8] =
        b"\xEF\xBB\xBF: keep-alive\r\n\r\ndata: {\"a\":1}\r\n\r\ndata:{\"b\":2}\n\ndata: x\rdata: y\r\r\nevent: ping\ndata: p\nid: 7\n\n:c\n\ndata: [DONE]\n\n";

    fn expected() -> Vec<SseItem> {
        vec![
            data("{\"a\":1}"),
            data("{\"b\":2}"),
            data("x\ny"),
            SseItem::Event(SseEvent { event: "ping".into(), data: "p".into(), id: Some("7".into()) }),
            SseItem::Event(SseEvent { event: String::new(), data: "[DONE]".into(), id: Some("7".into()) }),
        ]
    }

    #[test]
    fn whole_input() {
        assert_eq!(parse_in_chunks(OPENAI, &[]), expected());
    }

    #[test]
    fn every_single_split() {
        for cut in 0..=OPENAI.len() {
            assert_eq!(parse_in_chunks(OPENAI, &[cut]), expected(), "split at {cut}");
        }
    }

    #[test]
    fn every_pair_of_splits() {
        for a in 0..=OPENAI.len() {
            for b in a..=OPENAI.len() {
                assert_eq!(parse_in_chunks(OPENAI, &[a, b]), expected(), "splits at {a}, {b}");
            }
        }
    }

    #[test]
    fn byte_by_byte() {
        let cuts: Vec<usize> = (1..OPENAI.len()).collect();
        assert_eq!(parse_in_chunks(OPENAI, &cuts), expected());
    }

    #[test]
    fn unknown_fields_are_reported_and_events_without_data_lines_are_dropped() {
        let items = parse_in_chunks(b"<html>\ndata\n\nevent: e\n\n", &[]);
        assert_eq!(items, vec![SseItem::Unknown("<html>".into()), data("")]);
    }

    #[test]
    fn unfinished_event_is_discarded_at_eof() {
        let mut p = SseParser::new();
        p.handle_bytes(b"data: {\"partial\"").expect("valid");
        assert!(p.handle_eof());
        assert_eq!(p.poll_item(), None);
        let mut p = SseParser::new();
        p.handle_bytes(b"data: done\n\n").expect("valid");
        assert!(!p.handle_eof());
        assert_eq!(p.poll_item(), Some(data("done")));
    }

    #[test]
    fn limits() {
        let mut p = SseParser::with_limits(16, 32);
        assert_eq!(p.handle_bytes(&[b'a'; 17]), Err(SseError::LineTooLong(16)));
        let mut p = SseParser::with_limits(16, 20);
        p.handle_bytes(b"data: 0123456789\n").expect("fits");
        assert_eq!(p.handle_bytes(b"data: 0123456789\n"), Err(SseError::EventTooLong(20)));
    }
}

//! Framing SIP messages on a byte stream (TCP), sans-IO: bytes in, whole messages out.
//!
//! On a stream, Content-Length is mandatory (RFC 3261 §18.3) and delimits the body. Between
//! messages, a double CRLF is an RFC 5626 keep-alive ping (answered with a single CRLF pong)
//! and a single CRLF is a pong; both are reported. A stream that announces a message larger
//! than [`MAX_MESSAGE`], or lacks Content-Length, cannot be
//! resynchronised and must be closed.

use crate::message::{HeaderName, MAX_MESSAGE, header_end};

/// What came off the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// One whole message (to be parsed).
    Message(Vec<u8>),
    /// A keep-alive ping (`CRLFCRLF`): answer with [`PONG`].
    Ping,
    /// A keep-alive pong (`CRLF`).
    Pong,
}

/// The answer to a keep-alive ping.
pub const PONG: &[u8] = b"\r\n";
/// A keep-alive ping.
pub const PING: &[u8] = b"\r\n\r\n";

/// Why the stream cannot be read further.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// The headers of a message have no Content-Length.
    #[error("message without Content-Length on a stream")]
    NoContentLength,
    /// Content-Length is not a number.
    #[error("bad Content-Length on a stream")]
    BadContentLength,
    /// The message is larger than allowed.
    #[error("message larger than {MAX_MESSAGE} bytes on a stream")]
    TooLarge,
}

/// Reassembles messages from the bytes of one connection.
#[derive(Clone, Debug, Default)]
pub struct StreamDecoder {
    buf: Vec<u8>,
}

impl StreamDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes waiting for the rest of a message.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next complete frame, if the buffer holds one.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FramingError> {
        // Keep-alives between messages.
        if self.buf.starts_with(PING) {
            self.buf.drain(..PING.len());
            return Ok(Some(Frame::Ping));
        }
        if self.buf.starts_with(b"\r\n") {
            if self.buf.len() == 2 || self.buf.get(2) != Some(&b'\r') {
                self.buf.drain(..2);
                return Ok(Some(Frame::Pong));
            }
            // "\r\n\r" could still become a ping: wait for more.
            return Ok(None);
        }
        let Some(end) = header_end(&self.buf) else {
            if self.buf.len() > MAX_MESSAGE {
                return Err(FramingError::TooLarge);
            }
            return Ok(None);
        };
        let length = content_length(&self.buf[..end])?;
        let total = end + length;
        if total > MAX_MESSAGE {
            return Err(FramingError::TooLarge);
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        let message: Vec<u8> = self.buf.drain(..total).collect();
        Ok(Some(Frame::Message(message)))
    }
}

/// The Content-Length of a header block (long or compact name, any case).
fn content_length(head: &[u8]) -> Result<usize, FramingError> {
    let text = String::from_utf8_lossy(head);
    for line in text.split('\n').skip(1) {
        let Some((name, value)) = line.split_once(':') else { continue };
        if HeaderName::parse(name.trim()) == HeaderName::ContentLength {
            return value.trim().parse().map_err(|_| FramingError::BadContentLength);
        }
    }
    Err(FramingError::NoContentLength)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"OPTIONS sip:x@y SIP/2.0\r\nl: 5\r\n\r\nhello";

    #[test]
    fn messages_split_across_reads_and_glued_together() {
        let mut d = StreamDecoder::new();
        let mut stream = MSG.to_vec();
        stream.extend_from_slice(PING);
        stream.extend_from_slice(MSG);
        stream.extend_from_slice(b"\r\n");
        let mut frames = Vec::new();
        for chunk in stream.chunks(7) {
            d.push(chunk);
            while let Some(f) = d.next_frame().expect("valid stream") {
                frames.push(f);
            }
        }
        assert_eq!(frames, vec![Frame::Message(MSG.to_vec()), Frame::Ping, Frame::Message(MSG.to_vec()), Frame::Pong]);
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn unframeable_streams_are_errors() {
        let mut d = StreamDecoder::new();
        d.push(b"OPTIONS sip:x@y SIP/2.0\r\nVia: x\r\n\r\n");
        assert_eq!(d.next_frame(), Err(FramingError::NoContentLength));
        let mut d = StreamDecoder::new();
        d.push(b"OPTIONS sip:x@y SIP/2.0\r\nContent-Length: lots\r\n\r\n");
        assert_eq!(d.next_frame(), Err(FramingError::BadContentLength));
        let mut d = StreamDecoder::new();
        d.push(b"OPTIONS sip:x@y SIP/2.0\r\nContent-Length: 999999\r\n\r\n");
        assert_eq!(d.next_frame(), Err(FramingError::TooLarge));
        let mut d = StreamDecoder::new();
        d.push(&vec![b'a'; MAX_MESSAGE + 1]);
        assert_eq!(d.next_frame(), Err(FramingError::TooLarge));
    }

    #[test]
    fn a_partial_message_waits() {
        let mut d = StreamDecoder::new();
        d.push(&MSG[..MSG.len() - 1]);
        assert_eq!(d.next_frame(), Ok(None));
        d.push(&MSG[MSG.len() - 1..]);
        assert_eq!(d.next_frame(), Ok(Some(Frame::Message(MSG.to_vec()))));
    }
}

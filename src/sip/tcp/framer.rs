//! Sans-IO framing of a SIP byte stream (RFC 3261 §18.3): splits the bytes read from one
//! connection into whole messages by Content-Length and recognises RFC 5626 §3.5.1 keep-alives.
//!
//! The end of the head is searched incrementally and the body length is learnt once, so a peer
//! that dribbles a large message a byte at a time costs linear work, not quadratic.

use bytes::{Bytes, BytesMut};
use thiserror::Error;

use crate::sip::{MAX_MESSAGE_SIZE, ParseError, SipMessage};

/// One unit taken off the front of a stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// One complete SIP message, bytes exactly as received.
    Message(Bytes),
    /// A double-CRLF keep-alive ping that must be answered with a single CRLF pong.
    Ping,
}

/// Why a stream can no longer be framed; the connection carrying it must be closed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// The pending message is, or announces itself as, larger than the limit.
    #[error("message of {size} bytes exceeds the {max} byte limit")]
    Oversize {
        /// Size seen or announced, in bytes.
        size: usize,
        /// Limit in force, in bytes.
        max: usize,
    },
    /// The bytes are not a SIP message (bad start line, bad or missing Content-Length, ...).
    #[error("unframeable stream: {0}")]
    Malformed(#[from] ParseError),
}

/// What the bytes in front of the buffer are, before any message is looked at.
enum Lead {
    /// Nothing buffered, or a CR/LF run that may still become a ping.
    NeedMore,
    /// A ping was consumed.
    Ping,
    /// A lone line break was consumed and ignored.
    Skipped,
    /// The buffer starts with the first byte of a message.
    Message,
}

/// Accumulates the bytes of one connection and cuts them into frames.
#[derive(Debug)]
pub struct StreamFramer {
    /// Received bytes not yet handed out.
    buf: BytesMut,
    /// Largest message accepted, in bytes.
    limit: usize,
    /// Bytes of the pending message already searched for the blank line without success.
    head_scanned: usize,
    /// Total length of the pending message, once its head is complete.
    pending_total: Option<usize>,
}

impl StreamFramer {
    /// A framer accepting messages of up to `max_message` bytes (never above
    /// [`MAX_MESSAGE_SIZE`], the parser's own limit).
    pub fn new(max_message: usize) -> Self {
        StreamFramer {
            buf: BytesMut::with_capacity(4096),
            limit: max_message.min(MAX_MESSAGE_SIZE),
            head_scanned: 0,
            pending_total: None,
        }
    }

    /// Whether a message has started arriving whose head (start line and headers) is not
    /// complete yet; keep-alive line breaks do not count as a start.
    pub fn head_incomplete(&self) -> bool {
        self.pending_total.is_none() && self.buf.iter().any(|byte| !matches!(byte, b'\r' | b'\n'))
    }

    /// The buffer that received bytes are appended to.
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Appends received bytes (convenience for callers that do not read into [`Self::buffer_mut`]).
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Takes the next frame off the front of the buffer; `Ok(None)` means more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        loop {
            match self.lead() {
                Lead::NeedMore => return Ok(None),
                Lead::Ping => return Ok(Some(Frame::Ping)),
                Lead::Skipped => continue,
                Lead::Message => return self.next_message(),
            }
        }
    }

    /// Consumes keep-alive line breaks in front of the buffer.
    fn lead(&mut self) -> Lead {
        let bytes = self.buf.as_ref();
        let consumed = match bytes {
            [] => return Lead::NeedMore,
            [first, ..] if !matches!(first, b'\r' | b'\n') => return Lead::Message,
            [b'\r', b'\n', b'\r', b'\n', ..] => {
                let _ = self.buf.split_to(4);
                return Lead::Ping;
            }
            [b'\r'] | [b'\r', b'\n'] | [b'\r', b'\n', b'\r'] => return Lead::NeedMore,
            [b'\r', b'\n', ..] => 2,
            _ => 1,
        };
        let _ = self.buf.split_to(consumed);
        Lead::Skipped
    }

    /// Frames the message that starts at the front of the buffer.
    fn next_message(&mut self) -> Result<Option<Frame>, FrameError> {
        let total = match self.pending_total {
            Some(total) => total,
            None => {
                let Some(head_end) = self.find_head_end() else {
                    self.head_scanned = self.buf.len();
                    return self.check_size(self.buf.len()).map(|()| None);
                };
                self.check_size(head_end)?;
                match self.parse_front()? {
                    Some(frame) => return Ok(Some(frame)),
                    None => match self.body_total(head_end) {
                        Some(total) => {
                            self.pending_total = Some(total);
                            total
                        }
                        None => return Ok(None),
                    },
                }
            }
        };
        self.check_size(total)?;
        if self.buf.len() < total {
            return Ok(None);
        }
        self.parse_front()
    }

    /// Runs the stream parser on the buffer and cuts off the message it finds.
    fn parse_front(&mut self) -> Result<Option<Frame>, FrameError> {
        match SipMessage::parse_stream(&self.buf) {
            Ok(Some((_, used))) => {
                self.check_size(used)?;
                self.head_scanned = 0;
                self.pending_total = None;
                Ok(Some(Frame::Message(self.buf.split_to(used).freeze())))
            }
            Ok(None) => Ok(None),
            Err(ParseError::TooLarge { size, .. }) => Err(FrameError::Oversize {
                size,
                max: self.limit,
            }),
            Err(other) => Err(FrameError::Malformed(other)),
        }
    }

    /// Learns the whole length of a message whose head is complete but whose body is not:
    /// datagram parsing of the head alone reports the Content-Length it could not satisfy.
    fn body_total(&self, head_end: usize) -> Option<usize> {
        let head = self.buf.get(..head_end)?;
        match SipMessage::parse(head) {
            Err(ParseError::BodyTruncated { declared, .. }) => head_end.checked_add(declared),
            _ => None,
        }
    }

    /// Offset one past the blank line ending the head, if it has arrived.
    fn find_head_end(&self) -> Option<usize> {
        // Step back so a blank line straddling two reads is still seen.
        let from = self.head_scanned.saturating_sub(2);
        let tail = self.buf.get(from..)?;
        tail.windows(2).enumerate().find_map(|(offset, pair)| {
            let newline = from.checked_add(offset)?;
            match pair {
                [b'\n', b'\n'] => newline.checked_add(2),
                [b'\n', b'\r'] if tail.get(offset + 2) == Some(&b'\n') => newline.checked_add(3),
                _ => None,
            }
        })
    }

    fn check_size(&self, size: usize) -> Result<(), FrameError> {
        if size > self.limit {
            Err(FrameError::Oversize {
                size,
                max: self.limit,
            })
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
#[path = "framer_tests.rs"]
mod tests;

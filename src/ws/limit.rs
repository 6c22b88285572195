//! The frame-size limit, enforced as bytes arrive rather than once a frame is complete.
//!
//! actix-http's frame parser checks a frame's length only after the whole payload is buffered,
//! so a header announcing 1 TiB makes the server buffer whatever the client sends, and the
//! aggregated size of a fragmented message is reported as a generic I/O error. [`FrameLimit`]
//! sits between the connection and the parser: it reads each frame header as it passes (the
//! bytes themselves go through unchanged) and fails the stream with
//! [`PayloadError::Overflow`] as soon as one frame, or the fragments of one message together,
//! announce more than the limit. The socket loop answers that with close 1009.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use futures_util::Stream;

/// Wraps an upgrade's body stream.
pub fn limit_frames(
    req: &actix_web::HttpRequest,
    body: actix_web::web::Payload,
    max: usize,
) -> Result<actix_web::web::Payload, actix_web::Error> {
    use actix_web::FromRequest;
    let stream: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(FrameLimit {
        body: body.into_inner(),
        scan: Scanner::new(max as u64),
    });
    let mut limited = Payload::Stream { payload: stream };
    // `web::Payload` has no public constructor; its extractor takes the stream it is given.
    actix_web::web::Payload::from_request(req, &mut limited).into_inner()
}

/// Whether a socket's stream error is the limit's doing.
pub fn is_overflow(err: &std::io::Error) -> bool {
    err.get_ref()
        .and_then(|e| e.downcast_ref::<PayloadError>())
        .is_some_and(|e| matches!(e, PayloadError::Overflow))
        || err
            .to_string()
            .contains("Exceeded maximum continuation size")
}

struct FrameLimit {
    body: Payload,
    scan: Scanner,
}

impl Stream for FrameLimit {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.scan.overflowed {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.body).poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => match self.scan.feed(&bytes) {
                Ok(()) => Poll::Ready(Some(Ok(bytes))),
                Err(()) => Poll::Ready(Some(Err(PayloadError::Overflow))),
            },
            other => other,
        }
    }
}

/// Follows frame boundaries in the byte stream (RFC 6455 §5.2).
#[derive(Debug)]
struct Scanner {
    max: u64,
    /// The header being read: up to 14 bytes.
    header: [u8; 14],
    have: usize,
    /// Payload bytes of the current frame still to pass.
    remaining: u64,
    /// Payload announced so far by the data frames of the current message.
    message: u64,
    overflowed: bool,
}

impl Scanner {
    fn new(max: u64) -> Self {
        Scanner {
            max,
            header: [0; 14],
            have: 0,
            remaining: 0,
            message: 0,
            overflowed: false,
        }
    }

    fn feed(&mut self, mut bytes: &[u8]) -> Result<(), ()> {
        while !bytes.is_empty() {
            if self.remaining > 0 {
                let skip = usize::try_from(self.remaining)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                bytes = &bytes[skip..];
                self.remaining -= skip as u64;
                continue;
            }
            self.header[self.have] = bytes[0];
            self.have += 1;
            bytes = &bytes[1..];
            if let Some(len) = self.header_complete() {
                self.have = 0;
                self.remaining = len;
            }
            if self.overflowed {
                return Err(());
            }
        }
        Ok(())
    }

    /// The payload length once the header is whole (and checks it against the limit).
    fn header_complete(&mut self) -> Option<u64> {
        if self.have < 2 {
            return None;
        }
        let (b0, b1) = (self.header[0], self.header[1]);
        let (ext, len7) = match b1 & 0x7f {
            126 => (2, None),
            127 => (8, None),
            n => (0, Some(u64::from(n))),
        };
        let mask = if b1 & 0x80 != 0 { 4 } else { 0 };
        if self.have < 2 + ext + mask {
            return None;
        }
        let len = len7.unwrap_or_else(|| {
            self.header[2..2 + ext]
                .iter()
                .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
        });
        let opcode = b0 & 0x0f;
        let fin = b0 & 0x80 != 0;
        // Control frames (close, ping, pong) stand between fragments and count for nothing.
        if opcode < 8 {
            self.message = if opcode == 0 {
                self.message.saturating_add(len)
            } else {
                len
            };
            if self.message > self.max {
                self.overflowed = true;
            }
            if fin {
                self.message = 0;
            }
        } else if len > self.max {
            self.overflowed = true;
        }
        Some(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(fin: bool, opcode: u8, len: u64) -> Vec<u8> {
        let mut h = vec![if fin { 0x80 } else { 0 } | opcode];
        match len {
            0..=125 => h.push(0x80 | len as u8),
            126..=0xffff => {
                h.push(0x80 | 126);
                h.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                h.push(0x80 | 127);
                h.extend_from_slice(&len.to_be_bytes());
            }
        }
        h.extend_from_slice(&[1, 2, 3, 4]);
        h
    }

    #[test]
    fn frames_within_the_limit_pass_in_any_split() {
        let mut stream = Vec::new();
        for (fin, op, len) in [
            (false, 1, 60_000),
            (true, 0, 5_536),
            (true, 9, 4),
            (true, 2, 65_536),
        ] {
            stream.extend(header(fin, op, len));
            stream.extend(std::iter::repeat_n(7u8, len as usize));
        }
        for chunk in [1, 3, 1000, stream.len()] {
            let mut scan = Scanner::new(65_536);
            for piece in stream.chunks(chunk) {
                assert_eq!(scan.feed(piece), Ok(()), "chunk {chunk}");
            }
        }
    }

    #[test]
    fn an_oversized_frame_is_refused_from_its_header_alone() {
        let mut scan = Scanner::new(65_536);
        assert_eq!(scan.feed(&header(true, 2, 1 << 40)), Err(()));
        let mut scan = Scanner::new(65_536);
        assert_eq!(scan.feed(&header(true, 1, 65_537)), Err(()));
    }

    #[test]
    fn fragments_over_the_limit_together_are_refused_with_a_ping_between() {
        let mut scan = Scanner::new(65_536);
        let mut stream = header(false, 1, 33_000);
        stream.extend(vec![0u8; 33_000]);
        stream.extend(header(true, 9, 0));
        assert_eq!(scan.feed(&stream), Ok(()));
        assert_eq!(scan.feed(&header(true, 0, 33_000)), Err(()));
    }

    /// Any bytes in any split: no panic, and the same verdict as fed whole.
    #[test]
    fn fuzz_scanner_never_panics_and_ignores_how_bytes_are_split() {
        bolero::check!()
            .with_type::<(Vec<u8>, u16)>()
            .for_each(|(bytes, chunk)| {
                let whole = Scanner::new(1_000).feed(bytes);
                let mut split = Scanner::new(1_000);
                let verdict = bytes
                    .chunks(usize::from(*chunk).max(1))
                    .try_for_each(|piece| split.feed(piece));
                assert_eq!(whole, verdict);
            });
    }

    /// Well-formed streams within the limit always pass.
    #[test]
    fn fuzz_scanner_passes_every_stream_within_the_limit() {
        bolero::check!()
            .with_type::<Vec<(bool, u8, u16)>>()
            .for_each(|frames| {
                let mut stream = Vec::new();
                let mut message = 0u64;
                for (fin, kind, len) in frames {
                    let len = u64::from(*len % 300);
                    let opcode = [0u8, 1, 2, 9, 10][usize::from(*kind) % 5];
                    if opcode < 8 {
                        message = if opcode == 0 { message + len } else { len };
                        if message > 1_000 {
                            return;
                        }
                        if *fin {
                            message = 0;
                        }
                    }
                    stream.extend(header(*fin, opcode, len));
                    stream.extend(std::iter::repeat_n(0u8, len as usize));
                }
                assert_eq!(Scanner::new(1_000).feed(&stream), Ok(()));
            });
    }
}

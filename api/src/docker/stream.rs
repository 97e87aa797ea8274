//! Docker's stdcopy framing, used on non-TTY attach, exec and logs streams,
//! and the line format of `docker logs`.
//!
//! A frame is an 8-byte header — stream type, three zero bytes, payload
//! length as big-endian u32 — followed by the payload. With a TTY there is
//! no framing at all: bytes go through raw.

use std::time::SystemTime;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use berth_engine::model::timefmt::format_rfc3339_nano;

/// Length of a frame header.
pub const HEADER_LEN: usize = 8;

/// The stream a frame belongs to (header byte 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum StreamType {
    /// Stdin (the docker client writes such frames to its stdout).
    Stdin = 0,
    /// The process's stdout.
    Stdout = 1,
    /// The process's stderr.
    Stderr = 2,
    /// An error from the daemon; the client aborts with
    /// `error from daemon in stream: <payload>`.
    SystemErr = 3,
}

impl StreamType {
    /// The type for a header byte, if it is one of the four.
    pub fn from_byte(b: u8) -> Option<StreamType> {
        match b {
            0 => Some(StreamType::Stdin),
            1 => Some(StreamType::Stdout),
            2 => Some(StreamType::Stderr),
            3 => Some(StreamType::SystemErr),
            _ => None,
        }
    }
}

/// The header of a frame with `len` payload bytes.
pub fn frame_header(stream: StreamType, len: u32) -> [u8; HEADER_LEN] {
    let l = len.to_be_bytes();
    [stream as u8, 0, 0, 0, l[0], l[1], l[2], l[3]]
}

/// Appends `payload` to `out` as one frame, or as several if it is longer
/// than `u32::MAX` bytes. An empty payload gives no frame.
pub fn encode_frame_into(stream: StreamType, payload: &[u8], out: &mut BytesMut) {
    encode_with_max(stream, payload, u32::MAX as usize, out);
}

/// `payload` as one or more frames (see [`encode_frame_into`]).
pub fn encode_frame(stream: StreamType, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(HEADER_LEN + payload.len());
    encode_frame_into(stream, payload, &mut out);
    out.freeze()
}

fn encode_with_max(stream: StreamType, payload: &[u8], max: usize, out: &mut BytesMut) {
    for chunk in payload.chunks(max.max(1)) {
        out.put_slice(&frame_header(stream, chunk.len() as u32));
        out.put_slice(chunk);
    }
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub stream: StreamType,
    pub payload: Bytes,
}

/// A malformed multiplexed stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Header byte 0 is not 0–3 (the docker client says
    /// "Unrecognized input header").
    #[error("Unrecognized input header: {0}")]
    UnknownStream(u8),
    /// The input ended inside a frame (only from [`decode_all`]; the
    /// docker client treats this as a clean end).
    #[error("stream ended inside a frame ({0} bytes left over)")]
    Truncated(usize),
}

/// Incremental decoder: [`push`](FrameDecoder::push) bytes as they arrive,
/// then take complete frames with [`next_frame`](FrameDecoder::next_frame).
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: BytesMut,
}

impl FrameDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, DecodeError> {
        if self.buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let stream = StreamType::from_byte(self.buf[0]).ok_or(DecodeError::UnknownStream(self.buf[0]))?;
        let len = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
        if self.buf.len() < HEADER_LEN + len {
            return Ok(None);
        }
        self.buf.advance(HEADER_LEN);
        let payload = self.buf.split_to(len).freeze();
        Ok(Some(Frame { stream, payload }))
    }

    /// Bytes received but not yet returned as a frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// Decodes a whole multiplexed stream; an incomplete last frame is an
/// error (strict, for tests).
pub fn decode_all(bytes: &[u8]) -> Result<Vec<Frame>, DecodeError> {
    let mut d = FrameDecoder::new();
    d.push(bytes);
    let mut frames = Vec::new();
    while let Some(f) = d.next_frame()? {
        frames.push(f);
    }
    match d.pending() {
        0 => Ok(frames),
        n => Err(DecodeError::Truncated(n)),
    }
}

/// A `docker logs` line: with `timestamp`, prefixed by the time in
/// RFC 3339 with nine fractional digits and a space
/// (`2026-11-29T04:19:37.483365888Z hi\n`); otherwise `line` unchanged.
pub fn format_log_line(line: &[u8], timestamp: Option<SystemTime>) -> Vec<u8> {
    match timestamp {
        None => line.to_vec(),
        Some(t) => {
            let ts = format_rfc3339_nano(t);
            let mut out = Vec::with_capacity(ts.len() + 1 + line.len());
            out.extend_from_slice(ts.as_bytes());
            out.push(b' ');
            out.extend_from_slice(line);
            out
        }
    }
}

/// One log line ready for the wire: formatted by [`format_log_line`], then
/// framed for `stream` unless the container has a TTY (raw bytes).
pub fn log_chunk(stream: StreamType, line: &[u8], timestamp: Option<SystemTime>, tty: bool) -> Bytes {
    let text = format_log_line(line, timestamp);
    if tty {
        Bytes::from(text)
    } else {
        encode_frame(stream, &text)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn encodes_the_captured_frames() {
        let mut out = BytesMut::new();
        encode_frame_into(StreamType::Stdout, b"out\n", &mut out);
        encode_frame_into(StreamType::Stderr, b"err\n", &mut out);
        assert_eq!(
            &out[..],
            &[1, 0, 0, 0, 0, 0, 0, 4, b'o', b'u', b't', b'\n', 2, 0, 0, 0, 0, 0, 0, 4, b'e', b'r', b'r', b'\n'][..]
        );
        assert!(encode_frame(StreamType::Stdout, b"").is_empty());
        assert_eq!(frame_header(StreamType::SystemErr, 0x0102_0304), [3, 0, 0, 0, 1, 2, 3, 4]);
    }

    #[test]
    fn long_payloads_are_split() {
        let mut out = BytesMut::new();
        encode_with_max(StreamType::Stderr, b"abcdefg", 3, &mut out);
        let frames = decode_all(&out).unwrap();
        let parts: Vec<&[u8]> = frames.iter().map(|f| &f.payload[..]).collect();
        assert_eq!(parts, vec![&b"abc"[..], b"def", b"g"]);
        assert!(frames.iter().all(|f| f.stream == StreamType::Stderr));
    }

    #[test]
    fn decoder_handles_arbitrary_chunking() {
        let mut wire = BytesMut::new();
        encode_frame_into(StreamType::Stdout, b"hello\n", &mut wire);
        encode_frame_into(StreamType::Stderr, b"oops\n", &mut wire);
        wire.put_slice(&frame_header(StreamType::Stdout, 0)); // harmless empty frame
        encode_frame_into(StreamType::SystemErr, b"boom", &mut wire);
        for step in 1..wire.len() {
            let mut d = FrameDecoder::new();
            let mut got = Vec::new();
            for chunk in wire.chunks(step) {
                d.push(chunk);
                while let Some(f) = d.next_frame().unwrap() {
                    got.push(f);
                }
            }
            assert_eq!(d.pending(), 0);
            let summary: Vec<(StreamType, &[u8])> = got.iter().map(|f| (f.stream, &f.payload[..])).collect();
            assert_eq!(
                summary,
                vec![
                    (StreamType::Stdout, &b"hello\n"[..]),
                    (StreamType::Stderr, b"oops\n"),
                    (StreamType::Stdout, b""),
                    (StreamType::SystemErr, b"boom"),
                ],
                "chunk size {step}"
            );
        }
    }

    #[test]
    fn decoder_errors() {
        assert_eq!(decode_all(&[9, 0, 0, 0, 0, 0, 0, 0]), Err(DecodeError::UnknownStream(9)));
        assert_eq!(decode_all(&[1, 0, 0, 0, 0, 0, 0, 5, b'a']), Err(DecodeError::Truncated(9)));
        assert_eq!(decode_all(&[1, 0, 0]), Err(DecodeError::Truncated(3)));
        assert_eq!(decode_all(&[]), Ok(vec![]));
    }

    #[test]
    fn log_lines_with_and_without_timestamps() {
        let t = UNIX_EPOCH + Duration::new(1_795_926_092, 483_365_888);
        assert_eq!(format_log_line(b"hi\n", Some(t)), b"2026-11-29T04:21:32.483365888Z hi\n");
        assert_eq!(format_log_line(b"hi\n", None), b"hi\n");
        let t0 = UNIX_EPOCH + Duration::from_secs(1);
        assert_eq!(format_log_line(b"x", Some(t0)), b"1970-01-01T00:00:01.000000000Z x");
        assert_eq!(&log_chunk(StreamType::Stdout, b"hi\r\n", None, true)[..], b"hi\r\n");
        let framed = log_chunk(StreamType::Stderr, b"e\n", Some(t), false);
        let frames = decode_all(&framed).unwrap();
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].stream, StreamType::Stderr);
        assert_eq!(&frames[0].payload[..], b"2026-11-29T04:21:32.483365888Z e\n");
    }
}

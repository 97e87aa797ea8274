//! Detach keys: the key sequence that, typed into an attached TTY's input,
//! detaches the client and leaves the container running (`ctrl-p,ctrl-q`
//! unless the client names others with `detachKeys`).
//!
//! The format is dockerd's: comma-separated keys, each either one
//! character or `ctrl-` followed by a letter or one of `@ [ \ ] ^ _`.
//! While the input matches the start of the sequence, those bytes are held
//! back; the whole sequence detaches (nothing of it reaches the
//! container), and a byte that breaks the match releases what was held.

/// dockerd's default detach sequence.
pub const DEFAULT_DETACH_KEYS: &[u8] = &[0x10, 0x11];

/// Why a detach-keys value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid detach keys ({0}) provided")]
pub struct BadDetachKeys(pub String);

/// Parses a detach-keys value; empty gives the default.
pub fn parse(keys: &str) -> Result<Vec<u8>, BadDetachKeys> {
    if keys.is_empty() {
        return Ok(DEFAULT_DETACH_KEYS.to_vec());
    }
    let bad = || BadDetachKeys(keys.to_owned());
    keys.split(',')
        .map(|key| {
            if let Some(c) = key.strip_prefix("ctrl-") {
                let &[b] = c.as_bytes() else { return Err(bad()) };
                match b {
                    b'a'..=b'z' => Ok(b - b'a' + 1),
                    b'@' => Ok(0),
                    b'[' => Ok(27),
                    b'\\' => Ok(28),
                    b']' => Ok(29),
                    b'^' => Ok(30),
                    b'_' => Ok(31),
                    _ => Err(bad()),
                }
            } else {
                match key.as_bytes() {
                    &[b] => Ok(b),
                    _ => Err(bad()),
                }
            }
        })
        .collect()
}

/// Scans input for the detach sequence.
#[derive(Debug, Clone)]
pub struct Escape {
    keys: Vec<u8>,
    /// How many bytes of `keys` the input has matched so far (held back).
    matched: usize,
}

/// What to do with a piece of input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scan {
    /// Forward these bytes to the container (possibly none).
    Forward(Vec<u8>),
    /// The sequence was typed: forward these bytes first, then detach.
    Detach(Vec<u8>),
}

impl Escape {
    pub fn new(keys: Vec<u8>) -> Self {
        Escape { keys, matched: 0 }
    }

    /// Feeds a piece of input.
    pub fn scan(&mut self, input: &[u8]) -> Scan {
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if self.keys.is_empty() {
                out.push(b);
                continue;
            }
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return Scan::Detach(out);
                }
                continue;
            }
            // The match broke: release what was held, then look at `b`
            // afresh (it may start the sequence).
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
                if self.keys.len() == 1 {
                    self.matched = 0;
                    return Scan::Detach(out);
                }
            } else {
                out.push(b);
            }
        }
        Scan::Forward(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dockerds_format() {
        assert_eq!(parse("").unwrap(), DEFAULT_DETACH_KEYS);
        assert_eq!(parse("ctrl-p,ctrl-q").unwrap(), [16, 17]);
        assert_eq!(parse("ctrl-x").unwrap(), [24]);
        assert_eq!(parse("a,ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_").unwrap(), [b'a', 0, 27, 28, 29, 30, 31]);
        for bad in ["ctrl-", "ctrl-1", "ctrl-ab", "ab", ",", "ctrl-p,", "ctrl-P"] {
            assert_eq!(parse(bad).unwrap_err().to_string(), format!("Invalid detach keys ({bad}) provided"));
        }
    }

    #[test]
    fn the_sequence_detaches_and_partial_matches_are_released() {
        let mut e = Escape::new(parse("ctrl-p,ctrl-q").unwrap());
        assert_eq!(e.scan(b"ab\x10"), Scan::Forward(b"ab".to_vec()));
        assert_eq!(e.scan(b"c"), Scan::Forward(b"\x10c".to_vec()));
        assert_eq!(e.scan(b"\x10\x10"), Scan::Forward(b"\x10".to_vec()));
        assert_eq!(e.scan(b"\x11rest"), Scan::Detach(Vec::new()));
        let mut e = Escape::new(parse("ctrl-p").unwrap());
        assert_eq!(e.scan(b"xy\x10z"), Scan::Detach(b"xy".to_vec()));
        let mut e = Escape::new(Vec::new());
        assert_eq!(e.scan(b"\x10\x11"), Scan::Forward(b"\x10\x11".to_vec()));
    }
}

//! Container ids: 64 lowercase hex characters from the OS random generator.

use crate::fsutil::random_hex;

/// Length of a full container id.
pub const ID_LEN: usize = 64;

/// Length of the short id Docker shows (`docker ps`, default hostname).
pub const SHORT_ID_LEN: usize = 12;

/// A new random container id. Like Docker, ids whose 12-character short
/// form is all digits are skipped, so a short id is never mistaken for a
/// number.
pub fn generate_id() -> String {
    loop {
        let id = random_hex(ID_LEN / 2);
        if !id[..SHORT_ID_LEN].bytes().all(|b| b.is_ascii_digit()) {
            return id;
        }
    }
}

/// True if `s` is a full container id (64 lowercase hex characters).
pub fn is_valid_id(s: &str) -> bool {
    s.len() == ID_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The first 12 characters of an id (the whole string if shorter).
pub fn short_id(id: &str) -> &str {
    id.get(..SHORT_ID_LEN).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_valid_and_distinct() {
        let a = generate_id();
        let b = generate_id();
        assert!(is_valid_id(&a) && is_valid_id(&b));
        assert_ne!(a, b);
        assert_eq!(short_id(&a).len(), 12);
    }

    #[test]
    fn rejects_bad_ids() {
        assert!(!is_valid_id("abc"));
        assert!(!is_valid_id(&"A".repeat(64)));
        assert!(!is_valid_id(&"g".repeat(64)));
        assert!(is_valid_id(&"0a".repeat(32)));
        assert_eq!(short_id("abc"), "abc");
    }
}

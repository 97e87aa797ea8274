//! Container names: Docker's validation rule and generated
//! `adjective_noun` names for containers created without one.

use crate::error::StoreError;
use crate::fsutil::random_below;

/// Checks a requested name against Docker's rule
/// `^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$` and returns it without the leading `/`
/// (the form the store keeps).
pub fn validate_name(name: &str) -> Result<String, StoreError> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    let b = bare.as_bytes();
    let ok = b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..].iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if ok {
        Ok(bare.to_owned())
    } else {
        Err(StoreError::InvalidName(name.to_owned()))
    }
}

/// Strips one leading `/` (Docker accepts names with and without it).
pub fn normalize_name(name: &str) -> &str {
    name.strip_prefix('/').unwrap_or(name)
}

const ADJECTIVES: &[&str] = &[
    "agile", "amber", "ancient", "bold", "brave", "breezy", "bright", "calm", "clever", "cosmic",
    "crisp", "daring", "dazzling", "eager", "fearless", "fervent", "gentle", "gleaming", "golden",
    "hardy", "hidden", "humble", "jolly", "keen", "kind", "lively", "loyal", "lucid", "mellow",
    "misty", "nimble", "noble", "patient", "placid", "proud", "quiet", "rapid", "rugged", "serene",
    "silent", "silver", "sleepy", "snug", "steady", "stoic", "sunny", "swift", "tidy", "tranquil",
    "vivid", "wandering", "wise", "witty", "zealous",
];

const NOUNS: &[&str] = &[
    "albatross", "anchor", "atoll", "bay", "beacon", "bollard", "bosun", "breakwater", "buoy",
    "capstan", "cormorant", "cove", "current", "dinghy", "dock", "estuary", "ferry", "fjord",
    "galley", "gull", "harbor", "heron", "hull", "inlet", "jetty", "keel", "kelp", "lagoon",
    "lantern", "lighthouse", "mast", "mooring", "narwhal", "otter", "pelican", "pier", "puffin",
    "quay", "reef", "rudder", "sail", "schooner", "seal", "shoal", "skiff", "sloop", "tern",
    "tide", "trawler", "walrus", "wharf", "whale",
];

/// A random `adjective_noun` name; with `retry > 0` a random number is
/// appended (as Docker does after a collision), e.g. `brave_harbor7`.
pub fn generate_name(retry: u32) -> String {
    let adj = ADJECTIVES[random_below(ADJECTIVES.len())];
    let noun = NOUNS[random_below(NOUNS.len())];
    if retry == 0 {
        format!("{adj}_{noun}")
    } else {
        format!("{adj}_{noun}{}", random_below(10usize.pow(retry.min(6))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_follows_docker() {
        assert_eq!(validate_name("/web-1").unwrap(), "web-1");
        assert_eq!(validate_name("a.b_c-d").unwrap(), "a.b_c-d");
        assert_eq!(validate_name("9x").unwrap(), "9x");
        for bad in ["x", "/x", "", "/", "_ab", ".ab", "-ab", "a b", "a/b", "ab!", "//ab", "é1"] {
            let e = validate_name(bad).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("Invalid container name ({bad}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
            );
        }
    }

    #[test]
    fn generated_names_are_valid() {
        for retry in 0..4 {
            for _ in 0..50 {
                let n = generate_name(retry);
                assert_eq!(validate_name(&n).unwrap(), n);
                assert!(n.contains('_'));
            }
        }
    }

    #[test]
    fn word_lists_are_clean() {
        for w in ADJECTIVES.iter().chain(NOUNS) {
            assert!(w.bytes().all(|b| b.is_ascii_lowercase()), "{w}");
        }
    }
}

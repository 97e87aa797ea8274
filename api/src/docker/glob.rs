//! Globs with the semantics of Go's `path.Match`, which dockerd's image
//! `reference` filter uses:
//!
//! - `*` matches any run of characters other than `/`;
//! - `?` matches one character other than `/`;
//! - `[abc]`, `[a-z]`, `[^a-z]` match one character in (or not in) the
//!   class (`/` included); `\` escapes inside and outside classes;
//! - anything else matches itself; the whole name must match.
//!
//! A pattern is compiled once ([`Glob::new`]), which finds every syntax
//! error up front (Go finds them while matching; dockerd answers 500
//! "syntax error in pattern"). Matching is iterative and never goes back
//! further than one star: each segment after a star is placed at the
//! leftmost position where it matches, as Go does (this is also why Go,
//! and so berth, does not match `*x[^z]*y` against `xx/y`). Time is
//! O(pattern × name), memory is the compiled pattern; no recursion.
//!
//! Names are compared character by character (Go compares literals byte
//! by byte and skips bytes after a star; for the ASCII image references
//! this matches against, that is the same).

/// Longest pattern accepted, in bytes (an image reference is at most 255
/// characters of name and 128 of tag).
pub const MAX_PATTERN: usize = 1024;

/// Why a pattern is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    #[error("the pattern is {0} bytes, longer than the {MAX_PATTERN} berth accepts")]
    TooLong(usize),
    #[error("syntax error in pattern: {0}")]
    Syntax(&'static str),
}

/// One character position of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `?`
    Any,
    /// `[...]`: inclusive ranges.
    Class { negated: bool, ranges: Vec<(char, char)> },
}

impl Token {
    fn matches(&self, c: char) -> bool {
        match self {
            Token::Literal(l) => *l == c,
            Token::Any => c != '/',
            Token::Class { negated, ranges } => ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated,
        }
    }
}

/// A run of tokens, preceded by a star or not (only the first segment may
/// have none; a pattern ending in `*` ends with an empty starred segment).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    star: bool,
    tokens: Vec<Token>,
}

/// A compiled glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    segments: Vec<Segment>,
}

impl Glob {
    /// Compiles `pattern`: at most [`MAX_PATTERN`] bytes, no syntax error.
    pub fn new(pattern: &str) -> Result<Glob, GlobError> {
        if pattern.len() > MAX_PATTERN {
            return Err(GlobError::TooLong(pattern.len()));
        }
        compile(pattern)
    }

    /// Does `name` match, whole?
    pub fn matches(&self, name: &str) -> bool {
        let chars: Vec<char> = name.chars().collect();
        let mut rest: &[char] = &chars;
        let last = self.segments.len().saturating_sub(1);
        for (k, seg) in self.segments.iter().enumerate() {
            if seg.star && seg.tokens.is_empty() {
                // A trailing star takes the rest, if it has no `/`.
                return !rest.contains(&'/');
            }
            // Where the segment may start: here, and with a star up to
            // (and not past) the next `/`.
            let reach = if seg.star { rest.iter().position(|&c| c == '/').unwrap_or(rest.len()) } else { 0 };
            let placed = (0..=reach).find_map(|skip| {
                let after = match_tokens(&seg.tokens, &rest[skip..])?;
                // The last segment must end the name.
                (k != last || after.is_empty()).then_some(after)
            });
            match placed {
                Some(after) => rest = after,
                None => return false,
            }
        }
        rest.is_empty()
    }
}

/// `tokens` against the start of `s`: what is left of `s`.
fn match_tokens<'a>(tokens: &[Token], s: &'a [char]) -> Option<&'a [char]> {
    if tokens.len() > s.len() {
        return None;
    }
    tokens.iter().zip(s).all(|(t, &c)| t.matches(c)).then(|| &s[tokens.len()..])
}

/// Compiles without the length limit (the limit bounds matching time; the
/// compilation itself is linear and iterative).
fn compile(pattern: &str) -> Result<Glob, GlobError> {
    let p: Vec<char> = pattern.chars().collect();
    let mut segments = Vec::new();
    let mut i = 0;
    while i < p.len() || segments.is_empty() {
        let mut star = false;
        while i < p.len() && p[i] == '*' {
            star = true;
            i += 1;
        }
        let mut tokens = Vec::new();
        while i < p.len() && p[i] != '*' {
            match p[i] {
                '?' => {
                    tokens.push(Token::Any);
                    i += 1;
                }
                '\\' => {
                    let c = *p.get(i + 1).ok_or(GlobError::Syntax("'\\' at the end of the pattern escapes nothing"))?;
                    tokens.push(Token::Literal(c));
                    i += 2;
                }
                '[' => {
                    let (token, next) = class(&p, i + 1)?;
                    tokens.push(token);
                    i = next;
                }
                c => {
                    tokens.push(Token::Literal(c));
                    i += 1;
                }
            }
        }
        segments.push(Segment { star, tokens });
        if p.is_empty() {
            break;
        }
    }
    Ok(Glob { segments })
}

/// A class whose `[` was just before `i`: the token and the index after `]`.
fn class(p: &[char], mut i: usize) -> Result<(Token, usize), GlobError> {
    let negated = p.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        if p.get(i) == Some(&']') && !ranges.is_empty() {
            return Ok((Token::Class { negated, ranges }, i + 1));
        }
        let (lo, next) = class_char(p, i)?;
        i = next;
        let mut hi = lo;
        if p.get(i) == Some(&'-') {
            let (h, next) = class_char(p, i + 1)?;
            hi = h;
            i = next;
        }
        ranges.push((lo, hi));
    }
}

/// One (possibly escaped) character of a class at `i`, which must be
/// followed by more of the class.
fn class_char(p: &[char], mut i: usize) -> Result<(char, usize), GlobError> {
    match p.get(i) {
        None => return Err(GlobError::Syntax("a '[' is not closed")),
        Some('-') => return Err(GlobError::Syntax("a '-' in a character class has no start")),
        Some(']') => return Err(GlobError::Syntax("a character class is empty, or a range in it has no end")),
        Some('\\') => i += 1,
        Some(_) => {}
    }
    let c = *p.get(i).ok_or(GlobError::Syntax("a '[' is not closed"))?;
    if i + 1 >= p.len() {
        return Err(GlobError::Syntax("a '[' is not closed"));
    }
    Ok((c, i + 1))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn m(pattern: &str, name: &str) -> bool {
        Glob::new(pattern).unwrap().matches(name)
    }

    #[test]
    fn semantics_of_go_path_match() {
        // (pattern, name, matches) — the cases of Go's own path.Match tests
        // that berth's names can meet, and the quirks dockerd shows.
        let cases = [
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*", "ab/c", false),
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a[^a]b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("a[^a][^a][^a]b", "a☺b", false),
            ("[a-ζ]*", "α", true),
            ("*[a-ζ]", "A", false),
            ("a?b", "a/b", false),
            ("a*b", "a/b", false),
            ("[\\]a]", "]", true),
            ("[\\-]", "-", true),
            ("[x\\-]", "x", true),
            ("[x\\-]", "-", true),
            ("[x\\-]", "z", false),
            ("[\\-x]", "x", true),
            ("[\\-x]", "-", true),
            ("[\\-x]", "a", false),
            ("*x", "xxx", true),
            ("", "", true),
            ("", "a", false),
            ("a[/]b", "a/b", true),
            // dockerd 20.10 (Go 1.19), checked against a tag berthglob/xx/y:1:
            ("berthglob/*", "berthglob/xx/y", false),
            ("berthglob/*/*", "berthglob/xx/y:1", true),
            ("berthglob/xx/y:[\\1]", "berthglob/xx/y:1", true),
            ("berthglob/*x[^z]*y", "berthglob/xx/y", false),
            ("berthglob/*x[^z]*y", "berthglob/xx/y:1", false),
        ];
        for (p, n, want) in cases {
            assert_eq!(m(p, n), want, "{p:?} against {n:?}");
        }
    }

    #[test]
    fn syntax_errors_are_found_up_front() {
        for bad in ["[", "[^", "[^bc", "a[", "[]a]", "[-]", "[x-]", "[a-b-c]", "\\", "a\\", "[\\", "zzz[", "busybox:*["] {
            assert!(matches!(Glob::new(bad), Err(GlobError::Syntax(_))), "{bad:?}: {:?}", Glob::new(bad));
        }
        assert_eq!(Glob::new("[").unwrap_err().to_string(), "syntax error in pattern: a '[' is not closed");
    }

    #[test]
    fn the_backtracking_pattern_returns_at_once() {
        let p = Glob::new("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b").unwrap();
        let name = format!("{}:{}", "a".repeat(255), "a".repeat(128));
        let t = Instant::now();
        assert!(!p.matches(&name));
        assert!(t.elapsed() < Duration::from_millis(100), "{:?}", t.elapsed());
    }

    #[test]
    fn a_hundred_thousand_stars_are_refused_and_would_not_recurse() {
        let stars = "*".repeat(100_000);
        assert_eq!(Glob::new(&stars), Err(GlobError::TooLong(100_000)));
        assert!(Glob::new(&"*".repeat(MAX_PATTERN)).unwrap().matches("abc"));
        // Past the limit the matcher itself is still iterative.
        let g = compile(&format!("{stars}a{stars}")).unwrap();
        assert!(g.matches("xay") && !g.matches("xy") && !g.matches("x/a"));
    }

    mod props {
        use proptest::prelude::*;

        use super::*;

        /// The same language as a regex: `*` = `[^/]*`, `?` = `[^/]`.
        fn as_regex(pattern: &str) -> regex::Regex {
            let mut re = String::from("^");
            for c in pattern.chars() {
                match c {
                    '*' => re.push_str("[^/]*"),
                    '?' => re.push_str("[^/]"),
                    c => re.push_str(&regex::escape(&c.to_string())),
                }
            }
            re.push('$');
            regex::Regex::new(&re).unwrap()
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

            /// Without classes nothing but a literal `/` can match `/`, and
            /// then placing each segment leftmost loses no match: the
            /// answers are those of a regex engine.
            #[test]
            fn stars_and_question_marks_are_regular(pattern in "[ab/*?]{0,12}", name in "[ab/]{0,12}") {
                let g = Glob::new(&pattern).unwrap();
                prop_assert_eq!(g.matches(&name), as_regex(&pattern).is_match(&name), "{} against {}", pattern, name);
            }

            /// Any pattern compiles or is refused, and matches anything
            /// without a panic.
            #[test]
            fn any_pattern(pattern in "[ab/*?\\[\\]^\\\\-é]{0,24}", name in "[ab/\\-\\]é]{0,24}", junk in any::<String>()) {
                for p in [&pattern, &junk] {
                    if let Ok(g) = Glob::new(p) {
                        let _ = g.matches(&name);
                        let _ = g.matches(&junk);
                    }
                }
            }

            /// The worst shapes at the length limit: stars between letters
            /// against the longest reference; bounded by pattern × name.
            #[test]
            fn long_patterns_stay_fast(unit in "(\\*a|a\\*|\\*\\?|\\[a-b\\]\\*)", tail in "[ab]{0,3}", name_len in 0usize..400) {
                let pattern: String = unit.repeat(MAX_PATTERN / unit.len() - 1) + &tail;
                let g = Glob::new(&pattern[..pattern.len().min(MAX_PATTERN)]).unwrap();
                let name = "a".repeat(name_len);
                let t = std::time::Instant::now();
                let _ = g.matches(&name);
                prop_assert!(t.elapsed() < std::time::Duration::from_secs(1), "{:?}", t.elapsed());
            }
        }
    }
}

//! Image references, normalised as Docker does: `bb` = `bb:latest` =
//! `docker.io/library/bb:latest`; `me/app:v1` = `docker.io/me/app:v1`;
//! `registry.local:5000/x` keeps its registry; `name@sha256:…` keeps its digest.

/// A parsed, normalised reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// `docker.io/library/bb`
    pub repository: String,
    /// `latest` unless given; `None` for a digest-only reference.
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Reference {
    /// The full normalised name: `docker.io/library/bb:latest`.
    pub fn full(&self) -> String {
        let mut s = self.repository.clone();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }

    /// The name as Docker shows it: `bb:latest`, `me/app:v1`, `registry.local:5000/x:latest`.
    pub fn familiar(&self) -> String {
        let repo = self
            .repository
            .strip_prefix("docker.io/library/")
            .or_else(|| self.repository.strip_prefix("docker.io/"))
            .unwrap_or(&self.repository);
        let mut s = repo.to_string();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }
}

/// Why a reference is invalid. The message is Docker's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid reference format: {0}")]
pub struct InvalidReference(pub String);

fn valid_component(c: &str) -> bool {
    // [a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*
    !c.is_empty()
        && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
        && c.as_bytes()[0].is_ascii_alphanumeric()
        && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
}

fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && (t.as_bytes()[0].is_ascii_alphanumeric() || t.as_bytes()[0] == b'_')
        && t.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Parses and normalises a reference.
pub fn parse(input: &str) -> Result<Reference, InvalidReference> {
    let bad = || InvalidReference(if input.chars().any(|c| c.is_ascii_uppercase()) {
        format!("repository name ({input}) must be lowercase")
    } else {
        input.to_string()
    });
    if input.is_empty() || input.len() > 255 {
        return Err(bad());
    }
    let (name, digest) = match input.split_once('@') {
        Some((n, d)) => {
            let ok = d.split_once(':').is_some_and(|(alg, hex)| !alg.is_empty() && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
            if !ok {
                return Err(bad());
            }
            (n, Some(d.to_string()))
        }
        None => (input, None),
    };
    // A tag is after the last ':' that follows the last '/'.
    let last_slash = name.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (repo, tag) = match name[last_slash..].rfind(':') {
        Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
        None => (name, None),
    };
    if let Some(t) = tag {
        if !valid_tag(t) {
            return Err(bad());
        }
    }
    let mut parts: Vec<&str> = repo.split('/').collect();
    let domain = if parts.len() > 1 && (parts[0].contains('.') || parts[0].contains(':') || parts[0] == "localhost") {
        Some(parts.remove(0))
    } else {
        None
    };
    if parts.is_empty() || !parts.iter().all(|c| valid_component(c)) {
        return Err(bad());
    }
    let path = parts.join("/");
    let repository = match domain {
        Some(d) => format!("{d}/{path}"),
        None if parts.len() == 1 => format!("docker.io/library/{path}"),
        None => format!("docker.io/{path}"),
    };
    let tag = match (tag, &digest) {
        (Some(t), _) => Some(t.to_string()),
        (None, Some(_)) => None,
        (None, None) => Some("latest".to_string()),
    };
    Ok(Reference { repository, tag, digest })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_docker() {
        for s in ["bb", "bb:latest", "docker.io/library/bb:latest", "library/bb"] {
            assert_eq!(parse(s).unwrap().full(), "docker.io/library/bb:latest", "{s}");
            assert_eq!(parse(s).unwrap().familiar(), "bb:latest");
        }
        assert_eq!(parse("me/app:v1").unwrap().full(), "docker.io/me/app:v1");
        assert_eq!(parse("me/app:v1").unwrap().familiar(), "me/app:v1");
        assert_eq!(parse("registry.local:5000/x").unwrap().full(), "registry.local:5000/x:latest");
        assert_eq!(parse("localhost/x:1").unwrap().familiar(), "localhost/x:1");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = parse(&format!("bb@{d}")).unwrap();
        assert_eq!((r.tag.clone(), r.digest.clone()), (None, Some(d.clone())));
        assert_eq!(r.familiar(), format!("bb@{d}"));
    }

    #[test]
    fn rejects_bad_references() {
        for s in ["", "BB", "bb:", ":x", "a//b", "-a", "bb:-x", "bb@sha256:zz"] {
            assert!(parse(s).is_err(), "{s}");
        }
        assert_eq!(parse("BB").unwrap_err().to_string(), "invalid reference format: repository name (BB) must be lowercase");
    }
}

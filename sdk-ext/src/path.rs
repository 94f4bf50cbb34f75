//! Request path normalization, so a path rule cannot be sidestepped by spelling the same path
//! differently (`//admin`, `/./admin`, `/%61dmin`, `/x/../admin` are all `/admin`).
//!
//! Envoy normalizes paths itself when its connection manager sets `normalize_path` and
//! `merge_slashes` (every config this project renders does), but a filter cannot know whether
//! the Envoy it runs in does, so path matchers match the normalized form by default
//! ([`crate::matcher::PathMatching`]). The normalization is the safe subset of RFC 3986 section
//! 6.2.2 that every origin server agrees with:
//!
//! * percent-escapes of **unreserved** characters (`A-Z a-z 0-9 - . _ ~`) are decoded
//!   (`%61` -> `a`, `%2E` -> `.`); other escapes stay encoded with upper-case hex digits
//!   (`%2f` -> `%2F`: an escaped slash is data, not a separator, and Envoy's
//!   `path_with_escaped_slashes_action` decides what happens to it); a `%` that starts no
//!   valid escape is a literal percent sign and becomes `%25` (so decoding can never create a
//!   new escape: `/%a%62` is `/%25ab`, not `/%ab`, and normalizing twice changes nothing);
//! * dot segments are removed (RFC 3986 section 5.2.4): `.` is dropped, `..` drops the segment
//!   before it and never climbs above the root;
//! * runs of slashes are merged into one (as Envoy's `merge_slashes`).
//!
//! One linear pass checks whether anything needs doing; an already-normal path (the common
//! case) is returned borrowed, without allocating. Otherwise two linear passes build the
//! result. A path that does not start with `/` (`*`, an authority) is left alone.

use std::borrow::Cow;

/// The normalized form of `path` (no query string: callers cut it off first).
pub fn normalize(path: &str) -> Cow<'_, str> {
    if !path.starts_with('/') || is_normal(path) {
        return Cow::Borrowed(path);
    }
    Cow::Owned(remove_dot_segments(&decode_unreserved(path)))
}

/// Whether [`normalize`] would return `path` unchanged. Linear, no allocation.
pub fn is_normal(path: &str) -> bool {
    let b = path.as_bytes();
    // Each segment between slashes (the one before the first slash is empty for an absolute
    // path and is not a segment).
    let mut seg_start = 1;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'%' => match escape_at(b, i) {
                Some(byte)
                    if !is_unreserved(byte)
                        && !has_lower_hex(b[i + 1])
                        && !has_lower_hex(b[i + 2]) => {}
                _ => return false,
            },
            b'/' if i > 0 => {
                // A segment just ended at i: empty (`//`) or a dot segment is not normal.
                if is_dot_or_empty(&b[seg_start..i]) {
                    return false;
                }
                seg_start = i + 1;
            }
            _ => {}
        }
    }
    // The last segment may be empty (a trailing slash) but not a dot segment.
    let last = b.get(seg_start..).unwrap_or_default();
    !matches!(last, b"." | b"..")
}

fn is_dot_or_empty(seg: &[u8]) -> bool {
    matches!(seg, b"" | b"." | b"..")
}

fn has_lower_hex(c: u8) -> bool {
    matches!(c, b'a'..=b'f')
}

/// RFC 3986 section 2.3.
fn is_unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The byte a well-formed `%XX` at `i` stands for.
fn escape_at(b: &[u8], i: usize) -> Option<u8> {
    let hi = hex(*b.get(i + 1)?)?;
    let lo = hex(*b.get(i + 2)?)?;
    Some((hi << 4) | lo)
}

/// Decode escapes of unreserved characters; upper-case the hex digits of the others. A `%`
/// that starts no escape (`%zz`, a trailing `%`) is a literal percent sign: `%25`.
fn decode_unreserved(path: &str) -> String {
    let b = path.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let Some(byte) = escape_at(b, i) {
                if is_unreserved(byte) {
                    out.push(byte);
                } else {
                    out.push(b'%');
                    out.push(b[i + 1].to_ascii_uppercase());
                    out.push(b[i + 2].to_ascii_uppercase());
                }
                i += 3;
                continue;
            }
            out.extend_from_slice(b"%25");
            i += 1;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    // Only ASCII bytes were replaced by ASCII bytes, so the input's UTF-8 is intact.
    crate::view::text_lossy(out)
}

/// Remove `.` and `..` segments and empty segments (merged slashes) from an absolute path. A
/// trailing slash, or a trailing dot segment, leaves the result ending in `/` (RFC 3986:
/// `/a/b/..` is `/a/`).
fn remove_dot_segments(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    out.push('/');
    let rest = path.strip_prefix('/').unwrap_or(path);
    let mut segments = rest.split('/').peekable();
    while let Some(seg) = segments.next() {
        let last = segments.peek().is_none();
        match seg {
            "" | "." => {}
            ".." => {
                // `out` is `/` or `/a/b` here (no trailing slash): drop its last segment.
                // Amortized linear: the bytes scanned are removed.
                if let Some(i) = out.rfind('/') {
                    out.truncate(i.max(1));
                }
            }
            _ => {
                if !out.ends_with('/') {
                    out.push('/');
                }
                out.push_str(seg);
                continue;
            }
        }
        if last && !out.ends_with('/') {
            out.push('/');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_path_spelled_differently_is_one_path() {
        for p in [
            "/admin",
            "//admin",
            "///admin",
            "/./admin",
            "/%61dmin",
            "/%61%64%6D%69%6e",
            "/x/../admin",
            "/x/y/../../admin",
            "/../admin",
            "/../../admin",
            "/%2e/admin",
            "/x/%2E%2E/admin",
            "/x/.%2e/admin",
        ] {
            assert_eq!(normalize(p), "/admin", "{p}");
        }
    }

    #[test]
    fn rfc3986_cases() {
        let cases = [
            ("/", "/"),
            ("", ""),
            ("*", "*"),
            ("/a/", "/a/"),
            ("/a//", "/a/"),
            ("/a/b/..", "/a/"),
            ("/a/b/.", "/a/b/"),
            ("/a/./b/../c", "/a/c"),
            ("/..", "/"),
            ("/.", "/"),
            ("/a/..b", "/a/..b"),
            ("/a/.b/c.", "/a/.b/c."),
            ("/a%2fb", "/a%2Fb"),
            ("/a%2Fb", "/a%2Fb"),
            ("/%7e%7E", "/~~"),
            ("/%zz/%4", "/%25zz/%254"),
            ("/%", "/%25"),
            ("/%a%62", "/%25ab"),
            ("/caf\u{e9}/../x", "/x"),
            ("/%41%42/%c3%a9", "/AB/%C3%A9"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input), want, "{input:?}");
        }
    }

    #[test]
    fn a_normal_path_is_borrowed() {
        for p in ["/", "/api/v1/items/7", "/a/", "/a%2Fb", "/%C3%A9", "/a/..b"] {
            assert!(matches!(normalize(p), Cow::Borrowed(_)), "{p}");
        }
    }

    /// Every string over a small alphabet up to length 6: the fast check agrees with the full
    /// normalization, which is idempotent.
    #[test]
    fn fast_check_agrees_with_normalization_exhaustively() {
        let alphabet = ['/', '.', 'a', '%', '2', 'e', 'E', '6', '1', 'f', 'F'];
        let mut frontier = vec![String::from("/")];
        for _ in 0..5 {
            let mut next = Vec::new();
            for s in &frontier {
                for c in alphabet {
                    let mut t = s.clone();
                    t.push(c);
                    let full = remove_dot_segments(&decode_unreserved(&t));
                    assert_eq!(is_normal(&t), full == t, "{t:?} -> {full:?}");
                    assert_eq!(normalize(&full), full, "idempotent on {t:?}");
                    next.push(t);
                }
            }
            frontier = next;
        }
    }

    #[test]
    fn hostile_paths_stay_linear() {
        // 100k `../` and 100k `//`: one pass each, no quadratic blow-up (runs in milliseconds).
        let p = format!("{}{}admin", "/x/..".repeat(100_000), "/".repeat(100_000));
        assert_eq!(normalize(&p), "/admin");
        let deep = format!("{}{}", "/a".repeat(100_000), "/..".repeat(100_000));
        assert_eq!(normalize(&deep), "/");
    }
}

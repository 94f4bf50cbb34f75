//! Path normalisation for traversal detection: unify separators, drop `.` and empty segments,
//! and count `..` segments instead of resolving them (resolving would hide the attack).

use crate::detect::HasByte as _;
use crate::detect::Outlined as _;

/// A normalised view of a path-like value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NormalPath {
    /// Lowercase, `/`-separated, without empty or `.` segments; `..` segments are kept.
    pub path: String,
    /// How many `..` segments (also `...`, `..;` and `.. ` variants servers accept) occur.
    pub parent_segments: usize,
}

/// Normalises `s`: backslashes become `/`, runs of `/` collapse, `.` segments go, `..`-like
/// segments are counted and kept, ASCII is lowercased.
///
/// One pass into one buffer: segments split at either separator (no copy with backslashes
/// replaced first) and lowercased in place (a `\u\u...` body is 32k segments, and a
/// lowercase `String` per segment was a quarter of its inspection).
pub fn normalize(s: &str) -> NormalPath {
    // A `/` split is a byte search; a split at either separator reads char by char, so it is
    // taken only when there is a backslash (most values have none).
    if s.as_bytes().has_byte(b'\\') {
        normalize_segments(s.len(), s.split(['/', '\\']))
    } else {
        normalize_segments(s.len(), s.split_char('/'))
    }
}

/// Whether [`normalize`] would return `s` itself, lowercased, with no `..` segment: no
/// backslash, no empty segment but the first (`//`, a trailing `/`, `/` alone) and no segment opening
/// with `.` (the only ones it drops or counts: `.`, `..`, `...`, `..;`). Asked before the
/// copy: most paths and values are already normal (`/api/items/3`, `app.3f9a1c.js`), and
/// their lowercase form is at hand ([`crate::extract::Input::lower`]). A few word tests over
/// the bytes (`find_bytes`, eight bytes per step) instead of a split and a copy.
fn already_normal(s: &str) -> bool {
    let b = s.as_bytes();
    !(b.has_byte(b'\\')
        || b.first() == Some(&b'.')
        || b.last() == Some(&b'/')
        || crate::detect::find_bytes(b, b"/.", 0).is_some()
        || crate::detect::find_bytes(b, b"//", 0).is_some())
}

/// How many leading bytes of `s` are its normal form: `Some(n)` when [`normalize`] would
/// return `s[..n]` lowercased with no `..` segment, that is `s` itself when
/// [`already_normal`], or `s` without one trailing `/` after an already-normal head
/// (`normalize` drops the empty last segment); `None` when it would change more. lfi then
/// reads the value's lowercase form, cut at `n`, instead of a normalised copy; the windows of
/// a long value end anywhere, after a `/` too.
pub fn normal_len(s: &str) -> Option<usize> {
    let n = s.len() - usize::from(s.ends_with('/'));
    s.get(..n).filter(|head| already_normal(head)).map(str::len)
}

/// [`normalize`] over the segments between separators.
fn normalize_segments<'a>(len: usize, segments: impl Iterator<Item = &'a str>) -> NormalPath {
    let mut out = String::with_capacity(len);
    let mut parents = 0;
    for (i, seg) in segments.enumerate() {
        if seg.is_empty() && i != 0 {
            continue;
        }
        if seg == "." {
            continue;
        }
        let trimmed = seg.trim_end_set(b"; \t");
        let is_parent = trimmed.len() >= 2 && trimmed.bytes().all(|b| b == b'.');
        if i != 0 {
            out.push('/');
        }
        if is_parent {
            parents += 1;
            out.push_str("..");
        } else {
            let start = out.len();
            out.push_str(seg);
            if let Some(pushed) = out.get_mut(start..) {
                pushed.make_ascii_lowercase();
            }
        }
    }
    NormalPath {
        path: out,
        parent_segments: parents,
    }
}

#[cfg(test)]
mod tests {
    use super::{already_normal, normal_len, normalize, NormalPath};

    /// The separators, dots and letters the exactness proofs build strings of.
    const ALPHABET: [&str; 9] = ["/", "\\", ".", ";", " ", "A", "b", "\u{e9}", ".."];

    /// The version before the one-pass rewrite (a copy with backslashes replaced, a lowercase
    /// `String` per segment).
    fn normalize_before(s: &str) -> NormalPath {
        let mut out = String::with_capacity(s.len());
        let mut parents = 0;
        let unified: std::borrow::Cow<'_, str> = if s.contains('\\') {
            s.replace('\\', "/").into()
        } else {
            s.into()
        };
        for (i, seg) in unified.split('/').enumerate() {
            if seg.is_empty() && i != 0 {
                continue;
            }
            if seg == "." {
                continue;
            }
            let trimmed = seg.trim_end_matches([';', ' ', '\t']);
            let is_parent = trimmed.len() >= 2 && trimmed.bytes().all(|b| b == b'.');
            if is_parent {
                parents += 1;
            }
            if i != 0 {
                out.push('/');
            }
            if is_parent {
                out.push_str("..");
            } else {
                out.push_str(&seg.to_ascii_lowercase());
            }
        }
        NormalPath {
            path: out,
            parent_segments: parents,
        }
    }

    /// Every string of 0 to `max` pieces of `alphabet`, each once, to `check`.
    fn each_string(alphabet: &[&str], max: u32, mut check: impl FnMut(&str)) {
        for len in 0..=max {
            for mut code in 0..alphabet.len().pow(len) {
                let mut s = String::new();
                for _ in 0..len {
                    s.push_str(alphabet[code % alphabet.len()]);
                    code /= alphabet.len();
                }
                check(&s);
            }
        }
    }

    /// The one-pass version equals the one it replaced on every string of 0-6 symbols over
    /// the bytes it treats specially (and letters of both cases, non-ASCII, tab, `;`).
    #[test]
    fn one_pass_equals_the_version_it_replaced() {
        const ALPHABET: [&str; 10] = ["/", "\\", ".", ";", " ", "\t", "A", "b", "é", "\0"];
        let mut n = 0usize;
        each_string(&ALPHABET, 6, |s| {
            assert_eq!(normalize(s), normalize_before(s), "{s:?}");
            n += 1;
        });
        assert_eq!(n, 1_111_111);
        for hostile in ["\\u", "\\r\\n", "../", "${<%#(%'\"`;|:@/*\\&"] {
            let s = hostile.repeat(5000);
            assert_eq!(normalize(&s), normalize_before(&s));
        }
    }

    /// `already_normal` is exact where it says yes: `normalize` gives the string lowercased
    /// and no `..`; and it says yes to the usual paths.
    #[test]
    fn already_normal_strings_normalize_to_themselves() {
        let mut yes = 0usize;
        each_string(&ALPHABET, 6, |s| {
            if already_normal(s) {
                yes += 1;
                let n = normalize(s);
                assert_eq!(n.path, s.to_ascii_lowercase(), "{s:?}");
                assert_eq!(n.parent_segments, 0, "{s:?}");
            }
        });
        assert!(yes > 10_000, "{yes}");
        for s in [
            "/healthz",
            "/api/items/3",
            "/static/js/app.3f9a1c.js",
            "",
            "a.b",
        ] {
            assert!(already_normal(s), "{s}");
        }
        for s in ["/", "//x", "/x/", "/./x", "../x", ".env", "a\\b", "/a/.git"] {
            assert!(!already_normal(s), "{s}");
        }
    }

    /// lfi reads a value that ends with one `/` after an already-normal head as that head,
    /// lowercased: exactly what `normalize` gives (it drops the empty last segment). Every
    /// string with and without a trailing `/`: where `normal_len` answers, it is exact.
    #[test]
    fn normal_without_trailing_slash() {
        let mut yes = 0usize;
        each_string(&ALPHABET, 6, |s| {
            for t in [s.to_string(), format!("{s}/")] {
                if let Some(len) = normal_len(&t) {
                    let n = normalize(&t);
                    assert_eq!(n.path, t[..len].to_ascii_lowercase(), "{t:?}");
                    assert_eq!(n.parent_segments, 0, "{t:?}");
                }
            }
            if already_normal(s) {
                yes += 1;
                assert_eq!(normal_len(&format!("{s}/")), Some(s.len()), "{s:?}");
            }
        });
        assert!(yes > 10_000, "{yes}");
    }

    #[test]
    fn counts_parents_across_separator_styles() {
        let n = normalize("..\\..//./Windows/win.ini");
        assert_eq!(n.parent_segments, 2);
        assert_eq!(n.path, "../../windows/win.ini");
    }

    #[test]
    fn dots_in_names_are_not_parents() {
        assert_eq!(normalize("a/b..c/v1.2/...x").parent_segments, 0);
        assert_eq!(normalize("/etc/./passwd").path, "/etc/passwd");
        assert_eq!(normalize("..;/admin").parent_segments, 1);
    }
}

//! Path normalisation for traversal detection: unify separators, drop `.` and empty segments,
//! and count `..` segments instead of resolving them (resolving would hide the attack).

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
pub fn normalize(s: &str) -> NormalPath {
    let mut out = String::with_capacity(s.len());
    let mut parents = 0;
    // Copied only when there is a backslash to unify (most paths have none).
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

#[cfg(test)]
mod tests {
    use super::normalize;

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

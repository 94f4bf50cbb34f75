//! Percent decoding as servers do it, plus the IIS `%uXXXX` form that attackers still use to
//! slip characters past naive filters.

/// What one decoding pass saw: the glue-independent protocol detector reports malformed escapes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PercentStats {
    /// At least one escape was decoded.
    pub changed: bool,
    /// A `%` not followed by two hex digits (or a malformed `%u`).
    pub invalid: bool,
    /// A `%u` escape was seen (IIS-style, never produced by browsers).
    pub unicode: bool,
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` and `%uXXXX` escapes of `input` into `out` (cleared first). With `plus`, `+`
/// becomes a space (form encoding). Malformed escapes are copied through unchanged.
/// Full-width `%uFF01..%uFF5E` map to their ASCII twins, as IIS does.
pub fn decode_into(input: &[u8], plus: bool, out: &mut Vec<u8>) -> PercentStats {
    out.clear();
    out.reserve(input.len());
    let mut stats = PercentStats::default();
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        if b == b'%' {
            if let (Some(h), Some(l)) = (
                input.get(i + 1).copied().and_then(hex),
                input.get(i + 2).copied().and_then(hex),
            ) {
                out.push(h << 4 | l);
                stats.changed = true;
                i += 3;
                continue;
            }
            if matches!(input.get(i + 1), Some(b'u' | b'U')) {
                let digits = input.get(i + 2..i + 6).and_then(|d| {
                    d.iter()
                        .try_fold(0u32, |acc, &c| hex(c).map(|v| acc << 4 | u32::from(v)))
                });
                if let Some(cp) = digits {
                    push_code_point(cp, out);
                    stats.changed = true;
                    stats.unicode = true;
                    i += 6;
                    continue;
                }
            }
            stats.invalid = true;
            out.push(b);
        } else if plus && b == b'+' {
            out.push(b' ');
        } else {
            out.push(b);
        }
        i += 1;
    }
    stats
}

/// Appends a code point as UTF-8, folding full-width ASCII forms to ASCII.
pub(crate) fn push_code_point(cp: u32, out: &mut Vec<u8>) {
    let cp = if (0xFF01..=0xFF5E).contains(&cp) {
        cp - 0xFF01 + 0x21
    } else {
        cp
    };
    let c = char::from_u32(cp).unwrap_or(char::REPLACEMENT_CHARACTER);
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

/// Replaces overlong UTF-8 encodings of `/`, `\` and `.` (`%c0%af`, `%e0%80%af`, `%c1%9c`...)
/// with the ASCII byte: old path-traversal evasions that decode to U+FFFD otherwise.
pub fn fold_overlong(bytes: &mut Vec<u8>) {
    if !bytes.iter().any(|&b| b == 0xC0 || b == 0xC1 || b == 0xE0) {
        return;
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let two = bytes.get(i + 1).copied();
        let three = bytes.get(i + 2).copied();
        match (b, two, three) {
            (0xC0 | 0xC1, Some(c), _) if (0x80..=0xBF).contains(&c) => {
                out.push(((b & 0x1F) << 6 | (c & 0x3F)) & 0x7F);
                i += 2;
            }
            (0xE0, Some(0x80), Some(c)) if (0x80..=0xBF).contains(&c) => {
                out.push(c & 0x3F);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    *bytes = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str, plus: bool) -> (String, PercentStats) {
        let mut out = Vec::new();
        let st = decode_into(s.as_bytes(), plus, &mut out);
        (String::from_utf8_lossy(&out).into_owned(), st)
    }

    #[test]
    fn decodes_escapes_and_plus() {
        assert_eq!(dec("a%20b+c", true).0, "a b c");
        assert_eq!(dec("a%20b+c", false).0, "a b+c");
        assert_eq!(dec("%3Cscript%3e", false).0, "<script>");
    }

    #[test]
    fn malformed_escapes_pass_through_and_are_flagged() {
        let (s, st) = dec("100%-%zz%4", false);
        assert_eq!(s, "100%-%zz%4");
        assert!(st.invalid && !st.changed);
    }

    #[test]
    fn iis_unicode_and_fullwidth() {
        let (s, st) = dec("%u003cscript%uFF1E", false);
        assert_eq!(s, "<script>");
        assert!(st.unicode);
    }

    #[test]
    fn overlong_slash_folds() {
        let mut v = vec![b'.', b'.', 0xC0, 0xAF, b'x', 0xE0, 0x80, 0xAF];
        fold_overlong(&mut v);
        assert_eq!(v, b"../x/");
    }
}

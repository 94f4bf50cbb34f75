//! HTML character references (`&lt;`, `&#60;`, `&#x3c;`, with or without the `;`), which
//! browsers decode inside attributes and which attackers use to hide `javascript:` and tags.

use crate::detect::Outlined as _;

/// Named references worth knowing: the ones that produce syntax characters or whitespace.
const NAMED: &[(&str, char)] = &[
    ("lt", '<'),
    ("gt", '>'),
    ("amp", '&'),
    ("quot", '"'),
    ("apos", '\''),
    ("nbsp", ' '),
    ("tab", '\t'),
    ("newline", '\n'),
    ("colon", ':'),
    ("sol", '/'),
    ("bsol", '\\'),
    ("lpar", '('),
    ("rpar", ')'),
    ("lsqb", '['),
    ("rsqb", ']'),
    ("lbrack", '['),
    ("rbrack", ']'),
    ("lcub", '{'),
    ("rcub", '}'),
    ("semi", ';'),
    ("comma", ','),
    ("period", '.'),
    ("excl", '!'),
    ("equals", '='),
    ("num", '#'),
    ("dollar", '$'),
    ("percnt", '%'),
    ("grave", '`'),
    ("plus", '+'),
    ("ast", '*'),
    ("quest", '?'),
    ("verbar", '|'),
];

/// Decodes character references in `s`. Returns `None` when there is nothing to decode, so
/// callers avoid an allocation for the common case.
pub fn decode(s: &str) -> Option<String> {
    if !s.has_char('&') {
        return None;
    }
    let mut out = String::with_capacity(s.len());
    let mut changed = false;
    let mut rest = s;
    while let Some(pos) = rest.find_char('&') {
        out.push_str(rest.get(..pos).unwrap_or_default());
        let after = rest.get(pos + 1..).unwrap_or_default();
        if let Some((c, used)) = reference(after) {
            out.push(c);
            changed = true;
            rest = after.get(used..).unwrap_or_default();
        } else {
            out.push('&');
            rest = after;
        }
    }
    out.push_str(rest);
    changed.then_some(out)
}

/// Parses one reference after the `&`; returns the character and the bytes consumed.
fn reference(s: &str) -> Option<(char, usize)> {
    let bytes = s.as_bytes();
    if bytes.first() == Some(&b'#') {
        let (radix, start) = match bytes.get(1) {
            Some(b'x' | b'X') => (16, 2),
            _ => (10, 1),
        };
        let digits = bytes
            .get(start..)?
            .iter()
            .take_while(|b| b.is_ascii_hexdigit() && (radix == 16 || b.is_ascii_digit()))
            .count();
        if digits == 0 {
            return None;
        }
        let text = s.get(start..start + digits)?;
        // Leading zeros are a classic padding evasion; cap the value instead of overflowing.
        let cp = u32::from_str_radix(text.trim_start_set(b"0"), radix)
            .ok()
            .or(if text.bytes().all(|b| b == b'0') {
                Some(0)
            } else {
                None
            })?;
        let c = char::from_u32(cp).unwrap_or(char::REPLACEMENT_CHARACTER);
        let mut used = start + digits;
        if bytes.get(used) == Some(&b';') {
            used += 1;
        }
        return Some((c, used));
    }
    let name_len = crate::detect::head(bytes, 8)
        .iter()
        .take_while(|b| b.is_ascii_alphabetic())
        .count();
    let name = s.get(..name_len)?;
    let lower = name.ascii_lower();
    // Longest match first, so `&lpar` is not read as `&lt` + "par"... names here are distinct,
    // but `&ltx` style prefixes must still decode as browsers do (`&lt` without `;`).
    for len in (2..=lower.len()).rev() {
        let candidate = lower.get(..len)?;
        if let Some((_, c)) = NAMED.iter().find(|(n, _)| *n == candidate) {
            let mut used = len;
            if bytes.get(used) == Some(&b';') {
                used += 1;
            }
            return Some((*c, used));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn named_and_numeric() {
        assert_eq!(decode("&lt;b&gt;").as_deref(), Some("<b>"));
        assert_eq!(
            decode("java&#x09;script&colon;").as_deref(),
            Some("java\tscript:")
        );
        assert_eq!(decode("&#0000060;").as_deref(), Some("<"));
        assert_eq!(decode("&#X3C").as_deref(), Some("<"));
    }

    #[test]
    fn leaves_plain_ampersands() {
        assert_eq!(decode("a & b &unknown; c"), None);
        assert_eq!(decode("no refs"), None);
    }

    #[test]
    fn huge_numbers_do_not_overflow() {
        assert_eq!(decode("&#99999999999999999999;").as_deref(), None);
        assert_eq!(decode("&#x110000;").as_deref(), Some("\u{FFFD}"));
    }
}

//! JavaScript/JSON string escapes (`\xHH`, `\uHHHH`, `\u{H..}`), which also smuggle payloads
//! into Java (log4j `\u0024{`), PHP and JSON bodies.

use crate::detect::Outlined as _;

/// Decodes `\x`, `\u` and `\u{}` escapes; other backslashes are kept, since shells and paths
/// give them other meanings that later stages want to see. `None` when nothing changed.
pub fn decode(s: &str) -> Option<String> {
    if !s.has_char('\\') {
        return None;
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut changed = false;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'\\' {
            if let Some((cp, used)) = escape(bytes.get(i + 1..).unwrap_or_default()) {
                super::percent::push_code_point(cp, &mut out);
                changed = true;
                i += 1 + used;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    changed.then(|| String::from_utf8_lossy(&out).into_owned())
}

fn hex_value(d: &[u8]) -> Option<u32> {
    if d.is_empty() || d.len() > 6 {
        return None;
    }
    d.iter().try_fold(0u32, |acc, &c| {
        char::from(c).to_digit(16).map(|v| acc << 4 | v)
    })
}

fn escape(rest: &[u8]) -> Option<(u32, usize)> {
    match rest.first()? {
        b'x' | b'X' => Some((hex_value(rest.get(1..3)?)?, 3)),
        b'u' | b'U' => {
            if rest.get(1) == Some(&b'{') {
                let close = crate::detect::find_byte(crate::detect::head(rest, 9), b'}')?;
                Some((hex_value(rest.get(2..close)?)?, close + 1))
            } else {
                Some((hex_value(rest.get(1..5)?)?, 5))
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn js_escapes() {
        assert_eq!(decode(r"\x3cscript\u003e").as_deref(), Some("<script>"));
        assert_eq!(decode(r"$\u007Bjndi:").as_deref(), Some("${jndi:"));
        assert_eq!(decode(r"\u{61}lert").as_deref(), Some("alert"));
    }

    #[test]
    fn other_backslashes_stay() {
        assert_eq!(decode(r"c:\windows\n"), None);
        assert_eq!(decode(r"\x4"), None);
        assert_eq!(decode(r"\u{110000}").as_deref(), Some("\u{FFFD}"));
    }
}

//! Decoding and normalisation, one module per concept. Detectors see values after
//! [`deep_decode`], so an attack hidden under percent, entity or escape layers looks the same
//! as a plain one; the number of layers is bounded by `max_decode_rounds`.

pub mod escapes;
pub mod html;
pub mod path;
pub mod percent;

/// The result of [`deep_decode`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decoded {
    /// The decoded text (invalid UTF-8 replaced by U+FFFD).
    pub text: String,
    /// Rounds that changed something.
    pub rounds: u32,
    /// Still decodable when the round budget ran out.
    pub exhausted: bool,
    /// Saw a malformed percent escape.
    pub invalid_percent: bool,
    /// Saw an IIS `%u` escape.
    pub unicode_escape: bool,
    /// The bytes were not valid UTF-8 after percent decoding.
    pub invalid_utf8: bool,
}

/// Repeatedly applies percent (with `%u`), HTML entity and JS escape decoding until nothing
/// changes or `max_rounds` rounds have run. `plus_first` turns `+` into a space in the first
/// round only (form encoding; a literal `+` in a decoded value is data).
pub fn deep_decode(input: &[u8], plus_first: bool, max_rounds: u32) -> Decoded {
    let mut d = Decoded::default();
    // Most values hold nothing any decoder reads (`%`, `&`, `\`; `+` in forms): one scan
    // proves it, and the value is its own decoding (a `+` of a form becomes a space).
    if !input.iter().any(|&b| matches!(b, b'%' | b'&' | b'\\')) {
        let plus = plus_first && input.contains(&b'+');
        let text = match std::str::from_utf8(input) {
            Ok(s) => s.to_string(),
            Err(_) => {
                d.invalid_utf8 = true;
                String::from_utf8_lossy(input).into_owned()
            }
        };
        d.text = if plus { text.replace('+', " ") } else { text };
        d.rounds = u32::from(plus && max_rounds > 0);
        return d;
    }
    decode_rounds(input, plus_first, max_rounds)
}

/// [`deep_decode`] without its shortcut: the rounds themselves.
fn decode_rounds(input: &[u8], plus_first: bool, max_rounds: u32) -> Decoded {
    let mut d = Decoded::default();
    let mut buf = Vec::new();
    let mut cur: Vec<u8> = input.to_vec();
    for round in 0..max_rounds {
        let plus = plus_first && round == 0;
        let mut changed = false;
        if plus || cur.contains(&b'%') {
            let st = percent::decode_into(&cur, plus, &mut buf);
            d.invalid_percent |= st.invalid;
            d.unicode_escape |= st.unicode;
            if buf != cur {
                percent::fold_overlong(&mut buf);
                std::mem::swap(&mut cur, &mut buf);
                changed = true;
            }
        }
        let mut s = match String::from_utf8(std::mem::take(&mut cur)) {
            Ok(s) => s,
            Err(e) => {
                d.invalid_utf8 = true;
                String::from_utf8_lossy(e.as_bytes()).into_owned()
            }
        };
        if let Some(h) = html::decode(&s) {
            s = h;
            changed = true;
        }
        if let Some(e) = escapes::decode(&s) {
            s = e;
            changed = true;
        }
        if !changed {
            d.text = s;
            return d;
        }
        d.rounds = round + 1;
        cur = s.into_bytes();
    }
    let text = String::from_utf8_lossy(&cur).into_owned();
    d.exhausted = still_encoded(&text);
    d.text = text;
    d
}

/// Whether another round would still change `s`.
fn still_encoded(s: &str) -> bool {
    let mut buf = Vec::new();
    percent::decode_into(s.as_bytes(), false, &mut buf).changed
        || html::decode(s).is_some()
        || escapes::decode(s).is_some()
}

#[cfg(test)]
mod tests {
    use super::{decode_rounds, deep_decode};

    #[test]
    fn shortcut_equals_the_rounds() {
        let inputs: &[&[u8]] = &[
            b"",
            b"asc",
            b"a+b",
            b"a++b+",
            b"caf\xc3\xa9",
            b"\xff\xfe",
            b"a+\xff",
            b"x y z",
            b"1.5e3",
            b"+",
            b"%",
            b"%41",
            b"&lt;",
            b"\\x41",
            b"a+%2B",
            b"\xc0\xaf",
        ];
        for &input in inputs {
            for plus in [false, true] {
                for rounds in [1, 4] {
                    assert_eq!(
                        deep_decode(input, plus, rounds),
                        decode_rounds(input, plus, rounds),
                        "{input:?} plus={plus} rounds={rounds}"
                    );
                }
            }
        }
    }

    #[test]
    fn peels_nested_layers() {
        let d = deep_decode(b"%253Cscript%253E", false, 4);
        assert_eq!(d.text, "<script>");
        assert!(!d.exhausted);
        let d = deep_decode(b"%26lt%3Bsvg", false, 4);
        assert_eq!(d.text, "<svg");
    }

    #[test]
    fn plus_only_in_first_round() {
        assert_eq!(deep_decode(b"a+b%252B", true, 4).text, "a b+");
    }

    #[test]
    fn round_budget_is_respected() {
        let mut s = "<".to_string();
        for _ in 0..10 {
            s = s.replace('%', "%25").replace('<', "%3C");
        }
        let d = deep_decode(s.as_bytes(), false, 3);
        assert!(d.exhausted);
        assert_eq!(d.rounds, 3);
    }

    #[test]
    fn invalid_utf8_is_replaced_and_flagged() {
        let d = deep_decode(b"a%ff%fe", false, 4);
        assert!(d.invalid_utf8);
        assert!(d.text.starts_with('a'));
    }
}

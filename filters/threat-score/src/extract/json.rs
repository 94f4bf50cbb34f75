//! JSON bodies: every key and every string (or number) leaf becomes an input, walked to a
//! bounded depth, straight from the body's bytes. No document tree is built: [`check`] reads
//! the body once to prove it is one well-formed JSON value (the same documents serde_json
//! accepts, nesting included: at most [`MAX_NESTING`] levels; except that numbers follow RFC
//! 8259's grammar with no magnitude limit, so `5e947`, which serde_json refuses as "number
//! out of range", is accepted and its body inspected as JSON); [`walk`] does the same check
//! while it hands each key and leaf to the visitor as a slice of the body, or of one reused
//! buffer when it holds escapes (the engine walks once and drops what it saw if the body
//! turns out malformed). The body's UTF-8 is validated once, not per string. Linear in the
//! body, no allocation per value.
//!
//! Values are visited in document order, duplicate keys included (a tree keeps only the last
//! `"a"` of `{"a":"<script>","a":"x"}`; the walk sees both). Numbers are visited as written
//! (`1e5`, not `100000.0`).

/// The deepest nesting accepted, serde_json's (its recursion limit of 128 refuses 128 open
/// containers): deeper documents are not JSON to the engine and are scanned as text, as before.
pub const MAX_NESTING: usize = 127;

/// One thing [`walk`] found.
#[derive(Debug, Clone, Copy)]
pub struct Item<'b, 'v> {
    /// The member name the value belongs to (the nearest enclosing key; `""` at the top).
    pub key: &'v str,
    /// The text to inspect: a key, a string leaf or a number leaf; `None` for other values
    /// (objects, arrays, booleans, null), which still count as arguments when they fill a slot.
    pub text: Option<&'v str>,
    /// `text` is a member name.
    pub is_key: bool,
    /// For a `"prototype"` member name, the name of the member whose value holds it
    /// (`"constructor"` in `{"constructor":{"prototype":{}}}`; `""` at the top): the one
    /// name whose meaning to a deep merge depends on its parent. `""` for other items (not
    /// looked up for every key: the walk stays as cheap as before).
    pub parent: &'v str,
    /// This fills one argument slot: an object member (reported with its key) or an array
    /// element. Callers count these against the value limit.
    pub counts_as_arg: bool,
    /// `key` when it is a slice of the body (written without escapes), with the body's
    /// lifetime: the caller borrows it as it is instead of finding it in the body again.
    pub body_key: Option<&'b str>,
    /// `text` when it is a slice of the body (a key, string or number written without
    /// escapes), likewise.
    pub body_text: Option<&'b str>,
}

/// Why a body is not one JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonError {
    /// The body ended inside the value (a truncated body, rather than a malformed one).
    pub eof: bool,
}

struct Reader<'b> {
    b: &'b [u8],
    /// The body as text when it is UTF-8 as a whole (checked once, in one pass): strings are
    /// then cut from it without validating each again.
    text: Option<&'b str>,
    i: usize,
}

fn err(eof: bool) -> JsonError {
    JsonError { eof }
}

impl<'b> Reader<'b> {
    fn new(b: &'b [u8]) -> Reader<'b> {
        Reader {
            b,
            text: std::str::from_utf8(b).ok(),
            i: 0,
        }
    }

    /// `b[a..e]` as text (`a`, `e` on quote or delimiter bytes, so on char boundaries of a
    /// UTF-8 body), `None` when it is not UTF-8.
    fn str_at(&self, a: usize, e: usize) -> Option<&'b str> {
        match self.text {
            Some(t) => t.get(a..e),
            None => std::str::from_utf8(self.b.get(a..e)?).ok(),
        }
    }

    /// Skips JSON whitespace. The byte after a token is nearly always the next token (no
    /// whitespace in a compact body): one test of it before the loop.
    #[inline(always)]
    fn skip_ws(&mut self) {
        if self.b.get(self.i).is_some_and(|&c| c > b' ') {
            return;
        }
        self.skip_ws_loop();
    }

    #[inline(never)]
    fn skip_ws_loop(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Result<u8, JsonError> {
        self.b.get(self.i).copied().ok_or(err(true))
    }

    fn expect_lit(&mut self, lit: &[u8]) -> Result<(), JsonError> {
        for &c in lit {
            match self.b.get(self.i) {
                None => return Err(err(true)),
                Some(&x) if x == c => self.i += 1,
                Some(_) => return Err(err(false)),
            }
        }
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let mut v = 0u32;
        for _ in 0..4 {
            let c = self.peek()?;
            let d = char::from(c).to_digit(16).ok_or(err(false))?;
            v = v << 4 | d;
            self.i += 1;
        }
        Ok(v)
    }

    /// Reads a string after its opening quote. Returns its span in the body when it holds
    /// no escape; otherwise writes the unescaped text into `buf` (when given) and returns
    /// `None`.
    ///
    /// In line: every key and string of a body passes here, and nearly all of them end at
    /// their first stop byte (the closing quote of a UTF-8 body); the rest (escapes, a body
    /// that is not UTF-8, errors) is [`Reader::string_rest`], out of line.
    #[inline(always)]
    fn string(&mut self, buf: Option<&mut String>) -> Result<Option<(usize, usize)>, JsonError> {
        let start = self.i;
        let rest = self.b.get(start..).unwrap_or_default();
        // A string that ends within the next eight bytes (most keys, many values): its end
        // found in one word here, without the call.
        if let (Some(w), Some(_)) = (rest.first_chunk::<8>(), self.text) {
            let stops = stop_bytes(u64::from_le_bytes(*w));
            let stop = (stops.trailing_zeros() / 8) as usize;
            if stops != 0 && rest.get(stop) == Some(&b'"') {
                self.i = start + stop + 1;
                return Ok(Some((start, start + stop)));
            }
        }
        if let Some(stop) = string_stop(rest) {
            if self.text.is_some() && rest.get(stop) == Some(&b'"') {
                // Between two ASCII bytes of a UTF-8 body: on char boundaries.
                self.i = start + stop + 1;
                return Ok(Some((start, start + stop)));
            }
        }
        self.string_rest(buf)
    }

    /// [`Reader::string`] from the string's start: the general case.
    #[inline(never)]
    fn string_rest(
        &mut self,
        mut buf: Option<&mut String>,
    ) -> Result<Option<(usize, usize)>, JsonError> {
        let start = self.i;
        // Fast scan to the first quote, backslash or control character (eight bytes per
        // step: every key and string of the body passes here).
        let rest = self.b.get(start..).unwrap_or_default();
        let Some(stop) = string_stop(rest) else {
            self.i = self.b.len();
            return Err(err(true));
        };
        self.i = start + stop;
        match rest.get(stop) {
            Some(b'"') => {
                let span = (start, self.i);
                self.i += 1;
                // A body that is UTF-8 as a whole needs no check of the span: it lies between
                // two ASCII bytes (a quote before it, this quote after), so on char
                // boundaries.
                if self.text.is_none() {
                    self.str_at(span.0, span.1).ok_or(err(false))?;
                }
                return Ok(Some(span));
            }
            Some(b'\\') => {}
            _ => return Err(err(false)),
        }
        let plain = self.str_at(start, self.i).ok_or(err(false))?;
        if let Some(out) = buf.as_deref_mut() {
            out.clear();
            out.push_str(plain);
        }
        let mut run = self.i;
        loop {
            let c = self.peek()?;
            match c {
                b'"' | b'\\' => {
                    let chunk = self.str_at(run, self.i).ok_or(err(false))?;
                    if let Some(out) = buf.as_deref_mut() {
                        out.push_str(chunk);
                    }
                    self.i += 1;
                    if c == b'"' {
                        return Ok(None);
                    }
                    let e = self.peek()?;
                    self.i += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let cp = if (0xD800..0xDC00).contains(&hi) {
                                // A surrogate pair, as serde_json requires.
                                self.expect_lit(b"\\u")?;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(err(false));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else if (0xDC00..0xE000).contains(&hi) {
                                return Err(err(false));
                            } else {
                                hi
                            };
                            char::from_u32(cp).ok_or(err(false))?
                        }
                        _ => return Err(err(false)),
                    };
                    if let Some(out) = buf.as_deref_mut() {
                        out.push(ch);
                    }
                    run = self.i;
                }
                c if c < 0x20 => return Err(err(false)),
                _ => self.i += 1,
            }
        }
    }

    /// Reads a number; returns its span.
    fn number(&mut self) -> Result<(usize, usize), JsonError> {
        let start = self.i;
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        let digits = |r: &mut Reader<'_>| -> Result<usize, JsonError> {
            let s = r.i;
            while let Some(b'0'..=b'9') = r.b.get(r.i) {
                r.i += 1;
            }
            if r.i == s {
                return Err(err(r.i >= r.b.len()));
            }
            Ok(r.i - s)
        };
        let first = self.peek()?;
        if first == b'0' {
            self.i += 1;
        } else {
            digits(self)?;
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            digits(self)?;
        }
        if let Some(b'e' | b'E') = self.b.get(self.i) {
            self.i += 1;
            if let Some(b'+' | b'-') = self.b.get(self.i) {
                self.i += 1;
            }
            digits(self)?;
        }
        Ok((start, self.i))
    }
}

/// The index of the first `"`, `\` or control character (below 0x20) in `b`: what
/// `b.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20)` finds, eight bytes per step
/// (SWAR: each test sets the high bit of the bytes it matches, exactly, so the lowest set bit
/// of the three is the first stop).
///
/// Out of line (measured, branch `tsbody12`): inlined into the walk, the hostile bodies'
/// mean (`cargo run --release -p envoy-harness --example hostile_fuel`) rose above main's,
/// by a codegen change on the 64 KiB strings; out of line it stays below, for 1.8k more
/// Wasm instructions on `order-json`.
#[inline(never)]
fn string_stop(b: &[u8]) -> Option<usize> {
    let mut chunks = b.chunks_exact(8);
    let mut base = 0;
    for chunk in chunks.by_ref() {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let hits = stop_bytes(u64::from_le_bytes(w));
        if hits != 0 {
            return Some(base + (hits.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|p| base + p)
}

/// The high bit of each byte of `x` (eight bytes of a string, little endian) that is `"`, `\\`
/// or a control character (below 0x20), exactly: the lowest set bit is the first stop.
#[inline(always)]
fn stop_bytes(x: u64) -> u64 {
    const LO: u64 = 0x0101_0101_0101_0101;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    // The high bit of each zero byte of `x`, without borrows between bytes.
    let zero = |x: u64| !(((x & LOW7).wrapping_add(LOW7)) | x | LOW7);
    zero(x ^ LO.wrapping_mul(u64::from(b'"')))
        | zero(x ^ LO.wrapping_mul(u64::from(b'\\')))
        // A byte below 0x20 has its three high bits clear.
        | zero(x & LO.wrapping_mul(0xE0))
}

/// An open container.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Frame<'b> {
    /// An array: its elements belong to the enclosing key.
    Array(KeyRef<'b>),
    /// An object: each member belongs to its own key; the object itself to this one.
    Object(KeyRef<'b>),
}

/// The key an element belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyRef<'b> {
    /// A key without escapes: its text in the body (cut once, when the member is read).
    Text(&'b str),
    Saved(usize),
}

impl<'b> KeyRef<'b> {
    /// The key as a slice of the body, when it is one.
    fn body(self) -> Option<&'b str> {
        match self {
            KeyRef::Text(t) => Some(t),
            KeyRef::Saved(_) => None,
        }
    }
}

/// Proves `body` is one JSON value (nothing but whitespace after it), at most
/// [`MAX_NESTING`] levels deep; linear, allocation-free apart from the nesting stack.
pub fn check(body: &[u8]) -> Result<(), JsonError> {
    run(body, usize::MAX, &mut |_| true).map(|_| ())
}

/// Calls `visit` for every object member (key first, with `counts_as_arg`), every array
/// element and every string or number leaf, in document order; once `visit` returns false
/// nothing more is visited, but the rest is still read, so the walk is also [`check`]: `Err`
/// for a malformed body wherever its error is (after visiting what came before the error;
/// callers that must not act on a malformed body undo what they saw). Values deeper than
/// `max_depth` are not visited; returns whether any was skipped (up to the stop).
pub fn walk<'b>(
    body: &'b [u8],
    max_depth: u32,
    visit: &mut dyn FnMut(Item<'b, '_>) -> bool,
) -> Result<bool, JsonError> {
    run(body, max_depth as usize, visit)
}

/// [`walk`] over a body known to be UTF-8 (the caller validated it already): the same walk,
/// without validating the body a second time.
pub fn walk_utf8<'b>(
    body: &'b str,
    max_depth: u32,
    visit: &mut dyn FnMut(Item<'b, '_>) -> bool,
) -> Result<bool, JsonError> {
    let r = Reader {
        b: body.as_bytes(),
        text: Some(body),
        i: 0,
    };
    run_with(r, max_depth as usize, visit)
}

fn run<'b>(
    body: &'b [u8],
    max_depth: usize,
    visit: &mut dyn FnMut(Item<'b, '_>) -> bool,
) -> Result<bool, JsonError> {
    run_with(Reader::new(body), max_depth, visit)
}

fn run_with<'b>(
    mut r: Reader<'b>,
    max_depth: usize,
    visit: &mut dyn FnMut(Item<'b, '_>) -> bool,
) -> Result<bool, JsonError> {
    let body = r.b;
    let mut stack: Vec<Frame> = Vec::new();
    // Escaped keys that enclose open containers; `scratch` holds the current escaped text.
    let mut saved: Vec<String> = Vec::new();
    let mut scratch = String::new();
    let mut truncated = false;
    // Once the visitor says stop, the rest is still read, not visited: a malformed document
    // is an error wherever its error is (so one pass both checks and walks). The depth cut
    // reported is the one seen up to the stop.
    let mut stop: Option<bool> = None;
    let top_key = KeyRef::Text("");
    // The key of the value about to be read, and whether it fills an array slot.
    let mut key = top_key;
    let mut element = false;
    // The next thing to read is an object member's `"key" :` (an object's first member, or
    // one after a comma), then its value.
    let mut member = false;
    'value: loop {
        if std::mem::take(&mut member) {
            // An object's keys are visited when the object itself is within the depth (its
            // member values are one level deeper).
            let visible = stop.is_none() && stack.len() <= max_depth.saturating_add(1);
            let parent = match stack.last() {
                Some(Frame::Object(p)) => *p,
                _ => top_key,
            };
            let (k, go_on) = next_member(&mut r, &mut scratch, &mut saved, visible, parent, visit)?;
            if !go_on {
                stop.get_or_insert(truncated);
            }
            key = k;
            element = false;
        }
        // Read one value at the current position.
        r.skip_ws();
        let depth = stack.len();
        let visible = stop.is_none() && depth <= max_depth;
        if depth > max_depth {
            truncated = true;
        }
        if element && visible {
            let item = Item {
                key: key_of(&saved, key),
                text: None,
                is_key: false,
                parent: "",
                counts_as_arg: true,
                body_key: key.body(),
                body_text: None,
            };
            if !visit(item) {
                stop.get_or_insert(truncated);
            }
        }
        // A stop at the element itself also hides the element's value.
        let visible = visible && stop.is_none();
        match r.peek()? {
            b'{' | b'[' => {
                let open = r.peek()?;
                r.i += 1;
                if stack.len() >= MAX_NESTING {
                    return Err(err(false));
                }
                // The key of the container's members: for an object each member's own key;
                // for an array the enclosing key.
                let frame = if open == b'{' {
                    Frame::Object(key)
                } else {
                    Frame::Array(key)
                };
                stack.push(frame);
                r.skip_ws();
                let close = if open == b'{' { b'}' } else { b']' };
                if r.peek()? == close {
                    r.i += 1;
                    stack.pop();
                } else if open == b'[' {
                    element = true;
                    continue 'value;
                } else {
                    // First member of an object.
                    member = true;
                    continue 'value;
                }
            }
            b'"' => {
                r.i += 1;
                let span = r.string(Some(&mut scratch))?;
                if visible {
                    let body_text = span.and_then(|(a, b)| r.str_at(a, b));
                    let text = match span {
                        Some(_) => body_text.unwrap_or_default(),
                        None => scratch.as_str(),
                    };
                    let item = Item {
                        key: key_of(&saved, key),
                        text: Some(text),
                        is_key: false,
                        parent: "",
                        counts_as_arg: false,
                        body_key: key.body(),
                        body_text,
                    };
                    if !visit(item) {
                        stop.get_or_insert(truncated);
                    }
                }
            }
            b'-' | b'0'..=b'9' => {
                let (a, b) = r.number()?;
                if visible {
                    let body_text = r.str_at(a, b);
                    let item = Item {
                        key: key_of(&saved, key),
                        text: Some(body_text.unwrap_or_default()),
                        is_key: false,
                        parent: "",
                        counts_as_arg: false,
                        body_key: key.body(),
                        body_text,
                    };
                    if !visit(item) {
                        stop.get_or_insert(truncated);
                    }
                }
            }
            b't' => r.expect_lit(b"true")?,
            b'f' => r.expect_lit(b"false")?,
            b'n' => r.expect_lit(b"null")?,
            _ => return Err(err(false)),
        }
        // After a value: close containers, or move to the next element or member.
        loop {
            r.skip_ws();
            let Some(&frame) = stack.last() else {
                // The top-level value is complete: only whitespace may follow.
                if r.i < body.len() {
                    return Err(err(false));
                }
                return Ok(stop.unwrap_or(truncated));
            };
            let c = r.peek()?;
            match (frame, c) {
                (Frame::Array(k), b',') => {
                    r.i += 1;
                    key = k;
                    element = true;
                    continue 'value;
                }
                (Frame::Object(_), b',') => {
                    r.i += 1;
                    r.skip_ws();
                    member = true;
                    continue 'value;
                }
                (Frame::Array(_), b']') | (Frame::Object(_), b'}') => {
                    r.i += 1;
                    stack.pop();
                }
                _ => return Err(err(false)),
            }
        }
    }
}

/// Reads `"key" :` at the reader; returns the key's span (or, escaped, its text in `scratch`).
fn member_key<'b>(
    r: &mut Reader<'b>,
    scratch: &mut String,
) -> Result<(KeyRef<'b>, bool), JsonError> {
    r.skip_ws();
    if r.peek()? != b'"' {
        return Err(err(false));
    }
    r.i += 1;
    let span = r.string(Some(scratch))?;
    r.skip_ws();
    if r.peek()? != b':' {
        return Err(err(false));
    }
    r.i += 1;
    Ok(match span {
        Some((a, b)) => (KeyRef::Text(r.str_at(a, b).unwrap_or_default()), false),
        None => (KeyRef::Saved(usize::MAX), true),
    })
}

/// Reads the next member's `"key" :`, remembers the key, and shows it to `visit` when the
/// object is `visible` (within the depth). `None` when `visit` asks to stop.
fn next_member<'b>(
    r: &mut Reader<'b>,
    scratch: &mut String,
    saved: &mut Vec<String>,
    visible: bool,
    parent: KeyRef<'b>,
    visit: &mut dyn FnMut(Item<'b, '_>) -> bool,
) -> Result<(KeyRef<'b>, bool), JsonError> {
    let (k, escaped) = member_key(r, scratch)?;
    let key = remember(k, escaped, scratch, saved);
    if visible {
        let k = key_of(saved, key);
        let item = Item {
            key: k,
            text: Some(k),
            is_key: true,
            parent: if k == "prototype" {
                key_of(saved, parent)
            } else {
                ""
            },
            counts_as_arg: true,
            body_key: key.body(),
            body_text: key.body(),
        };
        if !visit(item) {
            return Ok((key, false));
        }
    }
    Ok((key, true))
}

/// A key's text: its span in the body, or its saved unescaped copy.
fn key_of<'a>(saved: &'a [String], k: KeyRef<'a>) -> &'a str {
    match k {
        KeyRef::Text(t) => t,
        KeyRef::Saved(n) => saved.get(n).map_or("", String::as_str),
    }
}

/// The reference for a member's key: its span, or a saved copy of an escaped key (kept while
/// the walk may still need it for nested values; escaped keys are rare).
fn remember<'b>(
    k: KeyRef<'b>,
    escaped: bool,
    scratch: &str,
    saved: &mut Vec<String>,
) -> KeyRef<'b> {
    if escaped {
        saved.push(scratch.to_string());
        KeyRef::Saved(saved.len() - 1)
    } else {
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(json: &str, depth: u32) -> (Vec<String>, bool) {
        check(json.as_bytes()).unwrap();
        let mut seen = Vec::new();
        let cut = walk(json.as_bytes(), depth, &mut |i| {
            seen.push(format!(
                "{}={}:{}{}",
                i.key,
                i.text.unwrap_or("-"),
                if i.is_key { "k" } else { "v" },
                if i.counts_as_arg { "+" } else { "" }
            ));
            true
        })
        .unwrap();
        (seen, cut)
    }

    /// A `"prototype"` key comes with the name of the member that holds it; other keys and
    /// values with none.
    #[test]
    fn prototype_keys_name_their_parent() {
        let body = r#"{"constructor":{"a":1,"prototype":{"x":[{"prototype":2}]}},"prototype":3,"b":{"c":"prototype"}}"#;
        let mut seen = Vec::new();
        walk(body.as_bytes(), 16, &mut |i| {
            if !i.parent.is_empty() || i.text == Some("prototype") {
                seen.push(format!("{}<{}", i.text.unwrap_or("-"), i.parent));
            }
            true
        })
        .unwrap();
        assert_eq!(
            seen,
            [
                "prototype<constructor",
                "prototype<x",
                "prototype<",
                "prototype<"
            ]
        );
    }

    #[test]
    fn visits_keys_leaves_and_slots_in_document_order() {
        let (seen, cut) = seen(r#"{"a": ["x", {"b": "y"}], "n": 1}"#, 8);
        assert!(!cut);
        assert_eq!(
            seen,
            ["a=a:k+", "a=-:v+", "a=x:v", "a=-:v+", "b=b:k+", "b=y:v", "n=n:k+", "n=1:v"]
        );
    }

    #[test]
    fn escapes_duplicates_and_numbers() {
        let (seen, _) = seen(
            r#"{"k\u0041":"\u003cs\"\\","a":"<x>","a":"y","n":-1.5e3}"#,
            8,
        );
        assert!(seen.contains(&"kA=<s\"\\:v".to_string()), "{seen:?}");
        assert!(seen.contains(&"a=<x>:v".to_string()));
        assert!(seen.contains(&"a=y:v".to_string()));
        assert!(seen.contains(&"n=-1.5e3:v".to_string()));
    }

    #[test]
    fn escaped_key_encloses_a_container() {
        let (seen, _) = seen(r#"{"\u0061":{"b":[1]},"c":2}"#, 8);
        assert!(seen.contains(&"a=a:k+".to_string()), "{seen:?}");
        assert!(seen.contains(&"b=-:v+".to_string()), "{seen:?}");
        assert!(seen.contains(&"c=2:v".to_string()), "{seen:?}");
    }

    #[test]
    fn stop_ends_visits_not_the_check() {
        let mut calls = 0;
        let mut count = |_: Item<'_, '_>| {
            calls += 1;
            false
        };
        assert_eq!(
            walk(br#"{"a":[1,2],"b":{"c":3}}"#, 1, &mut count),
            Ok(false)
        );
        assert!(walk(br#"{"a":1,"b":2 x}"#, 1, &mut count).is_err());
        assert!(walk(br#"{"a":1,"b":"#, 1, &mut count).is_err_and(|e| e.eof));
        assert_eq!(calls, 3);
        // A stop at an array slot also hides the slot's value (found by the extract_json
        // fuzz target: `[3\r\r\r\r]` visited the element and then its number).
        for body in [&b"[3\r\r\r\r]"[..], b"[\"a\"]", b"[[1]]", b"[1,2]"] {
            let mut calls = 0;
            let mut once = |_: Item<'_, '_>| {
                calls += 1;
                false
            };
            assert_eq!(walk(body, 8, &mut once), Ok(false));
            assert_eq!(calls, 1, "{:?}", String::from_utf8_lossy(body));
        }
        // The depth cut is reported as seen up to the stop.
        let mut seen = 0;
        let mut two = |_: Item<'_, '_>| {
            seen += 1;
            seen < 2
        };
        assert_eq!(
            walk(br#"{"a":1,"b":{"c":{"d":1}}}"#, 1, &mut two),
            Ok(false)
        );
    }

    /// The SWAR scan finds what the byte loop it replaced finds, at every alignment.
    #[test]
    fn string_stop_matches_the_byte_loop() {
        let alphabet = b"a\"\\\x1f\x20\x7f\xe0\x00\x9fz";
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for n in 0..60_000usize {
            let len = n % 37;
            let b: Vec<u8> = (0..len)
                .map(|_| {
                    seed = crate::detect::xorshift(seed);
                    // Mostly plain letters, so stops land at every offset.
                    let k = (seed >> 11) as usize;
                    if k.is_multiple_of(4) {
                        alphabet[k / 4 % alphabet.len()]
                    } else {
                        b'a' + (k % 26) as u8
                    }
                })
                .collect();
            let expected = b.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
            assert_eq!(string_stop(&b), expected, "{b:?}");
        }
    }

    /// `walk_utf8` visits what `walk` visits, with the same answer, on every case below.
    #[test]
    fn walk_utf8_is_walk() {
        for json in [
            r#"{"a": ["x", {"b": "y"}], "n": 1}"#,
            r#"{"k\u0041":"\u003cs\"\\","a":"<x>","n":-1.5e3}"#,
            r#"[[[[["deep"]]]]]"#,
            r#"{"a":1,"b":2 x}"#,
            r#"{"a":1,"b":"#,
            "{\"\u{e9}\":\"\u{fc}\",\"x\":[\"\\ud83d\\ude00\"]}",
        ] {
            let mut a = Vec::new();
            let ra = walk(json.as_bytes(), 2, &mut |i| {
                a.push(format!("{i:?}"));
                true
            });
            let mut b = Vec::new();
            let rb = walk_utf8(json, 2, &mut |i| {
                b.push(format!("{i:?}"));
                true
            });
            assert_eq!(ra, rb, "{json}");
            assert_eq!(a, b, "{json}");
        }
    }

    /// A body that is not UTF-8 is never JSON (outside strings every byte is ASCII, and every
    /// string is checked): the engine relies on it, asking [`check`] for such a body's error
    /// instead of walking it. Every bad sequence at every offset of a few documents.
    #[test]
    fn a_body_that_is_not_utf8_never_walks() {
        let docs = [
            r#"{"a":"xy","b":[1,"z",{"c":null}],"d\u0041":-2.5e3}"#,
            r#"["\u00e9x\u00e9", 2, true]"#,
            r#""s""#,
        ];
        let bad: [&[u8]; 5] = [b"\xff", b"\x80", b"\xc3", b"\xc0\xaf", b"\xed\xa0\x80"];
        for d in docs {
            let d = d.as_bytes();
            for at in 0..=d.len() {
                for b in bad {
                    let mut body = d.get(..at).unwrap_or_default().to_vec();
                    body.extend_from_slice(b);
                    body.extend_from_slice(d.get(at..).unwrap_or_default());
                    let checked = check(&body);
                    assert!(checked.is_err(), "{body:?}");
                    let walked = walk(&body, 8, &mut |_| true);
                    assert_eq!(walked.map(|_| ()), checked, "{body:?}");
                }
            }
        }
    }

    #[test]
    fn depth_is_bounded() {
        let (seen, cut) = seen(r#"[[[[["deep"]]]]]"#, 2);
        assert!(cut);
        assert!(!seen.iter().any(|s| s.contains("deep")));
    }

    #[test]
    fn accepts_what_serde_json_accepts() {
        let cases: &[&str] = &[
            "{}",
            "[]",
            "1",
            "-0",
            "0.5",
            "1e5",
            "\"x\"",
            "true",
            "null",
            " [1, 2 ] ",
            "{\"a\":1",
            "[1,]",
            "{\"a\" 1}",
            "01",
            "1.",
            "-",
            "\"\\x\"",
            "\"\\ud800\"",
            "\"\\ud800\\u0041\"",
            "\"\\ud83d\\ude00\"",
            "[1] x",
            "{,}",
            "\"a\nb\"",
            "tru",
            "[\"\\u00e9\"]",
            "{\"a\":[{}]}",
            "",
            "  ",
            "[",
            "\"abc",
            "nul",
            "[1 2]",
        ];
        for c in cases {
            let ours = check(c.as_bytes());
            let serde = serde_json::from_str::<serde_json::Value>(c);
            assert_eq!(ours.is_ok(), serde.is_ok(), "{c:?}: {ours:?} vs {serde:?}");
            if let (Err(o), Err(s)) = (ours, serde) {
                assert_eq!(o.eof, s.is_eof(), "{c:?}");
            }
        }
        let deep = "[".repeat(MAX_NESTING + 1) + &"]".repeat(MAX_NESTING + 1);
        assert!(check(deep.as_bytes()).is_err());
        assert!(serde_json::from_str::<serde_json::Value>(&deep).is_err());
        let ok = "[".repeat(MAX_NESTING) + &"]".repeat(MAX_NESTING);
        assert_eq!(
            check(ok.as_bytes()).is_ok(),
            serde_json::from_str::<serde_json::Value>(&ok).is_ok()
        );
        let bad_utf8 = b"[\"\xff\"]";
        assert!(check(bad_utf8).is_err());
        assert!(serde_json::from_slice::<serde_json::Value>(bad_utf8).is_err());
    }
}

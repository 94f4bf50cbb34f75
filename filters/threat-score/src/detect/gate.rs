//! Gating: which values a detector can skip without reading them.
//!
//! Most values in real traffic are plain tokens (`asc`, `2`, `EUR`, `SKU-000-01`, a session id)
//! or short phrases of plain words (`leave at the door`). Every injection shape a detector
//! knows needs some syntax such a value does not have: a quote, `<`, `(`, `/`, `:`, `$`, a
//! shell separator... So each value's [`Shape`] is computed once, at extraction, from the set
//! of bytes it holds ([`crate::extract::ByteSet`]), and each detector declares here, per
//! paranoia level, which shapes it must still read ([`DetectorKind::admits`]). A detector that
//! cannot match a shape never sees values of that shape: [`crate::Prepared::inputs_from`]
//! leaves them out while that detector runs.
//!
//! A gate is an optimisation, never a rule: skipping must not change any detection. The
//! `gates` integration test runs every detector gated and ungated, at every paranoia level,
//! over values built from every string literal of the detectors' sources (each word alone,
//! joined, in phrases, as names and values) and over the rows of the shared corpora when they
//! are present, and requires identical findings. A rule change that makes a detector match a
//! gated shape fails that test until the gate below admits the shape.

use super::DetectorKind;
use super::Outlined as _;
use crate::extract::{ByteSet, Input};

/// What a value is made of, from the bytes of its lowercase form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// Only ASCII letters, digits, `-` and `_` (possibly empty): `asc`, `sku-000-01`,
    /// `user_id`, `7f3a9c2e`.
    Word,
    /// Only ASCII letters, digits, `-`, `_`, `.` and `,` with at least one `.` or `,`:
    /// `10.99`, `app.3f9a1c.js`, `name,price`, `en-us`.
    Dotted,
    /// Words separated by spaces (letters, digits, `-`, `_`, space, and `.`/`,`):
    /// `leave at the door`, `blue running shoes size 42`.
    Phrase,
    /// A `User-Agent` of browser and operating-system product tokens and comments
    /// (`Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0
    /// Safari/537.36`), see [`product_user_agent`]: no injection detector finds anything in
    /// one (proved by the `gates` test), so only the request-level detectors read it.
    Product,
    /// A URL path of plain segments (`/healthz`, `/api/items/3`: see
    /// `extract::plain_path`), at paranoia 1: only lfi and the request-level detectors read it.
    PlainPath,
    /// Anything else: every detector reads it.
    Other,
}

/// The letter runs browser and operating-system `User-Agent`s are made of (lowercase): product
/// names, platform comments and their fixed words. Not attack vocabulary: the `gates` test
/// runs every detector, ungated, at every paranoia level, over each of these alone, every
/// pair of them joined by every separator the grammar allows, real browser strings and
/// random product-token strings over them, and requires no finding. A word missing here only
/// costs a full scan of that `User-Agent`.
const PRODUCT_WORDS: &[&str] = &[
    "aarch",
    "amd",
    "android",
    "applewebkit",
    "arm",
    "build",
    "chrome",
    "chromium",
    "compatible",
    "cpu",
    "cros",
    "crios",
    "edg",
    "edga",
    "edgios",
    "en",
    "firefox",
    "fxios",
    "gecko",
    "gsa",
    "i",
    "intel",
    "ipad",
    "iphone",
    "ipod",
    "k",
    "khtml",
    "like",
    "linux",
    "mac",
    "macintosh",
    "mobile",
    "mozilla",
    "msie",
    "nt",
    "opr",
    "os",
    "rv",
    "safari",
    "samsungbrowser",
    "tablet",
    "trident",
    "u",
    "ubuntu",
    "us",
    "version",
    "win",
    "windows",
    "wow",
    "wv",
    "x",
];

/// The product words, sorted once for binary search.
pub(super) static PRODUCT_SET: super::WordSet =
    super::WordSet::packed(super::pack_words!(PRODUCT_WORDS));

/// Whether `ua` (as received) is a `User-Agent` of product tokens and comments whose letter
/// runs are all [`PRODUCT_WORDS`] (or one letter between digits, a build number): between them only digits, spaces and `. / ; ( ) , _ - :` (Firefox's `rv:128.0`), and
/// no `..`. One pass over the bytes, no allocation; decided once per value at extraction.
pub fn product_user_agent(ua: &str) -> bool {
    // A client sends the same `User-Agent` on every request, and a worker serves a few
    // browsers' strings most of the time: the last answer is kept, so a repeat costs one
    // comparison instead of a lookup per letter run (a pure function: same answer either
    // way; the `product_user_agent_memo_is_transparent` test). Strings over 512 bytes are
    // not kept.
    thread_local! {
        static LAST: std::cell::RefCell<(String, bool)> =
            const { std::cell::RefCell::new((String::new(), false)) };
    }
    LAST.with(|last| {
        let Ok(mut last) = last.try_borrow_mut() else {
            return product_user_agent_scan(ua);
        };
        if !ua.is_empty() && super::same_bytes(last.0.as_bytes(), ua.as_bytes()) {
            return last.1;
        }
        let answer = product_user_agent_scan(ua);
        if ua.len() <= 512 {
            last.0.clear();
            last.0.push_str(ua);
            last.1 = answer;
        }
        answer
    })
}

/// [`product_user_agent`] without the memo: one pass over the bytes.
fn product_user_agent_scan(ua: &str) -> bool {
    let b = ua.as_bytes();
    let mut i = 0;
    let mut letters = false;
    while let Some(&c) = b.get(i) {
        if c.is_ascii_alphabetic() {
            let start = i;
            // The run's hash (of its lowercase form) is computed while reading it.
            let mut hash = super::WORD_HASH_START;
            while let Some(&l) = b.get(i).filter(|l| l.is_ascii_alphabetic()) {
                hash = super::word_hash_step(hash, l | 0x20);
                i += 1;
            }
            // No product word is longer than 16 letters.
            let Some(word) = b.get(start..i).filter(|w| w.len() <= 16) else {
                return false;
            };
            // One letter between digits is part of a build number (iOS `15E148`).
            let digit = |k: Option<usize>| k.and_then(|k| b.get(k)).is_some_and(u8::is_ascii_digit);
            let build = i - start == 1 && digit(start.checked_sub(1)) && digit(Some(i));
            // Looked up in any case, without a lowercase copy of the word.
            if !build && !PRODUCT_SET.contains_ignore_ascii_case_hashed(hash, word) {
                return false;
            }
            letters = true;
            continue;
        }
        let dots = c == b'.' && b.get(i + 1) == Some(&b'.');
        if dots
            || !(c.is_ascii_digit()
                || matches!(
                    c,
                    b' ' | b'.' | b'/' | b';' | b'(' | b')' | b',' | b'_' | b'-' | b':'
                ))
        {
            return false;
        }
        i += 1;
    }
    letters
}

/// Whether `w` is one of the space-separated words of `l` (`l.split(' ').any(|x| x == w)`,
/// without a char search per word: the gate asks it of every phrase holding an `i` and an
/// `f`, and most such phrases hold neither as a word).
fn space_word(l: &[u8], w: &[u8]) -> bool {
    let mut from = 0;
    while let Some(at) = super::find_bytes(l, w, from) {
        let end = at + w.len();
        let before = at == 0 || l.get(at - 1) == Some(&b' ');
        if before && l.get(end).is_none_or(|&c| c == b' ') {
            return true;
        }
        from = at + 1;
    }
    false
}

/// The set of the bytes of `s`, at compile time: the gates' needle tests below are one
/// straight-line subset test each ([`ByteSet::is_subset_of`], four words) instead of a loop
/// asking the value's set one byte at a time (`has_all`, ~12 Wasm instructions a byte,
/// asked of nearly every value of a request).
const fn bytes_of(s: &[u8]) -> ByteSet {
    let mut words = [0u64; 4];
    let mut i = 0;
    while i < s.len() {
        let c = s[i] as usize;
        words[c >> 6] |= 1 << (c & 63);
        i += 1;
    }
    ByteSet::from_words(words)
}

/// Whether `set` holds every byte of `needle` (a [`bytes_of`] set).
#[inline(always)]
fn holds(set: &ByteSet, needle: &ByteSet) -> bool {
    needle.is_subset_of(set)
}

/// Whether `input`'s lowercase form contains `needle` ([`Input::lower_has`]), its bytes
/// asked as one subset test (`needle_set`: [`bytes_of`] `needle`).
#[inline(always)]
fn lower_has(input: &Input, needle_set: &ByteSet, needle: &[u8]) -> bool {
    holds(&input.bytes, needle_set)
        && super::find_bytes(input.lower.as_bytes(), needle, 0).is_some()
}

/// A byte of every PowerShell cmdlet verb ([`super::rce::powershell_cmdlet`]).
const CMDLET_VOWELS: ByteSet = bytes_of(b"aeo");
const LETTERS: ByteSet = ByteSet::from_ranges(&[(b'a', b'z')]);
const WORD: ByteSet =
    ByteSet::from_ranges(&[(b'a', b'z'), (b'0', b'9'), (b'-', b'-'), (b'_', b'_')]);
const DOTTED: ByteSet = ByteSet::from_ranges(&[
    (b'a', b'z'),
    (b'0', b'9'),
    (b'-', b'-'),
    (b'_', b'_'),
    (b'.', b'.'),
    (b',', b','),
]);
const PHRASE: ByteSet = ByteSet::from_ranges(&[
    (b'a', b'z'),
    (b'0', b'9'),
    (b'-', b'-'),
    (b'_', b'_'),
    (b'.', b'.'),
    (b',', b','),
    (b' ', b' '),
]);

impl Shape {
    /// The shape of a value whose lowercase form holds the bytes `set`.
    pub fn of(set: &ByteSet) -> Shape {
        if set.is_subset_of(&WORD) {
            Shape::Word
        } else if set.is_subset_of(&DOTTED) {
            Shape::Dotted
        } else if set.is_subset_of(&PHRASE) {
            Shape::Phrase
        } else {
            Shape::Other
        }
    }
}

// One bit per detector in a `u16` mask.
const _: () = assert!(DetectorKind::ALL.len() <= 16);

/// The detectors that read every value (request-level checks).
const REQUEST_LEVEL: u16 =
    DetectorKind::Protocol.bit() | DetectorKind::Scanner.bit() | DetectorKind::Session.bit();

/// Every detector.
const ALL_DETECTORS: u16 = {
    let mut m = 0;
    let mut i = 0;
    while i < DetectorKind::ALL.len() {
        m |= DetectorKind::ALL[i].bit();
        i += 1;
    }
    m
};

/// The answer for values whose shape decides alone: `Some(mask)` for a product `User-Agent`
/// (request-level detectors only), a value of no gated shape and a file name (every
/// detector); `None` when each detector's gate must look at the value.
fn gated(input: &Input) -> Option<u16> {
    match input.shape {
        Shape::Product => Some(REQUEST_LEVEL),
        Shape::PlainPath => Some(REQUEST_LEVEL | DetectorKind::Lfi.bit()),
        Shape::Other => Some(ALL_DETECTORS),
        // File names (multipart, `X-Filename`) are read whole by the upload rules of several
        // families (`a.php`, `sess_...`, `x.jsp`): never gated.
        _ if super::java::is_upload_name(input.location.source, &input.location.name) => {
            Some(ALL_DETECTORS)
        }
        _ => None,
    }
}

/// The detectors whose gate admits `input` at `paranoia`, one bit per [`DetectorKind`]
/// ([`DetectorKind::bit`]): [`DetectorKind::admits`] of every detector, decided once per value
/// (the engine builds each detector's list of values from it, see
/// [`crate::Prepared::inputs_from`]). The shape's own answer is read once for all detectors.
pub fn admitted(input: &Input, paranoia: u8) -> u16 {
    if let Some(mask) = gated(input) {
        return mask;
    }
    let dashes = dashes(input);
    // Each detector's test inlined here with its kind a constant (the list unrolled, the
    // `match` on the kind resolved at compile time): one pass of straight-line tests per value
    // instead of a call and a dispatch per detector. Every value of a body goes through this
    // once, and most of them (numbers, identifiers, short phrases) are admitted by none.
    let mut mask = REQUEST_LEVEL;
    macro_rules! each {
        ($($i:literal)*) => {$(
            if let Some(&k) = DetectorKind::ALL.get($i) {
                if k.bit() & REQUEST_LEVEL == 0 && k.admits_gated(input, paranoia, dashes) {
                    mask |= k.bit();
                }
            }
        )*};
    }
    each!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15);
    // The list above covers every index of `ALL` (11 detectors today; an index past the end
    // is `None`, skipped): a 17th detector fails the build here instead of never being
    // admitted to a gated value.
    const _: () = assert!(DetectorKind::ALL.len() <= 16);
    mask
}

/// Whether `input`'s lowercase form holds `--` (a SQL comment, a long option): the rce and
/// sqli gates both need it, so it is searched once per value (and only when a `-` occurs).
fn dashes(input: &Input) -> bool {
    input.bytes.has(b'-') && super::has_pair(input.lower.as_bytes(), b'-')
}

impl DetectorKind {
    /// Whether this detector, at `paranoia`, must read `input` (false: it cannot match it,
    /// see the module docs). Only values of a gated [`Shape`] are ever skipped, and only by
    /// the checks below, each named after the rules that still need such a value.
    /// Request-level detectors (protocol, scanner, session) admit everything.
    pub fn admits(self, input: &Input, paranoia: u8) -> bool {
        match gated(input) {
            Some(set) => set & self.bit() != 0,
            None => self.admits_gated(input, paranoia, dashes(input)),
        }
    }

    /// This detector's bit in an [`admitted`] mask.
    pub(crate) const fn bit(self) -> u16 {
        1 << (self as u16)
    }

    /// [`DetectorKind::admits`] for a value of a gated shape ([`gated`] is `None`).
    ///
    /// `dashes`: whether `lower` holds `--` ([`dashes`], asked once for the rce and sqli gates).
    #[inline(always)]
    fn admits_gated(self, input: &Input, paranoia: u8, dashes: bool) -> bool {
        use DetectorKind as K;
        use Shape as S;
        let shape = input.shape;
        let l = input.lower.as_str();
        let set = &input.bytes;
        // `lower` contains the literal / `lower` holds every byte of it: the bytes asked as
        // one subset test of a set built at compile time.
        macro_rules! has {
            ($n:literal) => {
                lower_has(input, &const { bytes_of($n.as_bytes()) }, $n.as_bytes())
            };
        }
        macro_rules! holds {
            ($n:literal) => {
                holds(set, &const { bytes_of($n.as_bytes()) })
            };
        }
        // Numbers (`10.99`, `127.0.0.1`) hold no class name, DOM path or module path.
        let letters = set.intersects(&LETTERS);
        match self {
            K::Protocol | K::Scanner | K::Session => true,
            // No separator, quote, `$`, `/` or backtick in these shapes: the only command a
            // value can hold is at its start (`ifconfig`, `apt-get`, `ping 127.0.0.1`,
            // `7z -la`), cmd.exe `if exist x echo y`, and PowerShell cmdlets anywhere
            // (`Invoke-WebRequest`); any program
            // name opening it counts from paranoia 3.
            K::Rce => {
                paranoia >= 3
                    || (super::rce::may_start_command_dashed(
                        l,
                        matches!(shape, S::Word | S::Dotted),
                        || dashes,
                    )
                        && super::rce::command_in_segment(super::rce::Intro::Start, l).is_some())
                    // Every cmdlet verb is capitalised (`Invoke-`) and holds `a`, `e` or
                    // `o` (`every_cmdlet_verb_holds_a_e_or_o`): `SKU-000-01` is out.
                    || (set.has(b'-')
                        && input.has_upper
                        && set.intersects(&CMDLET_VOWELS)
                        && super::rce::powershell_cmdlet(&input.value))
                    // A phrase has no `/` or `%`: only an `if` word can open cmd.exe
                    // control flow there (`for` needs a `/x` flag or a `%` variable).
                    || (shape == S::Phrase
                        && holds!("if")
                        && space_word(l.as_bytes(), b"if")
                        && super::rce::windows_batch(l))
            }
            // Markup, script URLs and calls need `<`, `:`, `(`, quotes...: left are DOM
            // paths (`document.cookie`, `.innerhtml`) and `-moz-binding`.
            // A number (`10.99`) is no DOM path.
            K::Xss => shape != S::Word && ((set.has(b'.') && letters) || holds!("-moz")),
            // Remote URLs need `:` or `/`.
            K::Rfi => false,
            // Traversal (`..`, hex-spelled `0x2e`), dot-files (`.env`), Windows files
            // (`boot.ini`), and at paranoia 3 an encoded dot or separator in the value as sent.
            // A hex-spelled traversal is one word (`0x2e0x2e0x2fetc0x2fpasswd`: letters and
            // digits only), so `0x` is asked of words too.
            // Left out: words, numbers (`10.99`) and phrases without `..` or `0x`.
            K::Lfi => {
                (paranoia >= 3 && input.raw.has_char('%'))
                    || has!("0x")
                    || (shape != S::Word && (has!("..") || l.starts_with('.')))
                    || (shape == S::Dotted && letters)
            }
            // Superglobals without `$` (`http_raw_post_data` in a phrase); script uploads
            // (`a.php` as a file name).
            // A callable's name as a whole value (`call_user_func_array`).
            K::Php => {
                (shape != S::Word && set.has(b'_'))
                    || (shape == S::Dotted && letters)
                    || (shape == S::Word && super::php::callable_name(l))
            }
            // Catalog names (`information_schema`, `msdb`, `sys.tables`); phrases of keywords (`1 union
            // select`); fragments (`all,and`) from paranoia 2; special-character counts
            // (`-` counts) from paranoia 3.
            // A dotted value SQL reads as more than names (`1union,2`, `select,a,from,b`:
            // a number glued to a keyword, commas for spaces) at every level, and 12 `-` (a
            // special-character count) from paranoia 2.
            // At paranoia 1 a phrase or dotted value of plain words (`Item number 3 for
            // order`, `10.99`: `lexer::inert_phrase`) holds no SQL shape and none of the
            // value rules' syntax (a catalog name needs `_`, `.` after `sys`/`mysql` or the
            // letters below; calls, casts, quotes, comments and operators need punctuation
            // these shapes lack): the scan would return at its own `inert_phrase` test.
            // Asked last, after the byte tests.
            K::Sqli => {
                paranoia >= 3
                    || (paranoia >= 2 && (shape == S::Phrase || shape == S::Dotted))
                    || (paranoia >= 2
                        && set.has(b'-')
                        && l.bytes().filter(|&b| b == b'-').nth(11).is_some())
                    || set.has(b'_')
                    || dashes
                    // Each catalog name holds `s` and `y` or `m` (`value-3-abcdef`,
                    // `filter7`: one test).
                    || (holds!("s")
                        && set.intersects(&const { bytes_of(b"ym") })
                        && (has!("sys.")
                            || has!("mysql.")
                            || holds!("msdb")
                            || holds!("sysobjects")
                            || holds!("syscolumns")))
                    || ((shape == S::Phrase || shape == S::Dotted)
                        && !super::sqli::lexer::inert_phrase(l))
            }
            // Serialized objects (`aced0005` hex, a value opening with base64 `rO0AB`) at
            // paranoia 1; gadget class names and base64 magic anywhere from paranoia 2; class
            // names need a `.`.
            K::Java => {
                paranoia >= 2
                    || (set.has(b'.') && letters)
                    || has!("aced0005")
                    // Its bytes first: no Unicode whitespace walk for most values.
                    || (holds!("ro0ab") && l.trim_start().starts_with("ro0ab"))
            }
            // `child_process`, `__proto__`, `class_eval` (an `_`), dotted paths
            // (`constructor.prototype`), metadata host names,
            // node-serialize markers inside base64 (12+ characters, no inner space).
            K::Generic => {
                set.has(b'_')
                    || (set.has(b'.') && letters)
                    || has!("instance-data")
                    || (l.len() >= 12 && super::generic::base64_marker(&input.value))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The previous `product_user_agent` (a lowercase copy of each letter run, looked up with
    /// `WordSet::contains`): the version that hashes each run while reading it, without a
    /// copy, must agree with it.
    fn reference(ua: &str) -> bool {
        let b = ua.as_bytes();
        let mut i = 0;
        let mut letters = false;
        while let Some(&c) = b.get(i) {
            if c.is_ascii_alphabetic() {
                let start = i;
                while b.get(i).is_some_and(u8::is_ascii_alphabetic) {
                    i += 1;
                }
                let mut buf = [0u8; 16];
                let (Some(word), Some(lw)) = (b.get(start..i), buf.get_mut(..i - start)) else {
                    return false;
                };
                lw.copy_from_slice(word);
                lw.make_ascii_lowercase();
                let digit =
                    |k: Option<usize>| k.and_then(|k| b.get(k)).is_some_and(u8::is_ascii_digit);
                let build = i - start == 1 && digit(start.checked_sub(1)) && digit(Some(i));
                if !build && !std::str::from_utf8(lw).is_ok_and(|w| PRODUCT_SET.contains(w)) {
                    return false;
                }
                letters = true;
                continue;
            }
            let dots = c == b'.' && b.get(i + 1) == Some(&b'.');
            if dots
                || !(c.is_ascii_digit()
                    || matches!(
                        c,
                        b' ' | b'.' | b'/' | b';' | b'(' | b')' | b',' | b'_' | b'-' | b':'
                    ))
            {
                return false;
            }
            i += 1;
        }
        letters
    }

    /// `space_word` is `split(' ').any(..)`.
    #[test]
    fn space_word_is_a_split_word() {
        let pieces = ["if", "i", "f", " ", "  ", "x", "iff", "gif", "if if"];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: usize| {
            state = crate::detect::xorshift(state);
            (state >> 33) as usize % n
        };
        for _ in 0..20_000 {
            let mut l = String::new();
            for _ in 0..next(8) {
                l.push_str(pieces[next(pieces.len())]);
            }
            assert_eq!(
                space_word(l.as_bytes(), b"if"),
                l.split(' ').any(|w| w == "if"),
                "{l:?}"
            );
        }
    }

    /// The memo answers as the scan does, whether the string repeats or alternates.
    #[test]
    fn product_user_agent_memo_is_transparent() {
        let browser = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";
        let sequence = [
            browser,
            browser,
            "sqlmap/1.7",
            browser,
            "",
            "",
            "Mozilla/5.0",
            "curl/8.0",
            "curl/8.0",
            browser,
            "Mozilla/5.0 (X11; Linux x86_64) sqlmap",
            browser,
        ];
        for ua in sequence.iter().chain(sequence.iter().rev()) {
            assert_eq!(product_user_agent(ua), reference(ua), "{ua:?}");
            assert_eq!(
                product_user_agent(ua),
                product_user_agent_scan(ua),
                "{ua:?}"
            );
        }
        let long = format!("{browser} {}", "Safari/537.36 ".repeat(50));
        assert_eq!(product_user_agent(&long), reference(&long));
        assert_eq!(product_user_agent(&long), reference(&long));
    }

    #[test]
    fn product_user_agent_agrees_with_the_reference() {
        let pieces = [
            "Mozilla",
            "mozilla",
            "MOZILLA",
            "/",
            "5.0",
            " ",
            "(",
            ")",
            ";",
            "X11",
            "Linux",
            "x86_64",
            "AppleWebKit",
            "..",
            ".",
            "15E148",
            "E",
            "1",
            "a",
            "rv:",
            "128",
            "curl",
            "sqlmap",
            "<",
            "'",
            "\u{e9}",
            "samsungbrowser",
            "Samsungbrowserx",
            "-",
            "_",
            ",",
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            state = crate::detect::xorshift(state);
            (state >> 33) as usize % n
        };
        let mut agreed_true = 0;
        for _ in 0..20_000 {
            let mut ua = String::new();
            for _ in 0..next(12) {
                ua.push_str(pieces[next(pieces.len())]);
            }
            let expected = reference(&ua);
            assert_eq!(product_user_agent(&ua), expected, "{ua:?}");
            agreed_true += usize::from(expected);
        }
        assert!(agreed_true > 100, "{agreed_true}");
        for ua in ["", "1", "E", "1E1", "1E", "..", "a..b", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"] {
            assert_eq!(product_user_agent(ua), reference(ua), "{ua:?}");
        }
    }
}

#[cfg(test)]
mod mask_tests {
    use super::*;
    use crate::extract::{Place, Text};
    use crate::model::{CategorySet, Source};

    /// Detector `k` of the run order is bit `k` of a mask (the engine's lists rely on it),
    /// and [`admitted`] holds exactly the detectors whose [`DetectorKind::admits`] is true.
    #[test]
    fn admitted_is_every_detectors_admits() {
        for (k, kind) in DetectorKind::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, k);
            assert_eq!(kind.bit(), 1 << k);
        }
        let values = [
            "",
            "asc",
            "SKU-000-01",
            "10.99",
            "app.3f9a1c.js",
            "leave at the door",
            "1 union select",
            "ifconfig",
            "Invoke-WebRequest",
            "if exist x echo y",
            "document.cookie",
            "-moz-binding",
            "../etc",
            ".env",
            "0x2e",
            "a_b",
            "information_schema",
            "aced0005",
            "rO0AB",
            "sys.tables",
            "--",
            "a%2e",
            "child_process",
            "instance-data",
            "eyJyY2UiOiJfJCRORF9GVU5DJCRfIn0=",
            "<x>",
            "Mozilla/5.0 (X11; Linux x86_64)",
            "a-b-c-d-e-f-g-h-i-j-k-l-m",
        ];
        for v in values {
            for (source, name) in [
                (Source::Arg, "q"),
                (Source::ArgName, v),
                (Source::Header, "user-agent"),
                (Source::Header, "x-filename"),
                (Source::Filename, "f"),
                (Source::Cookie, "c"),
            ] {
                let input = Input::new(
                    Place::new(source, Text::from(name)),
                    Text::from(v),
                    Text::from(v),
                    CategorySet::EMPTY,
                );
                for paranoia in 1..=4 {
                    let mask = admitted(&input, paranoia);
                    for kind in DetectorKind::ALL {
                        assert_eq!(
                            mask & kind.bit() != 0,
                            kind.admits(&input, paranoia),
                            "{v:?} {source:?} {kind:?} PL{paranoia}"
                        );
                    }
                }
            }
        }
    }
}

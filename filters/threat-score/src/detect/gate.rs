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
    /// Anything else: every detector reads it.
    Other,
}

/// Builds a [`ByteSet`] from byte ranges at compile time.
const fn set_of(ranges: &[(u8, u8)]) -> ByteSet {
    let mut words = [0u64; 4];
    let mut r = 0;
    while r < ranges.len() {
        let (lo, hi) = ranges[r];
        let mut c = lo as usize;
        while c <= hi as usize {
            words[c >> 6] |= 1 << (c & 63);
            c += 1;
        }
        r += 1;
    }
    ByteSet::from_words(words)
}

const WORD: ByteSet = set_of(&[(b'a', b'z'), (b'0', b'9'), (b'-', b'-'), (b'_', b'_')]);
const DOTTED: ByteSet = set_of(&[
    (b'a', b'z'),
    (b'0', b'9'),
    (b'-', b'-'),
    (b'_', b'_'),
    (b'.', b'.'),
    (b',', b','),
]);
const PHRASE: ByteSet = set_of(&[
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

impl DetectorKind {
    /// Whether this detector, at `paranoia`, must read `input` (false: it cannot match it,
    /// see the module docs). Only values of a gated [`Shape`] are ever skipped, and only by
    /// the checks below, each named after the rules that still need such a value.
    /// Request-level detectors (protocol, scanner, session) admit everything.
    pub fn admits(self, input: &Input, paranoia: u8) -> bool {
        use DetectorKind as K;
        use Shape as S;
        let shape = input.shape;
        // File names (multipart, `X-Filename`) are read whole by the upload rules of several
        // families (`a.php`, `sess_...`, `x.jsp`): never gated.
        if shape == S::Other
            || super::java::is_upload_name(input.location.source, &input.location.name)
        {
            return true;
        }
        let l = input.lower.as_str();
        let set = &input.bytes;
        match self {
            K::Protocol | K::Scanner | K::Session => true,
            // No separator, quote, `$`, `/` or backtick in these shapes: the only command a
            // value can hold is at its start (`ifconfig`, `apt-get`, `ping 127.0.0.1`,
            // `7z -la`), cmd.exe `if exist x echo y`, and PowerShell cmdlets anywhere
            // (`Invoke-WebRequest`); any program
            // name opening it counts from paranoia 3.
            K::Rce => {
                paranoia >= 3
                    || super::rce::command_in_segment(super::rce::Intro::Start, l).is_some()
                    || (set.has(b'-') && super::rce::powershell_cmdlet(&input.value))
                    || (shape == S::Phrase && super::rce::windows_batch(l))
            }
            // Markup, script URLs and calls need `<`, `:`, `(`, quotes...: left are DOM
            // paths (`document.cookie`, `.innerhtml`) and `-moz-binding`.
            K::Xss => shape != S::Word && (set.has(b'.') || set.has_all(b"-moz")),
            // Remote URLs need `:` or `/`.
            K::Rfi => false,
            // Traversal (`..`, hex-spelled `0x2e`), dot-files (`.env`), Windows files
            // (`boot.ini`), and at paranoia 3 an encoded dot or separator in the value as sent.
            // Left out: single words, numbers (`10.99`) and phrases without `..` or `0x`.
            K::Lfi => {
                (paranoia >= 3 && input.raw.contains('%'))
                    || (shape != S::Word
                        && (l.contains("..") || l.starts_with('.') || l.contains("0x")))
                    || (shape == S::Dotted && l.bytes().any(|b| b.is_ascii_alphabetic()))
            }
            // Superglobals without `$` (`http_raw_post_data` in a phrase); script uploads
            // (`a.php` as a file name).
            K::Php => {
                (shape != S::Word && set.has(b'_'))
                    || (shape == S::Dotted && l.bytes().any(|b| b.is_ascii_alphabetic()))
            }
            // Catalog names (`information_schema`, `msdb`, `sys.tables`); phrases of keywords (`1 union
            // select`); fragments (`all,and`) from paranoia 2; special-character counts
            // (`-` counts) from paranoia 3.
            K::Sqli => {
                shape == S::Phrase
                    || paranoia >= 3
                    || (shape == S::Dotted && paranoia >= 2)
                    || set.has(b'_')
                    || l.contains("--")
                    || l.contains("sys.")
                    || l.contains("mysql.")
                    || set.has_all(b"msdb")
                    || set.has_all(b"sysobjects")
                    || set.has_all(b"syscolumns")
            }
            // Serialized objects (`aced0005` hex) at paranoia 1; gadget class names and
            // base64 serialization magic from paranoia 2; class names need a `.`.
            K::Java => paranoia >= 2 || set.has(b'.') || set.has_all(b"aced"),
            // `child_process`, `__proto__`, `class_eval` (an `_`), dotted paths
            // (`constructor.prototype`), metadata host names,
            // node-serialize markers inside base64 (12+ characters, no inner space).
            K::Generic => {
                set.has(b'_')
                    || set.has(b'.')
                    || l.contains("instance-data")
                    || (l.len() >= 12 && super::generic::base64_marker(&input.value))
            }
        }
    }
}

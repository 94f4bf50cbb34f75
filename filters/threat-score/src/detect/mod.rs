//! Detectors, one module per attack family. Each reads the decoded inputs of a [`Prepared`]
//! request and reports [`Detection`]s through [`Findings`], which applies the paranoia level
//! and the exclusions so detectors stay free of policy.

pub mod gate;
pub mod generic;
pub mod java;
pub mod lfi;
pub mod php;
pub mod protocol;
pub mod rce;
pub mod rfi;
pub mod scanner;
pub mod session;
pub mod sqli;
pub mod xss;

use crate::extract::{ByteSet, Input, Prepared};
use crate::model::{Assessment, Category, CategorySet, Detection, Location, Severity, Source};

/// Declares the detectors once: the enum, [`DetectorKind::ALL`] (the run order), names and
/// dispatch all come from this one list, so a new detector cannot be left out of the run.
macro_rules! detectors {
    (|$p:ident, $ctx:ident, $out:ident| $( $(#[$doc:meta])* $kind:ident => $name:literal, $run:expr; )*) => {
        /// The detectors, in the order the engine runs them (cheap request-level checks first).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum DetectorKind {
            $( $(#[$doc])* $kind, )*
        }

        impl DetectorKind {
            /// All detectors, in run order.
            pub const ALL: &'static [DetectorKind] = &[$(DetectorKind::$kind),*];

            /// Short name for reports.
            pub fn name(self) -> &'static str {
                match self {
                    $( DetectorKind::$kind => $name, )*
                }
            }

            #[allow(unused_variables)]
            fn dispatch(self, $p: &Prepared<'_>, $ctx: &Ctx<'_>, $out: &mut Findings) {
                match self {
                    $( DetectorKind::$kind => $run, )*
                }
            }
        }
    };
}

detectors! {
    |p, ctx, out|
    /// Protocol enforcement and protocol attacks ([`protocol`]).
    Protocol => "protocol", protocol::scan(p, ctx, out);
    /// Scanner user agents ([`scanner`]).
    Scanner => "scanner", scanner::scan(p, out);
    /// Session fixation ([`session`]).
    Session => "session", session::scan(p, out);
    /// SQL injection ([`sqli`]).
    Sqli => "sqli", sqli::scan(p, out);
    /// Cross-site scripting ([`xss`]).
    Xss => "xss", xss::scan(p, out);
    /// Path traversal / LFI ([`lfi`]).
    Lfi => "lfi", lfi::scan(p, out);
    /// Remote file inclusion ([`rfi`]).
    Rfi => "rfi", rfi::scan(p, out);
    /// OS command injection ([`rce`]).
    Rce => "rce", rce::scan(p, out);
    /// PHP injection ([`php`]).
    Php => "php", php::scan(p, out);
    /// Java attacks ([`java`]).
    Java => "java", java::scan(p, out);
    /// Generic attacks ([`generic`]).
    Generic => "generic", generic::scan(p, out);
}

impl DetectorKind {
    /// Runs this detector over `p`, reading only the values whose shape it admits at the
    /// paranoia level of `out` ([`gate`]).
    pub(crate) fn run(self, p: &Prepared<'_>, ctx: &Ctx<'_>, out: &mut Findings) {
        if matches!(
            self,
            DetectorKind::Protocol | DetectorKind::Scanner | DetectorKind::Session
        ) {
            // Request-level checks read every value: no list to build or walk.
            return self.run_ungated(p, ctx, out);
        }
        p.gates(out.paranoia);
        p.gate.set(Some((self, out.paranoia)));
        self.dispatch(p, ctx, out);
        p.gate.set(None);
    }

    /// Runs this detector over every value of `p`, gates off: for the test that proves the
    /// gates change no finding, and for comparing costs.
    pub(crate) fn run_ungated(self, p: &Prepared<'_>, ctx: &Ctx<'_>, out: &mut Findings) {
        p.gate.set(None);
        self.dispatch(p, ctx, out);
    }
}

/// Configuration the request-level detectors need.
pub(crate) struct Ctx<'c> {
    pub allowed_methods: &'c [String],
    pub allowed_content_types: &'c [String],
    pub restricted_extensions: &'c [String],
}

/// Collects detections: drops those above the paranoia level or silenced by an exclusion,
/// and keeps one per rule (a rule adds its severity once per request, as in CRS).
#[derive(Debug)]
pub struct Findings {
    paranoia: u8,
    excluded: CategorySet,
    list: Vec<Detection>,
    /// Block mode's threshold: once the score reaches it the verdict cannot change, and
    /// detectors stop reading further values ([`Findings::decided`]).
    stop_at: Option<u32>,
}

impl Findings {
    pub(crate) fn new(paranoia: u8, excluded: CategorySet) -> Findings {
        Findings {
            paranoia,
            excluded,
            list: Vec::new(),
            stop_at: None,
        }
    }

    /// Block mode: detectors may stop once the score reaches `threshold`.
    pub(crate) fn stop_at(&mut self, threshold: u32) {
        self.stop_at = Some(threshold);
    }

    /// Whether the verdict is decided (block mode, threshold reached): a detector stops
    /// reading values (the windows of a long body after the one that decided). Detect and
    /// tag modes never stop (they report the full score).
    pub fn decided(&self) -> bool {
        self.stop_at.is_some_and(|t| self.score() >= t)
    }

    /// Whether a detection at `paranoia` for `category` could still count (lets detectors
    /// skip work).
    pub fn wants(&self, category: Category, paranoia: u8) -> bool {
        paranoia <= self.paranoia && !self.excluded.contains(category)
    }

    /// Reports a detection in `input`.
    pub fn hit(
        &mut self,
        input: &Input,
        category: Category,
        rule: &'static str,
        severity: Severity,
        paranoia: u8,
    ) {
        if input.excluded.contains(category) {
            return;
        }
        self.push(category, rule, severity, paranoia, || {
            input.location.to_location()
        });
    }

    /// Reports a request-level detection.
    pub fn hit_request(
        &mut self,
        category: Category,
        rule: &'static str,
        severity: Severity,
        paranoia: u8,
        source: Source,
        name: &str,
    ) {
        self.push(category, rule, severity, paranoia, || {
            Location::new(source, name)
        });
    }

    fn push(
        &mut self,
        category: Category,
        rule: &'static str,
        severity: Severity,
        paranoia: u8,
        location: impl FnOnce() -> Location,
    ) {
        if !self.wants(category, paranoia) || self.list.iter().any(|d| d.rule == rule) {
            return;
        }
        if self.list.len() >= Assessment::MAX_DETECTIONS {
            return;
        }
        self.list.push(Detection {
            category,
            rule,
            severity,
            paranoia,
            location: location(),
        });
    }

    /// Starts from detections counted earlier (the headers phase of the same request).
    pub(crate) fn seed(&mut self, earlier: &[Detection]) {
        for d in earlier {
            if !self.fired(d.rule) && self.list.len() < Assessment::MAX_DETECTIONS {
                self.list.push(d.clone());
            }
        }
    }

    /// The score of what was found so far.
    pub fn score(&self) -> u32 {
        self.list.iter().map(|d| d.severity.score()).sum()
    }

    /// Whether `rule` already fired (detectors skip further inputs for it).
    pub fn fired(&self, rule: &str) -> bool {
        self.list.iter().any(|d| d.rule == rule)
    }

    pub(crate) fn into_vec(self) -> Vec<Detection> {
        self.list
    }
}

/// Sources every injection detector scans: argument names/values, cookies, inspected headers,
/// multipart file names, raw bodies.
pub const INJECTION_SOURCES: &[Source] = &[
    Source::Arg,
    Source::ArgName,
    Source::Cookie,
    Source::CookieName,
    Source::Header,
    Source::Filename,
    Source::Body,
];

/// [`INJECTION_SOURCES`] as the mask [`crate::Prepared::inputs_from`] tests each value with.
pub(crate) const INJECTION: u16 = crate::extract::source_mask(INJECTION_SOURCES);

/// True when an input's value is a plain token (letters, digits, `-_.@`, non-ASCII) without
/// `..`: most parameter values are, and no injection shape fits in one, so detectors skip them
/// cheaply. Asked of the value's byte set (no pass over the value): case changes no answer
/// (letters are plain either way), and `..` is asked of the set first.
pub fn is_plain_input(input: &Input) -> bool {
    const PLAIN: crate::extract::ByteSet = crate::extract::ByteSet::from_ranges(&[
        (b'0', b'9'),
        (b'A', b'Z'),
        (b'a', b'z'),
        (b'-', b'.'),
        (b'_', b'_'),
        (b'@', b'@'),
        (0x80, 0xFF),
    ]);
    input.bytes.is_subset_of(&PLAIN) && !input.lower_has("..")
}

/// Builds every lazily built word table, so that the configuration pays for them (once per
/// VM, in `on_configure` through [`crate::Config::compile`]) and not the first requests that
/// happen to need each one.
pub(crate) fn build_tables() {
    for set in [
        &rce::DISTINCTIVE_SET,
        &rce::WORDLIKE_SET,
        &rce::PREFIX_SET,
        &scanner::SCANNER_SET,
        &gate::PRODUCT_SET,
        &sqli::SQL_FUNCTION_SET,
        &xss::PASSIVE_TAG_SET,
        &php::INI_DIRECTIVE_SET,
    ] {
        let _ = set.table();
    }
    sqli::lexer::build_table();
    let _ = lfi::sensitive_sets();
    let _ = java::gadget_sets();
    let _ = rce::start_filter();
}

/// A constant word list that stays data in the module.
///
/// A loop over a `const` slice of literals is, to LLVM at `opt-level = 3`, a loop with a known
/// trip count over known bytes: it unrolls it and sets up a `str::contains` searcher inline for
/// every entry. Reading the list through [`std::hint::black_box`] keeps its contents unknown to
/// the optimiser, so each use stays one loop over the table. Used for the lists searched as
/// substrings (`hay.contains(word)`, `match_indices`, `find_word`), where the search costs far
/// more than the loop; lists compared whole (`LIST.contains(&word)`, `starts_with`) stay plain
/// slices: unrolled, they become a switch on the length, small and fast (every list through a
/// table: -4.2 KB of module, +1.3% Wasm instructions per request; these only: -2 KB, +0.4%;
/// issue 13, bench/README.md "Module size and cold start").
pub struct Table<T: 'static>(&'static [T]);

/// A constant word list ([`Table`]).
pub type Words = Table<&'static str>;

impl<T> Table<T> {
    /// A table over `items`.
    pub const fn new(items: &'static [T]) -> Table<T> {
        Table(items)
    }

    /// The entries, hidden from the optimiser (see [`Table`]).
    #[inline(always)]
    pub fn iter(&self) -> std::slice::Iter<'static, T> {
        std::hint::black_box(self.0).iter()
    }

    /// The entries as a slice, hidden from the optimiser like [`Table::iter`].
    #[inline(always)]
    pub fn as_slice(&self) -> &'static [T] {
        std::hint::black_box(self.0)
    }
}

/// A fixed word list looked up in a hash table built once (instead of a linear scan of
/// hundreds of entries, or a binary search's ~9 string comparisons, for every word of every
/// value): one FNV-1a hash of the word and, almost always, one comparison.
pub struct WordSet {
    list: WordList,
    /// The slots, and the longest word's length (a longer word is not hashed).
    table: std::sync::OnceLock<(Vec<Option<&'static str>>, usize)>,
}

/// A screen of a word list: two bits of 4,096 per word (a Bloom filter), at a hash of the
/// word's length and its first two and last two bytes ([`WordBits::may_hold`]).
///
/// The gates ask such lists of nearly every value of a request (rce's program names on each
/// word value, sqli's stop words on each word of a phrase), and almost every word asked is in
/// none. Reading the word's ends and two bits costs a fixed ~30 Wasm instructions whatever the
/// word, with ~3% of absent words let through (for a list of ~400), where a filter keyed on
/// the first two bytes and the length let `user-07`, `note`, `name`, `dark` and `filter7`
/// through to the FNV hash and the lookups (hundreds of instructions each). A superset: a word
/// it holds is still looked up by the caller.
pub(crate) struct WordBits([u64; 64]);

impl WordBits {
    /// No word.
    pub(crate) const EMPTY: WordBits = WordBits([0; 64]);

    /// The two bit indexes of `w`.
    #[inline(always)]
    const fn bits(w: &[u8]) -> (usize, usize) {
        let (a, b, y, z) = match w {
            [] => (0, 0, 0, 0),
            [a] => (*a, 0, 0, *a),
            [a, b] => (*a, *b, *a, *b),
            [a, b, c] => (*a, *b, *b, *c),
            [a, b, .., y, z] => (*a, *b, *y, *z),
        };
        let x = u32::from_le_bytes([a, b, y, z]) ^ (w.len() as u32).wrapping_mul(0x9e37_79b9);
        let mut h = x.wrapping_mul(0x85eb_ca6b);
        h ^= h >> 15;
        h = h.wrapping_mul(0xc2b2_ae35);
        h ^= h >> 13;
        ((h >> 20) as usize, ((h >> 4) & 0xfff) as usize)
    }

    /// This screen with `w` added (`const`: a list known at compile time becomes data).
    pub(crate) const fn with(mut self, w: &[u8]) -> WordBits {
        let (i, j) = Self::bits(w);
        self.0[i >> 6] |= 1 << (i & 63);
        self.0[j >> 6] |= 1 << (j & 63);
        self
    }

    /// Adds `w` in place (a screen built at configure time: no 512-byte copy per word).
    pub(crate) fn insert(&mut self, w: &[u8]) {
        let (i, j) = Self::bits(w);
        for k in [i, j] {
            if let Some(x) = self.0.get_mut(k >> 6) {
                *x |= 1 << (k & 63);
            }
        }
    }

    /// [`WordBits::with`] for every word of `list`.
    pub(crate) const fn with_all(mut self, list: &[&str]) -> WordBits {
        let mut k = 0;
        while k < list.len() {
            self = self.with(list[k].as_bytes());
            k += 1;
        }
        self
    }

    /// Whether `w` may be one of the words added (false: it is none of them).
    #[inline(always)]
    pub(crate) fn may_hold(&self, w: &[u8]) -> bool {
        let (i, j) = Self::bits(w);
        let bit = |i: usize| self.0.get(i >> 6).is_some_and(|x| x & (1 << (i & 63)) != 0);
        bit(i) && bit(j)
    }
}

/// FNV-1a's starting value ([`word_hash`]).
pub(crate) const WORD_HASH_START: u64 = 0xcbf2_9ce4_8422_2325;

/// One byte of FNV-1a ([`word_hash`]).
#[inline(always)]
pub(crate) fn word_hash_step(h: u64, b: u8) -> u64 {
    (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
}

/// Where a [`WordSet`]'s words are.
enum WordList {
    Slice(&'static [&'static str]),
    /// [`pack_words!`]: length-prefixed bytes.
    Packed(&'static [u8]),
}

/// A `const` word list packed at compile time into one byte string, each word preceded by its
/// length ([`unpack`] reads it back): for lists read only to build a lookup table once (a
/// [`WordSet`], the SQL lexer's word table). The module then holds one byte per word instead
/// of a `&str`'s 8 (pointer and length) and the list itself is not in it (issue 13). Words are
/// at most 255 bytes (checked at compile time).
macro_rules! pack_words {
    ($list:expr) => {{
        const N: usize = $crate::detect::packed_len($list);
        const PACKED: [u8; N] = $crate::detect::pack::<N>($list);
        &PACKED
    }};
}
pub(crate) use pack_words;

/// The length of `list` packed by [`pack_words!`].
pub const fn packed_len(list: &[&str]) -> usize {
    let (mut n, mut i) = (0, 0);
    while i < list.len() {
        n += 1 + list[i].len();
        i += 1;
    }
    n
}

/// `list` packed ([`pack_words!`]); `N` is [`packed_len`].
pub const fn pack<const N: usize>(list: &[&str]) -> [u8; N] {
    let mut out = [0u8; N];
    let (mut i, mut at) = (0, 0);
    while i < list.len() {
        let w = list[i].as_bytes();
        assert!(w.len() <= 255, "a packed word is at most 255 bytes");
        out[at] = w.len() as u8;
        at += 1;
        let mut j = 0;
        while j < w.len() {
            out[at] = w[j];
            at += 1;
            j += 1;
        }
        i += 1;
    }
    out
}

/// The words of a [`pack_words!`] list, in order.
pub fn unpack(mut packed: &'static [u8]) -> impl Iterator<Item = &'static str> {
    std::iter::from_fn(move || {
        let (&n, rest) = packed.split_first()?;
        let (w, rest) = rest.split_at_checked(usize::from(n))?;
        packed = rest;
        // Whole `&str`s went in, so every word is UTF-8.
        std::str::from_utf8(w).ok()
    })
}

/// FNV-1a over the bytes of a word.
pub(crate) fn word_hash(w: &[u8]) -> u64 {
    w.iter().fold(WORD_HASH_START, |h, &b| word_hash_step(h, b))
}

impl WordSet {
    /// A set over `list` (hashed on first use).
    pub const fn new(list: &'static [&'static str]) -> WordSet {
        WordSet {
            list: WordList::Slice(list),
            table: std::sync::OnceLock::new(),
        }
    }

    /// A set over a [`pack_words!`] list (for lists used only through the set).
    pub const fn packed(words: &'static [u8]) -> WordSet {
        WordSet {
            list: WordList::Packed(words),
            table: std::sync::OnceLock::new(),
        }
    }

    /// Open addressing, linear probing, at most half full (so every probe sequence ends at
    /// an empty slot).
    fn table(&self) -> &(Vec<Option<&'static str>>, usize) {
        self.table.get_or_init(|| {
            let words: Vec<&'static str> = match self.list {
                WordList::Slice(list) => list.to_vec(),
                WordList::Packed(packed) => unpack(packed).collect(),
            };
            let size = (words.len() * 2).next_power_of_two().max(8);
            let longest = words.iter().map(|w| w.len()).max().unwrap_or(0);
            let mut t: Vec<Option<&'static str>> = vec![None; size];
            for w in words {
                let mut i = (word_hash(w.as_bytes()) as usize) & (size - 1);
                loop {
                    match t.get(i).copied().flatten() {
                        Some(e) if e == w => break,
                        Some(_) => i = (i + 1) & (size - 1),
                        None => {
                            if let Some(slot) = t.get_mut(i) {
                                *slot = Some(w);
                            }
                            break;
                        }
                    }
                }
            }
            (t, longest)
        })
    }

    /// Whether `w` lowercased (ASCII) is in the list, whose entries are lowercase: hashed and
    /// compared case-insensitively, without a lowercase copy of `w`.
    pub fn contains_ignore_ascii_case(&self, w: &[u8]) -> bool {
        self.probe(w, <[u8]>::eq_ignore_ascii_case, || {
            w.iter().fold(WORD_HASH_START, |h, &b| {
                word_hash_step(h, b.to_ascii_lowercase())
            })
        })
        .is_some()
    }

    /// [`WordSet::contains_ignore_ascii_case`] when the caller computed `hash`, the
    /// [`word_hash`] of `w` lowercased, while reading `w` already.
    pub fn contains_ignore_ascii_case_hashed(&self, hash: u64, w: &[u8]) -> bool {
        self.probe(w, <[u8]>::eq_ignore_ascii_case, || hash)
            .is_some()
    }

    /// Whether `w` is in the list.
    pub fn contains(&self, w: &str) -> bool {
        self.get(w).is_some()
    }

    /// The list's entry equal to `w`, if any (the `'static` word, for a caller that returns
    /// it: the list then needs no `&str` table of its own in the module).
    pub fn get(&self, w: &str) -> Option<&'static str> {
        self.probe(w.as_bytes(), <[u8]>::eq, || word_hash(w.as_bytes()))
    }

    /// The one probe loop of the lookups: from `hash()`'s slot to the first empty one, each
    /// entry compared with `w` by `same`. A word longer than every entry is refused before it
    /// is hashed (a long run without a space, a 4 KiB window of one hostile word, is no
    /// entry). Inlined into each lookup, so each keeps its own comparison inline.
    #[inline(always)]
    fn probe(
        &self,
        w: &[u8],
        same: impl Fn(&[u8], &[u8]) -> bool,
        hash: impl FnOnce() -> u64,
    ) -> Option<&'static str> {
        let (t, longest) = self.table();
        if w.len() > *longest {
            return None;
        }
        let mask = t.len().wrapping_sub(1);
        let mut i = (hash() as usize) & mask;
        while let Some(Some(e)) = t.get(i) {
            if same(e.as_bytes(), w) {
                return Some(*e);
            }
            i = (i + 1) & mask;
        }
        None
    }
}

/// True when `needle` occurs in `hay` as a whole word (ASCII alphanumerics and `_` are word
/// characters).
pub fn has_word(hay: &str, needle: &str) -> bool {
    find_word(hay, needle, 0).is_some()
}

/// Finds `needle` as a whole word in `hay`, starting at `from`.
#[inline(never)]
pub fn find_word(hay: &str, needle: &str, from: usize) -> Option<usize> {
    let hb = hay.as_bytes();
    let mut start = from;
    while let Some(at) = find_bytes(hb, needle.as_bytes(), start) {
        let before = at.checked_sub(1).and_then(|i| hb.get(i)).copied();
        let after = hb.get(at + needle.len()).copied();
        let is_word = |c: Option<u8>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_');
        if !is_word(before) && !is_word(after) {
            return Some(at);
        }
        start = at + 1;
        if start >= hay.len() {
            break;
        }
    }
    None
}

/// The first `n` bytes of `b` (all of it when shorter): the bound of a look-ahead. Out of
/// line so the bound is not a constant where the look-ahead loops: LLVM fully unrolls a loop
/// over `b.iter().take(24)` (its trip count is at most 24), one copy of the loop body per
/// position, ~1-2 KB of module code per site (issue 13's size bound).
#[inline(never)]
pub fn head(b: &[u8], n: usize) -> &[u8] {
    b.get(..n).unwrap_or(b)
}

/// The first occurrence of `needle` in `hay` at or after `from` (`None` for an empty needle).
/// Literal-needle search for `str` values: `has_lit`/`find_lit` instead of `str::contains`/
/// `str::find` with a string literal. Every `str` search builds a Two-Way searcher inline at
/// its call site: ~70 bytes of module code per site (issue 13's size bound) and, on the short
/// values detectors see, a setup that costs more than the search. These go through one
/// out-of-line [`find_bytes`] instead. Linear: the needles are constants of a few bytes.
pub trait Lit {
    /// Whether `needle` occurs in `self` (an empty needle never does).
    fn has_lit(&self, needle: &str) -> bool;
    /// The byte offset of the first `needle` in `self` (a char boundary: both are UTF-8).
    fn find_lit(&self, needle: &str) -> Option<usize>;
}

impl Lit for str {
    #[inline]
    fn has_lit(&self, needle: &str) -> bool {
        find_lit(self, needle).is_some()
    }
    #[inline]
    fn find_lit(&self, needle: &str) -> Option<usize> {
        find_lit(self, needle)
    }
}

/// Out-of-line `str` helpers: `ascii_lower` instead of `str::to_ascii_lowercase`,
/// `first_char`/`first_word`/`words` instead of `chars().next()`/`split_whitespace()`,
/// `without_whitespace` for the `chars().filter(..).collect()` copy, `split_ws_or` instead of
/// `split` with a char predicate (a type per closure); and the searches with a char or a set
/// of chars: `has_char`, `find_char`, `split_char`, `split_once_char` and their reverse kin
/// instead of `contains`/`find`/`split`/`split_once`/`rfind`/... with a `char`, `has_any`,
/// `find_any`, `split_first_any`, `rsplit_first_any`, `trim_set` and its kin with a set of
/// ASCII bytes (`b"/?#"`) instead of the same methods with an array of chars. The std methods
/// are `#[inline]`: each of their ~250 call sites in the detectors and the extraction got its
/// own copy of the UTF-8 decoder (and `char::is_whitespace`), of a `CharSearcher` or
/// `MultiCharEqSearcher` with `memchr`, or of the allocate-copy-lowercase loop, ~100-300
/// bytes of module code per site (issue 13's size bound). The searches scan bytes: every
/// call site asks for an ASCII char or set (a UTF-8 sequence's bytes are never ASCII, so
/// each offset found is a char boundary, and the results are the std methods' own; a test
/// compares them), which is also cheaper than the searchers were inline.
/// (`str::trim` stays inline: its copies are small, it runs on every header, and out of line
/// it cost 0.09% of the Wasm instructions per request for 0.2 KB.)
pub trait Outlined {
    /// `str::to_ascii_lowercase`.
    fn ascii_lower(&self) -> String;
    /// The first `char` (`self.chars().next()`; `s.starts_with(|c: char| ..)` is
    /// `s.first_char().is_some_and(|c| ..)`).
    fn first_char(&self) -> Option<char>;
    /// The first whitespace-separated word (`self.split_whitespace().next()`).
    fn first_word(&self) -> Option<&str>;
    /// `self` without its whitespace (`char::is_whitespace`), as a new `String`.
    fn without_whitespace(&self) -> String;
    /// `str::split_whitespace`, its `next` out of line ([`WsWords`]).
    fn words(&self) -> WsWords<'_>;
    /// `str::trim_matches` with a set of ASCII bytes.
    fn trim_set(&self, set: &[u8]) -> &str;
    /// `str::trim_start_matches` with a set of ASCII bytes.
    fn trim_start_set(&self, set: &[u8]) -> &str;
    /// `str::trim_end_matches` with a set of ASCII bytes.
    fn trim_end_set(&self, set: &[u8]) -> &str;
    /// `str::split` at whitespace (`char::is_whitespace`) and at the chars of `set`, its
    /// `next` out of line ([`SplitWsOr`]).
    fn split_ws_or<'a>(&'a self, set: &'a [char]) -> SplitWsOr<'a>;
    /// `str::contains` with a `char`.
    fn has_char(&self, c: char) -> bool;
    /// `str::find` with a `char`.
    fn find_char(&self, c: char) -> Option<usize>;
    /// `str::split_once` with a `char`.
    fn split_once_char(&self, c: char) -> Option<(&str, &str)>;
    /// `str::split` at a `char`, its `next` out of line ([`SplitChar`]).
    fn split_char(&self, c: char) -> SplitChar<'_>;
    /// `str::rsplit_once` with a `char`.
    fn rsplit_once_char(&self, c: char) -> Option<(&str, &str)>;
    /// `str::rfind` with a `char`.
    fn rfind_char(&self, c: char) -> Option<usize>;
    /// `self.rsplit(c).next()`: the part after the last `c` (all of `self` without one).
    fn rsplit_first(&self, c: char) -> Option<&str>;
    /// `self.matches(c).count()`.
    fn count_char(&self, c: char) -> usize;
    /// `str::contains` with a set of ASCII bytes (`contains(['a', 'b'])` is `has_any(b"ab")`).
    fn has_any(&self, set: &[u8]) -> bool;
    /// `str::find` with a set of ASCII bytes.
    fn find_any(&self, set: &[u8]) -> Option<usize>;
    /// `self.split(set).next()`: the part before the first char of `set` (all of `self`
    /// without one).
    fn split_first_any(&self, set: &[u8]) -> Option<&str>;
    /// `self.rsplit(set).next()`: the part after the last char of `set`.
    fn rsplit_first_any(&self, set: &[u8]) -> Option<&str>;
}

impl Outlined for str {
    /// Eight bytes per step ([`crate::extract::ascii_lowercase`]) and one check that the
    /// result is text (ASCII lowercasing keeps UTF-8 valid, so the check always passes; std's
    /// ASCII path reads it a word at a time): std's `to_ascii_lowercase` is a byte loop, and
    /// every value with a capital (a browser's `User-Agent` on every request) is lowercased.
    #[inline(never)]
    fn ascii_lower(&self) -> String {
        String::from_utf8(crate::extract::ascii_lowercase(self.as_bytes()))
            .unwrap_or_else(|_| self.to_ascii_lowercase())
    }
    #[inline(never)]
    fn first_char(&self) -> Option<char> {
        self.chars().next()
    }
    #[inline(never)]
    fn first_word(&self) -> Option<&str> {
        self.split_whitespace().next()
    }
    #[inline(never)]
    fn without_whitespace(&self) -> String {
        self.chars().filter(|c| !c.is_whitespace()).collect()
    }
    fn words(&self) -> WsWords<'_> {
        WsWords(self.split_whitespace())
    }
    #[inline(never)]
    fn trim_set(&self, set: &[u8]) -> &str {
        self.trim_start_set(set).trim_end_set(set)
    }
    #[inline(never)]
    fn trim_start_set(&self, set: &[u8]) -> &str {
        let n = self.bytes().take_while(|b| in_set(set, *b)).count();
        self.get(n..).unwrap_or_default()
    }
    #[inline(never)]
    fn trim_end_set(&self, set: &[u8]) -> &str {
        let n = self.bytes().rev().take_while(|b| in_set(set, *b)).count();
        self.get(..self.len() - n).unwrap_or_default()
    }
    #[inline(never)]
    fn split_ws_or<'a>(&'a self, set: &'a [char]) -> SplitWsOr<'a> {
        SplitWsOr {
            rest: Some(self),
            set,
            ascii: set.iter().fold(ASCII_WHITESPACE, |m, &c| {
                if c.is_ascii() {
                    m | 1 << (c as u32)
                } else {
                    m
                }
            }),
        }
    }
    #[inline(never)]
    fn has_char(&self, c: char) -> bool {
        self.find_char(c).is_some()
    }
    #[inline(never)]
    fn find_char(&self, c: char) -> Option<usize> {
        // An ASCII char (every call site but the U+FFFD checks): one SWAR scan.
        if c.is_ascii() {
            find_byte(self.as_bytes(), c as u8)
        } else {
            self.find(c)
        }
    }
    #[inline(never)]
    fn split_once_char(&self, c: char) -> Option<(&str, &str)> {
        let at = self.find_char(c)?;
        Some((self.get(..at)?, self.get(at + c.len_utf8()..)?))
    }
    fn split_char(&self, c: char) -> SplitChar<'_> {
        SplitChar {
            rest: Some(self),
            c,
        }
    }
    #[inline(never)]
    fn rsplit_once_char(&self, c: char) -> Option<(&str, &str)> {
        let at = self.rfind_char(c)?;
        Some((self.get(..at)?, self.get(at + c.len_utf8()..)?))
    }
    #[inline(never)]
    fn rfind_char(&self, c: char) -> Option<usize> {
        if c.is_ascii() {
            self.as_bytes().iter().rposition(|&b| b == c as u8)
        } else {
            self.rfind(c)
        }
    }
    #[inline(never)]
    fn rsplit_first(&self, c: char) -> Option<&str> {
        match self.rfind_char(c) {
            Some(at) => self.get(at + c.len_utf8()..),
            None => Some(self),
        }
    }
    #[inline(never)]
    fn count_char(&self, c: char) -> usize {
        if c.is_ascii() {
            self.bytes().filter(|&b| b == c as u8).count()
        } else {
            self.matches(c).count()
        }
    }
    #[inline(never)]
    fn has_any(&self, set: &[u8]) -> bool {
        self.find_any(set).is_some()
    }
    #[inline(never)]
    fn find_any(&self, set: &[u8]) -> Option<usize> {
        self.bytes().position(|b| in_set(set, b))
    }
    #[inline(never)]
    fn split_first_any(&self, set: &[u8]) -> Option<&str> {
        match self.find_any(set) {
            Some(at) => self.get(..at),
            None => Some(self),
        }
    }
    #[inline(never)]
    fn rsplit_first_any(&self, set: &[u8]) -> Option<&str> {
        match self.bytes().rposition(|b| in_set(set, b)) {
            Some(at) => self.get(at + 1..),
            None => Some(self),
        }
    }
}

/// The ASCII chars `char::is_whitespace` accepts (`\t`, `\n`, `\x0B`, `\x0C`, `\r`, space),
/// one bit each.
const ASCII_WHITESPACE: u128 = 0x3e00 | 1 << 32;

/// [`Outlined::split_ws_or`]: the pieces of `str::split(|c: char| c.is_whitespace() ||
/// set.contains(&c))`, empty ones and the last one included, from one `next` instead of a
/// `str::split` with its own closure type (and decoder) at each site. An ASCII byte is
/// looked up in a bit set of the separators (what the sites' `match` closures compiled to);
/// a decoded char compared with the slice cost `rce::glob_path` ~35 native instructions per
/// byte of a 4 KiB window without a separator.
#[derive(Clone)]
pub struct SplitWsOr<'a> {
    /// What is left to split (`None` once the last piece was given).
    rest: Option<&'a str>,
    set: &'a [char],
    /// The ASCII separators (whitespace and the ASCII chars of `set`), bit `c` for byte `c`.
    ascii: u128,
}

impl<'a> Iterator for SplitWsOr<'a> {
    type Item = &'a str;
    #[inline(never)]
    fn next(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        let b = s.as_bytes();
        let mut i = 0;
        while let Some(&c) = b.get(i) {
            // `i` is always a char boundary: ASCII is one byte, other chars are stepped over
            // whole.
            let (at, len) = if c.is_ascii() {
                (self.ascii >> c & 1 != 0, 1)
            } else {
                let ch = s.get(i..).and_then(|r| r.chars().next()).unwrap_or(' ');
                (ch.is_whitespace() || self.set.contains(&ch), ch.len_utf8())
            };
            if at {
                self.rest = s.get(i + len..);
                return s.get(..i);
            }
            i += len;
        }
        self.rest = None;
        Some(s)
    }
}

/// [`Outlined::words`]: `str::split_whitespace` whose `next` (a UTF-8 decoder and
/// `char::is_whitespace` on both ends of each word) is one function, not inlined at each of
/// the detectors' `words.next()`.
#[derive(Clone)]
pub struct WsWords<'a>(std::str::SplitWhitespace<'a>);

/// `[u8]::contains` with one byte out of line: inline, core's `memchr` unrolls its short-slice
/// loop at every call site.
pub trait HasByte {
    /// `self.contains(&c)`.
    fn has_byte(&self, c: u8) -> bool;
}

impl HasByte for [u8] {
    #[inline(never)]
    fn has_byte(&self, c: u8) -> bool {
        self.contains(&c)
    }
}

/// Whether byte `b` is in `set`: the sets of [`Outlined`] are ASCII bytes (`b"/?#"`), so a
/// match is a whole char and every offset found starts or ends one.
fn in_set(set: &[u8], b: u8) -> bool {
    set.contains(&b)
}

/// [`Outlined::split_char`]: `str::split` at a `char`, its `next` one function (a byte scan
/// for an ASCII char) instead of a `CharSearcher` step inlined at each call site.
pub struct SplitChar<'a> {
    rest: Option<&'a str>,
    c: char,
}

impl<'a> Iterator for SplitChar<'a> {
    type Item = &'a str;
    #[inline(never)]
    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        match rest.find_char(self.c) {
            Some(at) => {
                self.rest = rest.get(at + self.c.len_utf8()..);
                rest.get(..at)
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

impl<'a> Iterator for WsWords<'a> {
    type Item = &'a str;
    #[inline(never)]
    fn next(&mut self) -> Option<&'a str> {
        self.0.next()
    }
}

#[inline(never)]
fn find_lit(hay: &str, needle: &str) -> Option<usize> {
    find_bytes(hay.as_bytes(), needle.as_bytes(), 0)
}

/// The first `needle` in `hay` at or after `from`: the needle's first byte found eight
/// positions per step (SWAR), every hit of a word checked (last byte, then the rest) before
/// the next word is read. A hostile run of the first byte (`${${`, searched for `${ifs}` or
/// `$((`) makes every other position a candidate; a scan restarted per candidate cost a
/// set-up each. Linear in `hay` (times the needle's length, a constant of the word lists).
#[inline(never)]
pub fn find_bytes(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let hay = hay.get(from..)?;
    let (&first, _) = needle.split_first()?;
    let (&last, _) = needle.split_last()?;
    let m = needle.len();
    if m == 1 {
        return find_byte(hay, first).map(|p| p + from);
    }
    let middle = needle.get(1..m - 1).unwrap_or_default();
    // Starts `0..n` leave room for the needle.
    let n = (hay.len() + 1).checked_sub(m)?;
    let fits = |at: usize| {
        hay.get(at + m - 1) == Some(&last) && hay.get(at + 1..at + m - 1) == Some(middle)
    };
    let pattern = LO.wrapping_mul(u64::from(first));
    let mut i = 0;
    while i + 8 <= hay.len() {
        let mut hits = zero_bytes(word_at(hay, i) ^ pattern);
        while hits != 0 {
            let at = i + (hits.trailing_zeros() / 8) as usize;
            if at >= n {
                return None;
            }
            if fits(at) {
                return Some(at + from);
            }
            hits &= hits - 1;
        }
        i += 8;
    }
    while i < n {
        if hay.get(i) == Some(&first) && fits(i) {
            return Some(i + from);
        }
        i += 1;
    }
    None
}

/// A byte of ones in every byte of a word ([`find_byte`], [`find_bytes`]).
const LO: u64 = 0x0101_0101_0101_0101;

/// The high bit of every byte of a word ([`find_byte`], [`has_cr_lf_nul`]).
const HI_BITS: u64 = 0x8080_8080_8080_8080;

/// The eight bytes of `hay` at `i` as a little-endian word (zero past the end: callers read
/// in bounds).
#[inline]
fn word_at(hay: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    if let Some(b) = hay.get(i..i + 8) {
        w.copy_from_slice(b);
    }
    u64::from_le_bytes(w)
}

/// The high bit of each zero byte of `x`, exactly (no borrow from byte to byte: the low
/// seven bits are added within their byte).
#[inline]
fn zero_bytes(x: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    !(((x & LOW7).wrapping_add(LOW7)) | x | LOW7)
}

/// The index of the first `c` in `hay`: what `hay.iter().position(|&x| x == c)` finds, eight
/// bytes per step (SWAR: a word with a zero byte where `c` is). On Wasm there is no SIMD
/// `memchr`, and a byte loop is ~6 instructions per byte; every needle search of every
/// window of a hostile body starts with this scan (a `${` run searched for `(){` or `$((`).
pub fn find_byte(hay: &[u8], c: u8) -> Option<usize> {
    let pattern = LO.wrapping_mul(u64::from(c));
    let mut chunks = hay.chunks_exact(8);
    let mut base = 0;
    for chunk in chunks.by_ref() {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let x = u64::from_le_bytes(w) ^ pattern;
        // A zero byte of `x` sets its high bit here; borrows only run upwards from a
        // lower zero byte, so the lowest set bit is the first match (exact, little endian).
        let found = x.wrapping_sub(LO) & !x & HI_BITS;
        if found != 0 {
            return Some(base + (found.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&x| x == c)
        .map(|p| base + p)
}

/// `a == b`, eight bytes per step. On Wasm a slice comparison is a call to the C library's
/// `memcmp`, a byte loop of about eighteen instructions a byte: comparing a 100-byte
/// `User-Agent` with the one remembered from the last request cost ~1,800 instructions;
/// this costs about a tenth of that.
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut x, mut y) = (a.chunks_exact(8), b.chunks_exact(8));
    for (p, q) in x.by_ref().zip(y.by_ref()) {
        let (mut u, mut v) = ([0u8; 8], [0u8; 8]);
        u.copy_from_slice(p);
        v.copy_from_slice(q);
        if u64::from_le_bytes(u) != u64::from_le_bytes(v) {
            return false;
        }
    }
    x.remainder().iter().zip(y.remainder()).all(|(p, q)| p == q)
}

/// Whether `hay` holds `c` twice in a row (`--`): what `find_bytes(hay, &[c, c], 0)` answers,
/// eight bytes per step without a candidate check per `c`. The gates ask it of every value
/// holding a `-` (`SKU-000-01`, `value-3-abcdef`, a date): each word's bytes equal to `c`
/// are marked exactly ([`zero_bytes`]), a pair inside the word is a mark next to a mark,
/// and a pair across two words is the last byte of one and the first of the next.
pub fn has_pair(hay: &[u8], c: u8) -> bool {
    let pattern = LO.wrapping_mul(u64::from(c));
    let mut chunks = hay.chunks(8);
    let mut carry = false;
    for chunk in chunks.by_ref() {
        // Past the end: bytes that are not `c`.
        let mut w = [!c; 8];
        if let Some(head) = w.get_mut(..chunk.len()) {
            head.copy_from_slice(chunk);
        }
        let marks = zero_bytes(u64::from_le_bytes(w) ^ pattern);
        if marks & (marks >> 8) != 0 || (carry && marks & 0x80 != 0) {
            return true;
        }
        carry = marks >> 63 != 0;
    }
    false
}

/// Whether `b` holds a CR, LF or NUL byte: what `b.iter().any(..)` over those three finds,
/// eight bytes per step. Every header value of every request is read with it (`protocol`), and no ordinary
/// one holds a byte below 0x0E: each word is first asked whether any of its bytes is (the
/// SWAR "has less" test: no false negative, since the lowest such byte borrows from no lower
/// byte), and only a word that may is read byte by byte. On Wasm a byte loop costs about six
/// instructions a byte; this about one. The last 1-7 bytes are one more word, padded with
/// spaces (no CR, LF or NUL; the byte loop over them was most of the cost of a short value).
pub fn has_cr_lf_nul(b: &[u8]) -> bool {
    let exact = |c: &[u8]| c.iter().any(|&c| matches!(c, b'\r' | b'\n' | 0));
    let may = |c: &[u8]| {
        let mut w = [b' '; 8];
        if let Some(head) = w.get_mut(..c.len()) {
            head.copy_from_slice(c);
        }
        let x = u64::from_le_bytes(w);
        x.wrapping_sub(LO.wrapping_mul(0x0E)) & !x & HI_BITS != 0
    };
    let mut chunks = b.chunks_exact(8);
    for chunk in chunks.by_ref() {
        if may(chunk) && exact(chunk) {
            return true;
        }
    }
    let rest = chunks.remainder();
    !rest.is_empty() && may(rest) && exact(rest)
}

/// The offsets of the ASCII byte `c` in `s`: what `s.match_indices(c)` finds, without a
/// `CharSearcher` step per match (a `memchr` set-up and a `memcmp` call each: in a run of
/// `<` or `:` in a hostile body that is one per byte).
pub fn byte_offsets(s: &str, c: u8) -> impl Iterator<Item = usize> + '_ {
    let b = s.as_bytes();
    let mut from = 0;
    std::iter::from_fn(move || {
        let p = from + find_byte(b.get(from..)?, c)?;
        from = p + 1;
        Some(p)
    })
}

/// The offsets of the non-overlapping occurrences of `needle` in `hay`, left to right: what
/// `hay.match_indices(needle)` finds, through [`find_bytes`] instead of a Two-Way searcher
/// step per match (a `${` run in a hostile body is one match per two bytes).
pub fn lit_offsets<'a>(hay: &'a str, needle: &'a str) -> impl Iterator<Item = usize> + 'a {
    let mut from = 0;
    std::iter::from_fn(move || {
        let p = find_bytes(hay.as_bytes(), needle.as_bytes(), from)?;
        from = p + needle.len();
        Some(p)
    })
}

/// Skips ASCII whitespace and C-style / SQL / shell comments after `i` in `b`; returns the
/// index of the next significant byte. An unclosed `/*` or `#` comment runs to the end.
/// Callers that skip from many positions of one value use one [`Skipper`] instead, so the
/// search for a comment's end is not repeated (linear time).
pub fn skip_space_comments(b: &[u8], i: usize) -> usize {
    Skipper::new(b).skip(i)
}

/// [`skip_space_comments`] over one value, remembering where the last searched comment ended.
///
/// Detectors skip from many positions of one value (after every quote, every function name);
/// without memory each unclosed `/*` or `#` (`'/*(` repeated) would rescan to the end of the
/// value, quadratic in its length. A search for `*/` (or a newline) that starts between the
/// previous start and the end it found (or anywhere after the previous start when none was
/// found) has the same answer, so a left-to-right scan reads each byte a bounded number of times.
pub struct Skipper<'a> {
    b: &'a [u8],
    close: NextMemo,
    newline: NextMemo,
}

/// The last search for one needle: (started at, found at).
struct NextMemo(std::cell::Cell<(usize, Option<usize>)>);

impl NextMemo {
    fn new() -> NextMemo {
        NextMemo(std::cell::Cell::new((usize::MAX, None)))
    }

    fn find(&self, from: usize, search: impl FnOnce(usize) -> Option<usize>) -> Option<usize> {
        let (start, found) = self.0.get();
        if from >= start && found.is_none_or(|f| from <= f) {
            return found;
        }
        let found = search(from);
        self.0.set((from, found));
        found
    }
}

impl<'a> Skipper<'a> {
    /// A skipper over `b`.
    pub fn new(b: &'a [u8]) -> Skipper<'a> {
        Skipper {
            b,
            close: NextMemo::new(),
            newline: NextMemo::new(),
        }
    }

    /// The first `*/` at or after `from`.
    fn comment_close(&self, from: usize) -> Option<usize> {
        let b = self.b;
        self.close.find(from, |from| {
            b.get(from..)
                .and_then(|r| r.windows(2).position(|w| w == b"*/"))
                .map(|p| from + p)
        })
    }

    /// The first newline at or after `from`.
    pub fn newline(&self, from: usize) -> Option<usize> {
        let b = self.b;
        self.newline.find(from, |from| {
            b.get(from..)
                .and_then(|r| r.iter().position(|&c| c == b'\n'))
                .map(|p| from + p)
        })
    }

    /// The index of the next significant byte at or after `i` (see [`skip_space_comments`]).
    pub fn skip(&self, mut i: usize) -> usize {
        let b = self.b;
        loop {
            match (b.get(i), b.get(i + 1)) {
                (Some(c), _) if c.is_ascii_whitespace() || *c == 0x0b => i += 1,
                (Some(b'/'), Some(b'*')) => {
                    i = self.comment_close(i + 2).map_or(b.len(), |p| p + 2);
                }
                (Some(b'#'), _) => i = self.newline(i).map_or(b.len(), |p| p + 1),
                _ => return i,
            }
        }
    }
}

/// One step of Marsaglia's xorshift64 generator: the randomized equivalence tests of the
/// detectors draw their cases from it, so every run and machine sees the same cases (a
/// failure reproduces from the seed in the test).
#[cfg(test)]
pub(crate) fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// Bytes ordered from the most to the least common in URL paths and parameter values (a
/// rough order: only the cost of [`KeyedSets`] depends on it, never an answer). A byte not
/// listed counts as rarer than every listed one.
const BY_FREQUENCY: &[u8] = b"/.e-tasiornlcdmpuh0123456789_gfbywkvxzjq";

/// A word list screened by byte set without walking the list: each word is filed under its
/// rarest byte ([`BY_FREQUENCY`]), its key, and a text is asked only for the words whose key
/// it holds, then for each of those whether it holds all the word's bytes. Most texts lack
/// most keys (`/healthz` holds two of the ~20 keys of lfi's 53 names), so a path costs a test
/// per key instead of a set test per word (round 12 measured the walk at ~55 Wasm
/// instructions a word). Which words are candidates does not depend on the key choice: a
/// word whose bytes are all in the text has its key there too (`keyed_sets_are_the_subset_test`).
pub(crate) struct KeyedSets {
    /// The byte set of each word, in list order.
    sets: Vec<ByteSet>,
    /// The distinct keys, each with its words: `order[from..to]` (indexes into `sets`).
    keys: Vec<(u8, u16, u16)>,
    /// Word indexes, the empty words (no key: in every text) first, then by key.
    order: Vec<u16>,
    /// How many empty words open `order`.
    empty: u16,
}

impl KeyedSets {
    /// The screen of `words` (at most `u16::MAX`). Built by counting (no sort, no growing
    /// vector: issue 13's size bound; it runs once per configuration).
    pub(crate) fn new(words: &[&str]) -> KeyedSets {
        // Each byte's rank, looked up once (a search of the order per byte of every word
        // cost ~110,000 Wasm instructions of configure time).
        let mut ranks = [u8::MAX; 256];
        for (r, &c) in BY_FREQUENCY.iter().enumerate() {
            if let Some(slot) = ranks.get_mut(usize::from(c)) {
                *slot = r as u8;
            }
        }
        let rank = |c: u8| ranks.get(usize::from(c)).copied().unwrap_or(u8::MAX);
        // Bucket 0: empty words; bucket `k + 1`: the words keyed `k`, the rarest byte (the
        // last of equals: any choice is exact).
        let bucket: Vec<usize> = words
            .iter()
            .map(|w| {
                w.bytes()
                    .max_by_key(|&c| rank(c))
                    .map_or(0, |k| usize::from(k) + 1)
            })
            .collect();
        let mut start = [0u16; 258];
        for &k in &bucket {
            if let Some(n) = start.get_mut(k + 1) {
                *n += 1;
            }
        }
        for k in 1..start.len() {
            start[k] += start[k - 1];
        }
        let mut order = vec![0u16; words.len()];
        let mut next = start;
        for (i, &k) in bucket.iter().enumerate() {
            if let Some(n) = next.get_mut(k) {
                if let Some(slot) = order.get_mut(usize::from(*n)) {
                    *slot = i as u16;
                }
                *n += 1;
            }
        }
        let distinct = (1..257).filter(|&k| start[k + 1] > start[k]).count();
        let mut keys = vec![(0u8, 0u16, 0u16); distinct];
        let mut slots = keys.iter_mut();
        for k in 1..257 {
            if start[k + 1] > start[k] {
                if let Some(slot) = slots.next() {
                    *slot = ((k - 1) as u8, start[k], start[k + 1]);
                }
            }
        }
        KeyedSets {
            sets: words.iter().map(|w| ByteSet::of(w.as_bytes())).collect(),
            keys,
            order,
            empty: start[1],
        }
    }

    /// Whether `f` holds for one of the words whose bytes are all in `set` (their indexes;
    /// asked in key order, not list order). Out of line, `f` behind a reference: one copy of
    /// the walk for every list (issue 13's size bound).
    #[inline(never)]
    pub(crate) fn any_candidate(&self, set: &ByteSet, f: &mut dyn FnMut(usize) -> bool) -> bool {
        let empty = self
            .order
            .get(..usize::from(self.empty))
            .unwrap_or_default();
        if empty.iter().any(|&i| f(usize::from(i))) {
            return true;
        }
        for &(key, from, to) in &self.keys {
            if !set.has(key) {
                continue;
            }
            for &i in self
                .order
                .get(usize::from(from)..usize::from(to))
                .unwrap_or_default()
            {
                let i = usize::from(i);
                if self.sets.get(i).is_some_and(|s| s.is_subset_of(set)) && f(i) {
                    return true;
                }
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A [`WordBits`] screen holds every word added (generated words of every length from 0,
    /// so each arm of its hash's ends is read), and lets few others through.
    #[test]
    fn word_bits_hold_every_word_added() {
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut words: Vec<Vec<u8>> = Vec::new();
        for n in 0..400 {
            let w: Vec<u8> = (0..n % 13)
                .map(|_| {
                    state = xorshift(state);
                    b"abcdefghijklmnopqrstuvwxyz0123456789-_."[(state >> 40) as usize % 39]
                })
                .collect();
            words.push(w);
        }
        let bits = words.iter().fold(WordBits::EMPTY, |b, w| b.with(w));
        assert!(words.iter().all(|w| bits.may_hold(w)));
        let others = (0..10_000u32)
            .filter(|n| bits.may_hold(format!("zz{n}q").as_bytes()))
            .count();
        assert!(others < 1_000, "{others}");
    }

    /// The out-of-line `str` helpers answer as the `std` calls they replace, for ASCII and
    /// non-ASCII separators, on random strings over a small alphabet (separators, multibyte
    /// chars, empty pieces at both ends).
    #[test]
    fn outlined_char_helpers_match_std() {
        let alphabet = [
            'a', '/', ';', ':', '=', ' ', '\u{e9}', '\u{FFFD}', '.', '\0',
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for n in 0..20_000 {
            let len = n % 24;
            let s: String = (0..len)
                .map(|_| {
                    seed = xorshift(seed);
                    alphabet[(seed >> 11) as usize % alphabet.len()]
                })
                .collect();
            for c in alphabet {
                assert_eq!(s.has_char(c), s.contains(c), "{s:?} {c:?}");
                assert_eq!(s.find_char(c), s.find(c), "{s:?} {c:?}");
                assert_eq!(s.rfind_char(c), s.rfind(c), "{s:?} {c:?}");
                assert_eq!(s.split_once_char(c), s.split_once(c), "{s:?} {c:?}");
                assert_eq!(s.rsplit_once_char(c), s.rsplit_once(c), "{s:?} {c:?}");
                assert_eq!(s.rsplit_first(c), s.rsplit(c).next(), "{s:?} {c:?}");
                assert_eq!(s.count_char(c), s.matches(c).count(), "{s:?} {c:?}");
                assert!(s.split_char(c).eq(s.split(c)), "{s:?} {c:?}");
            }
            let sets: [&[u8]; 3] = [b"/?#", b"/\\", b"; \0"];
            for bytes in sets {
                let set: &[char] = &bytes.iter().map(|&b| char::from(b)).collect::<Vec<_>>();
                assert_eq!(s.has_any(bytes), s.contains(set), "{s:?} {set:?}");
                assert_eq!(s.find_any(bytes), s.find(set), "{s:?} {set:?}");
                assert_eq!(
                    s.split_first_any(bytes),
                    s.split(set).next(),
                    "{s:?} {set:?}"
                );
                assert_eq!(
                    s.rsplit_first_any(bytes),
                    s.rsplit(set).next(),
                    "{s:?} {set:?}"
                );
                assert_eq!(s.trim_set(bytes), s.trim_matches(set), "{s:?} {set:?}");
                assert_eq!(
                    s.trim_start_set(bytes),
                    s.trim_start_matches(set),
                    "{s:?} {set:?}"
                );
                assert_eq!(
                    s.trim_end_set(bytes),
                    s.trim_end_matches(set),
                    "{s:?} {set:?}"
                );
            }
            for b in [b'a', b'/', 0xC3, 0] {
                assert_eq!(
                    s.as_bytes().has_byte(b),
                    s.as_bytes().contains(&b),
                    "{s:?} {b}"
                );
            }
        }
    }

    #[test]
    fn word_sets() {
        static SET: WordSet = WordSet::new(&["cat", "ls", "", "apt-get", "cat", "python3"]);
        for w in ["cat", "ls", "", "apt-get", "python3"] {
            assert!(SET.contains(w), "{w}");
        }
        for w in ["ca", "cats", "l", "python", "apt", "x"] {
            assert!(!SET.contains(w), "{w}");
        }
        static EMPTY: WordSet = WordSet::new(&[]);
        assert!(!EMPTY.contains("") && !EMPTY.contains("a"));
    }

    #[test]
    fn word_sets_ignoring_ascii_case() {
        // The three lookups share one probe: exact, case-insensitive, and case-insensitive
        // with the caller's hash (which must be the hash of the lowercased word).
        static SET: WordSet = WordSet::new(&["curl", "wget", "python3", ""]);
        let lower_hash = |w: &[u8]| word_hash(&w.to_ascii_lowercase());
        for w in ["curl", "CURL", "wGeT", "Python3", ""] {
            let b = w.as_bytes();
            assert!(SET.contains_ignore_ascii_case(b), "{w}");
            assert!(
                SET.contains_ignore_ascii_case_hashed(lower_hash(b), b),
                "{w}"
            );
            assert_eq!(SET.contains(w), w == w.ascii_lower(), "{w}");
        }
        // Longer than every entry: refused before hashing; the others probe and miss.
        for w in ["curls", "pythonthree", "cur", "wget!", "CURLCURL"] {
            let b = w.as_bytes();
            assert!(!SET.contains_ignore_ascii_case(b), "{w}");
            assert!(
                !SET.contains_ignore_ascii_case_hashed(lower_hash(b), b),
                "{w}"
            );
            assert!(!SET.contains(w), "{w}");
        }
    }

    /// A packed list reads back word for word (empty and non-ASCII words too), and a set over
    /// it answers as the set over the slice does.
    #[test]
    fn packed_words() {
        const LIST: &[&str] = &["cat", "", "apt-get", "é€", "cat", "python3"];
        assert_eq!(unpack(pack_words!(LIST)).collect::<Vec<_>>(), LIST);
        assert_eq!(unpack(pack_words!(&[])).count(), 0);
        static PACKED: WordSet = WordSet::packed(pack_words!(LIST));
        static SLICE: WordSet = WordSet::new(LIST);
        for w in [
            "cat", "", "apt-get", "é€", "python3", "ca", "é", "python", "x",
        ] {
            assert_eq!(PACKED.contains(w), SLICE.contains(w), "{w}");
        }
        assert_eq!(PACKED.table().0.len(), SLICE.table().0.len());
    }

    /// `find_byte` (eight bytes per step) finds what the byte loop it replaced finds, and
    /// `find_bytes` what a naive window search finds, at every start offset: bytes drawn so
    /// that matches, near-matches (a byte one bit away, 0x80 and 0x00 around a borrow) and
    /// runs fall at every position of a word and across word boundaries.
    #[test]
    fn byte_search_matches_naive() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed = crate::detect::xorshift(seed);
            seed
        };
        let alphabet = [
            b'$',
            b'{',
            b'%',
            b'a',
            b'A',
            0x00,
            0x80,
            0x81,
            0xff,
            0x7f,
            0x24 ^ 1,
        ];
        for round in 0..3000 {
            let len = (next() % 48) as usize;
            let hay: Vec<u8> = (0..len)
                .map(|_| {
                    if round % 2 == 0 {
                        alphabet[(next() % alphabet.len() as u64) as usize]
                    } else {
                        next() as u8
                    }
                })
                .collect();
            for &c in &alphabet {
                for from in 0..=len {
                    let r = &hay[from..];
                    assert_eq!(
                        find_byte(r, c),
                        r.iter().position(|&x| x == c),
                        "{hay:?} {c}"
                    );
                }
            }
            for needle in [
                &b"${"[..],
                b"$",
                b"{%a",
                b"\x80\x00",
                b"aA",
                b"\xff\xff\xff",
                b"${%}",
                b"$a$a$a$a$a",
                b"\x00\x80\x7f\xff\x00",
            ] {
                for from in 0..=len + 1 {
                    let want = hay.get(from..).and_then(|r| {
                        r.windows(needle.len())
                            .position(|w| w == needle)
                            .map(|p| p + from)
                    });
                    assert_eq!(find_bytes(&hay, needle, from), want, "{hay:?} {needle:?}");
                }
            }
        }
    }

    /// `same_bytes` is `==` on slices of every length up to three words, equal or differing
    /// at any one byte.
    #[test]
    fn same_bytes_is_slice_equality() {
        let base: Vec<u8> = (0u8..30).map(|i| i.wrapping_mul(37)).collect();
        for n in 0..=base.len() {
            let a = &base[..n];
            assert!(same_bytes(a, a));
            // Another copy of the same bytes (not the same place).
            let copy = a.to_vec();
            assert!(same_bytes(a, &copy));
            for k in 0..n {
                let mut b = a.to_vec();
                b[k] ^= 0x20;
                assert!(!same_bytes(a, &b), "{n} {k}");
            }
            if n > 0 {
                assert!(!same_bytes(a, &a[..n - 1]));
            }
        }
    }

    /// `has_cr_lf_nul` finds what the byte loop finds, at every length and position, with
    /// bytes around the test's borders (0x0D, 0x0E, 0x8D, 0x80, 0xFF) next to each other.
    #[test]
    fn cr_lf_nul_matches_the_byte_loop() {
        let alphabet = [
            b'a', 0x00, b'\n', b'\r', 0x09, 0x0E, 0x0F, 0x8D, 0x80, 0xFF, 0x01, b' ',
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..20_000 {
            seed = xorshift(seed);
            let len = (seed % 40) as usize;
            let b: Vec<u8> = (0..len)
                .map(|k| {
                    seed = xorshift(seed);
                    if round % 3 == 0 && k % 9 != 4 {
                        b'a'
                    } else {
                        alphabet[(seed % alphabet.len() as u64) as usize]
                    }
                })
                .collect();
            let want = b.iter().any(|&c| matches!(c, b'\r' | b'\n' | 0));
            assert_eq!(has_cr_lf_nul(&b), want, "{b:?}");
        }
    }

    /// `has_pair` answers as `find_bytes` does for the two-byte needle, at every length and
    /// alignment, with the pair inside a word and across two.
    #[test]
    fn pairs_match_find_bytes() {
        let mut seed = 0x51f1_5eed_0bad_cafeu64;
        for round in 0..20_000 {
            seed = crate::detect::xorshift(seed);
            let len = (seed % 30) as usize;
            let hay: Vec<u8> = (0..len)
                .map(|_| {
                    seed = crate::detect::xorshift(seed);
                    match (seed >> 8) % 5 {
                        0 | 1 => b'-',
                        2 => b'a',
                        3 => !b'-',
                        _ => (seed >> 16) as u8,
                    }
                })
                .collect();
            for c in [b'-', b'a', 0u8, 0xFF] {
                assert_eq!(
                    has_pair(&hay, c),
                    find_bytes(&hay, &[c, c], 0).is_some(),
                    "{hay:?} {c} {round}"
                );
            }
        }
    }

    /// `lit_offsets` and `byte_offsets` find what `match_indices` finds (non-overlapping,
    /// left to right), on runs where matches overlap.
    #[test]
    fn offsets_match_match_indices() {
        for hay in [
            "", "${${${", "{{{{{", "aaaa", "a<b<<c", "x__y___z", "..../..", "é<é",
        ] {
            for needle in ["${", "{{", "aa", "<", "__", "..", "x", "zz"] {
                let want: Vec<usize> = hay.match_indices(needle).map(|(p, _)| p).collect();
                assert_eq!(
                    lit_offsets(hay, needle).collect::<Vec<_>>(),
                    want,
                    "{hay} {needle}"
                );
                if let [c] = needle.as_bytes() {
                    assert_eq!(byte_offsets(hay, *c).collect::<Vec<_>>(), want);
                }
            }
        }
    }

    /// The plain-token rule written over the value's bytes: the reference
    /// `is_plain_input` must agree with.
    fn is_plain(v: &str) -> bool {
        v.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@') || b >= 0x80
        }) && !v.contains("..")
    }

    /// `is_plain_input` answers as `is_plain` does on the value.
    #[test]
    fn plain_from_the_byte_set() {
        use crate::extract::{Input, Place, Text};
        use crate::model::{CategorySet, Source};
        for v in [
            "",
            "abc",
            "ABC-d_e.f@g",
            "a..b",
            "a.b",
            "caf\u{e9}",
            "a b",
            "a/b",
            "1;2",
            "x%",
            "Z`",
            "a[",
            "{",
            "~",
            "^",
            "\u{7f}",
            "a:b",
            "@@",
            "_-_",
        ] {
            let input = Input::new(
                Place::new(Source::Arg, Text::from("q")),
                Text::from(v),
                Text::from(v),
                CategorySet::EMPTY,
            );
            assert_eq!(is_plain_input(&input), is_plain(v), "{v:?}");
        }
        for c in 0u8..128 {
            let v = String::from(char::from(c));
            let input = Input::new(
                Place::new(Source::Arg, Text::from("q")),
                Text::from(v.as_str()),
                Text::from(v.as_str()),
                CategorySet::EMPTY,
            );
            assert_eq!(is_plain_input(&input), is_plain(&v), "{c}");
        }
    }

    #[test]
    fn words() {
        assert!(has_word("a system(", "system"));
        assert!(!has_word("filesystem(", "system"));
        assert_eq!(find_word("xx ab ab", "ab", 4), Some(6));
    }

    /// `split_ws_or` and the set trims (ASCII sets) give what std's `split` with the predicate and
    /// `trim_*_matches` with the slice give: every string of up to 4 symbols over ASCII
    /// separators and whitespace, Unicode whitespace, other non-ASCII chars and a letter,
    /// with sets of ASCII chars, of a non-ASCII char, of both and none.
    #[test]
    fn outlined_splits_and_trims_are_std() {
        let symbols = [
            "a", ";", " ", "\t", "|", "\u{a0}", "\u{3000}", "é", "中", "\u{0}",
        ];
        let sets: [&[char]; 5] = [&[], &[';'], &[';', '|', 'é'], &['中'], &['a', '\u{0}']];
        let mut strings = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..4 {
            last = last
                .iter()
                .flat_map(|s| symbols.iter().map(move |c| format!("{s}{c}")))
                .collect();
            strings.extend(last.iter().cloned());
        }
        for set in sets {
            for s in &strings {
                let ours: Vec<&str> = s.split_ws_or(set).collect();
                let std: Vec<&str> = s
                    .split(|c: char| c.is_whitespace() || set.contains(&c))
                    .collect();
                assert_eq!(ours, std, "{s:?} {set:?}");
                // The set trims take ASCII byte sets (every call site's set is ASCII).
                if set.iter().all(char::is_ascii) {
                    let bytes: Vec<u8> = set.iter().map(|&c| c as u8).collect();
                    assert_eq!(s.trim_set(&bytes), s.trim_matches(set), "{s:?} {set:?}");
                    assert_eq!(s.trim_start_set(&bytes), s.trim_start_matches(set), "{s:?}");
                    assert_eq!(s.trim_end_set(&bytes), s.trim_end_matches(set), "{s:?}");
                }
            }
        }
    }

    #[test]
    fn comments_skipped() {
        let b = b"  /* x */ #c\n(";
        assert_eq!(b.get(skip_space_comments(b, 0)), Some(&b'('));
        assert_eq!(skip_space_comments(b"/* open", 0), 7);
    }
}

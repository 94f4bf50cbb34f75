//! A forgiving SQL tokenizer in the spirit of libinjection: it reads any text as if it were a
//! fragment of SQL (MySQL, PostgreSQL, MSSQL, Oracle, SQLite dialects mixed), starting either
//! outside a string or inside a single- or double-quoted string that the surrounding query
//! opened. Each token gets a one-letter type; the fingerprint rules in `super` match shapes
//! over these types.

use crate::detect::Outlined as _;

/// The quote context the injected text starts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// Unquoted (numeric parameter, or the query itself).
    None,
    /// Inside `'...'`.
    Single,
    /// Inside `"..."`.
    Double,
    /// Inside a MySQL quoted identifier `` `...` `` (a column or table name the
    /// application quotes: `` ORDER BY `$col` ``).
    Backtick,
}

/// Token types (the letters libinjection popularised).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// String literal (`s`).
    Str,
    /// Number, `true`/`false`/`null` (`n`).
    Num,
    /// `@var`, `@@var`, `:var` (`v`).
    Var,
    /// Statement keyword: select, insert, drop... (`E`).
    Stmt,
    /// `union` (`U`).
    Union,
    /// `order by`, `group by`, `having`, `limit` (`B`).
    Group,
    /// Other SQL keyword: from, where, into, values... (`k`).
    Keyword,
    /// Logic operator: and, or, xor, `&&`, `||` (`&`).
    Logic,
    /// Other operator (`o`).
    Op,
    /// Known function, or bareword directly followed by `(` (`f`).
    Func,
    /// Unknown identifier (`b`).
    Bare,
    /// Comment (`c`).
    Comment,
    /// `(`.
    LParen,
    /// `)`.
    RParen,
    /// `,`.
    Comma,
    /// `;`.
    Semi,
}

/// A token's text: a word of the lexer's tables or a fixed marker, or a word only the value
/// spells (an identifier) borrowed from a lowercase input (no allocation per token); a word
/// of an input with capitals is lowercased into its own copy.
#[derive(Debug, Clone)]
pub enum Text<'a> {
    /// A table word, operator or marker.
    Static(&'static str),
    /// A lowercase word of the input.
    Input(&'a str),
    /// A word of the input, lowercased.
    Owned(String),
}

impl Text<'_> {
    /// The text.
    pub fn as_str(&self) -> &str {
        match self {
            Text::Static(s) => s,
            Text::Input(s) => s,
            Text::Owned(s) => s,
        }
    }
}

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Text<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Text<'_> {}

impl PartialEq<&str> for Text<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<str> for Text<'_> {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

/// One token; `text` is lowercase for words, empty for punctuation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token<'a> {
    /// The type.
    pub kind: Kind,
    /// Lowercase word for keywords, functions and barewords (for rule lookups).
    pub text: Text<'a>,
    /// For strings: the closing quote was missing (the query's own quote will close it).
    pub open: bool,
}

const STATEMENTS: &[&str] = &[
    "select", "insert", "update", "delete", "drop", "create", "alter", "truncate", "exec",
    "execute", "declare", "shutdown", "merge", "grant", "revoke", "waitfor", "dbcc", "backup",
    "replace",
];

const KEYWORDS: &[&str] = &[
    "from",
    "where",
    "into",
    "values",
    "table",
    "database",
    "schema",
    "as",
    "on",
    "join",
    "case",
    "when",
    "then",
    "else",
    "end",
    "exists",
    "distinct",
    "all",
    "top",
    "delay",
    "outfile",
    "dumpfile",
    "collate",
    "procedure",
    "column",
    "set",
    "inner",
    "outer",
    "left",
    "right",
    "cross",
    "natural",
    "straight_join",
    "desc",
    "asc",
    "offset",
    "fetch",
    "rows",
    "only",
    "begin",
    "load_file",
    "information_schema",
    "sysobjects",
    "syscolumns",
    "tables",
    "columns",
    "use",
    "cast",
    "convert",
    "intersect",
    "except",
    "minus",
    "returning",
    "with",
    "recursive",
    "handler",
    "open",
    "character",
    "charset",
    "binary",
    "escape",
    "for",
];

const OPERATOR_WORDS: &[&str] = &[
    "like", "rlike", "regexp", "sounds", "is", "in", "between", "div", "mod", "not", "ilike",
    "similar", "glob", "match", "against", "notnull", "isnull",
];

/// Functions frequently used in injections; a bareword followed by `(` is a function too.
const FUNCTIONS: &[&str] = &[
    "sleep",
    "benchmark",
    "pg_sleep",
    "load_file",
    "extractvalue",
    "updatexml",
    "char",
    "chr",
    "concat",
    "concat_ws",
    "group_concat",
    "substring",
    "substr",
    "mid",
    "ascii",
    "ord",
    "version",
    "database",
    "user",
    "current_user",
    "system_user",
    "session_user",
    "schema",
    "count",
    "length",
    "hex",
    "unhex",
    "md5",
    "sha1",
    "if",
    "ifnull",
    "nullif",
    "iif",
    "coalesce",
    "cast",
    "convert",
    "now",
    "sysdate",
    "rand",
    "floor",
    "exp",
    "name_const",
    "make_set",
    "elt",
    "field",
    "instr",
    "locate",
    "position",
    "left",
    "right",
    "lower",
    "upper",
    "xp_cmdshell",
    "utl_inaddr",
    "utl_http",
    "dbms_pipe",
    "dbms_lock",
    "to_char",
    "json_keys",
    "json_extract",
    "string_to_array",
    "unnest",
    "array_agg",
    "string_agg",
    "xmltype",
    "sys_eval",
    "sys_exec",
    "load_extension",
    "randomblob",
    "sqlite_version",
    "pg_read_file",
    "lo_import",
    "current_database",
    "db_name",
    "user_name",
    "host_name",
    "suser_name",
    "is_srvrolemember",
    "openrowset",
    "opendatasource",
    "waitfor",
];

/// Maximum tokens produced for one value. Every token consumes at least one byte and the
/// engine hands detectors at most [`crate::extract::WINDOW`] bytes at a time, so inspected
/// values are never cut by it (no silent cap); it only bounds direct callers.
pub const MAX_TOKENS: usize = crate::extract::WINDOW + 1;

/// Builds the lexer's tables now (see [`crate::detect::build_tables`]).
pub(crate) fn build_table() {
    let _ = (word_filter(), kind_table(), stop_words());
}

/// Every listed word with its kind, in list order (statements, operator words, keywords,
/// functions). A word in several lists appears once per list; [`kind_table`] keeps the first
/// (so it has the first list's kind, as the old chain of lookups did). Read only at
/// configure time, to build [`word_filter`] and [`kind_table`]: lookups go through those.
fn word_table() -> &'static [(&'static str, Kind)] {
    static TABLE: std::sync::OnceLock<Vec<(&'static str, Kind)>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut v: Vec<(&'static str, Kind)> = Vec::new();
        // The lists packed (`pack_words!`): read only here.
        let lists: [(&'static [u8], Kind); 4] = [
            (crate::detect::pack_words!(STATEMENTS), Kind::Stmt),
            (crate::detect::pack_words!(OPERATOR_WORDS), Kind::Op),
            (crate::detect::pack_words!(KEYWORDS), Kind::Keyword),
            (crate::detect::pack_words!(FUNCTIONS), Kind::Func),
        ];
        for (list, kind) in lists {
            v.extend(crate::detect::unpack(list).map(|w| (w, kind)));
        }
        v
    })
}

/// The index of a word in [`word_filter`]: its first two bytes, five bits each.
fn filter_key(w: &[u8]) -> usize {
    let bits = |i: usize| w.get(i).map_or(0, |&c| usize::from(c & 31));
    (bits(0) << 5) | bits(1)
}

/// For each [`filter_key`], the lengths (bit `len`, 31 for 31 bytes or more) of the words of
/// [`word_table`] and [`MATCHED`]: a superset test that sends most words of a value (`item`,
/// `number`, `shoes`) straight to [`Kind::Bare`] without hashing them for [`kind_table`].
/// Built with the tables.
fn word_filter() -> &'static [u32] {
    static FILTER: std::sync::OnceLock<Vec<u32>> = std::sync::OnceLock::new();
    FILTER.get_or_init(|| {
        let mut f = vec![0u32; 1 << 10];
        for w in word_table().iter().chain(MATCHED).map(|(w, _)| *w) {
            if let Some(e) = f.get_mut(filter_key(w.as_bytes())) {
                *e |= 1 << w.len().min(31);
            }
        }
        f
    })
}

/// The kind of the (lowercase) word `w`, and its text when a table holds it (so the token
/// borrows it instead of copying the value's spelling).
fn word_kind(w: &str) -> (Kind, Option<&'static str>) {
    // Most words of a value are no SQL word: one read of [`word_filter`] says so.
    if word_filter()
        .get(filter_key(w.as_bytes()))
        .is_none_or(|lens| lens & (1 << w.len().min(31)) == 0)
    {
        return (Kind::Bare, None);
    }
    let t = kind_table();
    let mask = t.len().wrapping_sub(1);
    let mut i = (crate::detect::word_hash(w.as_bytes()) as usize) & mask;
    while let Some(Some((e, k))) = t.get(i) {
        if *e == w {
            return (*k, Some(*e));
        }
        i = (i + 1) & mask;
    }
    (Kind::Bare, None)
}

/// Words whose kind is not their list's (they come before [`word_table`]'s).
const MATCHED: &[(&str, Kind)] = &[
    ("union", Kind::Union),
    ("and", Kind::Logic),
    ("or", Kind::Logic),
    ("xor", Kind::Logic),
    ("true", Kind::Num),
    ("false", Kind::Num),
    ("null", Kind::Num),
    ("unknown", Kind::Num),
    ("having", Kind::Group),
    ("limit", Kind::Group),
];

/// [`MATCHED`] then [`word_table`] in an open-addressing table (FNV-1a, linear probing, at
/// most half full; the first entry of a word wins): one hash and almost always one
/// comparison per word, instead of a binary search's ~8 string comparisons. This runs for
/// every word the tokenizer or [`inert_phrase`] reads that passes [`word_filter`].
fn kind_table() -> &'static [Option<(&'static str, Kind)>] {
    static TABLE: std::sync::OnceLock<Vec<Option<(&'static str, Kind)>>> =
        std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let words: Vec<(&'static str, Kind)> =
            MATCHED.iter().chain(word_table()).copied().collect();
        let size = (words.len() * 2).next_power_of_two();
        let mut t: Vec<Option<(&'static str, Kind)>> = vec![None; size];
        for (w, k) in words {
            let mut i = (crate::detect::word_hash(w.as_bytes()) as usize) & (size - 1);
            while let Some(Some((e, _))) = t.get(i) {
                if *e == w {
                    break;
                }
                i = (i + 1) & (size - 1);
            }
            if let Some(slot @ None) = t.get_mut(i) {
                *slot = Some((w, k));
            }
        }
        t
    })
}

/// A one-byte word (lowercase letter, digit, `_` or `$`) as static text.
fn one_byte_word(w: &str) -> Option<&'static str> {
    match w.as_bytes() {
        [c] => one_byte(*c),
        _ => None,
    }
}

/// [`one_byte_word`] of the word made of the byte `c`.
fn one_byte(c: u8) -> Option<&'static str> {
    const ONE: &str = "abcdefghijklmnopqrstuvwxyz0123456789_$";
    // The entry's index from the byte's class (no search through the string per token).
    let p = match c {
        b'a'..=b'z' => usize::from(c - b'a'),
        b'0'..=b'9' => 26 + usize::from(c - b'0'),
        b'_' => 36,
        b'$' => 37,
        _ => return None,
    };
    ONE.get(p..p + 1)
}

/// Operators the lexer reads, as static text (a token borrows it).
fn static_operator(op: &str) -> Option<&'static str> {
    // One-byte operators first (most operator tokens: a run of `%` is one per byte).
    if let [c] = op.as_bytes() {
        // A `match` (a jump table), not a search through a string of them per token.
        return Some(match c {
            b'=' => "=",
            b'<' => "<",
            b'>' => ">",
            b'!' => "!",
            b'+' => "+",
            b'-' => "-",
            b'*' => "*",
            b'/' => "/",
            b'%' => "%",
            b'&' => "&",
            b'|' => "|",
            b'^' => "^",
            b'~' => "~",
            b':' => ":",
            b'?' => "?",
            b'.' => ".",
            b'\\' => "\\",
            b'@' => "@",
            b'#' => "#",
            b'{' => "{",
            b'}' => "}",
            b'[' => "[",
            b']' => "]",
            b'$' => "$",
            _ => return None,
        });
    }
    // The longer ones by a `match` on the bytes too (a decision tree): a search through the
    // list compared each entry, and a `<<<<` run is one two-byte operator per two bytes.
    Some(match op.as_bytes() {
        [b'<', b'=', b'>'] => "<=>",
        [b'#', b'>', b'>'] => "#>>",
        [b'-', b'>', b'>'] => "->>",
        [b'!', b'~', b'*'] => "!~*",
        [b'<', b'='] => "<=",
        [b'>', b'='] => ">=",
        [b'<', b'>'] => "<>",
        [b'!', b'='] => "!=",
        [b'=', b'='] => "==",
        [b':', b'='] => ":=",
        [b':', b':'] => "::",
        [b'|', b'|'] => "||",
        [b'&', b'&'] => "&&",
        [b'<', b'<'] => "<<",
        [b'>', b'>'] => ">>",
        [b'@', b'>'] => "@>",
        [b'<', b'@'] => "<@",
        [b'#', b'>'] => "#>",
        [b'-', b'>'] => "->",
        [b'?', b'|'] => "?|",
        [b'?', b'&'] => "?&",
        [b'~', b'*'] => "~*",
        [b'!', b'~'] => "!~",
        [b'^', b'='] => "^=",
        [b'|', b'='] => "|=",
        [b'&', b'='] => "&=",
        _ => return None,
    })
}

/// Tokenizes `input` (already decoded) in `ctx`. Case changes no token (only words hold
/// letters, and they are lowercased), so callers pass the lowercase form when they have it:
/// its words are then borrowed, not copied.
pub fn tokenize<'a>(input: &'a str, ctx: Context) -> Vec<Token<'a>> {
    let b = input.as_bytes();
    // Room for the usual value's tokens at once (a token is at least one byte).
    let mut out: Vec<Token<'a>> = Vec::with_capacity(input.len().min(16));
    let mut i = 0;
    let push = |out: &mut Vec<Token<'a>>, kind: Kind, text: Text<'a>| {
        out.push(Token {
            kind,
            text,
            open: false,
        });
    };
    let fixed = Text::Static;
    if let Some(q) = match ctx {
        Context::None => None,
        Context::Single => Some(b'\''),
        Context::Double => Some(b'"'),
        Context::Backtick => Some(b'`'),
    } {
        let (end, closed) = string_end(b, 0, q);
        if !closed {
            return Vec::new();
        }
        push(&mut out, Kind::Str, fixed(""));
        i = end;
    }
    while let Some(&c) = b.get(i) {
        if out.len() >= MAX_TOKENS {
            break;
        }
        let next = b.get(i + 1).copied();
        match c {
            _ if c.is_ascii_whitespace() || c == 0x0b || c == 0 || c == 0xa0 => i += 1,
            b'\'' | b'"' => {
                let (end, closed) = string_end(b, i + 1, c);
                out.push(Token {
                    kind: Kind::Str,
                    text: Text::Static(""),
                    open: !closed,
                });
                i = end;
            }
            b'`' => {
                let (end, _) = string_end(b, i + 1, b'`');
                push(&mut out, Kind::Bare, fixed("`"));
                i = end;
            }
            b'/' if next == Some(b'*') => {
                if b.get(i + 2) == Some(&b'!') {
                    // MySQL executable comment: its content is code. Skip the marker and
                    // the optional version number.
                    push(&mut out, Kind::Comment, fixed("/*!"));
                    i += 3;
                    while b.get(i).is_some_and(u8::is_ascii_digit) {
                        i += 1;
                    }
                } else {
                    let end = b
                        .get(i + 2..)
                        .and_then(|r| r.windows(2).position(|w| w == b"*/"))
                        .map_or(b.len(), |p| i + 2 + p + 2);
                    push(&mut out, Kind::Comment, fixed("/*"));
                    i = end;
                }
            }
            b'*' if next == Some(b'/') => i += 2,
            b'-' if next == Some(b'-') => {
                push(&mut out, Kind::Comment, fixed("--"));
                i = line_end(b, i);
            }
            b'#' if !matches!(next, Some(b'>')) => {
                push(&mut out, Kind::Comment, fixed("#"));
                i = line_end(b, i);
            }
            b'(' => {
                push(&mut out, Kind::LParen, fixed(""));
                i += 1;
            }
            b')' => {
                push(&mut out, Kind::RParen, fixed(""));
                i += 1;
            }
            b',' => {
                push(&mut out, Kind::Comma, fixed(""));
                i += 1;
            }
            b';' => {
                push(&mut out, Kind::Semi, fixed(""));
                i += 1;
            }
            b'@' if next.is_some_and(|n| n == b'@' || n.is_ascii_alphanumeric() || n == b'_') => {
                let start = i;
                i += 1;
                while b.get(i).is_some_and(|&x| {
                    x == b'@' || x.is_ascii_alphanumeric() || x == b'_' || x == b'.' || x == b'$'
                }) {
                    i += 1;
                }
                let text = input.get(start..i).unwrap_or_default();
                push(&mut out, Kind::Var, lowercase(text));
            }
            _ if c.is_ascii_digit() || (c == b'.' && next.is_some_and(|n| n.is_ascii_digit())) => {
                i = number_end(b, i);
                push(&mut out, Kind::Num, fixed(""));
            }
            _ if c.is_ascii_alphabetic() || c == b'_' || c == b'$' || c >= 0x80 => {
                let start = i;
                while b.get(i).is_some_and(|&x| {
                    x.is_ascii_alphanumeric() || x == b'_' || x == b'$' || x == b'.' || x >= 0x80
                }) {
                    i += 1;
                }
                let raw = input.get(start..i).unwrap_or_default();
                let raw = raw.trim_end_set(b".");
                // Lowercased in a stack buffer (a long word in a `String`); a one-byte word
                // (`$` of `${`, `x`: one per two bytes of a hostile run) is its static text.
                let mut buf = [0u8; 64];
                let long;
                let one = match raw.as_bytes() {
                    [c] => one_byte(c.to_ascii_lowercase()),
                    _ => None,
                };
                let w: &str = match (one, buf.get_mut(..raw.len())) {
                    (Some(one), _) => one,
                    (None, Some(lb)) => {
                        lb.copy_from_slice(raw.as_bytes());
                        lb.make_ascii_lowercase();
                        std::str::from_utf8(lb).unwrap_or_default()
                    }
                    (None, None) => {
                        long = raw.ascii_lower();
                        &long
                    }
                };
                let (mut kind, table_text) = word_kind(w);
                // `schema.table` references: classify by the first part when it is known.
                // (A one-byte word is no `.`: a word starts with a letter, `_`, `$` or a
                // non-ASCII byte; asking cost a `memchr` call per `$` of a `${` run.)
                if kind == Kind::Bare && w.len() > 1 && w.has_char('.') {
                    let first = w.split_char('.').next().unwrap_or_default();
                    if first == "information_schema"
                        || first == "sys"
                        || first == "mysql"
                        || first == "pg_catalog"
                    {
                        kind = Kind::Keyword;
                    }
                }
                // A word directly followed by `(` is a call.
                let mut j = i;
                while b.get(j).is_some_and(|x| x.is_ascii_whitespace()) {
                    j += 1;
                }
                if b.get(j) == Some(&b'(') && matches!(kind, Kind::Bare | Kind::Keyword) {
                    kind = Kind::Func;
                }
                // Two-word keywords.
                if (w == "order" || w == "group") && next_word(input, i).as_deref() == Some("by") {
                    kind = Kind::Group;
                    i = skip_word(b, i);
                }
                let text = match table_text {
                    Some(t) => Text::Static(t),
                    // A one-byte word (`$` of `${`, `x`): borrowed, not allocated per token.
                    None => one_byte_word(w).map_or_else(|| lowercase(raw), Text::Static),
                };
                push(&mut out, kind, text);
            }
            _ => {
                let len = operator_len(b, i);
                let text = input.get(i..i + len).unwrap_or_default();
                let kind = if matches!(text.as_bytes(), b"&&" | b"||") {
                    Kind::Logic
                } else {
                    Kind::Op
                };
                let text = static_operator(text).map_or(Text::Input(text), Text::Static);
                push(&mut out, kind, text);
                i += len.max(1);
            }
        }
    }
    out
}

/// Unicode's `White_Space` characters outside ASCII.
fn unicode_space(c: char) -> bool {
    matches!(
        u32::from(c),
        0x85 | 0xa0 | 0x1680 | 0x2000..=0x200a | 0x2028 | 0x2029 | 0x202f | 0x205f | 0x3000
    )
}

/// `s` with each non-ASCII whitespace character replaced by a space: a no-break, em,
/// ideographic... space between SQL words is a separator to databases that read the query
/// in a Unicode or single-byte charset (`1\u{a0}UNION\u{a0}SELECT`), so the tokenizer reads
/// this copy (made only for values that hold one, [`has_unicode_space`]).
#[inline(never)]
pub(crate) fn ascii_spaces(s: &str) -> String {
    s.chars()
        .map(|c| if unicode_space(c) { ' ' } else { c })
        .collect()
}

/// Whether `s` holds a non-ASCII whitespace character ([`ascii_spaces`]). Every one is encoded with a lead byte `0xC2`, `0xE1`, `0xE2` or `0xE3`:
/// a value without them is answered from its byte set alone.
#[inline(never)]
pub(crate) fn has_unicode_space(set: &crate::extract::ByteSet, s: &str) -> bool {
    (set.has(0xc2) || set.has(0xe1) || set.has(0xe2) || set.has(0xe3))
        && s.chars().any(unicode_space)
}

/// Whether `lower` (a lowercase value) is made only of words, numbers, spaces and `- . , _`
/// with no word that SQL reads as more than a name: no statement, `union`, logic operator,
/// clause (`order by`, `having`, `limit`), operator word (`like`, `in`, `not`) or one of the
/// keywords `as`, `from`, `case`, `procedure`, `set`, `values`, and no `--` comment.
///
/// Then [`tokenize`] gives only names, numbers, `-`, `.`, `,` and plain keywords (`for`,
/// `on`, `end`), in which neither [`super::fingerprint`] (unquoted) nor `super::fragment`
/// has a shape: every shape of theirs needs one of the excluded tokens, a quote, a bracket,
/// a `;` or a variable (`"item number 3 for order"`, `"blue running shoes size 42"`). It
/// walks the value as [`tokenize`] does (the same number and word boundaries) and looks each
/// word up once, without building tokens: the `sqli` test `inert_phrases_match_nothing`
/// compares it with the tokenizer and both rule sets on generated phrases.
pub(crate) fn inert_phrase(lower: &str) -> bool {
    inert_words(lower, false)
}

/// [`inert_phrase`] for a URL path: `/` may also stand between the words (`/api/users/3`),
/// where the tokenizer reads it as the division operator, which every rule treats like `-`
/// (or does not name at all). A path the shortcut admits holds no SQL shape: the test
/// `inert_paths_match_nothing` compares it with the tokenizer and both rule sets on
/// generated paths. `sqli::scan` uses it to skip tokenizing the whole path of an ordinary
/// request (its segments are still read one by one).
pub(crate) fn inert_path(lower: &str) -> bool {
    inert_words(lower, true)
}

/// The bytes of a word as [`inert_words`] reads it: ASCII letters and digits, `_`, `.`.
const INERT_WORD_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric() || b == b'_' || b == b'.';
        c += 1;
    }
    t
};

/// Whether the word `w` of kind `kind` ([`word_kind`]) leaves a phrase inert
/// ([`inert_phrase`]): no statement, `union`, logic operator, clause, operator word, or one of
/// the keywords SQL reads as more than a name.
fn plain_word(w: &str, kind: Kind) -> bool {
    match kind {
        Kind::Bare | Kind::Func | Kind::Num => true,
        Kind::Keyword => !matches!(w, "as" | "from" | "case" | "procedure" | "set" | "values"),
        _ => false,
    }
}

/// The listed words that are not [`plain_word`]s, and `order` and `group` (which open a
/// clause before `by`), as a screen for [`inert_words`]: every other word (not listed, or a
/// plain kind) is read as plain without hashing it. Built with the lexer's tables, from them.
fn stop_words() -> &'static crate::detect::WordBits {
    static BITS: std::sync::OnceLock<crate::detect::WordBits> = std::sync::OnceLock::new();
    BITS.get_or_init(|| {
        let mut bits = crate::detect::WordBits::EMPTY;
        bits.insert(b"order");
        bits.insert(b"group");
        for (w, _) in MATCHED.iter().chain(word_table()) {
            if !plain_word(w, word_kind(w).0) {
                bits.insert(w.as_bytes());
            }
        }
        bits
    })
}

fn inert_words(lower: &str, slash: bool) -> bool {
    let b = lower.as_bytes();
    // Read once per value, not per word.
    let stops = stop_words();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b' ' | b',' => i += 1,
            b'-' if b.get(i + 1) == Some(&b'-') => return false,
            b'0'..=b'9' => i = number_end(b, i),
            b'.' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => i = number_end(b, i),
            b'-' | b'.' => i += 1,
            // Not `/*`, a comment opener.
            b'/' if slash && b.get(i + 1) != Some(&b'*') => i += 1,
            b'a'..=b'z' | b'_' => {
                let start = i;
                // One table read per byte (ASCII letters, digits, `_`, `.`).
                while b
                    .get(i)
                    .is_some_and(|&x| INERT_WORD_BYTE.get(usize::from(x)) == Some(&true))
                {
                    i += 1;
                }
                // Without its trailing dots, by bytes (`trim_end_matches('.')` steps chars).
                let mut end = i;
                while end > start && b.get(end - 1) == Some(&b'.') {
                    end -= 1;
                }
                let wb = b.get(start..end).unwrap_or_default();
                // Most words are no listed word that stops a phrase: out after two bits.
                if !stops.may_hold(wb) {
                    continue;
                }
                // `order` and `group` are plain keywords (`order_and_group_are_plain`): only
                // a `by` after them stops the phrase, and they need no lookup.
                let order_or_group = wb == b"order" || wb == b"group";
                let plain = order_or_group || {
                    let w = lower.get(start..end).unwrap_or_default();
                    plain_word(w, word_kind(w).0)
                };
                // `order by`, `group by` (the next word after spaces, as `next_word` reads it).
                let clause = order_or_group && {
                    let mut j = i;
                    while b.get(j) == Some(&b' ') {
                        j += 1;
                    }
                    let mut k = j;
                    while b.get(k).is_some_and(u8::is_ascii_alphabetic) {
                        k += 1;
                    }
                    b.get(j..k) == Some(b"by")
                };
                if !plain || clause {
                    return false;
                }
            }
            // Anything else (quotes, brackets, operators, `$`, `@`, other whitespace,
            // non-ASCII): the tokenizer decides.
            _ => return false,
        }
    }
    true
}

/// `w` lowercased: borrowed when it is lowercase already.
fn lowercase(w: &str) -> Text<'_> {
    if w.bytes().any(|c| c.is_ascii_uppercase()) {
        Text::Owned(w.ascii_lower())
    } else {
        Text::Input(w)
    }
}

fn string_end(b: &[u8], mut i: usize, q: u8) -> (usize, bool) {
    while let Some(&c) = b.get(i) {
        if c == b'\\' && q != b'`' {
            i += 2;
            continue;
        }
        if c == q {
            if b.get(i + 1) == Some(&q) {
                i += 2;
                continue;
            }
            return (i + 1, true);
        }
        i += 1;
    }
    (b.len(), false)
}

fn line_end(b: &[u8], i: usize) -> usize {
    b.get(i..)
        .and_then(|r| r.iter().position(|&c| c == b'\n'))
        .map_or(b.len(), |p| i + p + 1)
}

fn number_end(b: &[u8], mut i: usize) -> usize {
    if b.get(i) == Some(&b'0') && matches!(b.get(i + 1), Some(b'x' | b'X' | b'b' | b'B')) {
        i += 2;
        while b.get(i).is_some_and(u8::is_ascii_hexdigit) {
            i += 1;
        }
        return i;
    }
    while b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b'.') {
        i += 1;
    }
    if matches!(b.get(i), Some(b'e' | b'E'))
        && b.get(i + 1)
            .is_some_and(|c| c.is_ascii_digit() || *c == b'-' || *c == b'+')
    {
        i += 2;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    i
}

fn operator_len(b: &[u8], i: usize) -> usize {
    // The three-byte operators `<=>`, `#>>`, `->>`, `!~*`, then the two-byte ones, matched on
    // the bytes (this runs for every operator byte of a value).
    let at = |k: usize| b.get(i + k).copied().unwrap_or(0);
    let (a, c) = (at(0), at(1));
    if matches!(
        (a, c, at(2)),
        (b'<', b'=', b'>') | (b'#', b'>', b'>') | (b'-', b'>', b'>') | (b'!', b'~', b'*')
    ) {
        return 3;
    }
    let two = matches!(
        (a, c),
        (b'<', b'=' | b'>' | b'<' | b'@')
            | (b'>', b'=' | b'>')
            | (b'!', b'=' | b'~')
            | (b'=', b'=')
            | (b':', b'=' | b':')
            | (b'|', b'|' | b'=')
            | (b'&', b'&' | b'=')
            | (b'@', b'>')
            | (b'#', b'>')
            | (b'-', b'>')
            | (b'?', b'|' | b'&')
            | (b'~', b'*')
            | (b'^', b'=')
    );
    if two {
        2
    } else {
        1
    }
}

fn next_word(input: &str, i: usize) -> Option<String> {
    let rest = input.get(i..)?.trim_start();
    let w: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    Some(w.ascii_lower())
}

fn skip_word(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
        i += 1;
    }
    while b.get(i).is_some_and(u8::is_ascii_alphabetic) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `one_byte_word` gives every byte of its string, and nothing else.
    #[test]
    fn one_byte_words() {
        const ONE: &str = "abcdefghijklmnopqrstuvwxyz0123456789_$";
        for c in 0u8..128 {
            let w = [c];
            let Ok(w) = std::str::from_utf8(&w) else {
                continue;
            };
            let want = ONE.find(w).and_then(|p| ONE.get(p..p + 1));
            assert_eq!(one_byte_word(w), want, "{w}");
        }
        assert_eq!(one_byte_word("ab"), None);
        // A one-byte word the tokenizer reads (a letter, `_`, `$`) is its lowercase text.
        for c in (0u8..128).filter(|c| c.is_ascii_alphabetic() || matches!(c, b'_' | b'$')) {
            let lower = (c.to_ascii_lowercase() as char).to_string();
            assert_eq!(one_byte(c.to_ascii_lowercase()), Some(lower.as_str()));
            let tokens = tokenize(&lower, Context::None);
            assert_eq!(
                tokens.iter().map(|t| t.text.as_str()).collect::<Vec<_>>(),
                [&*lower]
            );
        }
    }

    /// [`word_kind`] (its filter and hash table) gives every listed word its list's kind (the
    /// [`MATCHED`] words theirs) and any other word none.
    /// [`inert_words`] reads `order` and `group` as plain words without their lookup.
    #[test]
    fn order_and_group_are_plain() {
        for w in ["order", "group"] {
            assert!(plain_word(w, word_kind(w).0), "{w}");
        }
    }

    #[test]
    fn word_kinds_as_listed() {
        for (w, k) in MATCHED {
            assert_eq!(word_kind(w), (*k, Some(*w)), "{w}");
        }
        for (i, (w, k)) in word_table().iter().enumerate() {
            // A word in several lists has the first list's kind.
            let first = word_table().iter().position(|(x, _)| x == w) == Some(i);
            if first && !MATCHED.iter().any(|(m, _)| m == w) {
                assert_eq!(word_kind(w), (*k, Some(*w)), "{w}");
            }
            let longer = format!("{w}x");
            if !word_table().iter().any(|(x, _)| *x == longer) {
                assert_eq!(word_kind(&longer), (Kind::Bare, None), "{longer}");
            }
        }
        assert_eq!(word_kind("item"), (Kind::Bare, None));
        assert_eq!(word_kind(""), (Kind::Bare, None));
    }

    /// [`inert_words`] as it was (a predicate per byte, `trim_end_matches('.')` per word),
    /// against the table version, on generated phrases and paths over letters, digits, SQL
    /// words, dots, dashes, slashes and bytes outside the phrase shape.
    #[test]
    fn inert_words_matches_the_predicate_version() {
        fn reference(lower: &str, slash: bool) -> bool {
            let b = lower.as_bytes();
            let mut i = 0;
            while let Some(&c) = b.get(i) {
                match c {
                    b' ' | b',' => i += 1,
                    b'-' if b.get(i + 1) == Some(&b'-') => return false,
                    b'0'..=b'9' => i = number_end(b, i),
                    b'.' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => i = number_end(b, i),
                    b'-' | b'.' => i += 1,
                    b'/' if slash && b.get(i + 1) != Some(&b'*') => i += 1,
                    b'a'..=b'z' | b'_' => {
                        let start = i;
                        while b
                            .get(i)
                            .is_some_and(|&x| x.is_ascii_alphanumeric() || x == b'_' || x == b'.')
                        {
                            i += 1;
                        }
                        let w = lower.get(start..i).unwrap_or_default().trim_end_set(b".");
                        let plain = match word_kind(w).0 {
                            Kind::Bare | Kind::Func | Kind::Num => true,
                            Kind::Keyword => !matches!(
                                w,
                                "as" | "from" | "case" | "procedure" | "set" | "values"
                            ),
                            _ => false,
                        };
                        let clause = (w == "order" || w == "group") && {
                            let mut j = i;
                            while b.get(j) == Some(&b' ') {
                                j += 1;
                            }
                            let mut k = j;
                            while b.get(k).is_some_and(u8::is_ascii_alphabetic) {
                                k += 1;
                            }
                            b.get(j..k) == Some(b"by")
                        };
                        if !plain || clause {
                            return false;
                        }
                    }
                    _ => return false,
                }
            }
            true
        }
        let pieces = [
            "item", "number", "for", "order", "by", "group", "select", "union", "from", "as",
            "sys.", "a.b.", "x..", "_id", "7", "10.99", "0x1f", "1e5", " ", " ", ",", "-", "--",
            ".", "/", "/*", "é", "(", "'", "n1.", "values", "true", "and",
        ];
        let mut seed = 0x853c_49e6_748f_ea9bu64;
        for n in 0..40_000 {
            let mut v = String::new();
            for _ in 0..(1 + n % 7) {
                seed = crate::detect::xorshift(seed);
                v.push_str(pieces[(seed >> 20) as usize % pieces.len()]);
            }
            for slash in [false, true] {
                assert_eq!(
                    inert_words(&v, slash),
                    reference(&v, slash),
                    "{v:?} {slash}"
                );
            }
        }
        // Every listed word, alone, before `by` and after a plain word: the [`stop_words`]
        // screen must let each word that stops a phrase through (and only changes the cost).
        let listed = MATCHED.iter().chain(word_table()).map(|(w, _)| *w);
        for w in listed.chain(["order", "group", "orders", "by", "x"]) {
            for v in [
                w.to_string(),
                format!("{w} by"),
                format!("item {w}."),
                format!("{w}."),
            ] {
                for slash in [false, true] {
                    assert_eq!(
                        inert_words(&v, slash),
                        reference(&v, slash),
                        "{v:?} {slash}"
                    );
                }
            }
            if !plain_word(w, word_kind(w).0) || w == "order" || w == "group" {
                assert!(stop_words().may_hold(w.as_bytes()), "{w}");
            }
        }
    }

    /// [`inert_phrase`] is a shortcut, never a rule: whenever it says a value is inert, the
    /// tokenizer and both rule sets (paranoia 1 `fingerprint`, paranoia 2 `fragment`) find
    /// nothing in it. Phrases are drawn from every word of the lexer's tables, SQL's
    /// two-word clauses, prose words and number spellings, joined by every separator the
    /// phrase shape allows (and a few it does not, which must not count as inert).
    #[test]
    fn inert_phrases_match_nothing() {
        let mut vocab: Vec<&str> = word_table().iter().map(|(w, _)| *w).collect();
        vocab.extend([
            "union",
            "and",
            "or",
            "xor",
            "true",
            "false",
            "null",
            "unknown",
            "having",
            "limit",
            "order",
            "group",
            "by",
            "analyse",
            "item",
            "number",
            "leave",
            "at",
            "the",
            "door",
            "blue",
            "shoes",
            "size",
            "sys.tables",
            "mysql.user",
            "t.col",
            "a_b",
            "x",
            "_",
            "1",
            "42",
            "10.99",
            ".5",
            "0x1f",
            "0xselect",
            "1e5",
            "1e-5",
            "3rd",
            "1union",
            "9or",
            "end.",
            "from.",
            "select.x",
        ]);
        const HOT: &[&str] = &[
            "case",
            "when",
            "then",
            "as",
            "from",
            "where",
            "order",
            "group",
            "by",
            "1",
            "x",
            "procedure",
            "analyse",
            "set",
            "values",
            "and",
            "select",
            "like",
            "waitfor",
            "delay",
            "time",
            "exec",
            "limit",
            "having",
            "in",
            "null",
        ];
        let seps = [
            " ", "  ", ",", ", ", " - ", "-", ".", " . ", "--", " -- ", "", "(", "'", "=", ";",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: usize| {
            seed = crate::detect::xorshift(seed);
            (seed >> 11) as usize % n
        };
        let (mut inert, mut total) = (0, 0);
        for _ in 0..200_000 {
            let mut phrase = String::new();
            for k in 0..1 + next(6) {
                if k > 0 || next(4) == 0 {
                    phrase.push_str(seps[next(seps.len())]);
                }
                // Half the words from the ones rules look at by text, so that their
                // sequences (`case x when y then`, `a as b from c`) occur.
                let word = if next(2) == 0 {
                    HOT[next(HOT.len())]
                } else {
                    vocab[next(vocab.len())]
                };
                phrase.push_str(word);
            }
            total += 1;
            if inert_phrase(&phrase) {
                inert += 1;
                let tokens = tokenize(&phrase, Context::None);
                assert_eq!(
                    super::super::fingerprint(&tokens, Context::None),
                    None,
                    "{phrase:?}"
                );
                assert_eq!(super::super::fragment(&tokens), None, "{phrase:?}");
                assert!(!phrase.contains(['\'', '"']), "{phrase:?}");
            }
        }
        // Both answers occur often enough for the comparison to mean something.
        assert!(
            inert > total / 10 && inert < total * 9 / 10,
            "{inert} of {total}"
        );
        for plain in [
            "item number 3 for order",
            "blue running shoes size 42",
            "leave at the door",
        ] {
            assert!(inert_phrase(plain), "{plain}");
        }
        // Phrase-shaped SQL, one per rule that needs no quote or bracket: found, not inert.
        for sql in [
            "1 union select 2",
            "x or 1 is 1",
            "sort order by 2",
            "a as b from c",
            "case when 1 then 2",
            "1 procedure analyse",
            "waitfor delay 5",
            "select 1 from users",
            "1 and 2",
            "in 42",
            "from users where",
            "limit 5",
            "exec xp_cmdshell",
        ] {
            let tokens = tokenize(sql, Context::None);
            let found = super::super::fingerprint(&tokens, Context::None)
                .or_else(|| super::super::fragment(&tokens));
            assert!(found.is_some(), "{sql}");
            assert!(!inert_phrase(sql), "{sql}");
        }
    }

    /// [`inert_path`] is a shortcut, never a rule: whenever it says a path is inert, the
    /// tokenizer and both rule sets find nothing in it. Paths are drawn as in
    /// `inert_phrases_match_nothing`, with `/` (alone, doubled, beside `-`, `.`, `*`, spaces)
    /// among the separators.
    #[test]
    fn inert_path_segments_are_inert() {
        // Pieces that cross the readings' look-aheads at a `/`: numbers (`1e-`, `0x`, `.5`),
        // `--`, `/*`, trailing dots, `order by`, keywords and bytes outside the shape.
        let pieces = [
            "/", "/", "a", "order", " ", "by", "1", "e", "-", "+", ".", "0", "x", "5", "*",
            "union", "select", "as", "_", ",", "'", "(", "1e", "end.", "group",
        ];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: usize| {
            state = crate::detect::xorshift(state);
            (state >> 33) as usize % n
        };
        let mut inert = 0;
        for _ in 0..200_000 {
            let mut path = String::new();
            for _ in 0..next(9) {
                path.push_str(pieces[next(pieces.len())]);
            }
            if inert_path(&path) {
                inert += 1;
                for seg in path.split('/') {
                    assert!(inert_phrase(seg), "{path:?}: {seg:?}");
                }
            }
        }
        assert!(inert > 10_000, "{inert}");
    }

    #[test]
    fn inert_paths_match_nothing() {
        let mut vocab: Vec<&str> = word_table().iter().map(|(w, _)| *w).collect();
        vocab.extend([
            "union",
            "and",
            "or",
            "xor",
            "true",
            "false",
            "null",
            "having",
            "limit",
            "order",
            "group",
            "by",
            "analyse",
            "api",
            "users",
            "items",
            "healthz",
            "static",
            "js",
            "app.3f9a1c.js",
            "v1",
            "sys.tables",
            "mysql.user",
            "t.col",
            "a_b",
            "x",
            "_",
            "1",
            "42",
            "10.99",
            ".5",
            "0x1f",
            "1e5",
            "1e-5",
            "1union",
            "9or",
            "end.",
            "select.x",
            "shutdown",
            "drop",
            "delete",
            "exec",
            "select",
            "sleep",
            "benchmark",
            "waitfor",
            "delay",
            "case",
            "when",
            "then",
            "as",
            "from",
            "where",
            "in",
            "like",
            "set",
            "values",
            "procedure",
            "is",
            "not",
            "div",
            "mod",
        ]);
        let seps = [
            "/", "/", "/", "//", "/-", "-/", "/.", "./", " / ", "/ ", "-", ".", ",", " ", "/*",
            "*/", "--", "/--", "",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: usize| {
            seed = crate::detect::xorshift(seed);
            (seed >> 11) as usize % n
        };
        let (mut inert, mut total) = (0, 0);
        for _ in 0..200_000 {
            let mut path = String::new();
            for k in 0..1 + next(6) {
                if k > 0 || next(2) == 0 {
                    path.push_str(seps[next(seps.len())]);
                }
                path.push_str(vocab[next(vocab.len())]);
            }
            if next(4) == 0 {
                path.push_str(seps[next(seps.len())]);
            }
            total += 1;
            if inert_path(&path) {
                inert += 1;
                let tokens = tokenize(&path, Context::None);
                assert_eq!(
                    super::super::fingerprint(&tokens, Context::None),
                    None,
                    "{path:?}"
                );
                assert_eq!(super::super::fragment(&tokens), None, "{path:?}");
            }
        }
        assert!(
            inert > total / 10 && inert < total * 9 / 10,
            "{inert} of {total}"
        );
        for plain in [
            "/healthz",
            "/api/users/3/profile",
            "/static/js/app.3f9a1c.js",
            "/",
        ] {
            assert!(inert_path(plain), "{plain}");
        }
        for sql in ["/1/union/select/2", "/x/*", "/a--", "/1 and 2", "/x/or/1"] {
            assert!(!inert_path(sql), "{sql}");
        }
    }

    /// `static_operator` answers as the search through the list it replaced, for every
    /// string of one to three bytes drawn from the operator bytes.
    #[test]
    fn static_operator_matches_the_list() {
        const OPS: &[&str] = &[
            "<=>", "#>>", "->>", "!~*", "<=", ">=", "<>", "!=", "==", ":=", "::", "||", "&&", "<<",
            ">>", "@>", "<@", "#>", "->", "?|", "?&", "~*", "!~", "^=", "|=", "&=", "=", "<", ">",
            "!", "+", "-", "*", "/", "%", "&", "|", "^", "~", ":", "?", ".", "\\", "@", "#", "{",
            "}", "[", "]", "$",
        ];
        let alphabet = b"<=>#-!~*@:|&?^+/%.\\{}[]$a";
        let mut strings: Vec<Vec<u8>> = Vec::new();
        for &a in alphabet {
            strings.push(vec![a]);
            for &b in alphabet {
                strings.push(vec![a, b]);
                for &c in alphabet {
                    strings.push(vec![a, b, c]);
                }
            }
        }
        for s in strings {
            let op = std::str::from_utf8(&s).unwrap();
            let listed = OPS.iter().find(|o| **o == op).copied();
            assert_eq!(static_operator(op), listed, "{op}");
        }
    }

    /// The lists `operator_len` and `static_operator` were written from.
    #[test]
    fn operators_match_their_lists() {
        const THREE: &[&[u8]] = &[b"<=>", b"#>>", b"->>", b"!~*"];
        const TWO: &[&[u8]] = &[
            b"<=", b">=", b"<>", b"!=", b"==", b":=", b"::", b"||", b"&&", b"<<", b">>", b"@>",
            b"<@", b"#>", b"->", b"?|", b"?&", b"~*", b"!~", b"^=", b"|=", b"&=",
        ];
        let listed = |rest: &[u8]| {
            if THREE.iter().any(|op| rest.starts_with(op)) {
                3
            } else if TWO.iter().any(|op| rest.starts_with(op)) {
                2
            } else {
                1
            }
        };
        let bytes: Vec<u8> = (0u8..128).collect();
        for &a in &bytes {
            for &b in &bytes {
                for c in [b'>', b'*', b'=', b'a', 0] {
                    let s = [a, b, c];
                    assert_eq!(operator_len(&s, 0), listed(&s), "{s:?}");
                    assert_eq!(operator_len(&s[..2], 0), listed(&s[..2]), "{s:?}");
                }
            }
            let one = [a];
            assert_eq!(operator_len(&one, 0), 1);
            if let Ok(op) = std::str::from_utf8(&one) {
                let old = [
                    "=", "<", ">", "!", "+", "-", "*", "/", "%", "&", "|", "^", "~", ":", "?", ".",
                    "\\", "@", "#", "{", "}", "[", "]", "$",
                ]
                .iter()
                .find(|o| **o == op)
                .copied();
                assert_eq!(static_operator(op), old, "{op}");
            }
        }
    }

    fn kinds(s: &str, ctx: Context) -> String {
        tokenize(s, ctx)
            .iter()
            .map(|t| match t.kind {
                Kind::Str => 's',
                Kind::Num => 'n',
                Kind::Var => 'v',
                Kind::Stmt => 'E',
                Kind::Union => 'U',
                Kind::Group => 'B',
                Kind::Keyword => 'k',
                Kind::Logic => '&',
                Kind::Op => 'o',
                Kind::Func => 'f',
                Kind::Bare => 'b',
                Kind::Comment => 'c',
                Kind::LParen => '(',
                Kind::RParen => ')',
                Kind::Comma => ',',
                Kind::Semi => ';',
            })
            .collect()
    }

    #[test]
    fn classic_shapes() {
        assert_eq!(kinds("1 OR 1=1", Context::None), "n&non");
        assert_eq!(kinds("x' or 'a'='a", Context::Single), "s&sos");
        assert_eq!(
            kinds("1 union/**/select @@version--", Context::None),
            "nUcEvc"
        );
        assert_eq!(kinds("sleep(5)", Context::None), "f(n)");
        assert_eq!(kinds("1 order by 3", Context::None), "nBn");
    }

    /// The engine tokenizes the lowercase form: the same tokens as the value as sent, with
    /// every word borrowed.
    #[test]
    fn lowercase_input_same_tokens_borrowed() {
        for s in [
            "1' UNION SELECT Password FROM Users--",
            "@@VERSION, 0X1F, 1E5 Or SLEEP(5) ORDER  BY 2",
            "Mozilla/5.0 (X11; Linux x86_64)",
        ] {
            let lower = s.ascii_lower();
            for ctx in [Context::None, Context::Single, Context::Double] {
                let (a, b) = (tokenize(s, ctx), tokenize(&lower, ctx));
                assert_eq!(a, b, "{s}");
                assert!(b.iter().all(|t| !matches!(t.text, Text::Owned(_))), "{s}");
            }
        }
    }

    #[test]
    fn unclosed_context_string_yields_nothing() {
        assert!(tokenize("no quote here", Context::Single).is_empty());
    }

    #[test]
    fn bounded() {
        let s = "1,".repeat(10_000);
        assert!(tokenize(&s, Context::None).len() <= MAX_TOKENS);
    }
}

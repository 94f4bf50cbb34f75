//! Path traversal and local file inclusion (CRS 930), after decoding (including overlong
//! UTF-8 and `%u` forms) and path normalisation: `..` segments in any separator style, and
//! references to categories of sensitive targets (OS account and kernel files, logs, secrets
//! and credentials, web server configuration, dot-directories of tools) rather than a list
//! of payloads.

use super::{Findings, KeyedSets, INJECTION};
use crate::decode::path::{normal_len, normalize};
use crate::detect::HasByte as _;
use crate::detect::Lit as _;
use crate::detect::Outlined as _;
use crate::extract::{ByteSet, Prepared};
use crate::model::{Category, Severity, Source};

const CAT: Category = Category::Lfi;

/// System directories whose files an attacker wants, with the entries that identify a read
/// (an empty list means any entry).
const SYSTEM_TREES: crate::detect::Table<(&str, &[&str])> = crate::detect::Table::new(&[
    ("/etc/", &[]),
    ("/proc/", &[]),
    (
        "/sys/",
        &[
            "class", "kernel", "devices", "bus", "firmware", "module", "power", "fs", "block",
        ],
    ),
    (
        "/dev/",
        &[
            "tcp", "udp", "mem", "kmem", "shm", "fd", "stdin", "stdout", "null", "zero", "random",
            "urandom",
        ],
    ),
    ("/var/log/", &[]),
    ("/var/run/", &["secrets"]),
    (
        "/var/lib/",
        &["mysql", "pgsql", "postgresql", "docker", "kubelet"],
    ),
    ("/root/", &[]),
    ("/boot/", &[]),
    ("/usr/local/etc/", &[]),
]);

/// File names and path fragments that are secrets, credentials or server configuration.
const SENSITIVE: crate::detect::Words = crate::detect::Words::new(&[
    // Java web applications: deployment descriptor, classes, libraries.
    "web-inf/",
    ".htaccess",
    ".htpasswd",
    ".bash_history",
    ".zsh_history",
    ".history",
    ".mysql_history",
    ".psql_history",
    ".ssh/",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    "authorized_keys",
    "known_hosts",
    "web.config",
    "wp-config.php",
    ".git/",
    ".svn/",
    ".hg/",
    ".env",
    ".aws/credentials",
    ".docker/",
    ".kube/config",
    ".npmrc",
    ".pypirc",
    ".netrc",
    ".pgpass",
    ".my.cnf",
    ".gitconfig",
    ".git-credentials",
    "win.ini",
    "system.ini",
    "boot.ini",
    "autoexec.bat",
    "/windows/repair",
    "/inetpub/",
    "httpd.conf",
    "apache2.conf",
    "nginx.conf",
    "php.ini",
    "my.cnf",
    "shadow",
    "master.passwd",
    "/passwd",
    "sam",
    "ntuser.dat",
    "/debug.log",
    "/error.log",
    "/access.log",
    "secrets.env",
    "credentials.json",
    ".ds_store",
]);

/// Backup and dump files fetched from the document root.
const BACKUP_EXTENSIONS: &[&str] = &[
    ".sql", ".sql.gz", ".sql.zip", ".sql.bz2", ".dump", ".bak", ".backup", ".old", ".orig", ".swp",
    ".save",
];

/// Archives are downloads (`/releases/app-1.2.tar.gz`) unless named for a backup or a dump
/// (`/backup.tar.gz`, `/site-backup.zip`, `/db_dump.tgz`).
const ARCHIVE_EXTENSIONS: &[&str] = &[
    ".tar.gz", ".tgz", ".tar", ".zip", ".rar", ".7z", ".tar.bz2", ".tar.xz",
];

fn backup_archive(path: &str) -> bool {
    let name = path.rsplit_first('/').unwrap_or(path);
    ARCHIVE_EXTENSIONS.iter().any(|e| name.ends_with(e))
        && (name.has_lit("backup") || name.has_lit("dump"))
}

/// [`SENSITIVE`]'s screen, built once (at configure time, [`crate::detect::build_tables`]).
static SENSITIVE_SETS: std::sync::OnceLock<KeyedSets> = std::sync::OnceLock::new();

pub(crate) fn sensitive_sets() -> &'static KeyedSets {
    SENSITIVE_SETS.get_or_init(|| KeyedSets::new(SENSITIVE.as_slice()))
}

/// A normalised path as [`scan`] reads it: the value's own lowercase form when it is
/// already normal, else [`normalize`]'s copy.
struct NormalRef<'a> {
    path: &'a str,
    parent_segments: usize,
}

pub(crate) fn sensitive_target(path: &str) -> bool {
    // Borrowed when it has its root already (the URL path, most values).
    let with_root: std::borrow::Cow<'_, str> = if path.starts_with('/') {
        path.into()
    } else {
        format!("/{path}").into()
    };
    let with_root = with_root.as_ref();
    sensitive_target_in(with_root, &ByteSet::of(with_root.as_bytes()))
}

/// [`sensitive_target`] of a path that opens with `/`, whose bytes are `set`.
fn sensitive_target_in(with_root: &str, set: &ByteSet) -> bool {
    let set = *set;
    // The screen costs a pass over the value: asked only of a short one (a URL path), where
    // it is cheaper than the ten byte-set tests it saves (on a 4 KiB window of a hostile
    // body it cost +4.6%).
    // A Windows path (`/c:/program files/microsoft office/root/office16/`) holds none of the
    // Unix trees: its `root`, `etc` or `boot` are folders of that drive.
    let drive = matches!(with_root.as_bytes(), [b'/', d, b':', b'/' | b'\\', ..] if d.is_ascii_alphabetic());
    let tree = !drive
        && (with_root.len() > 64 || may_open_tree(with_root.as_bytes()))
        && SYSTEM_TREES
            .iter()
            .filter(|(dir, _)| set.has_all(dir.as_bytes()))
            .any(|(dir, entries)| {
                with_root.match_indices(dir).any(|(p, _)| {
                    let rest = with_root.get(p + dir.len()..).unwrap_or_default();
                    let entry = rest.split_char('/').next().unwrap_or_default();
                    !entry.is_empty()
                        && (entries.is_empty() || entries.contains(&entry))
                        && entry.bytes().next().is_some_and(|b| {
                            b.is_ascii_alphanumeric()
                                || b == b'.'
                                || b == b'*'
                                || b == b'?'
                                || b == b'['
                        })
                })
            });
    let names = SENSITIVE.as_slice();
    tree || sensitive_sets().any_candidate(&set, &mut |i| {
        let Some(s) = names.get(i) else {
            return false;
        };
            with_root.match_indices(s).any(|(p, _)| {
                // Names must stand as whole path segments (or segment prefixes for dirs).
                let before = p
                    .checked_sub(1)
                    .and_then(|i| with_root.as_bytes().get(i))
                    .copied();
                let after = with_root.as_bytes().get(p + s.len()).copied();
                let starts = s.starts_with('/')
                    || s.starts_with('.')
                        && before.is_none_or(|b| b == b'/' || b == b' ' || b == b'=')
                    || before.is_none_or(|b| b == b'/' || b == b' ' || b == b'=' || b == b'\\');
                let ends = s.ends_with('/')
                    || after.is_none_or(|b| !b.is_ascii_alphanumeric() && b != b'_' && b != b'-');
                starts && ends
            })
        })
        || set.has(b':')
            && with_root.has_lit(":/windows/")
            && with_root.has_lit("/system")
            && !windows_directory_only(with_root)
        // Its bytes first: a Two-Way search set up for every path otherwise.
        || set.has_all(b"/system32") && system32_file(with_root)
}

/// Whether `c` is the byte after the `/` that opens one of [`SYSTEM_TREES`] (test
/// `tree_starts_are_the_trees`).
fn tree_start(c: u8) -> bool {
    matches!(c, b'e' | b'p' | b's' | b'd' | b'v' | b'r' | b'b' | b'u')
}

/// Whether some `/` of `path` is followed by a byte that opens a system tree after its `/`
/// ([`tree_start`]): a tree's directory is found only after such a pair, so a path without
/// one (`/healthz`, `/api/items/3`) asks none of the ten directories of its byte set (~400
/// Wasm instructions on such a path, round 14). One pass, no look-up per byte.
fn may_open_tree(path: &[u8]) -> bool {
    let mut slash = false;
    for &c in path {
        if slash && tree_start(c) {
            return true;
        }
        slash = c == b'/';
    }
    false
}

/// A file under `system32/` (`config/sam`, `drivers/etc/hosts`, `cmd.exe`): an entry with an
/// extension, or a directory with more path after it. A bare entry such as `system32/ls` names
/// no file Windows has, so there is nothing to read.
fn system32_file(path: &str) -> bool {
    path.match_indices("/system32/").any(|(p, m)| {
        let rest = path.get(p + m.len()..).unwrap_or_default();
        match rest.split_once_char('/') {
            Some((dir, more)) => !dir.is_empty() && !more.is_empty(),
            None => rest.has_char('.') && !rest.ends_with('.'),
        }
    })
}

/// `c:/windows/system32/<entry>` where the entry is not a file (see [`system32_file`]).
fn windows_directory_only(path: &str) -> bool {
    path.has_lit("/system32/") && !system32_file(path)
}

/// Parameters whose value an application opens as a file, by the naming conventions of
/// include and download handlers (`file`, `page`, `doc`, `path`, `template`...).
fn file_parameter(source: Source, name: &str) -> bool {
    let n = name.ascii_lower();
    source == Source::Filename
        || super::rfi::path_like_name(&n)
        || [
            "file", "page", "doc", "download", "src", "source", "view", "read", "show", "open",
            "name", "lang", "locale", "skin", "theme", "style", "layout", "cat",
        ]
        .iter()
        .any(|w| n.has_lit(w))
}

/// Whether `v` reads as a sentence: at least four words of letters (trailing punctuation
/// allowed), which no file name or inclusion payload carries.
pub(crate) fn prose(v: &str) -> bool {
    v.split_ascii_whitespace()
        .filter(|w| {
            let w = w.trim_end_set(b",.:;!?)");
            w.len() >= 2
                && w.bytes()
                    .all(|b| b.is_ascii_alphabetic() || b == b'-' || b == b'\'')
        })
        .nth(3)
        .is_some()
}

/// A remark in parentheses: in a sentence, a name, a space, then `(` and a bare word at
/// `arg` ("Content Management System (CMS)", "the Forecast Database (NDFD)", "Design System
/// (filled) icons"). No query or PHP call passes a bare word after a spaced name in prose.
/// `prose` is asked last (a pass over the value), only when the shape is there.
pub(crate) fn parenthetical_remark(
    b: &[u8],
    name_end: usize,
    arg: usize,
    prose: impl FnOnce() -> bool,
) -> bool {
    b.get(name_end) == Some(&b' ') && b.get(arg).is_some_and(u8::is_ascii_alphabetic) && prose()
}

/// Whether the argument list that starts after the `(` at `open` reads as words of a
/// sentence rather than code: two words side by side with only spaces between them, the
/// second a word of letters and neither a keyword that joins operands inside a call
/// (`Sleep(8 hours)`, `char(new line)`). No SQL, PHP or JavaScript call accepts two bare
/// operands in a row (`CAST(x AS int)`, `extract(hour from t)`, `interval 8 hour` are the
/// keyword cases), so such a call would fail where it landed: it is a mention, not an
/// injection. Reads at most 64 bytes and only up to the first `)`; without one the
/// arguments are not prose (`sleep(5` is the start of a call the query completes).
pub(crate) fn prose_arguments(b: &[u8], open: usize) -> bool {
    const JOINERS: &[&[u8]] = &[
        b"and",
        b"as",
        b"asc",
        b"between",
        b"by",
        b"case",
        b"collate",
        b"day",
        b"desc",
        b"distinct",
        b"div",
        b"else",
        b"end",
        b"for",
        b"from",
        b"hour",
        b"in",
        b"interval",
        b"is",
        b"like",
        b"minute",
        b"mod",
        b"month",
        b"not",
        b"null",
        b"or",
        b"order",
        b"over",
        b"partition",
        b"second",
        b"separator",
        b"then",
        b"using",
        b"week",
        b"when",
        b"xor",
        b"year",
    ];
    let window = b.get(open..).unwrap_or_default();
    let window = window.get(..64.min(window.len())).unwrap_or_default();
    let Some(close) = window.iter().position(|c| *c == b')') else {
        return false;
    };
    let args = window.get(..close).unwrap_or_default();
    let word = |w: &[u8]| !w.is_empty() && w.iter().all(u8::is_ascii_alphanumeric);
    let joiner = |w: &[u8]| JOINERS.iter().any(|j| w.eq_ignore_ascii_case(j));
    let mut prev: Option<&[u8]> = None;
    for w in args.split(|c| *c == b' ') {
        if w.is_empty() {
            continue;
        }
        if let Some(p) = prev {
            if word(p)
                && word(w)
                && w.len() >= 2
                && w.iter().all(u8::is_ascii_alphabetic)
                && !joiner(p)
                && !joiner(w)
            {
                return true;
            }
        }
        prev = Some(w);
    }
    false
}

/// A value that is an absolute path of two or more segments: `/usr/share/x`, `C:\\x\\y`,
/// `c:/x/y`.
fn absolute_path(v: &str) -> bool {
    let t = v.trim();
    let b = t.as_bytes();
    let unix = t.starts_with('/')
        && b.get(1).is_some_and(u8::is_ascii_alphabetic)
        && t.get(1..).is_some_and(|r| r.has_char('/'));
    let drive = matches!(b, [d, b':', b'\\' | b'/', c, ..] if d.is_ascii_alphabetic() && c.is_ascii_alphanumeric());
    unix || drive
}

/// `..` as a whole path segment: between separators or at an end next to one.
fn dot_segment(v: &str) -> bool {
    let b = v.as_bytes();
    super::lit_offsets(v, "..").any(|p| {
        let before = p.checked_sub(1).and_then(|i| b.get(i)).copied();
        let after = b.get(p + 2).copied();
        let sep = |c: Option<u8>| c.is_some_and(|c| matches!(c, b'/' | b'\\' | b';'));
        (before.is_none() || sep(before)) && sep(after)
            || sep(before) && (after.is_none() || sep(after))
    })
}

/// A percent-encoded (also double, overlong UTF-8 or `%u`) dot, slash or backslash in the raw
/// value.
fn encoded_separator(raw: &str) -> bool {
    let l = raw.ascii_lower();
    [
        "%2e", "%2f", "%5c", "%252e", "%252f", "%255c", "%c0%ae", "%c0%af", "%c1%9c", "%u002e",
        "%u2215", "%u2216",
    ]
    .iter()
    .any(|e| l.has_lit(e))
}

/// Dot-files and dot-directories in the URL path (`/.git/config`, `/.env`, `/.claude/...`),
/// except the registered `/.well-known/`.
fn hidden_segment(path: &str) -> bool {
    // A segment opening with `.` is the first one or follows a `/`: a path with neither
    // (most) is not split.
    if !(path.starts_with('.') || super::find_bytes(path.as_bytes(), b"/.", 0).is_some()) {
        return false;
    }
    any_hidden_segment(path)
}

/// [`hidden_segment`] without its screen: every segment tested.
fn any_hidden_segment(path: &str) -> bool {
    path.split_char('/').any(|seg| {
        seg.len() > 1
            && seg.starts_with('.')
            && seg
                .as_bytes()
                .get(1)
                .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
            && seg != ".well-known"
    })
}

/// Fullwidth `.`, `/` and `\`.
const FULLWIDTH: [char; 3] = ['\u{FF0E}', '\u{FF0F}', '\u{FF3C}'];

pub(crate) fn scan(p: &Prepared<'_>, out: &mut Findings) {
    if !out.wants(CAT, 1) {
        return;
    }
    for input in p
        .inputs_of(INJECTION)
        .chain(p.inputs_of(const { crate::extract::source_mask(&[Source::Path]) }))
    {
        if out.decided() {
            break;
        }
        // Fullwidth dots and slashes (`．．／etc／passwd`: U+FF0E, U+FF0F, U+FF3C) become
        // ASCII under NFKC, which Java, Python and .NET path handling apply: read as what
        // they become (a copy only when the value holds one).
        let folded;
        let fullwidth = input.bytes.has(0xEF) && input.value.contains(FULLWIDTH);
        let v: &str = if fullwidth {
            folded = input
                .value
                .replace('\u{FF0E}', ".")
                .replace('\u{FF0F}', "/")
                .replace('\u{FF3C}', "\\");
            folded.as_str()
        } else {
            input.value.as_str()
        };
        // A lowercase needle occurs in `v` only if all its bytes are in `lower`'s set: the
        // set is asked first (each search was a pass over every 4 KiB window of a hostile
        // body). `text` below is `v` with `0x..` spellings replaced by `.`, `/` or `\`: it
        // holds no other byte than `v`. The fullwidth fold adds `.`, `/` and `\` too, so a
        // folded value is searched for `..` whatever the set says.
        let may = |needle: &str| input.may_contain(needle);
        let has_0x = may("0x") && v.has_lit("0x");
        let raw_dots = (fullwidth || may("..")) && v.has_lit("..")
            || has_0x && (v.has_lit("0x2e") || v.has_lit("0x5c"));
        // Hex-spelled dots and slashes (`0x2e0x2e0x2f`) are decoded by some path handlers.
        let hexed;
        let text = if has_0x {
            hexed = v
                .replace("0x2e", ".")
                .replace("0x2f", "/")
                .replace("0x5c", "\\")
                .replace("0x2E", ".")
                .replace("0x2F", "/")
                .replace("0x5C", "\\");
            hexed.as_str()
        } else {
            v
        };
        // NUL bytes dropped (a copy only when there is one). A value that is its own
        // normal form (most paths), or is that and a trailing `/` (`normal_len`), is read as
        // its lowercase form, with its byte set, instead of a normalised copy and the set of
        // the copy.
        let normal;
        let head = (!input.bytes.has(0) && std::ptr::eq(text, input.value.as_str()))
            .then(|| normal_len(text))
            .flatten()
            .and_then(|n| input.lower.get(..n));
        let (n_path, parent_segments, n_set) = if let Some(head) = head {
            (head, 0, Some(&input.bytes))
        } else {
            normal = if input.bytes.has(0) {
                normalize(&text.replace('\0', ""))
            } else {
                normalize(text)
            };
            (normal.path.as_str(), normal.parent_segments, None)
        };
        let n = NormalRef {
            path: n_path,
            parent_segments,
        };
        if raw_dots && n.parent_segments > 0 {
            // One `..` climbs into a sibling directory: that is how documents link
            // (`../images/photo.jpg` in Markdown or HTML). It escapes a base directory where
            // the application takes a file (`?page=../x`, an upload's name, the URL path);
            // elsewhere it takes two or more (paranoia 2 for one). Sensitive targets reached
            // by any traversal count below.
            let level = if n.parent_segments >= 2
                || input.location.source == Source::Path
                || file_parameter(input.location.source, &input.location.name)
            {
                1
            } else {
                2
            };
            out.hit(input, CAT, "lfi.traversal", Severity::Critical, level);
        }
        if has_0x && (text.has_lit("0x2e.") || n.parent_segments > 0) {
            out.hit(input, CAT, "lfi.encoded-traversal", Severity::Critical, 1);
        }
        // Paranoia 2: a `..` path segment anywhere, even one that stays inside the root
        // (`a/../b`, `..;/`); paranoia 3: a dot or separator that arrived encoded (`%2e`,
        // `%2f`, `%5c`, `%c0%af`, `%u002e`, double encodings), which no link needs.
        if out.wants(CAT, 2) && dot_segment(text) {
            out.hit(input, CAT, "lfi.dot-segment", Severity::Critical, 2);
        }
        if out.wants(CAT, 3) && encoded_separator(&input.raw) {
            out.hit(input, CAT, "lfi.encoded-separator", Severity::Critical, 3);
        }
        // Paranoia 4: any absolute file system path in a parameter or cookie (`/opt/app/data`,
        // `C:\data\x`), sensitive or not.
        if out.wants(CAT, 4)
            && !matches!(input.location.source, Source::Path | Source::Header)
            && absolute_path(text)
        {
            out.hit(input, CAT, "lfi.absolute-path", Severity::Critical, 4);
        }
        if (text.has_char('/')
            || text.has_char('\\')
            || may("ini") && text.has_lit(".ini")
            || may("ntuser") && text.has_lit("ntuser")
            || text.starts_with('.'))
            && match n_set {
                Some(set) if n.path.starts_with('/') => sensitive_target_in(n.path, set),
                _ => sensitive_target(n.path),
            }
        {
            // A path mentioned in a sentence ("check /etc/fstab syntax") is documentation;
            // an inclusion puts the path in the value itself, or reaches it by traversal.
            // A bare name (`.env`, `web.config`: no directory, no traversal) is a file only
            // where the application expects one (`?file=.env`, `?page=.htaccess`); elsewhere
            // it is a word (a package's tags `[".env", "dotenv"]`).
            let bare = n.parent_segments == 0 && !text.has_any(b"/\\");
            // A request header other than an upload name names no file the application
            // opens (`Referer: x/?p=;/bin/ca?+/et*/passwd`): paranoia 2, as CRS 930121;
            // a traversal to the file still counts at 1 (`lfi.traversal`).
            let header = input.location.source == Source::Header
                && n.parent_segments == 0
                && !super::java::is_upload_name(input.location.source, &input.location.name);
            let paranoia = if n.parent_segments == 0 && prose(v)
                || header
                || bare && !file_parameter(input.location.source, &input.location.name)
            {
                2
            } else {
                1
            };
            out.hit(
                input,
                CAT,
                "lfi.sensitive-file",
                Severity::Critical,
                paranoia,
            );
        }
        if input.location.source == Source::Path {
            if hidden_segment(n.path) {
                out.hit(input, CAT, "lfi.hidden-path", Severity::Critical, 1);
            }
            // Every backup and archive extension holds `.` (`backup_extensions_hold_a_dot`).
            if n.path.as_bytes().has_byte(b'.')
                && (BACKUP_EXTENSIONS.iter().any(|e| n.path.ends_with(e)) || backup_archive(n.path))
            {
                out.hit(input, CAT, "lfi.backup-file", Severity::Critical, 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every system tree opens with `/` and a [`tree_start`] byte (the screen
    /// [`may_open_tree`] relies on), and the screen finds such a pair wherever it is.
    #[test]
    fn tree_starts_are_the_trees() {
        for (dir, _) in SYSTEM_TREES.iter() {
            let b = dir.as_bytes();
            assert_eq!(b.first(), Some(&b'/'), "{dir}");
            assert!(tree_start(b[1]), "{dir}");
            assert!(may_open_tree(b), "{dir}");
            assert!(may_open_tree(format!("/api/x{dir}").as_bytes()), "{dir}");
        }
        for p in ["/healthz", "/api/items/3", "/", "", "/api/orders", "/a/1/c"] {
            assert!(!may_open_tree(p.as_bytes()), "{p}");
        }
        for p in [
            "/etc/passwd",
            "/api/users/3/profile",
            "/static/js/a.js",
            "x/u",
        ] {
            assert!(may_open_tree(p.as_bytes()), "{p}");
        }
    }

    /// [`KeyedSets::candidates`] are exactly the words whose bytes are all in the set (the
    /// walk over every word it replaces), whatever the text: on lfi's names, java's gadget and
    /// package names, and random words, against the sets of random texts over their bytes.
    #[test]
    fn keyed_sets_are_the_subset_test() {
        let lists: [Vec<&str>; 3] = [
            SENSITIVE.iter().copied().collect(),
            crate::detect::java::GADGETS.iter().copied().collect(),
            vec![
                "a",
                "ab",
                "ba",
                "zq",
                "q",
                "/x:",
                "\u{e9}t\u{e9}",
                "",
                "..",
                "a.b/c",
            ],
        ];
        let alphabet: Vec<u8> = lists
            .iter()
            .flatten()
            .flat_map(|w| w.bytes())
            .chain(*b"/.-_09az")
            .collect();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for words in &lists {
            let screen = KeyedSets::new(words);
            for round in 0..20_000 {
                seed = crate::detect::xorshift(seed);
                // Short texts (few bytes: most words out) to long ones (most words in).
                let len = (seed % (1 + round % 64)) as usize;
                let text: Vec<u8> = (0..len)
                    .map(|_| {
                        seed = crate::detect::xorshift(seed);
                        alphabet[(seed % alphabet.len() as u64) as usize]
                    })
                    .collect();
                let set = ByteSet::of(&text);
                let mut got: Vec<usize> = Vec::new();
                screen.any_candidate(&set, &mut |i| {
                    got.push(i);
                    false
                });
                got.sort_unstable();
                let want: Vec<usize> = (0..words.len())
                    .filter(|&i| ByteSet::of(words[i].as_bytes()).is_subset_of(&set))
                    .collect();
                assert_eq!(got, want, "{:?}", String::from_utf8_lossy(&text));
            }
        }
    }

    /// The extension lists asked only of paths with a `.`: every entry holds one.
    #[test]
    fn backup_extensions_hold_a_dot() {
        assert!(BACKUP_EXTENSIONS
            .iter()
            .chain(ARCHIVE_EXTENSIONS)
            .all(|e| e.contains('.')));
    }

    /// The `/.` screen of `hidden_segment` changes no answer: compared with the split alone
    /// on paths built from segments that open with a dot or not.
    #[test]
    fn hidden_segment_screen_is_exact() {
        let reference = any_hidden_segment;
        let pieces = [
            "/",
            ".",
            "a",
            "_",
            ".well-known",
            ".git",
            "x.y",
            "..",
            "é",
            "-",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let mut path = String::new();
            seed = crate::detect::xorshift(seed);
            for _ in 0..seed % 7 {
                seed = crate::detect::xorshift(seed);
                path.push_str(pieces[(seed % pieces.len() as u64) as usize]);
            }
            assert_eq!(hidden_segment(&path), reference(&path), "{path:?}");
        }
    }

    #[test]
    fn prose_and_code_arguments() {
        let args = |s: &str| prose_arguments(s.as_bytes(), s.find('(').unwrap() + 1);
        assert!(args("Sleep(8 hours) is important"));
        assert!(args("char(new line)"));
        for code in [
            "sleep(5)",
            "sleep(5",
            "cast(x as char)",
            "extract(hour from t)",
            "date_add(now(), interval 8 hour)",
            "substring(version() from 1 for 1)",
            "concat('a', 'b')",
            "group_concat(name separator ',')",
        ] {
            assert!(!args(code), "{code}");
        }
    }

    #[test]
    fn targets() {
        for p in [
            "/etc/passwd",
            "../../etc/shadow",
            "/proc/self/environ",
            "/sys/class",
            "c:/windows/win.ini",
            "/path/to/.docker/secrets",
            "../.history",
            "/@fs/.env",
            "/home/u/.ssh/id_rsa",
            "/wp-content/debug.log",
        ] {
            assert!(sensitive_target(&normalize(p).path), "{p}");
        }
        for p in [
            "/api/v1/users",
            "/etc",
            "/search/history",
            "/docs/samples",
            "/blog/environment",
        ] {
            assert!(!sensitive_target(&normalize(p).path), "{p}");
        }
    }

    #[test]
    fn paranoia_2_and_3_shapes() {
        assert!(dot_segment("a/../b"));
        assert!(dot_segment("..;/x"));
        assert!(!dot_segment("wait... what"));
        assert!(encoded_separator("%2e%2e%2f"));
        assert!(encoded_separator("..%c0%af"));
        assert!(!encoded_separator("a%20b"));
        assert!(prose("check /etc/fstab syntax and mount options"));
        assert!(!prose("../../etc/passwd"));
    }

    #[test]
    fn hidden() {
        assert!(hidden_segment("/.git/config"));
        assert!(hidden_segment("/app/.claude/settings.json"));
        assert!(!hidden_segment("/.well-known/openid-configuration"));
        assert!(!hidden_segment("/v1.2/items"));
    }
}

//! OS command injection (CRS 932), shell-aware rather than keyword-based: values are
//! de-obfuscated the way a shell would see them (quotes, backslashes and carets removed, `$IFS`
//! turned into spaces, empty `${x}` expansions dropped), split into commands at shell
//! separators and substitutions, and the first word of each command is looked up in a
//! dictionary of Unix and Windows programs. Context decides: a command after `;`, `|`, `&&`,
//! `` ` `` or `$(` is an injection; a command at the start of a value needs shell-looking
//! arguments unless its name is distinctive. Shell-only syntax (substitution, process
//! substitution, `${IFS}`, brace expansion, glob paths like `/???/c?t`, shellshock, history
//! expansion, `for /f`, `if exist`) is detected on its own.

use super::{Findings, INJECTION};
use crate::detect::HasByte as _;
use crate::detect::Lit as _;
use crate::detect::Outlined as _;
use crate::extract::{Input, Prepared};
use crate::model::{Category, Severity, Source};

const CAT: Category = Category::Rce;

/// Program names that are not ordinary words: seeing one as a command is telling.
const DISTINCTIVE: &[&str] = &[
    // Unix
    "whoami",
    "uname",
    "ifconfig",
    "ipconfig",
    "netstat",
    "nslookup",
    "wget",
    "curl",
    "nc",
    "ncat",
    "netcat",
    "socat",
    "telnet",
    "bash",
    "sh",
    "zsh",
    "ksh",
    "csh",
    "tcsh",
    "dash",
    "busybox",
    "python",
    "python2",
    "python3",
    "perl",
    "ruby",
    "php",
    "node",
    "nodejs",
    "lua",
    "gcc",
    "g++",
    "cc",
    "chmod",
    "chown",
    "chgrp",
    "useradd",
    "usermod",
    "passwd",
    "sudo",
    "su",
    "crontab",
    "systemctl",
    "iptables",
    "nmap",
    "tcpdump",
    "base64",
    "xxd",
    "hexdump",
    "od",
    "gunzip",
    "gzip",
    "zcat",
    "zstdcat",
    "zstd",
    "bzcat",
    "bzip2",
    "bunzip2",
    "xzcat",
    "unxz",
    "awk",
    "gawk",
    "mawk",
    "nawk",
    "sed",
    "grep",
    "egrep",
    "fgrep",
    "ls",
    "cat",
    "tac",
    "nl",
    "rev",
    "env",
    "printenv",
    "id",
    "ps",
    "pkill",
    "killall",
    "mkfifo",
    "mknod",
    "rm",
    "rmdir",
    "cp",
    "mv",
    "ln",
    "dd",
    "scp",
    "sftp",
    "ssh",
    "rsync",
    "ftp",
    "tftp",
    "lwp-download",
    "lwp-request",
    "fetch",
    "aria2c",
    "openssl",
    "xterm",
    "wall",
    "nohup",
    "setsid",
    "strace",
    "ltrace",
    "gdb",
    "chattr",
    "lsattr",
    "lsof",
    "ifup",
    "ifdown",
    "route",
    "arp",
    "ip",
    "ss",
    "dig",
    "host",
    "traceroute",
    "ping",
    "ping6",
    "tracepath",
    "hostname",
    "uptime",
    "df",
    "du",
    "lsblk",
    "mount",
    "umount",
    "fdisk",
    "dmesg",
    "lsmod",
    "insmod",
    "modprobe",
    "rmmod",
    "getent",
    "groups",
    "last",
    "lastlog",
    "finger",
    "pwd",
    "aptitude",
    "apt",
    "apt-get",
    "yum",
    "dnf",
    "rpm",
    "dpkg",
    "pip",
    "pip3",
    "npm",
    "gem",
    "composer",
    "tar",
    "zip",
    "unzip",
    "7z",
    "xargs",
    "tee",
    "head",
    "tail",
    "less",
    "more",
    "vi",
    "vim",
    "nano",
    "ed",
    "emacs",
    "pico",
    "strings",
    "objdump",
    "readelf",
    "ldd",
    "java",
    "javac",
    "jrunscript",
    "jjs",
    "irb",
    "pry",
    "tclsh",
    "wish",
    "expect",
    "ash",
    "fish",
    "screen",
    "tmux",
    "script",
    "eval",
    "exec",
    "source",
    "export",
    "unset",
    "ulimit",
    "umask",
    "sleep",
    "usleep",
    "timeout",
    "nice",
    "renice",
    "chroot",
    "unshare",
    "nsenter",
    "docker",
    "kubectl",
    "runc",
    "ctr",
    "podman",
    "pkexec",
    "doas",
    "visudo",
    "shutdown",
    "reboot",
    "halt",
    "poweroff",
    "init",
    "telinit",
    "kill",
    "mail",
    "sendmail",
    "mutt",
    "sqlite3",
    "mysql",
    "psql",
    "mongo",
    "redis-cli",
    "aa-disable",
    "aa-exec",
    "systemd-run",
    "at",
    "batch",
    "whereis",
    "which",
    "locate",
    "find",
    "file",
    "stat",
    "touch",
    "mkdir",
    "chpasswd",
    "makepasswd",
    "openvpn",
    "wg",
    "base32",
    "shred",
    "truncate",
    "split",
    "paste",
    "cut",
    "sort",
    "uniq",
    "wc",
    "tr",
    "diff",
    "cmp",
    "comm",
    "join",
    "look",
    "iconv",
    "echo",
    "printf",
    "test",
    "time",
    "watch",
    "w",
    "who",
    "set",
    "alias",
    "history",
    "cd",
    "pushd",
    "popd",
    // Windows
    "cmd",
    "cmd.exe",
    "powershell",
    "powershell.exe",
    "pwsh",
    "certutil",
    "bitsadmin",
    "net",
    "net1",
    "systeminfo",
    "tasklist",
    "taskkill",
    "reg",
    "regedit",
    "wmic",
    "msiexec",
    "regsvr32",
    "rundll32",
    "mshta",
    "cscript",
    "wscript",
    "schtasks",
    "sc",
    "vssadmin",
    "wevtutil",
    "bcdedit",
    "bcdboot",
    "diskpart",
    "icacls",
    "cacls",
    "takeown",
    "attrib",
    "netsh",
    "nltest",
    "dsquery",
    "qwinsta",
    "quser",
    "whoami.exe",
    "iex",
    "iwr",
    "irm",
    "iwmi",
    "gwmi",
    "saps",
    "sal",
    "invoke-expression",
    "invoke-webrequest",
    "invoke-restmethod",
    "start-process",
    "new-object",
    "dir",
    "type",
    "del",
    "copy",
    "xcopy",
    "robocopy",
    "move",
    "ren",
    "rename",
    "tree",
    "findstr",
    "forfiles",
    "cipher",
    "format",
    "ver",
    "vol",
    "cls",
    "start",
    "call",
    "runas",
    "msbuild",
    "installutil",
    "regasm",
    "regsvcs",
    "odbcconf",
    "cmstp",
    "hh",
    "wusa",
    "expand",
    "makecab",
    "esentutl",
    "ntdsutil",
    "procdump",
    "mimikatz",
    "c99",
    "trap",
    "ansible",
    "puppet",
    "terraform",
    "helm",
    "gcloud",
    "irb",
    "cpan",
    "gem",
];

/// Tool families whose sub-commands are separate programs (`ansible-vault`, `chef-client`).
/// [`DISTINCTIVE`] for lookups.
pub(super) static DISTINCTIVE_SET: super::WordSet = super::WordSet::packed(DISTINCTIVE_PACKED);
/// [`DISTINCTIVE`] packed ([`super::pack_words!`]): the set and [`start_filter`] read it, so
/// the module holds one byte per word instead of a `&str` (issue 13).
const DISTINCTIVE_PACKED: &[u8] = super::pack_words!(DISTINCTIVE);
/// [`WORDLIKE`] for lookups.
pub(super) static WORDLIKE_SET: super::WordSet =
    super::WordSet::packed(super::pack_words!(WORDLIKE));

const FAMILIES: crate::detect::Words = crate::detect::Words::new(FAMILY_STEMS);
/// The tool families' stems ([`FAMILIES`], [`START_LENGTHS`]).
const FAMILY_STEMS: &[&str] = &["ansible-", "chef-", "puppet-", "salt-"];

/// Commands that are also common words ("more than", "time warner", "a hero; set out"): they
/// count only with a shell-looking argument or standing alone after a strong separator.
const WORDLIKE: &[&str] = &[
    "cat", "more", "less", "time", "find", "file", "sort", "head", "tail", "test", "echo", "set",
    "type", "start", "call", "move", "copy", "format", "expand", "split", "paste", "cut", "join",
    "look", "watch", "which", "who", "w", "at", "batch", "kill", "touch", "stat", "host", "route",
    "last", "groups", "finger", "mail", "script", "source", "export", "eval", "exec", "init",
    "halt", "sleep", "nice", "tree", "ver", "vol", "del", "dir", "ren", "rename", "net", "sc",
    "hh", "id", "ps", "ls", "cc", "su", "sh", "ip", "ss", "ed", "od", "nc", "at", "tr", "wc", "dd",
    "cp", "mv", "ln", "rm", "nl", "diff", "comm", "strings", "screen", "fetch", "expect", "wish",
    "history", "alias", "printf", "time", "timeout", "sal", "saps", "vi", "fish", "ash", "apt",
    "gem", "pip", "init", "tee", "uniq", "truncate", "shred", "cipher", "attrib", "reg", "date",
    "mount", "cd", "pushd", "popd", "tar", "vim", "ex",
];

/// Reconnaissance commands that attackers send without arguments.
const RECON: crate::detect::Words = crate::detect::Words::new(&[
    "whoami",
    "ifconfig",
    "ipconfig",
    "netstat",
    "systeminfo",
    "tasklist",
    "uname",
    "printenv",
]);

/// [`PREFIXES`] for lookups (one hash instead of a comparison per entry, for every segment).
pub(super) static PREFIX_SET: super::WordSet = super::WordSet::new(PREFIXES);

/// Words that only prefix the real command.
const PREFIXES: &[&str] = &[
    "sudo", "nohup", "time", "env", "exec", "nice", "busybox", "command", "builtin", "xargs",
    "doas", "setsid", "stdbuf", "timeout", "strace", "!", "then", "do", "else",
];

/// Directories whose binaries only a shell would name.
const BIN_DIRS: crate::detect::Words = crate::detect::Words::new(&[
    "/bin/",
    "/sbin/",
    "/usr/bin/",
    "/usr/sbin/",
    "/usr/local/bin/",
    "/usr/local/sbin/",
    "/usr/libexec/",
]);

fn is_command(w: &str) -> bool {
    // The last path component, found with a byte scan (this runs for most words).
    let base = w
        .as_bytes()
        .iter()
        .rposition(|&c| c == b'/' || c == b'\\')
        .and_then(|p| w.get(p + 1..))
        .unwrap_or(w);
    let base = base.strip_suffix(".exe").unwrap_or(base);
    // A listed name starts and ends with a name byte (a test checks the list): a piece of a
    // `${jndi:${jndi:` run (`jndi:$`) is out without being hashed.
    let ends_fit = |b: Option<&u8>| b.is_some_and(|&b| name_byte(b));
    (ends_fit(base.as_bytes().first())
        && ends_fit(base.as_bytes().last())
        && DISTINCTIVE_SET.contains(base))
        || versioned_interpreter(base)
        // Every family ends with `-`. (A byte loop: a name is a few bytes, and `contains`
        // was a `memchr` call per segment of a `${jndi:` run.)
        || (base.bytes().any(|b| b == b'-')
            && FAMILIES
                .iter()
                .any(|f| base.starts_with(f) && base.len() > f.len()))
}

/// The bytes of [`DISTINCTIVE`] names: `a-z`, digits, `.`, `-`, `+`.
fn name_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+')
}

/// `python3.10`, `perl5.36`, `php8`: interpreters carry versions in their names.
fn versioned_interpreter(w: &str) -> bool {
    // A version ends in a digit or a dot: most words are out after one byte.
    if !w
        .bytes()
        .last()
        .is_some_and(|b| b.is_ascii_digit() || b == b'.')
    {
        return false;
    }
    // Read through a table: unrolled, the list stood in each of the callers it is inlined in.
    crate::detect::Words::new(INTERPRETERS).iter().any(|i| {
        w.strip_prefix(i)
            .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
    })
}

/// Interpreters that carry versions in their names ([`versioned_interpreter`]).
const INTERPRETERS: &[&str] = &["python", "perl", "php", "ruby", "node", "lua", "pip"];

fn wordlike(w: &str) -> bool {
    WORDLIKE_SET.contains(w)
}

/// Undoes quoting evasions the way a shell would read the value: drops `\`, `'`, `"` and `^`
/// (cmd.exe's escape), turns `$IFS`/`${IFS}` and tabs into spaces, drops empty expansions like
/// `${x}`/`$x` glued inside a word, lowercases. Returns the text and whether an evasion
/// changed a word (a strong signal on its own when the result is a command).
pub fn deobfuscate(v: &str) -> (String, bool) {
    deobfuscate_lower(&v.ascii_lower())
}

/// [`deobfuscate`] of a value already ASCII-lowercased (an input's `lower`).
fn deobfuscate_lower(lower: &str) -> (String, bool) {
    // Both spellings hold `ifs`: one search when it is absent (every window of most bodies).
    let mut s = if lower.has_lit("ifs") && (lower.has_lit("$ifs") || lower.has_lit("${ifs}")) {
        lower
            .replace("${ifs}", " ")
            .replace("$ifs$9", " ")
            .replace("$ifs", " ")
    } else {
        lower.to_string()
    };
    let mut evasion = s.len() != lower.len();
    // Expansions glued between letters: c${x}url, c$@at, w$()hoami. Only a `$` can start
    // one: the text between two of them is copied as one run (a byte loop cost ~10 Wasm
    // instructions per byte of every window).
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut copied = 0;
    let mut i = 0;
    while let Some(p) = b.get(i..).and_then(|r| crate::detect::find_byte(r, b'$')) {
        i += p;
        let prev_alpha = i > 0 && b.get(i - 1).is_some_and(u8::is_ascii_alphabetic);
        if prev_alpha {
            let rest = s.get(i..).unwrap_or_default();
            let mut word = None;
            let skip =
                if rest.starts_with("$@") || rest.starts_with("$*") || rest.starts_with("$()") {
                    if rest.starts_with("$()") {
                        3
                    } else {
                        2
                    }
                } else if rest.starts_with("${") {
                    // Bounded look-ahead: `${${${...` must not rescan the value per `${`.
                    let end = super::find_byte(super::head(rest.as_bytes(), 32), b'}');
                    // `${x:-a}`, `${x:=a}`: an unset variable expands to its default word.
                    word = end
                        .and_then(|e| rest.get(2..e))
                        .and_then(|inner| inner.split_once(":-").or(inner.split_once(":=")))
                        .map(|(_, w)| w)
                        .filter(|w| w.bytes().all(|c| c.is_ascii_alphanumeric()));
                    end.map_or(0, |e| e + 1)
                } else {
                    // `sh$xx -c`: an unset variable ending a word expands to nothing.
                    let name = rest
                        .bytes()
                        .skip(1)
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
                        .count();
                    let ends_word = rest
                        .as_bytes()
                        .get(1 + name)
                        .is_none_or(|c| matches!(c, b' ' | b'\t' | b';' | b'|' | b'&' | b'\n'));
                    if name > 0
                        && rest.as_bytes().get(1).is_some_and(u8::is_ascii_alphabetic)
                        && ends_word
                    {
                        1 + name
                    } else {
                        0
                    }
                };
            if skip > 0 {
                // Every cut is next to ASCII bytes (`$`, `}`, a name): on char boundaries.
                out.push_str(s.get(copied..i).unwrap_or_default());
                out.push_str(word.unwrap_or_default());
                evasion = true;
                i += skip;
                copied = i;
                continue;
            }
        }
        i += 1;
    }
    // Nothing skipped: `out` would be `s` again (most values; a `${jndi:` run has no `$`
    // after a letter), so neither the copy nor its ASCII check is made.
    if copied > 0 {
        out.push_str(s.get(copied..).unwrap_or_default());
        // The byte loop pushed other bytes as Latin-1 chars and kept its text only when all
        // were ASCII: copying runs, the text is the same exactly when it is ASCII.
        if out.is_ascii() {
            s = out;
        }
    }
    // Quotes, backslashes and carets dropped (an evasion when glued between two letters or
    // digits), tabs and form feeds as spaces: one pass over the bytes (every byte this
    // looks at is ASCII, and the bytes of other characters are copied as they are).
    let b = s.as_bytes();
    let special = |c: &u8| matches!(c, b'\\' | b'\'' | b'"' | b'^' | b'\t' | 0x0b | 0x0c);
    // None of them: the text is the answer as it is (no copy, no second UTF-8 check).
    let Some(first) = b.iter().position(special) else {
        return (s, evasion);
    };
    let mut cleaned = Vec::with_capacity(b.len());
    cleaned.extend_from_slice(b.get(..first).unwrap_or_default());
    let mut idx = first;
    // Runs without those bytes are copied whole.
    while let Some(run) = b.get(idx..) {
        let p = run.iter().position(special).unwrap_or(run.len());
        // A one-byte run (`\u\u\u`, `\r\n` escapes: one per special byte) is pushed, not
        // copied by a `memcpy` call.
        match run.get(..p).unwrap_or_default() {
            [x] => cleaned.push(*x),
            r => cleaned.extend_from_slice(r),
        }
        idx += p;
        let Some(&c) = b.get(idx) else {
            break;
        };
        if matches!(c, b'\t' | 0x0b | 0x0c) {
            cleaned.push(b' ');
        } else {
            let alnum = |i: Option<usize>| {
                i.and_then(|i| b.get(i))
                    .is_some_and(u8::is_ascii_alphanumeric)
            };
            evasion |= alnum(idx.checked_sub(1)) && alnum(Some(idx + 1));
        }
        idx += 1;
    }
    // Only ASCII bytes were dropped or replaced: the rest is still UTF-8.
    (String::from_utf8(cleaned).unwrap_or_default(), evasion)
}

/// How a command segment was introduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Intro {
    /// Start of the value.
    Start,
    /// `;`, `|`, `||`, `&&`, newline, `$(`, `<(`, `>(`: only shells give these meaning.
    Strong,
    /// A backtick: command substitution in a shell, but also Markdown code spans
    /// (`` run `npm install` ``), so a word alone is not enough.
    Tick,
    /// A lone `&` glued to the next word (`x&whoami`): a background separator.
    Amp,
    /// A `(`, `)`, `{`, `}` or `&` followed by a space: also common in prose.
    Weak,
}

/// Splits a de-obfuscated value into (introducer, segment) pairs at shell separators, one
/// segment at a time: no `Vec` entry per separator (a window of `((((` or `${${` is thousands
/// of segments, and the first command found usually ends the walk).
fn segments(s: &str) -> Segments<'_> {
    Segments {
        s,
        start: 0,
        i: 0,
        intro: Intro::Start,
        in_template: false,
        done: false,
    }
}

/// The walk of [`segments`]: the current segment starts at `start`, the scan is at `i`.
struct Segments<'a> {
    s: &'a str,
    start: usize,
    i: usize,
    intro: Intro,
    /// Inside a `{{ ... }}` or `{% ... %}` expression of a template language (Jinja, Twig,
    /// Liquid, Nunjucks), where `|` applies a filter.
    in_template: bool,
    done: bool,
}

impl<'a> Iterator for Segments<'a> {
    type Item = (Intro, &'a str);

    fn next(&mut self) -> Option<(Intro, &'a str)> {
        if self.done {
            return None;
        }
        let s = self.s;
        let b = s.as_bytes();
        while let Some(&c) = b.get(self.i) {
            let i = self.i;
            let next = b.get(i + 1).copied();
            match (c, next) {
                (b'{', Some(b'{' | b'%')) => self.in_template = true,
                (b'}' | b'%', Some(b'}')) => self.in_template = false,
                _ => {}
            }
            let (sep_len, kind) = match (c, next) {
                (b'<', Some(b'<')) if b.get(i + 2) == Some(&b'<') => (3, Intro::Strong),
                (b'|', _) if self.in_template && template_filter(b, i + 1) => (0, Intro::Start),
                (b'&', Some(b'&')) | (b'|', Some(b'|')) => (2, Intro::Strong),
                (b'$', Some(b'(')) | (b'<', Some(b'(')) | (b'>', Some(b'(')) => (2, Intro::Strong),
                (b';' | b'|' | b'\n' | b'\r', _) => (1, Intro::Strong),
                (b'`', _) => (1, Intro::Tick),
                (b'&', Some(n)) if !n.is_ascii_whitespace() => (1, Intro::Amp),
                (b'&' | b'(' | b'{', _) => (1, Intro::Weak),
                (b')' | b'}', _) => (1, Intro::Weak),
                _ => (0, Intro::Start),
            };
            if sep_len > 0 {
                let seg = s.get(self.start..i).unwrap_or_default();
                let item = (self.intro, seg);
                // A subshell right after a separator (`&&(sh)`, `;{ id; }`) keeps its strength.
                let strong_before =
                    self.intro == Intro::Strong && seg.trim().is_empty() && c == b'(';
                self.intro = if c == b')' || c == b'}' {
                    Intro::Weak
                } else if strong_before {
                    Intro::Strong
                } else {
                    kind
                };
                self.i = i + sep_len;
                self.start = self.i;
                return Some(item);
            }
            self.i = i + 1;
        }
        self.done = true;
        s.get(self.start..).map(|seg| (self.intro, seg))
    }
}

/// A template filter after the `|` at `from` (`{{ items|join(', ') }}`, `{{ list|sort|first
/// }}`): a name, then its argument list, another `|` or the end of the expression. A shell
/// command after a pipe takes words (`{{ x|cat /etc/passwd }}` still splits). Reads only the
/// name and the spaces around it.
fn template_filter(b: &[u8], from: usize) -> bool {
    let mut i = from;
    while b.get(i) == Some(&b' ') {
        i += 1;
    }
    let name = i;
    while b
        .get(i)
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
    {
        i += 1;
    }
    if i == name {
        return false;
    }
    while b.get(i) == Some(&b' ') {
        i += 1;
    }
    matches!(
        (b.get(i), b.get(i + 1)),
        (Some(b'(' | b'|'), _) | (Some(b'}' | b'%' | b'-'), Some(b'}'))
    )
}

/// Whether an argument is shell syntax no prose uses: an option (`-la`, `--help`), an
/// absolute or home path, a redirection, a variable, a Windows `%VAR%` or drive path.
fn shellish_arg(a: &str) -> bool {
    let b = a.as_bytes();
    let option = match b {
        [b'-', b'-', c, ..] | [b'-', c, ..] => c.is_ascii_alphanumeric(),
        _ => false,
    };
    option
        || a.starts_with('/')
        || a.starts_with("~/")
        || a.starts_with("./")
        || a.starts_with("../")
        || (a.starts_with('$') && a.len() > 1)
        // A redirection; `>=`, `<=` and `<>` compare versions and values (`node >= 18`):
        // no shell user sends output to a file named `=`.
        || (a.starts_with('>') || a.starts_with('<'))
            && !matches!(b, [b'>' | b'<', b'='] | [b'<', b'>'])
        || a.has_lit("/etc/")
        || (a.starts_with('%') && a.len() > 2 && a.ends_with('%'))
        // A bare drive (`dir c:`): the `\` after it was removed with the escapes.
        || matches!(b, [d, b':'] if d.is_ascii_alphabetic())
        || a.has_lit(":\\")
}

/// `-x`, `-la`, `--long`.
fn is_option(a: &str) -> bool {
    match a.as_bytes() {
        [b'-', b'-', c, ..] | [b'-', c, ..] => c.is_ascii_alphanumeric(),
        _ => false,
    }
}

/// Backticks used as Markdown code spans in a sentence: each opening backtick follows the
/// start, a space or `(`, each closing one precedes the end, a space or punctuation, and the
/// value reads as prose. Commands in such spans are documentation at paranoia 1.
fn markdown_code_spans(v: &str) -> bool {
    let b = v.as_bytes();
    let mut open = false;
    for p in super::byte_offsets(v, b'`') {
        let before = p.checked_sub(1).and_then(|i| b.get(i)).copied();
        let after = b.get(p + 1).copied();
        let ok = if open {
            after.is_none_or(|c| c.is_ascii_whitespace() || c.is_ascii_punctuation() && c != b'`')
        } else {
            before.is_none_or(|c| c.is_ascii_whitespace() || c == b'(')
        };
        if !ok {
            return false;
        }
        open = !open;
    }
    !open && super::lfi::prose(v)
}

/// Whether an argument names something a command acts on rather than a prose word: a host,
/// an address, a URL, a relative path or a number (`8.8.8.8`, `evil.com/x.sh`, `80`). A
/// word that ends a sentence (`clients.`) is prose.
fn target_arg(a: &str) -> bool {
    let Some(&last) = a.as_bytes().last() else {
        return false;
    };
    !matches!(last, b'.' | b',' | b':' | b')' | b'!' | b'?')
        && (a.bytes().all(|b| b.is_ascii_digit())
            || a.has_any(b".:/\\@") && a.bytes().any(|b| b.is_ascii_alphanumeric()))
}

/// Arguments that are three or more plain words (letters only, the last may end a
/// sentence): a clause of prose, not a command line.
fn prose_clause(args: &[&str]) -> bool {
    args.len() >= 3
        && args.iter().all(|a| {
            let w = a.trim_end_set(b".,!?");
            w.len() >= 2 && w.bytes().all(|b| b.is_ascii_alphabetic())
        })
}

/// A segment of at most four words: a command line, not a sentence.
fn seg_is_short(seg: &str) -> bool {
    seg.words().nth(4).is_none()
}

/// A necessary condition for [`command_in_segment`] at the start of a value without `=`, `$`,
/// `/` or `\\` (the gate's word, dotted and phrase shapes): nothing there is skipped but a
/// prefix word, no program is glued to an option, so the first word must be a prefix or a
/// program, or a long option (`--x`) must follow. One lookup instead of the whole walk.
///
/// Runs on most values of a request (through the gate), so the first word is found with a
/// byte scan and checked against [`start_filter`] before any list is hashed: most words
/// (`customer`, `value-3-abcdef`) are out after one table read.
///
/// `bytes` holds the bytes of `seg` ([`crate::extract::Input::bytes`]): without a `-` there
/// is no `--` to look for.
///
/// (The gate calls [`may_start_command_dashed`] with the `--` answer it shares with sqli's
/// gate; this form is what the equivalence test checks.)
#[cfg(test)]
pub(crate) fn may_start_command(seg: &str, bytes: &crate::extract::ByteSet) -> bool {
    may_start_command_dashed(seg, false, || {
        bytes.has(b'-') && super::find_bytes(seg.as_bytes(), b"--", 0).is_some()
    })
}

/// `may_start_command` given whether `seg` holds `--` (asked only when the first word
/// names nothing): the gate knows it already (sqli's gate asks the same of every value).
///
/// `one_word`: the caller knows `seg` is ASCII without whitespace, `/` or `\\` (the gate's
/// word and dotted shapes): the first word is then all of it, found without reading it.
pub(crate) fn may_start_command_dashed(
    seg: &str,
    one_word: bool,
    dashes: impl FnOnce() -> bool,
) -> bool {
    let b = seg.as_bytes();
    if one_word && !b.ends_with(b".exe") {
        return may_name_word(seg) || dashes();
    }
    // ASCII whitespace as `char::is_whitespace` has it; a non-ASCII byte may start Unicode
    // whitespace, so a first word holding one takes the general path below.
    let ws = |c: &u8| matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let start = b.iter().position(|c| !ws(c)).unwrap_or(b.len());
    let rest = b.get(start..).unwrap_or_default();
    let len = rest.iter().position(ws).unwrap_or(rest.len());
    let first = rest.get(..len).unwrap_or_default();
    // `is_command` reads the last path component without `.exe`: such words take the
    // general path too (the filter is keyed on the word itself).
    let plain =
        first.iter().all(|&c| c < 0x80 && c != b'/' && c != b'\\') && !first.ends_with(b".exe");
    let named = if plain {
        seg.get(start..start + len).is_some_and(may_name_word)
    } else {
        let first = seg.first_word().unwrap_or_default();
        PREFIX_SET.contains(first) || is_command(first)
    };
    named || dashes()
}

/// Whether the word `w` may name a command (a [`PREFIXES`] entry or a name [`is_command`]
/// accepts), the byte screen first: [`may_start_command_dashed`]'s answer for a word before
/// its `--` question, and the extractor's inert-token screen (`extract::inert_token`).
pub(crate) fn may_name_word(w: &str) -> bool {
    may_name_command(w.as_bytes()) && (PREFIX_SET.contains(w) || is_command(w))
}

/// Whether the plain word `w` (ASCII, no `/` or `\\`, not ending in `.exe`) may be a
/// [`PREFIXES`] entry or a name [`is_command`] accepts: a listed word ([`START_WORDS`]), or a
/// versioned interpreter or a tool family's member ([`start_filter`]: the stems' first two
/// bytes and the lengths past them). A superset: a word it admits is still looked up.
///
/// [`START_LENGTHS`] first: a word whose first byte and length no name has (`value-3-abcdef`,
/// a 16-byte session id) is out after one table read, without the word's hash.
#[inline(always)]
fn may_name_command(w: &[u8]) -> bool {
    start_lengths_admit(w)
        && (START_WORDS.may_hold(w)
            || start_filter()
                .get(start_key(w))
                .is_some_and(|lens| lens & len_bit(w.len()) != 0))
}

/// For each first byte (its low five bits: case and a few other bytes fold together, which
/// only makes the screen coarser), the lengths ([`len_bit`]) of the words that may be a
/// [`PREFIXES`] entry or a name [`is_command`] accepts as a plain word: each listed name's
/// length, and every length past a versioned interpreter's or tool family's stem. 128 bytes
/// of data, built at compile time; the test `start_lengths_hold_every_name` checks it.
/// Whether [`START_LENGTHS`] has `w`'s length under its first byte.
#[inline(always)]
fn start_lengths_admit(w: &[u8]) -> bool {
    START_LENGTHS
        .get(usize::from(w.first().map_or(0, |&c| c & 31)))
        .is_some_and(|lens| lens & len_bit(w.len()) != 0)
}

static START_LENGTHS: [u32; 32] = {
    let mut t = [0u32; 32];
    let lists: [&[&str]; 4] = [PREFIXES, DISTINCTIVE, INTERPRETERS, FAMILY_STEMS];
    let mut l = 0;
    while l < lists.len() {
        let list = lists[l];
        let mut k = 0;
        while k < list.len() {
            let w = list[k].as_bytes();
            let key = if w.is_empty() {
                0
            } else {
                (w[0] & 31) as usize
            };
            // A stem (interpreters, families) names any word longer than itself.
            t[key] |= if l >= 2 {
                !0u32 << if w.len() + 1 < 31 { w.len() + 1 } else { 31 }
            } else {
                len_bit(w.len())
            };
            k += 1;
        }
        l += 1;
    }
    t
};

/// The words [`PREFIX_SET`] and [`DISTINCTIVE_SET`] hold, as a screen ([`may_name_command`]).
static START_WORDS: super::WordBits = super::WordBits::EMPTY
    .with_all(PREFIXES)
    .with_all(DISTINCTIVE);

/// The index of a word in [`start_filter`]: its first two bytes (five bits each; the
/// collisions of a fold only make the filter coarser).
fn start_key(w: &[u8]) -> usize {
    let bits = |i: usize| w.get(i).map_or(0, |&c| usize::from(c & 31));
    (bits(0) << 5) | bits(1)
}

/// A word length as a bit of a [`start_filter`] entry (31: 31 bytes or more).
const fn len_bit(len: usize) -> u32 {
    1 << if len < 31 { len } else { 31 }
}

/// For each [`start_key`], the lengths of the words that [`is_command`] can accept there as
/// a versioned interpreter or a tool family's member (a plain word: no path, no `.exe`): any
/// length past the stem. The listed words are screened by [`START_WORDS`]. Built once
/// ([`crate::detect::build_tables`]).
pub(super) fn start_filter() -> &'static [u32] {
    static FILTER: std::sync::OnceLock<Vec<u32>> = std::sync::OnceLock::new();
    FILTER.get_or_init(|| {
        let mut t = vec![0u32; 1 << 10];
        let mut add = |w: &str, lens: u32| {
            if let Some(e) = t.get_mut(start_key(w.as_bytes())) {
                *e |= lens;
            }
        };
        for stem in INTERPRETERS.iter().chain(FAMILIES.iter()) {
            add(stem, !0u32 << (stem.len() + 1).min(31));
        }
        t
    })
}

/// The rule of a value that is only a program and its targets (`ping 127.0.0.1`): paranoia 2.
pub(crate) const TARGET_ONLY: &str = "rce.command-target";
/// The rule of an English-word program given one plain path after a separator
/// (`; cat /path/file.gz`): paranoia 2.
pub(crate) const WORD_AND_PATH: &str = "rce.word-command-path";

/// The rule of a program that is also an English word given options and plain arguments
/// (`; tar -xzf /var/www/a.tar.gz /etc`, `;vi -c:\!pwd`, a whole value `tar -xzf a.tgz`):
/// paranoia 2, as CRS, whose paranoia-1 command rules (932230, 932235, 932250, 932260)
/// leave English words out and score them in 932236 (paranoia 2).
pub(crate) const WORD_OPTIONS: &str = "rce.word-command-options";

/// The rule of a package manager or build tool and its sub-command as the whole value
/// (`npm install --save-dev eslint`, `docker run -p 8080:80 nginx`): paranoia 2.
pub(crate) const TOOL_COMMAND: &str = "rce.tool-command";

/// Package managers, container and cloud tools: developers write their command lines in
/// READMEs, search queries and CI snippets as whole values (CRS leaves them out of its
/// paranoia-1 lists as well: `npm`, `docker`, `apt-get`, `gem`, `pip`, `composer`; a
/// configuration tool that runs commands on hosts, `ansible all -m ping`, stays at 1).
/// (Only names of [`DISTINCTIVE`]: the others are no commands to begin with.)
const DEV_TOOLS: crate::detect::Words = crate::detect::Words::new(&[
    "npm",
    "pip",
    "pip3",
    "gem",
    "composer",
    "docker",
    "podman",
    "kubectl",
    "helm",
    "terraform",
    "apt",
    "apt-get",
    "dnf",
    "yum",
    "gcloud",
    "puppet",
]);

/// `tool verb args...` with nothing of a shell in the arguments: the sub-command a plain
/// word (`install`, `run`, `get`), no variable, redirection, substitution or sensitive file.
fn tool_with_subcommand(base: &str, args: &[&str]) -> bool {
    DEV_TOOLS.iter().any(|t| *t == base)
        && args
            .first()
            .is_some_and(|a| a.len() >= 2 && a.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'))
        && args
            .iter()
            .all(|a| !a.has_any(b"$`><%") && !super::lfi::sensitive_target(a))
}

/// A program name that is also an English word: the common words of [`WORDLIKE`] of
/// three letters or more (`cat`, `tar`, `find`, `sleep`), and `vi` and `ex`; the other
/// two-letter names are abbreviations no sentence uses as words (`ls`, `ps`, `rm`). Not
/// the words whose options are shell use nearly always (`head -c`, `tail -f`, `echo -e`,
/// `eval`, `exec`, `printf`, `diff`, `strings`, `timeout`, `source`, `test`, `stat`),
/// which CRS keeps at paranoia 1 too.
fn english_program(base: &str) -> bool {
    wordlike(base)
        && (base.len() >= 3 || matches!(base, "vi" | "ex"))
        && !matches!(
            base,
            "head"
                | "tail"
                | "echo"
                | "eval"
                | "exec"
                | "printf"
                | "diff"
                | "strings"
                | "timeout"
                | "source"
                | "test"
                | "stat"
        )
}

/// `-x`, `--long`, and the `+option` form of editors and `set` (`+wq`, `+o`).
fn is_option_or_plus(a: &str) -> bool {
    is_option(a)
        || a.strip_prefix('+')
            .is_some_and(|r| r.bytes().next().is_some_and(|b| b.is_ascii_alphabetic()))
}

/// English-word program lines that are only options and plain arguments: at least one
/// option, no variable, redirection, substitution or Windows variable, and no sensitive
/// file (`;cat -n /etc/passwd` stays at paranoia 1).
fn word_with_plain_options<'a>(
    base: &str,
    mut args: impl Iterator<Item = &'a str> + Clone,
) -> bool {
    english_program(base)
        && args.clone().any(is_option_or_plus)
        && args.all(|a| !a.has_any(b"$`><%") && !super::lfi::sensitive_target(a))
}

/// Finds a command in one segment; returns the rule that fits, if any.
pub(crate) fn command_in_segment(intro: Intro, seg: &str) -> Option<&'static str> {
    // Every program name holds a letter or digit (a test checks the lists), and so does the
    // option-after-separator shape: a segment of punctuation alone (`$`, `{`: the pieces of
    // a `${${...` run) names nothing, whatever the walk below would look up for it.
    if !seg.bytes().any(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    // One word (the pieces of a `${jndi:${jndi:` run): no argument follows it, so it names a
    // program only if it is one itself or glued to a Windows option (`cmd/c`); a prefix,
    // variable or assignment alone names nothing. Decided without the walk below (its prefix
    // lookup and word iterator) when it names nothing; otherwise the walk decides.
    // (The `/` found by a byte loop: `split_once` set up a `CharSearcher` per segment.)
    if seg.bytes().all(|b| b > b' ' && b < 0x80)
        && !is_command(seg)
        && (seg.starts_with('/')
            || seg.bytes().position(|b| b == b'/').is_none_or(|p| {
                let (prog, opt) = (seg.get(..p).unwrap_or_default(), seg.get(p + 1..));
                let opt = opt.unwrap_or_default();
                opt.is_empty() || opt.len() > 3 || !is_command(prog)
            }))
    {
        return None;
    }
    command_in_words(intro, seg)
}

/// [`command_in_segment`]'s walk over the words of `seg` (all of it, before the one-word
/// shortcut).
fn command_in_words(intro: Intro, seg: &str) -> Option<&'static str> {
    let mut words = seg.words().peekable();
    let mut first = words.next()?;
    let mut prefixed = false;
    // Skip prefixes, `$var` expansions and VAR=value assignments.
    for _ in 0..4 {
        let is_assign =
            first.as_bytes().has_byte(b'=') && !first.starts_with('=') && !first.starts_with('-');
        let is_var = first.starts_with('$') && first.len() > 1;
        let is_prefix = PREFIX_SET.contains(first);
        let next_is_option = words.peek().is_none_or(|w| w.starts_with('-'));
        if is_prefix && next_is_option && is_command(first) {
            break;
        }
        if is_prefix || is_assign || is_var {
            // `sudo x`, `nohup x`: prefixes that are not English words.
            prefixed |= is_prefix
                && matches!(
                    first,
                    "sudo"
                        | "nohup"
                        | "doas"
                        | "setsid"
                        | "busybox"
                        | "stdbuf"
                        | "strace"
                        | "xargs"
                );
            // `timeout 5 cmd`, `nice 10 cmd`: a prefix's numeric argument is not the command.
            match words.next() {
                Some(w) if is_prefix && w.bytes().all(|b| b.is_ascii_digit()) => {
                    match words.next() {
                        Some(w) => first = w,
                        None => return None,
                    }
                }
                Some(w) => first = w,
                None => return None,
            }
        } else {
            break;
        }
    }
    // Windows options glued to the program: `cmd/c`, `bcdboot/r`.
    let mut glued_option = false;
    // Asked once (a hash lookup; a `${${` window has thousands of segments to ask it for).
    let mut first_is_command = is_command(first);
    if !first.starts_with('/') && !first_is_command {
        if let Some((prog, opt)) = first.split_once_char('/') {
            if is_command(prog) && !opt.is_empty() && opt.len() <= 3 {
                glued_option = true;
                first = prog;
                first_is_command = true;
            }
        }
    }
    // `; tool --option` is shell usage whatever the tool is called.
    let peek_option = words.peek().is_some_and(|w| match w.as_bytes() {
        [b'-', b'-', c, ..] | [b'-', c, ..] => c.is_ascii_alphabetic(),
        _ => false,
    });
    // At the start of a value only a long option (`perf --version`) is that telling.
    let long_option = words.peek().is_some_and(|w| {
        w.starts_with("--") && w.as_bytes().get(2).is_some_and(u8::is_ascii_alphabetic)
    });
    if (intro == Intro::Strong || (intro == Intro::Start && long_option && seg_is_short(seg)))
        && peek_option
        && first.len() >= 2
        && first
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && first
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic())
    {
        if word_with_plain_options(first, words) {
            return Some(WORD_OPTIONS);
        }
        return Some("rce.command-after-separator");
    }
    if !first_is_command {
        return None;
    }
    let has_path = BIN_DIRS.iter().any(|d| first.starts_with(d));
    let base = first.rsplit_first_any(b"/\\").unwrap_or(first);
    let base = base.strip_suffix(".exe").unwrap_or(base);
    if glued_option {
        return Some(if intro == Intro::Start {
            "rce.command"
        } else {
            "rce.command-after-separator"
        });
    }
    // A word that starts with `#` begins a comment: the shell ignores the rest of the line
    // (`| sh #` leaves the application's own arguments unrun).
    let mut args: Vec<&str> = words.collect();
    if let Some(comment) = args.iter().position(|w| w.starts_with('#')) {
        args.truncate(comment);
    }
    // `df = pd.read_csv(f)`, `id += 1`: a name and an assignment operator is a statement in
    // every language but the shell, where it would run `df` with an argument `=`, which no
    // command line does (a shell assignment has no spaces: `df=x`, one word).
    if args.first().is_some_and(|a| {
        a.len() <= 2 && a.ends_with('=') && a.bytes().all(|b| b"=+-*/%|&^:.!".contains(&b))
    }) {
        return None;
    }
    let any_shellish = args.iter().any(|a| shellish_arg(a));
    let first_shellish = args.first().is_some_and(|a| shellish_arg(a));
    // Prose puts words after a program name ("python 3.12 release notes", "ping 8.8.8.8
    // slow"); an attack puts options, paths or targets there.
    let all_targets = !args.is_empty() && args.len() <= 3 && args.iter().all(|a| target_arg(a));
    let word = wordlike(base) && !has_path;
    let recon_alone = args.is_empty() && RECON.iter().any(|r| *r == base);
    // `& net user x y /add`, `(type x -n)`: a program that is also a word, given an option or
    // a Windows switch in a short segment, is a command line after `&`, `(` or a backtick.
    let word_with_switches = word
        && args.len() <= 5
        && args.iter().any(|a| {
            is_option(a)
                || a.strip_prefix('/').is_some_and(|sw| {
                    (1..=8).contains(&sw.len()) && sw.bytes().all(|b| b.is_ascii_alphabetic())
                })
        });
    if has_path {
        return Some(if intro == Intro::Start {
            "rce.command"
        } else {
            "rce.command-after-separator"
        });
    }
    if matches!(intro, Intro::Strong | Intro::Start)
        && word_with_plain_options(base, args.iter().copied())
    {
        return Some(WORD_OPTIONS);
    }
    // A whole value (after a separator it counts at 1: `;docker run ...`).
    if intro == Intro::Start && tool_with_subcommand(base, &args) {
        return Some(TOOL_COMMAND);
    }
    // Versioned interpreters (`python3.10`) and tool families (`ansible-vault`) are program
    // names that prose does not use.
    // Compound names (`aa-disable`, `redis-cli`, `apt-get`) are not prose words either.
    let versioned = versioned_interpreter(base);
    // A value that opens with a versioned interpreter and goes on with plain words only
    // ("Python3 bindings for libfoo", "Node18 runtime helpers") names it: a command line
    // gives it a script (`x.py`), a path, an option or code. Paranoia 2, like a program and
    // its targets; one word after it (`python3.10 cmd`, a script run by name) stays at 1.
    if versioned
        && intro == Intro::Start
        && args.len() >= 2
        && args.iter().all(|a| {
            let w = a.trim_end_set(b".,");
            w.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
                && w.bytes().all(|b| b.is_ascii_alphanumeric())
        })
    {
        return Some(TARGET_ONLY);
    }
    let strong_name = (versioned
        || FAMILIES.iter().any(|f| base.starts_with(f))
        || base.has_any(b"-_") && DISTINCTIVE_SET.contains(base))
        && args.len() <= 4;
    // `; sleep 5`, `| timeout 5`, `` `sleep 5` ``: a program and one number and nothing
    // else is how a time-based blind injection waits; prose after a separator goes on with
    // words ("meet at 5; sleep 8 hours") or capitalises them ("Best sellers | Top 10": no
    // shell finds a program called `Top`).
    let count_only = !first.bytes().any(|b| b.is_ascii_uppercase())
        && matches!(args.as_slice(), [n] if n.len() <= 6
        && n.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && n.bytes().next().is_some_and(|b| b.is_ascii_digit()));
    // `; cat /path/file.gz`: a program that is also an English word (three letters or more)
    // given one plain path and nothing else. Paranoia 2, as CRS (932236); a sensitive file
    // (`;cat /etc/passwd`), a second command, an option or an evasion still count at 1.
    if intro == Intro::Strong
        && word
        && base.len() >= 3
        && base.bytes().all(|b| b.is_ascii_lowercase())
        && matches!(args.as_slice(), [a] if a.starts_with('/')
            && a.len() > 1
            && a.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'-' | b'_'))
            && !super::lfi::sensitive_target(a))
    {
        return Some(WORD_AND_PATH);
    }
    let found = strong_name
        || match intro {
            // `| nc 10.0.0.5 4444`, `; ping 127.0.0.1`: after a shell separator a
            // program given only a host or address is a command line.
            // A clause of prose after a semicolon ("Fast, small; curl alternative written
            // in Go") names a program; a command line gives it options, paths or targets.
            Intro::Strong if prose_clause(&args) && !any_shellish => false,
            Intro::Strong => {
                !word
                    || any_shellish
                    || args.is_empty()
                    || all_targets && args.iter().any(|a| a.has_any(b".:/"))
                    || count_only
            }
            Intro::Amp => {
                (!word && (args.is_empty() || any_shellish || all_targets))
                    || first_shellish
                    || word_with_switches
            }
            Intro::Tick | Intro::Weak => {
                recon_alone
                    || (!word && (any_shellish || all_targets))
                    || first_shellish
                    || word_with_switches
                    || intro == Intro::Tick && count_only
            }
            // A sentence that starts with a program name and mentions a path ("Bash script to
            // backup /home directory") is prose unless it carries an option.
            Intro::Start if super::lfi::prose(seg) && !args.iter().any(|a| is_option(a)) => {
                recon_alone
            }
            Intro::Start => {
                if !recon_alone
                    && !word
                    && !any_shellish
                    && !first_shellish
                    && !prefixed
                    && all_targets
                {
                    // `ping 127.0.0.1`, `curl example.org`: a whole value that is a program
                    // and the host it is aimed at holds no shell syntax; it runs only where
                    // the application executes the whole value. Paranoia 2 (a command after a
                    // separator, with an option or a path, is paranoia 1).
                    return Some(TARGET_ONLY);
                }
                recon_alone || (!word && any_shellish) || first_shellish || prefixed
            }
        };
    found.then_some(if intro == Intro::Start {
        "rce.command"
    } else {
        "rce.command-after-separator"
    })
}

/// Glob paths a shell expands into real ones: `/???/c?t`, `/bi[n]/ba*h`, `/etc/pa[s]swd`.
fn glob_path(s: &str) -> bool {
    s.split_ws_or(&[';', '|', '&', '`', '(', ')', '"', '\''])
        .any(|tok| {
            let path = tok.trim_start_set(b"~");
            path.starts_with('/')
                && path.count_char('/') >= 2
                && (path.has_any(b"?*") || letter_bracket(path))
                && path
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/?*[]-_.!^".contains(&b))
                && path.bytes().filter(u8::is_ascii_alphabetic).count() >= 1
                && !wildcard_listing(path)
        })
}

/// A bracket expression that stands for a letter (`c[a]t`, `/e[t]c`, `[!x]`); an index
/// of digits alone (`/bookstore/book[1]/title`, `/items[0]/name`: XPath and JSON paths)
/// spells no program or file name.
fn letter_bracket(path: &str) -> bool {
    path.split_char('[').skip(1).any(|rest| {
        !rest
            .split_char(']')
            .next()
            .unwrap_or_default()
            .bytes()
            .all(|b| b.is_ascii_digit())
    })
}

/// `/old/*`, `/var/log/*.log`: a `*` standing for every name (or every name with an
/// extension) in one directory is how people write URL rules and log paths. Globs that
/// stand for letters of a name (`/bin/c?t`, `/et*/pa??wd`, `/usr/bin/ca*`) are not.
fn wildcard_listing(path: &str) -> bool {
    let (dir, last) = path.rsplit_once_char('/').unwrap_or(("", path));
    let ext = last.strip_prefix("*.").unwrap_or_default();
    !dir.has_any(b"?*[")
        && (last == "*"
            || last == "**"
            || !ext.is_empty() && ext.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Brace expansion whose alternatives form a command: `{cat,/etc/passwd}`, `c{a,ou}t`,
/// `{,ip,a}`.
fn brace_expansion(s: &str) -> bool {
    let mut from = 0;
    while let Some(open) = s
        .get(from..)
        .and_then(|h| h.find_char('{'))
        .map(|o| o + from)
    {
        let Some(close) = s
            .get(open..)
            .and_then(|h| h.find_char('}'))
            .map(|c| c + open)
        else {
            return false;
        };
        let inner = s.get(open + 1..close).unwrap_or_default();
        if inner.has_char(',') && !inner.contains(char::is_whitespace) && inner.len() < 200 {
            let word_start = s
                .get(..open)
                .unwrap_or_default()
                .rfind(|c: char| !c.is_ascii_alphanumeric())
                .map_or(0, |p| p + 1);
            let prefix = s.get(word_start..open).unwrap_or_default();
            let suffix: String = s
                .get(close + 1..)
                .unwrap_or_default()
                .chars()
                .take_while(char::is_ascii_alphanumeric)
                .collect();
            for alt in inner.split_char(',') {
                let w = format!("{prefix}{alt}{suffix}");
                if (is_command(&w) && w.len() >= 2) || alt.starts_with('/') && alt.len() > 1 {
                    return true;
                }
            }
        }
        from = close + 1;
    }
    false
}

/// `$(...)`, `${cmd}`/`$SHELL`-style expansions, and backticks around a command.
fn substitution(s: &str) -> bool {
    // Each needle is searched only when all its bytes occur (one pass for the set instead of
    // a search per needle over a 4 KiB window of a hostile body that has none of them).
    let set = crate::extract::ByteSet::of(s.as_bytes());
    if let Some(p) = set.has_all(b"$(").then(|| s.find_lit("$(")).flatten() {
        let rest = s.get(p + 2..).unwrap_or_default();
        if rest
            .first_char()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '(' || c == '/' || c == '$')
        {
            return true;
        }
    }
    // `$SHELL -c ...`, `${BASH}`: a shell variable run as the command (a `$PATH` mentioned in
    // prose is not). Each name is searched only when all its bytes occur.
    for var in [
        "$shell", "${shell}", "$bash", "${bash}", "$0", "${0}", "$path", "${path}", "$home",
        "${home}",
    ] {
        // `$HOME/.config`, `${PATH}/bin`: a directory variable opening a path names a file.
        let dir_var = var.has_lit("path") || var.has_lit("home");
        if set.has_all(var.as_bytes())
            && super::lit_offsets(s, var).any(|p| {
                let next = s.as_bytes().get(p + var.len());
                command_position(s, p)
                    && !next.is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                    && !(dir_var && next == Some(&b'/'))
            })
        {
            return true;
        }
    }
    if let Some(p) = set.has_all(b"${").then(|| s.find_lit("${")).flatten() {
        let rest = s.get(p + 2..).unwrap_or_default();
        let word: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if rest.get(word.len()..).is_some_and(|r| r.starts_with('}')) && is_command(&word) {
            return true;
        }
    }
    // `` `id` ``, `` `pwd` ``: the whole value one substitution of one program whose name
    // is no English word (two-letter Unix names count: `id`, `ls`, `ps`): the probe whose
    // output an injection echoes. A lone English-word program (`` `date` ``, `` `sort` ``,
    // also MySQL's quoting of such a column) is left to the rules below.
    if let Some(inner) = s
        .trim()
        .strip_prefix('`')
        .and_then(|r| r.strip_suffix('`'))
        .map(str::trim)
    {
        if !inner.has_char('`') && is_command(inner) && (!wordlike(inner) || inner.len() <= 2) {
            return true;
        }
    }
    // Backticks: a command line inside, judged like any command (Markdown code spans hold
    // words like `fetch` or `npm install`).
    // A backtick glued to a word or shell syntax (`x`id``, `${`id`}`) substitutes whatever it
    // holds (Markdown puts a space or punctuation before a code span).
    let glued = super::byte_offsets(s, b'`').step_by(2).any(|p| {
        p.checked_sub(1)
            .and_then(|i| s.as_bytes().get(i))
            .is_some_and(|c| {
                c.is_ascii_alphanumeric() || matches!(c, b'{' | b'$' | b'=' | b'(' | b'"' | b'\'')
            })
    });
    tick_spans(s).any(|inner| {
        command_in_segment(Intro::Tick, inner).is_some()
            || glued && inner.first_word().is_some_and(is_command)
    })
}

/// What each pair of backticks in `s` holds (the last one running to the end when it is
/// unpaired): the odd pieces of `s.split('`')`, found by a byte scan. The split was a
/// `CharSearcher` step per backtick (a `memchr` set-up each: on Wasm, with no SIMD, a
/// run of backticks cost ~100 instructions per byte).
fn tick_spans(s: &str) -> impl Iterator<Item = &str> + '_ {
    let mut ticks = super::byte_offsets(s, b'`');
    std::iter::from_fn(move || {
        let open = ticks.next()?;
        let end = ticks.next().unwrap_or(s.len());
        s.get(open + 1..end)
    })
}

/// Whether byte `p` of `s` starts a command: at the start, or after a separator and spaces.
///
/// A `(` glued to a name opens the argument list of a call (`filectime($path)`), not a
/// subshell: a shell has no `name(` that runs what follows.
fn command_position(s: &str, p: usize) -> bool {
    let before = s.get(..p).unwrap_or_default().trim_end();
    let call = before.strip_suffix('(').is_some_and(|b| {
        b.bytes()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
    });
    before.is_empty() || before.ends_with([';', '|', '&', '`', '(', '\n', '{']) && !call
}

/// cmd.exe control flow: `for /f ... in (...) do`, `for %x in (...) do`, `if exist`,
/// `if "%a%"=="b" cmd`.
pub(crate) fn windows_batch(s: &str) -> bool {
    windows_batch_in(s, &crate::extract::ByteSet::of(s.as_bytes()))
}

/// [`windows_batch`] with the byte set of `s` (or a superset) known: a needle is searched
/// only when all its bytes occur (`if`, `for` and the three variables were five searches of
/// every 4 KiB window of a hostile body).
fn windows_batch_in(s: &str, set: &crate::extract::ByteSet) -> bool {
    // The word walk below answers only for an `if` or `for` word, the variables after it
    // need a `%`: most values have none of them (a `/` alone, as in a `/*/*` run, used to
    // start the walk).
    if !(set.has_all(b"if") && s.has_lit("if") || set.has_all(b"for") && s.has_lit("for")) {
        return set.has(b'%') && batch_variable(s, set);
    }
    let words: Vec<&str> = s.words().collect();
    for (i, w) in words.iter().enumerate() {
        let w = w.trim_start_set(b"&|;(@");
        if w == "for" {
            let rest = words.get(i + 1..).unwrap_or_default();
            let flag = rest
                .first()
                .is_some_and(|n| n.len() == 2 && n.starts_with('/'));
            let var = rest.iter().take(4).any(|n| n.starts_with('%'));
            let has_in = rest
                .iter()
                .take(8)
                .any(|n| *n == "in" || n.starts_with("in("));
            let has_do = rest
                .iter()
                .any(|n| *n == "do" || n.ends_with(")do") || n.starts_with("do"));
            if (flag || var) && has_in && has_do {
                return true;
            }
        }
        if w == "if" || w.starts_with("if/") {
            let mut rest = words.get(i + 1..).unwrap_or_default();
            while rest.first().is_some_and(|n| *n == "/i" || *n == "not") {
                rest = rest.get(1..).unwrap_or_default();
            }
            if rest
                .first()
                .is_some_and(|n| matches!(*n, "exist" | "defined" | "errorlevel" | "cmdextversion"))
                && rest.len() >= 3
            {
                return true;
            }
            // `if a==b command`, `if %x% equ 2 command`: a comparison followed by an action.
            for (k, t) in rest.iter().take(6).enumerate() {
                let op = matches!(
                    *t,
                    "equ" | "neq" | "lss" | "leq" | "gtr" | "geq" | "==" | "==="
                );
                let glued = t.has_lit("==") && !t.ends_with("==");
                let tail = rest.get(k + 1..).unwrap_or_default();
                // A batch variable (`%1`, `%x%`) in the comparison marks cmd.exe syntax.
                let batch_var = rest.iter().take(k).any(|w| w.has_char('%'));
                // `if (a == b) { ... }`, `if x == 3: pass`: C-family and Python conditions
                // (cmd.exe runs the word after the comparison; no command starts with `{`).
                let (operand, action) = if glued {
                    (Some(t), tail.first())
                } else {
                    (tail.first(), tail.get(1))
                };
                let c_like = action.is_some_and(|w| w.starts_with('{'))
                    || operand.is_some_and(|w| w.ends_with(':'));
                if c_like {
                    continue;
                }
                if (op && k > 0 && (tail.len() >= 2 || batch_var && !tail.is_empty()))
                    || (glued && !tail.is_empty())
                    || (t.ends_with("==") && t.len() > 2 && tail.len() >= 2)
                {
                    return true;
                }
            }
        }
    }
    batch_variable(s, set)
}

/// `%comspec%`, `%systemroot%`, `%windir%`: cmd.exe's variables for its own paths.
fn batch_variable(s: &str, set: &crate::extract::ByteSet) -> bool {
    ["%comspec%", "%systemroot%", "%windir%"]
        .iter()
        .any(|v| set.has_all(v.as_bytes()) && s.has_lit(v))
}

/// The verbs of [`powershell_cmdlet`].
const VERBS: crate::detect::Words = crate::detect::Words::new(&[
    "Invoke",
    "Start",
    "New",
    "Get",
    "Set",
    "Remove",
    "Add",
    "Import",
    "Export",
    "Out",
    "ConvertTo",
    "ConvertFrom",
    "Register",
    "Enable",
    "Disable",
    "Stop",
    "Copy",
    "Move",
]);

/// PowerShell `Verb-Noun` cmdlets (capitalised, as PowerShell writes them).
pub(crate) fn powershell_cmdlet(v: &str) -> bool {
    // Every cmdlet's noun follows its `-` with a capital: most values (`SKU-000-01`) have
    // no such pair.
    if !v
        .as_bytes()
        .windows(2)
        .any(|p| p.first() == Some(&b'-') && p.get(1).is_some_and(u8::is_ascii_uppercase))
    {
        return false;
    }
    v.split_ws_or(&[';', '|', '(', '&', '=']).any(|tok| {
        let Some((verb, noun)) = tok.split_once_char('-') else {
            return false;
        };
        let camel = noun.bytes().filter(u8::is_ascii_uppercase).count() >= 2;
        VERBS.iter().any(|v| *v == verb)
            && noun.len() >= 4
            && noun.first_char().is_some_and(|c| c.is_ascii_uppercase())
            && noun.bytes().all(|b| b.is_ascii_alphabetic())
            && (camel || !matches!(verb, "Get" | "Set" | "New" | "Add" | "Out"))
    })
}

/// Restricted upload names (dotfiles and server configuration) for file-name sources.
fn restricted_upload(l: &str) -> bool {
    let name = l.trim().trim_end_set(b". ");
    let base = name.rsplit_first_any(b"/\\").unwrap_or(name);
    const NAMES: crate::detect::Words = crate::detect::Words::new(&[
        "web.config",
        "php.ini",
        "wp-config.php",
        "config.yml",
        "config.yaml",
        "config.json",
        "settings.py",
        "docker-compose.yml",
        "dockerfile",
        "id_rsa",
        "id_ed25519",
        "authorized_keys",
        "known_hosts",
        "crontab",
        "passwd",
        "shadow",
        "sudoers",
    ]);
    let compact: String = base.without_whitespace();
    let stem = compact.split_first_any(b"._").unwrap_or_default();
    let config_stem = matches!(
        stem,
        "wp-config"
            | "config"
            | "settings"
            | "local_settings"
            | "configuration"
            | "secrets"
            | "credentials"
            | "database"
    ) && compact.len() > stem.len();
    config_stem
        || (base.starts_with('.')
            && base.len() > 1
            && base.as_bytes().get(1).is_some_and(u8::is_ascii_alphabetic))
        || NAMES.iter().any(|n| *n == base)
}

/// A parameter named as a name or a title: `name`, `package_name`, `userName`, `title`,
/// `label`, `slug`.
fn label_parameter(n: &[u8]) -> bool {
    n.ends_with(b"name") || n.ends_with(b"Name") || matches!(n, b"title" | b"label" | b"slug")
}

fn scan_input(input: &Input, out: &mut Findings) {
    let v = &input.value;
    let l = input.lower.as_str();
    let (s, evasion) = deobfuscate_lower(l);
    // A field name is a label (`uname`, `ping`), not a command line: only commands after a
    // shell separator count there.
    let is_name = matches!(input.location.source, Source::ArgName | Source::CookieName);
    // One word in a parameter named as a name or a title (`name`, `package_name`,
    // `username`, `title`, `slug`) is a label: `redis-cli`, `ansible-vault`, `tasklist` as a
    // package's name run nothing. A command there needs shell syntax (a separator, a
    // substitution), which is still read at paranoia 1.
    let label = input.location.source == Source::Arg
        && !input.bytes.has(b' ')
        && label_parameter(input.location.name.as_bytes());
    let code_spans = input.bytes.has(b'`') && markdown_code_spans(v);
    // A sentence that opens with a capitalised program name (`Tail -f for cloud logs`,
    // `Grep -r replacement written in Rust`): package summaries are written that way, while
    // Unix shells find no program called `Tail`. Paranoia 2.
    // The first word's first byte asked first: finding the word's end decoded every char
    // of a window without whitespace (a hostile body's).
    let first_word = v.trim_start();
    let sentence = first_word
        .as_bytes()
        .first()
        .is_some_and(u8::is_ascii_uppercase)
        && first_word.first_word().is_some_and(|w| {
            let mut b = w.bytes();
            b.next().is_some_and(|c| c.is_ascii_uppercase())
                && w.len() >= 2
                && b.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && super::lfi::prose(v);
    // In a sentence, `(` and `{` are punctuation: a shell opens a subshell or a group only
    // in command position (`;(id)`, `(id)` at the start), never after a word ("a server
    // (python -m http.server replacement)"). Paranoia 2 there.
    let prose_value = v
        .split_ascii_whitespace()
        .filter(|w| {
            let w = w.trim_start_set(b"(").trim_end_set(b",.:;!?)");
            w.len() >= 2
                && w.first_char().is_some_and(|c| c.is_ascii_alphabetic())
                && w.bytes().all(|b| b.is_ascii_alphabetic() || b == b'\'')
        })
        .nth(3)
        .is_some();
    for (intro, seg) in segments(&s) {
        // The first four branches report at paranoia 2 only: at 1 they skip their segment
        // without reading it.
        let pl2 = out.wants(CAT, 2);
        if sentence && intro == Intro::Start {
            if pl2 && command_in_segment(intro, seg).is_some() {
                out.hit(input, CAT, "rce.command-sentence", Severity::Critical, 2);
            }
            continue;
        }
        if code_spans && intro == Intro::Tick {
            // Paranoia 2: a command line in a Markdown code span of a sentence.
            if pl2 && command_in_segment(intro, seg).is_some() {
                out.hit(input, CAT, "rce.code-span-command", Severity::Critical, 2);
            }
            continue;
        }
        if prose_value && intro == Intro::Weak {
            if pl2 && command_in_segment(intro, seg).is_some() {
                out.hit(input, CAT, "rce.command-sentence", Severity::Critical, 2);
            }
            continue;
        }
        if (is_name || label) && intro == Intro::Start {
            // Paranoia 2: a name or label that is itself a command line (`uname -a`).
            if pl2 && (label || seg.has_char(' ')) && command_in_segment(intro, seg).is_some() {
                out.hit(input, CAT, "rce.command-in-name", Severity::Critical, 2);
            }
            continue;
        }
        if let Some(rule) = command_in_segment(intro, seg) {
            if [TARGET_ONLY, WORD_AND_PATH, WORD_OPTIONS, TOOL_COMMAND].contains(&rule) {
                // Paranoia 2; the segments after it are still read at paranoia 1.
                out.hit(input, CAT, rule, Severity::Critical, 2);
                continue;
            }
            out.hit(input, CAT, rule, Severity::Critical, 1);
            if evasion {
                out.hit(input, CAT, "rce.evasion", Severity::Critical, 1);
            }
            break;
        }
    }
    // Each check below needs some byte in the de-obfuscated value: the set is computed once
    // and a check runs only when its bytes are there (most values skip most checks).
    let set = crate::extract::ByteSet::of(s.as_bytes());
    let slash = set.has(b'/');
    let dollar = set.has(b'$');
    // A binary's path named in a sentence ("a drop-in replacement for /usr/bin/time",
    // "/usr/local/bin/python3: No module named pip") is documentation or a log line: paranoia
    // 2. In command position (a segment above) it counted at 1 already.
    if slash
        && out.wants(CAT, if prose_value { 2 } else { 1 })
        && BIN_DIRS.iter().any(|d| {
            // The byte set first: a `/*/*` run holds no directory's letters.
            set.has_all(d.as_bytes())
                && s.find(d).is_some_and(|p| {
                    s.get(p + d.len()..).is_some_and(|r| {
                        r.first_char().is_some_and(|c| {
                            c.is_ascii_alphanumeric() || c == '?' || c == '*' || c == '['
                        })
                    })
                })
        })
    {
        out.hit(
            input,
            CAT,
            "rce.binary-path",
            Severity::Critical,
            if prose_value { 2 } else { 1 },
        );
    }
    if slash
        && ["bin/", "sbin/", "usr/bin/"].iter().any(|d| {
            s.strip_prefix(d)
                .is_some_and(|r| r.first_char().is_some_and(|c| c.is_ascii_alphabetic()))
        })
    {
        out.hit(input, CAT, "rce.binary-path", Severity::Critical, 1);
    }
    let substituted = (dollar || set.has(b'`'))
        && if code_spans {
            substitution(&s.replace('`', " "))
        } else {
            substitution(&s)
        };
    if substituted
        || set.has(b'(')
            && (set.has(b'<') && s.has_lit("<(") || set.has_all(b">)") && s.has_lit(">("))
    {
        out.hit(input, CAT, "rce.substitution", Severity::Critical, 1);
    }
    if slash && set.has_all(b"/dev") && (s.has_lit("/dev/tcp/") || s.has_lit("/dev/udp/"))
        || dollar
            && (set.has(b'[') && s.has_lit("$[")
                || set.has(b'(') && s.has_lit("$((")
                || param_expansion(&s, || super::lfi::prose(l)))
    {
        out.hit(input, CAT, "rce.shell-syntax", Severity::Critical, 1);
    }
    if v.trim_start()
        .strip_prefix('\\')
        .is_some_and(|r| is_command(r.first_word().unwrap_or_default()))
    {
        out.hit(input, CAT, "rce.alias-bypass", Severity::Critical, 1);
    }
    if input.bytes.has(b'$') && (input.lower_has("${ifs}") || input.lower_has("$ifs")) {
        out.hit(input, CAT, "rce.ifs", Severity::Critical, 1);
    }
    if slash && glob_path(&s) {
        out.hit(input, CAT, "rce.glob-path", Severity::Critical, 1);
    }
    if set.has(b'{') && brace_expansion(&s) {
        out.hit(input, CAT, "rce.brace-expansion", Severity::Critical, 1);
    }
    if set.has_all(b"(){") {
        let compact: String = s.without_whitespace();
        // Bash imports a function from the environment only when the variable's value
        // starts with `() {`: that is the shellshock shape. A function definition further
        // in (`:(){ :|:& };:`, but also `fn main() {` or `jQuery(function() {` in code
        // snippets) counts from paranoia 2.
        if compact.trim_start_set(b"'\"").starts_with("(){") {
            out.hit(input, CAT, "rce.shellshock", Severity::Critical, 1);
        } else if compact.has_lit("(){") {
            out.hit(input, CAT, "rce.function-definition", Severity::Critical, 2);
        }
    }
    if set.has(b'<') && here_string(&s) {
        out.hit(input, CAT, "rce.shell-syntax", Severity::Critical, 1);
    }
    if (set.has(b'~') || set.has(b'!')) && tilde_or_history(&s) {
        out.hit(input, CAT, "rce.expansion", Severity::Critical, 1);
    }
    if set.has_all(b"alias") && alias_definition(&s) {
        out.hit(input, CAT, "rce.alias", Severity::Critical, 1);
    }
    if windows_batch_in(&s, &set) {
        out.hit(input, CAT, "rce.windows-batch", Severity::Critical, 1);
    }
    if input.bytes.has(b'-') && powershell_cmdlet(v) {
        out.hit(input, CAT, "rce.powershell", Severity::Critical, 1);
    }
    if super::java::is_upload_name(input.location.source, &input.location.name)
        && restricted_upload(l)
    {
        out.hit(input, CAT, "rce.restricted-upload", Severity::Critical, 1);
    }
    let b = &input.bytes;
    if (b.has(b'$') || b.has(b'\\') || b.has(b'^') || b.has(b'\'') || b.has(b'"'))
        && obfuscated_command_word_in(l, &s)
    {
        out.hit(input, CAT, "rce.evasion", Severity::Critical, 1);
    }
    // Paranoia 2: a word that becomes a command once quotes are removed (`w'h'o'am'i`).
    if evasion && out.wants(CAT, 2) && quoted_command(v) {
        out.hit(input, CAT, "rce.quote-evasion", Severity::Critical, 2);
    }
    // Paranoia 3: a program name (not an ordinary word) opening the value or a segment,
    // whatever follows (`python script`, `nmap target list`); paranoia 4: any program name
    // there, ordinary words included (`cat food`, `more`).
    if out.wants(CAT, 3) {
        for (_, seg) in segments(&s) {
            let Some(first) = seg.first_word() else {
                continue;
            };
            if is_command(first) {
                let level = if wordlike(first) { 4 } else { 3 };
                out.hit(input, CAT, "rce.program-name", Severity::Critical, level);
                if level == 3 {
                    break;
                }
            }
        }
    }
}

/// Whether a word assembles a program name with shell syntax inside it, wherever it stands:
/// an expansion glued between letters (`c${x:-a}t`, `c$@at`, `who$()ami`, `ca${u}t`), a
/// backslash or caret escape (`c\\at`, `w^h^o^a^m^i`), or two or more quotes (`ca''t`,
/// `w'h'o'am'i`). Prose never builds words that way (one apostrophe, as in `I'd`, is English),
/// so this counts at paranoia 1 even in a sentence (`please run c${x:-a}t /etc/passwd`).
#[cfg(test)]
fn obfuscated_command_word(l: &str) -> bool {
    obfuscated_command_word_in(l, &deobfuscate_lower(l).0)
}

/// What `obfuscated_command_word` (now a test helper) answers, with `deobfuscate_lower(l)`
/// known (`scan_input` made it): a word that is all of `l` (a window of a `${jndi:` run
/// holds no separator) is not de-obfuscated a second time.
fn obfuscated_command_word_in(l: &str, l_deobfuscated: &str) -> bool {
    let sep = |c: char| {
        c.is_whitespace() || matches!(c, ';' | '|' | '&' | '`' | '(' | ')' | '<' | '>' | ',')
    };
    // An ASCII value is split at its separator bytes (each byte is its char): `str::split`
    // decoded every char of every 4 KiB window of a hostile body. Other values as before.
    let mut start = 0;
    let ascii = l.is_ascii();
    let ascii_words = ascii.then(|| {
        let b = l.as_bytes();
        b.iter()
            .enumerate()
            // `sep` for an ASCII char: its whitespace is `\t`..=`\r` and the space.
            .filter(|(_, &c)| ascii_separator(c))
            .map(|(i, _)| i)
            .chain(std::iter::once(b.len()))
            .map(move |end| {
                let w = l.get(start..end).unwrap_or_default();
                start = end + 1;
                w
            })
    });
    let char_words = (!ascii).then(|| l.split(sep));
    let words = ascii_words
        .into_iter()
        .flatten()
        .chain(char_words.into_iter().flatten());
    words
        .filter(|w| w.len() >= 3 && w.has_any(b"$\\^'\""))
        .any(|w| {
            let core = w.trim_set(b"'\"");
            // De-obfuscation only drops bytes or turns them into spaces (a default word it keeps
            // is part of `core`), and every program name holds a letter or digit: a word of
            // punctuation (`:@/*\`, a piece of every trigger byte repeated) spells none,
            // without a de-obfuscated copy per word.
            if !core.bytes().any(|b| b.is_ascii_alphanumeric()) {
                return false;
            }
            let inner_quotes = core.matches(['\'', '"']).count();
            let other = core.has_any(b"$\\^");
            if !other && inner_quotes < 2 {
                return false;
            }
            // `l` is lowercase already, and so is `core` (a slice of it: all of it when their
            // lengths agree).
            let copy;
            let joined = if core.len() == l.len() {
                l_deobfuscated
            } else {
                copy = deobfuscate_lower(core).0;
                &copy
            };
            let joined = joined.trim();
            // A prefix word (`ti''me`, `n''ohup`) runs nothing by itself: the command it
            // prefixes decides (`ti''me curl host` is a program and its target, paranoia 2;
            // `su''do reboot` counts at 1 as a prefixed command).
            !joined.is_empty()
                && !joined.has_char(' ')
                && joined != core
                && is_command(joined)
                && !PREFIX_SET.contains(joined)
        })
}

/// [`obfuscated_command_word`]'s separator for an ASCII byte (`char::is_whitespace` of an
/// ASCII char is `\t`..=`\r` and the space; a test checks every byte against the char
/// version).
fn ascii_separator(c: u8) -> bool {
    matches!(
        c,
        b'\t'..=b'\r' | b' ' | b';' | b'|' | b'&' | b'`' | b'(' | b')' | b'<' | b'>' | b','
    )
}

/// Whether a whitespace-separated word with quotes, backslashes or carets inside it spells
/// a command once they are removed ("you're" does not; "c'a't" does).
fn quoted_command(v: &str) -> bool {
    v.split_ws_or(&[';', '|', '&', '`', '(', ')'])
        .filter(|w| w.has_any(b"'\"\\^"))
        .any(|w| {
            let joined: String = w
                .chars()
                .filter(|c| !matches!(c, '\'' | '"' | '\\' | '^'))
                .collect::<String>()
                .ascii_lower();
            joined.len() > 1 && is_command(&joined)
        })
}

/// `${name#pattern}`, `${name:-x}`, `${name/a/b}`: parameter expansion with operators.
///
/// In prose (`supports ${VAR:-default} in config files`, template documentation) only an
/// expansion glued to a word counts: that is how a command name is assembled
/// (`c${x:-a}t /etc/passwd`); one standing alone is the syntax being described.
fn param_expansion(s: &str, prose: impl Fn() -> bool) -> bool {
    let b = s.as_bytes();
    // Whether the value is prose, asked once and only when an opener is there (a pass
    // over the value).
    let mut is_prose = None;
    let glued = |p: usize, end: Option<usize>| {
        let before = p.checked_sub(1).and_then(|i| b.get(i));
        let after = end.and_then(|e| b.get(e + 1));
        before.is_some_and(u8::is_ascii_alphanumeric)
            || after.is_some_and(u8::is_ascii_alphanumeric)
    };
    // The first `}` at or after the last opener asked about: openers come in order, so the
    // search only moves forward (a `${${${...` run without `}` was one search per opener to
    // the end of the value).
    let mut close: Option<Option<usize>> = None;
    let mut from = 0;
    while let Some(p) = dollar_brace(b, from) {
        if *is_prose.get_or_insert_with(&prose) {
            let end = match close {
                Some(Some(c)) if c >= p => Some(c),
                Some(None) => None,
                _ => super::find_bytes(b, b"}", p),
            };
            close = Some(end);
            if !glued(p, end) {
                from = p + 2;
                continue;
            }
        }
        let rest = s.get(p + 2..).unwrap_or_default();
        let name_len = rest
            .bytes()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
            .count();
        let name = rest.get(..name_len).unwrap_or_default();
        if !name.is_empty()
            && name
                .first_char()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && rest.get(name_len..).is_some_and(|r| {
                r.starts_with(['#', '%', '/', '^', ',', '~'])
                    || r.starts_with(":-")
                    || r.starts_with(":=")
            })
        {
            return true;
        }
        from = p + 2;
    }
    false
}

/// The first `${` at or after `from`: a `$` found eight bytes per step and its next byte
/// checked (a `${jndi:` run was a substring search set up per opener).
fn dollar_brace(b: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let p = from + crate::detect::find_byte(b.get(from..)?, b'$')?;
        if b.get(p + 1) == Some(&b'{') {
            return Some(p);
        }
        from = p + 1;
    }
}

/// `prog<<<word`: a bash here-string feeding a program that stands in command position
/// (`;gcc10.1<<<void main(){}`, `cat<<<$x`). Prose draws arrows as `<<<` between words, not
/// glued after the first word of a command.
fn here_string(s: &str) -> bool {
    super::lit_offsets(s, "<<<").any(|p| {
        let before = s.get(..p).unwrap_or_default();
        let word_start = before
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/')))
            .map_or(0, |i| i + 1);
        let word = before.get(word_start..).unwrap_or_default();
        let after = s.get(p + 3..).unwrap_or_default().trim_start();
        word.first_char()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '/')
            && command_position(s, word_start)
            && before
                .get(..word_start)
                .is_some_and(|b| !b.trim_end().is_empty())
            && !after.is_empty()
    })
}

/// `~+`, `~-1` (directory stack) and `!-1`, `!!` (history) expansions at word starts.
fn tilde_or_history(s: &str) -> bool {
    s.split_ws_or(&[';', '|', '&']).any(|w| {
        // `~+1`, `~-2`: a directory-stack entry (a bare `~+`/`~-` is also an emoticon).
        let tilde = w
            .strip_prefix('~')
            .and_then(|r| r.strip_prefix(['+', '-']))
            .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()));
        let hist =
            w.starts_with("!-") && w.as_bytes().get(2).is_some_and(u8::is_ascii_digit) || w == "!!";
        tilde || hist
    })
}

/// `alias name=command`.
fn alias_definition(s: &str) -> bool {
    let mut from = 0;
    while let Some(p) = super::find_word(s, "alias", from) {
        let rest = s.get(p + 5..).unwrap_or_default();
        let trimmed = rest.trim_start();
        if trimmed.len() < rest.len() {
            let mut words = trimmed.words();
            for w in words.by_ref().take(4) {
                if w.starts_with(['+', '-']) && !w.has_char('=') {
                    continue;
                }
                let w = w.trim_start_set(b"'\"");
                if let Some((name, _)) = w.split_once_char('=') {
                    let name = name.trim_end_set(b"'\"");
                    if !name.is_empty()
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
                    {
                        return true;
                    }
                }
                break;
            }
        }
        from = p + 5;
    }
    false
}

pub(crate) fn scan(p: &Prepared<'_>, out: &mut Findings) {
    if !out.wants(CAT, 1) {
        return;
    }
    for input in p.inputs_of(INJECTION) {
        if out.decided() {
            break;
        }
        // Structured headers like user agents hold `;` and `(`; only substitution syntax
        // counts there.
        if input.location.source == Source::Header
            && !super::java::is_upload_name(input.location.source, &input.location.name)
        {
            let (s, _) = deobfuscate(&input.value);
            if substitution(&s) || s.has_lit("() {") {
                out.hit(input, CAT, "rce.substitution", Severity::Critical, 1);
            }
            // (command found, a program alone ending the header)
            let mut after_separator = (false, false);
            for (i, seg) in segments(&s) {
                if matches!(i, Intro::Strong | Intro::Tick) && command_in_segment(i, seg).is_some()
                {
                    after_separator.0 = true;
                    // A program name alone: one word of letters and digits (a path or a
                    // glob is an argument, judged at paranoia 2 with the rest).
                    after_separator.1 |= seg.words().nth(1).is_none()
                        && seg
                            .trim()
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
                }
            }
            // Paranoia 2: a command line after a separator in any header (`User-Agent:
            // ;chmod +x x`, `Referer: x/;ls -al`), as CRS scores command lines in the
            // User-Agent and Referer (932239, 932205-932207) from paranoia 2. A header is not
            // a shell argument; shellshock and substitution above count at 1 in every header.
            if after_separator.0 && out.wants(CAT, 2) {
                out.hit(input, CAT, "rce.header-command", Severity::Critical, 2);
            }
            // Paranoia 1: a program alone after a separator in the Referer (`;id`, `|set`):
            // the probe CRS 932340 looks for there; a URL's `;` parameters carry values.
            if after_separator.1 && input.location.name == "referer" {
                out.hit(
                    input,
                    CAT,
                    "rce.command-after-separator",
                    Severity::Critical,
                    1,
                );
            }
            continue;
        }
        scan_input(input, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gate reads a value for [`powershell_cmdlet`] only when its lowercase form holds
    /// `a`, `e` or `o` (`gate::CMDLET_VOWELS`): every verb, lowercased, holds one (`Add`,
    /// `Out` only once lowercased).
    #[test]
    fn every_cmdlet_verb_holds_a_e_or_o() {
        for v in VERBS.iter() {
            let lower = v.to_ascii_lowercase();
            assert!(
                lower.bytes().any(|b| matches!(b, b'a' | b'e' | b'o')),
                "{v}"
            );
        }
    }

    /// `may_start_command` answers as the two lookups it replaced (prefix list, then
    /// `is_command` of the first whitespace-separated word, then `--`), for every listed
    /// word and its variants: longer, shorter, versioned, a family member, with a path or
    /// `.exe`, capitalised, after (Unicode) whitespace, followed by arguments.
    #[test]
    fn start_lengths_hold_every_name() {
        let holds = start_lengths_admit;
        for w in PREFIXES.iter().chain(DISTINCTIVE) {
            assert!(holds(w.as_bytes()), "{w:?}");
            assert!(holds(w.to_ascii_uppercase().as_bytes()), "{w:?}");
        }
        // Every word a stem's family or versions accept, up to 40 bytes.
        for stem in INTERPRETERS.iter().chain(FAMILY_STEMS) {
            for n in 1..40 - stem.len() {
                let w = format!("{stem}{}", "3".repeat(n));
                assert!(holds(w.as_bytes()), "{w:?}");
            }
        }
        // Generated words over the names' bytes: a word the lookups accept passes the screen.
        let bytes = b"abcdefghijklmnopqrstuvwxyz0123456789.-+";
        let mut state: u64 = 0x51f1_5eed_0bad_cafe;
        let mut accepted = 0;
        for _ in 0..200_000 {
            state = crate::detect::xorshift(state);
            let len = 1 + (state >> 59) as usize;
            let mut w = String::new();
            for k in 0..len {
                let r = (state >> (k * 3 % 50)) as usize;
                w.push(char::from(bytes[r % bytes.len()]));
            }
            if PREFIX_SET.contains(&w) || is_command(&w) {
                accepted += 1;
                assert!(holds(w.as_bytes()), "{w:?}");
            }
        }
        assert!(accepted > 0);
    }

    #[test]
    fn may_start_command_matches_the_lookups() {
        let reference = |seg: &str| {
            let first = seg.first_word().unwrap_or_default();
            PREFIX_SET.contains(first)
                || is_command(first)
                || super::super::find_bytes(seg.as_bytes(), b"--", 0).is_some()
        };
        let mut words: Vec<String> = Vec::new();
        for w in DISTINCTIVE
            .iter()
            .chain(PREFIXES)
            .chain(WORDLIKE)
            .chain(RECON.iter())
            .chain(INTERPRETERS)
            .chain(FAMILIES.iter())
            .chain(&[
                "",
                "a",
                "customer",
                "value-3-abcdef",
                "sku-000-01",
                "é",
                "ab\u{a0}",
            ])
        {
            let upper = w.to_ascii_uppercase();
            let chopped = w.get(..w.len().saturating_sub(1)).unwrap_or_default();
            for v in [
                w.to_string(),
                format!("{w}x"),
                format!("{w}3"),
                format!("{w}3.10"),
                format!("{w}-x"),
                chopped.to_string(),
                upper,
                format!("{w}.exe"),
                format!("/usr/bin/{w}"),
                format!("c:\\x\\{w}"),
                format!("x{w}"),
            ] {
                for seg in [
                    v.clone(),
                    format!("  {v} -la"),
                    format!("\t{v}\nx"),
                    format!("\u{a0}{v} a"),
                    format!("{v}\u{2003}b"),
                    format!("{v} --x"),
                    format!("{v}\u{85}"),
                ] {
                    words.push(seg);
                }
            }
        }
        for seg in &words {
            let bytes = crate::extract::ByteSet::of(seg.as_bytes());
            assert_eq!(may_start_command(seg, &bytes), reference(seg), "{seg:?}");
            // The gate's shortcut for one ASCII word without a path separator.
            if seg
                .bytes()
                .all(|c| c.is_ascii() && !c.is_ascii_whitespace() && c != b'/' && c != b'\\')
            {
                let dashes = || super::super::find_bytes(seg.as_bytes(), b"--", 0).is_some();
                assert_eq!(
                    may_start_command_dashed(seg, true, dashes),
                    reference(seg),
                    "{seg:?}"
                );
            }
        }
        let starts = words
            .iter()
            .filter(|s| may_start_command(s, &crate::extract::ByteSet::of(s.as_bytes())))
            .count();
        assert!(starts > words.len() / 4);
    }

    /// `command_in_segment` skips segments without a letter or digit: no program name may
    /// be made of punctuation alone.
    #[test]
    fn every_program_name_holds_a_letter_or_digit() {
        for w in DISTINCTIVE.iter().chain(FAMILIES.iter()) {
            assert!(w.bytes().any(|b| b.is_ascii_alphanumeric()), "{w:?}");
        }
    }

    /// `deobfuscate` as it was (a `Vec<char>` pass), kept to prove the byte pass is the same.
    fn deobfuscate_reference(v: &str) -> (String, bool) {
        let lower = v.ascii_lower();
        let mut s = if lower.has_lit("$ifs") || lower.has_lit("${ifs}") {
            lower
                .replace("${ifs}", " ")
                .replace("$ifs$9", " ")
                .replace("$ifs", " ")
        } else {
            lower.clone()
        };
        let mut evasion = s.len() != lower.len();
        // Expansions glued between letters: c${x}url, c$@at, w$()hoami.
        let mut out = String::with_capacity(s.len());
        let b = s.as_bytes();
        let mut i = 0;
        while let Some(&c) = b.get(i) {
            let prev_alpha = i > 0 && b.get(i - 1).is_some_and(u8::is_ascii_alphabetic);
            if c == b'$' && prev_alpha {
                let rest = s.get(i..).unwrap_or_default();
                let skip = if rest.starts_with("$@")
                    || rest.starts_with("$*")
                    || rest.starts_with("$()")
                {
                    if rest.starts_with("$()") {
                        3
                    } else {
                        2
                    }
                } else if rest.starts_with("${") {
                    // Bounded look-ahead: `${${${...` must not rescan the value per `${`.
                    let end =
                        crate::detect::find_byte(crate::detect::head(rest.as_bytes(), 32), b'}');
                    // `${x:-a}`, `${x:=a}`: an unset variable expands to its default word.
                    if let Some(word) = end
                        .and_then(|e| rest.get(2..e))
                        .and_then(|inner| inner.split_once(":-").or(inner.split_once(":=")))
                        .map(|(_, w)| w)
                        .filter(|w| w.bytes().all(|c| c.is_ascii_alphanumeric()))
                    {
                        out.push_str(word);
                    }
                    end.map_or(0, |e| e + 1)
                } else {
                    // `sh$xx -c`: an unset variable ending a word expands to nothing.
                    let name = rest
                        .bytes()
                        .skip(1)
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
                        .count();
                    let ends_word = rest
                        .as_bytes()
                        .get(1 + name)
                        .is_none_or(|c| matches!(c, b' ' | b'\t' | b';' | b'|' | b'&' | b'\n'));
                    if name > 0
                        && rest.as_bytes().get(1).is_some_and(u8::is_ascii_alphabetic)
                        && ends_word
                    {
                        1 + name
                    } else {
                        0
                    }
                };
                if skip > 0 {
                    evasion = true;
                    i += skip;
                    continue;
                }
            }
            out.push(char::from(c));
            i += 1;
        }
        if out.is_ascii() {
            s = out;
        }
        let mut cleaned = String::with_capacity(s.len());
        let mut prev: Option<char> = None;
        let chars: Vec<char> = s.chars().collect();
        for (idx, &c) in chars.iter().enumerate() {
            match c {
                '\\' | '\'' | '"' | '^' => {
                    let next = chars.get(idx + 1).copied();
                    let inside = prev.is_some_and(|p| p.is_ascii_alphanumeric())
                        && next.is_some_and(|n| n.is_ascii_alphanumeric());
                    evasion |= inside;
                }
                '\t' | '\u{0b}' | '\u{0c}' => cleaned.push(' '),
                _ => cleaned.push(c),
            }
            prev = Some(c);
        }
        (cleaned, evasion)
    }

    /// The `Vec` version [`segments`] replaced.
    fn segments_reference(s: &str) -> Vec<(Intro, &str)> {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut start = 0;
        let mut intro = Intro::Start;
        let mut i = 0;
        let mut in_template = false;
        while let Some(&c) = b.get(i) {
            let next = b.get(i + 1).copied();
            match (c, next) {
                (b'{', Some(b'{' | b'%')) => in_template = true,
                (b'}' | b'%', Some(b'}')) => in_template = false,
                _ => {}
            }
            let (sep_len, kind) = match (c, next) {
                (b'<', Some(b'<')) if b.get(i + 2) == Some(&b'<') => (3, Intro::Strong),
                (b'|', _) if in_template && template_filter(b, i + 1) => (0, Intro::Start),
                (b'&', Some(b'&')) | (b'|', Some(b'|')) => (2, Intro::Strong),
                (b'$', Some(b'(')) | (b'<', Some(b'(')) | (b'>', Some(b'(')) => (2, Intro::Strong),
                (b';' | b'|' | b'\n' | b'\r', _) => (1, Intro::Strong),
                (b'`', _) => (1, Intro::Tick),
                (b'&', Some(n)) if !n.is_ascii_whitespace() => (1, Intro::Amp),
                (b'&' | b'(' | b'{', _) => (1, Intro::Weak),
                (b')' | b'}', _) => (1, Intro::Weak),
                _ => (0, Intro::Start),
            };
            if sep_len > 0 {
                let seg = s.get(start..i).unwrap_or_default();
                out.push((intro, seg));
                // A subshell right after a separator (`&&(sh)`, `;{ id; }`) keeps its strength.
                let strong_before = intro == Intro::Strong && seg.trim().is_empty() && c == b'(';
                intro = if c == b')' || c == b'}' {
                    Intro::Weak
                } else if strong_before {
                    Intro::Strong
                } else {
                    kind
                };
                i += sep_len;
                start = i;
                continue;
            }
            i += 1;
        }
        if let Some(seg) = s.get(start..) {
            out.push((intro, seg));
        }
        out
    }

    /// [`is_command`] before its end-byte screen.
    fn is_command_before(w: &str) -> bool {
        let base = w
            .as_bytes()
            .iter()
            .rposition(|&c| c == b'/' || c == b'\\')
            .and_then(|p| w.get(p + 1..))
            .unwrap_or(w);
        let base = base.strip_suffix(".exe").unwrap_or(base);
        DISTINCTIVE_SET.contains(base)
            || versioned_interpreter(base)
            || (base.as_bytes().contains(&b'-')
                && FAMILIES
                    .iter()
                    .any(|f| base.starts_with(f) && base.len() > f.len()))
    }

    /// The end-byte screen of [`is_command`] rests on this: every listed name is made of
    /// name bytes.
    #[test]
    fn distinctive_names_are_made_of_name_bytes() {
        for w in DISTINCTIVE {
            assert!(w.bytes().all(name_byte), "{w}");
        }
    }

    /// Segments of every listed name, prefix and word, glued to options, paths, `.exe`,
    /// variables and assignments, with hostile pieces: the one-word shortcut and the end-byte
    /// screen answer what the walk and the unscreened lookup answered.
    #[test]
    fn one_word_shortcut_equals_the_walk() {
        let mut names: Vec<String> = DISTINCTIVE
            .iter()
            .chain(PREFIXES)
            .chain(WORDLIKE)
            .map(|w| w.to_string())
            .collect();
        names.extend(
            [
                "python3.10",
                "perl5",
                "ansible-vault",
                "salt-",
                "x",
                "jndi",
                "a",
            ]
            .map(String::from),
        );
        let decorations = [
            "{w}",
            "/usr/bin/{w}",
            "{w}.exe",
            "c:\\{w}",
            "{w}/c",
            "{w}/abcd",
            "{w}/",
            "/{w}/c",
            "${w}",
            "{w}=1",
            "={w}",
            "-{w}",
            "{w}:$",
            "jndi:{w}",
            "{w} -la",
            "{w} /etc/passwd",
            "sudo {w}",
            "{w}\t-x",
            "{w}\u{a0}-x",
            "{w}\u{1}",
            "{w}%",
            "<%{w}",
            "{w}\u{e9}",
            "{w} 5",
            "{w} x y",
        ];
        let intros = [
            Intro::Start,
            Intro::Strong,
            Intro::Tick,
            Intro::Amp,
            Intro::Weak,
        ];
        let mut n = 0;
        for w in &names {
            for d in decorations {
                let seg = d.replace("{w}", w);
                assert_eq!(is_command(&seg), is_command_before(&seg), "{seg:?}");
                for intro in intros {
                    let walk = if seg.bytes().any(|b| b.is_ascii_alphanumeric()) {
                        command_in_words(intro, &seg)
                    } else {
                        None
                    };
                    assert_eq!(command_in_segment(intro, &seg), walk, "{intro:?} {seg:?}");
                    n += 1;
                }
            }
        }
        assert!(n > 10_000, "{n}");
        for (_, unit) in crate::hostile::GENERATORS {
            let (s, _) = deobfuscate(&unit.repeat(300));
            for (intro, seg) in segments(&s) {
                let walk = if seg.bytes().any(|b| b.is_ascii_alphanumeric()) {
                    command_in_words(intro, seg)
                } else {
                    None
                };
                assert_eq!(command_in_segment(intro, seg), walk, "{intro:?} {seg:?}");
            }
        }
    }

    /// [`obfuscated_command_word`] before words without a letter or digit were skipped.
    fn obfuscated_command_word_reference(l: &str) -> bool {
        l.split_ws_or(&[';', '|', '&', '`', '(', ')', '<', '>', ','])
            .filter(|w| w.len() >= 3 && w.contains(['$', '\\', '^', '\'', '"']))
            .any(|w| {
                let core = w.trim_set(b"'\"");
                let inner_quotes = core.matches(['\'', '"']).count();
                let other = core.contains(['$', '\\', '^']);
                if !other && inner_quotes < 2 {
                    return false;
                }
                // `l` is lowercase already, and so is `core`.
                let (joined, _) = deobfuscate_lower(core);
                let joined = joined.trim();
                // A prefix word (`ti''me`, `n''ohup`) runs nothing by itself: the command it
                // prefixes decides (`ti''me curl host` is a program and its target, paranoia 2;
                // `su''do reboot` counts at 1 as a prefixed command).
                !joined.is_empty()
                    && !joined.contains(' ')
                    && joined != core
                    && is_command(joined)
                    && !PREFIX_SET.contains(joined)
            })
    }

    #[test]
    fn ascii_separator_is_the_char_separator() {
        for c in 0u8..0x80 {
            let ch = char::from(c);
            let sep = ch.is_whitespace()
                || matches!(ch, ';' | '|' | '&' | '`' | '(' | ')' | '<' | '>' | ',');
            assert_eq!(ascii_separator(c), sep, "{c:#x}");
        }
    }

    #[test]
    fn obfuscated_command_word_skips_only_words_that_spell_nothing() {
        let pieces = [
            "c", "a", "t", "id", "who", "ami", "sudo", "'", "\"", "\\", "^", "$", "${x}",
            "${x:-a}", "$@", "$()", "$ifs", "${ifs}", "\t", " ", ";", "/", ":", "@", "*", "%", "#",
            "é", "\u{b}", "\u{a0}", ",", "|", "(",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let (mut hits, mut n) = (0, 0);
        for _ in 0..200_000 {
            let mut l = String::new();
            seed = crate::detect::xorshift(seed);
            let mut r = seed;
            for _ in 0..(r % 9) + 1 {
                r = r.rotate_left(7) ^ seed.wrapping_mul(31);
                l.push_str(pieces[(r as usize >> 3) % pieces.len()]);
            }
            let got = obfuscated_command_word(&l);
            assert_eq!(got, obfuscated_command_word_reference(&l), "{l:?}");
            hits += usize::from(got);
            n += 1;
        }
        assert!(hits > 100 && n - hits > 100, "{hits} of {n}");
        for (_, unit) in crate::hostile::GENERATORS {
            let l = unit.repeat(500).ascii_lower();
            assert_eq!(
                obfuscated_command_word(&l),
                obfuscated_command_word_reference(&l)
            );
        }
    }

    #[test]
    fn dollar_brace_finds_what_the_substring_search_found() {
        let pieces = ["$", "{", "${", "$$", "x", "é", "}", "${{"];
        let mut seed = 0x1234_5678_9abc_def1u64;
        for _ in 0..50_000 {
            let mut s = String::new();
            seed = crate::detect::xorshift(seed);
            let mut r = seed;
            for _ in 0..(r % 24) {
                r = r.rotate_left(5) ^ seed.wrapping_mul(0x2545_f491);
                s.push_str(pieces[(r as usize >> 4) % pieces.len()]);
            }
            for from in 0..=s.len() {
                let want = s.get(from..).and_then(|h| h.find("${")).map(|p| p + from);
                if s.is_char_boundary(from) {
                    assert_eq!(dollar_brace(s.as_bytes(), from), want, "{s:?} {from}");
                }
            }
        }
    }

    #[test]
    fn segments_match_the_vec_version() {
        const PIECES: &[&str] = &[
            "c", "a", " ", "<", "<<<", "<(", ">(", "&", "&&", "& ", "|", "||", "$(", "$", ";",
            "\n", "\r", "`", "(", ")", "{", "}", "é", "\t", "id", "{{", "}}", "{%", "%}", "join(",
            "%",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..30_000 {
            let mut v = String::new();
            seed = crate::detect::xorshift(seed);
            for k in 0..(seed % 12) {
                v.push_str(PIECES[(seed >> (k * 5)) as usize % PIECES.len()]);
            }
            assert_eq!(
                segments(&v).collect::<Vec<_>>(),
                segments_reference(&v),
                "{v:?}"
            );
        }
    }

    #[test]
    fn deobfuscate_matches_the_char_version() {
        const PIECES: &[&str] = &[
            "c", "a", "t", "1", "\\", "'", "\"", "^", "\t", "\u{0b}", "\u{0c}", "$", "${", "}",
            "ifs", "$ifs", "${IFS}", "$@", "$*", "$()", ":-", "é", "€", " ", ";", "X", "\u{80}",
        ];
        let mut seed = 0x1234_5678_9abc_def1u64;
        for _ in 0..30_000 {
            let mut v = String::new();
            seed = crate::detect::xorshift(seed);
            for k in 0..(seed % 12) {
                v.push_str(PIECES[(seed >> (k * 5)) as usize % PIECES.len()]);
            }
            assert_eq!(deobfuscate(&v), deobfuscate_reference(&v), "{v:?}");
        }
    }

    fn cmd(v: &str) -> bool {
        let (s, _) = deobfuscate(v);
        segments(&s)
            .into_iter()
            .any(|(i, seg)| command_in_segment(i, seg).is_some())
    }

    #[test]
    fn commands_after_separators() {
        for v in [
            ";id",
            "x|whoami",
            "a && cat /etc/passwd",
            "1;who",
            "&aptitude",
            "`uname -a`",
            "$(curl x)",
            "cd /;cd etc;fold passwd",
        ] {
            assert!(cmd(v), "{v}");
        }
    }

    #[test]
    fn prose_is_not_a_command() {
        for v in [
            "a hero; more than",
            "Times & Schedule",
            "time warner",
            "initials LS",
            "LS",
            "I see, so your alias is not = to your name",
            "Mycroft's place of work; where the stone was",
        ] {
            assert!(!cmd(v), "{v}");
        }
    }

    #[test]
    fn start_of_value_needs_shell_arguments() {
        assert!(cmd("cat /etc/passwd"));
        assert!(cmd("ls -la"));
        assert!(cmd("zstdcat /var/log/x.zst"));
        assert!(cmd("python3.10 cmd"));
        assert!(!cmd("cat food"));
    }

    #[test]
    fn quoting_evasions_are_undone() {
        let (s, ev) = deobfuscate("c'a't /e\"t\"c/pass\\wd");
        assert_eq!(s, "cat /etc/passwd");
        assert!(ev);
        let (s, ev) = deobfuscate("cat${IFS}/etc/passwd");
        assert_eq!(s, "cat /etc/passwd");
        assert!(ev);
        let (s, _) = deobfuscate("c${KK}url google.com");
        assert_eq!(s, "curl google.com");
    }

    #[test]
    fn shell_syntax() {
        assert!(glob_path("/???/c?t /???/p??s??"));
        assert!(glob_path("/bi[n]/bash"));
        assert!(!glob_path("hello [text in brackets]"));
        assert!(!glob_path("1[a/-1]"));
        assert!(brace_expansion("{cat,/etc/passwd}"));
        assert!(brace_expansion("c{a,ou}t"));
        assert!(brace_expansion("{,ip,a}"));
        assert!(!brace_expansion("{\"a\":1,\"b\":2}"));
        assert!(substitution("$(cmd)"));
        assert!(substitution("${shell} -c x"));
        assert!(!substitution("costs $5 (or less)"));
        assert!(tilde_or_history("~-1"));
        assert!(tilde_or_history("!-1!-2") || tilde_or_history("!-1"));
        assert!(!tilde_or_history("~+z"));
        assert!(alias_definition("alias a=curl"));
        assert!(!alias_definition("the alias \"pineapple\""));
    }

    #[test]
    fn quoted_words() {
        assert!(quoted_command("c'a't /etc/passwd"));
        assert!(quoted_command("w\"h\"oami"));
        assert!(!quoted_command("Call me when you're near"));
    }

    #[test]
    fn prose_around_program_names() {
        // Issue 11: search queries and descriptions that name programs.
        for v in [
            "python 3.12 release notes",
            "java 17 download",
            "ssh port 22",
            "ping 8.8.8.8 slow",
            "Python SDK for cloudipsp clients.",
            "TESS AUTO 1.0 Secondary Development (Python Version)",
            "Aggregates several async iterators into one (zip)",
            "submit a form via `fetch` and receive the response",
            "run `npm install` first",
            "Fstab validator -- check /etc/fstab syntax",
        ] {
            assert!(!cmd(v), "{v}");
        }
        for v in [
            "ping 127.0.0.1",
            "nslookup evil.com",
            "x`id`",
            "`uname -a`",
            "a=1&&(sh)",
            "perf --version",
            "ansible-vault decrypt secret",
            "sh$xx -c whoami",
        ] {
            assert!(cmd(v) || substitution(&deobfuscate(v).0), "{v}");
        }
        assert!(!substitution("add a directory to your $path"));
        assert!(substitution("$shell -c id"));
    }

    #[test]
    fn obfuscated_words_anywhere() {
        for v in [
            "please run c${x:-a}t /etc/passwd now ok",
            "look at this: ca''t /etc/passwd",
            "ok w'h'o'a'm'i",
            "hello c$@at x",
            "w^h^o^a^m^i",
        ] {
            assert!(obfuscated_command_word(&v.ascii_lower()), "{v}");
        }
        for v in [
            "I'd like it",
            "rock'n'roll",
            "y'all'd've",
            "don't 'cat' me",
            "x^2 + y^2",
            "c:\\users\\ls\\x",
            "costs us$5",
        ] {
            assert!(!obfuscated_command_word(v), "{v}");
        }
        assert_eq!(deobfuscate("c${x:-a}t").0, "cat");
    }

    #[test]
    fn here_strings() {
        assert!(here_string(";gcc10.1<<<void main(){}"));
        assert!(here_string("x|cat<<<$x"));
        assert!(!here_string("a <<< b"));
        assert!(!here_string("love<<<you"));
    }

    #[test]
    fn windows() {
        assert!(!windows_batch("if (a == b) { return true; }"));
        assert!(!windows_batch("if x == 3: pass"));
        assert!(windows_batch("if (1) equ (1) echo hey"));
        assert!(windows_batch("if not {%1} == {} "));
        assert!(windows_batch("for /f %x in (set) do command"));
        assert!(windows_batch("& for %_ in (a,b,c) do cmd"));
        assert!(windows_batch("if \"%var%\" == \"after\" @echo ok"));
        assert!(windows_batch("if exist c:\\x del x"));
        assert!(!windows_batch("if foo=="));
        assert!(!windows_batch("ifq a==b foo"));
        assert!(powershell_cmdlet("Invoke-WebRequest http://x/y.ps1"));
        assert!(!powershell_cmdlet("get-started with Set-up"));
    }

    /// `tick_spans` yields exactly the odd pieces of `split('`')` (what it replaced), on
    /// every string of up to 7 symbols over backticks, letters, spaces and a non-ASCII char,
    /// and on the hostile generators' runs.
    #[test]
    fn tick_spans_match_the_split() {
        fn split_version(s: &str) -> Vec<&str> {
            let mut parts = s.split('`');
            parts.next();
            parts.step_by(2).collect()
        }
        const SYMBOLS: [&str; 5] = ["`", "a", " ", "é", "``"];
        let mut strings = vec![String::new()];
        let mut frontier = vec![String::new()];
        for _ in 0..7 {
            let mut next = Vec::new();
            for s in &frontier {
                for sym in SYMBOLS {
                    next.push(format!("{s}{sym}"));
                }
            }
            strings.extend(next.iter().cloned());
            frontier = next;
        }
        for (_, unit) in crate::hostile::GENERATORS {
            strings.push(crate::hostile::repeat(unit, 4096));
        }
        for s in &strings {
            assert_eq!(tick_spans(s).collect::<Vec<_>>(), split_version(s), "{s:?}");
        }
    }
}

//! PHP injection (CRS 933): opening tags, stream wrappers, superglobals, `php.ini`
//! directives, serialized objects, calls to dangerous functions (allowing the whitespace and
//! comments PHP accepts before `(`), variable functions (`$f(...)`, `$_[0](...)`), string
//! callables (`"sys"."tem"(...)`), variable variables (`${'x'}`), script and session-file
//! uploads.

use super::{find_word, Findings, Skipper, INJECTION};
use crate::detect::HasByte as _;
use crate::detect::Lit as _;
use crate::detect::Outlined as _;
use crate::extract::ByteSet;
use crate::extract::{Input, Prepared};
use crate::model::{Category, Severity, Source};

const CAT: Category = Category::Php;

/// Functions whose names are distinctive enough to match inside longer words too
/// (`FOOcall_user_func()`), as PHP code is often glued to junk in payloads.
const DISTINCTIVE_FUNCTIONS: crate::detect::Words = crate::detect::Words::new(&[
    "base64_decode",
    "bzdecompress",
    "call_user_func",
    "call_user_func_array",
    "fsockopen",
    "pfsockopen",
    "shell_exec",
    "passthru",
    "proc_open",
    "pcntl_exec",
    "create_function",
    "preg_replace",
    "file_get_contents",
    "file_put_contents",
    "gzinflate",
    "gzuncompress",
    "gzdecode",
    "str_rot13",
    "escapeshellcmd",
    "escapeshellarg",
    "unserialize",
    "highlight_file",
    "show_source",
    "move_uploaded_file",
    "array_map",
    "ini_set",
    "ini_get",
    "curl_exec",
    "hex2bin",
    "convert_uudecode",
    "phpinfo",
    "posix_getpwuid",
    "posix_getegid",
    "posix_geteuid",
    "posix_getuid",
    "posix_kill",
    "posix_setuid",
    "posix_mkfifo",
    "register_shutdown_function",
    "register_tick_function",
    "array_filter",
    "array_walk",
    "usort",
    "uasort",
    "uksort",
    "assert_options",
    "get_defined_vars",
    "get_defined_functions",
    "getmypid",
    "getmyuid",
    "php_uname",
    "phpversion",
    "stream_socket_client",
    "stream_get_contents",
    "parse_str",
    "mb_ereg_replace",
    "iptcembed",
    "proc_nice",
    "proc_terminate",
    "proc_get_status",
    "apache_child_terminate",
    "lchown",
    "symlink",
    "readlink",
    "tempnam",
    "fputs",
    "fwrite",
    "fopen",
    "readfile",
    "opendir",
    "scandir",
    "gethostbyname",
    "ob_start",
    "forward_static_call",
    "func_get_args",
    "settype",
    "str_replace",
    "strrev",
    "intval",
    "var_dump",
    "print_r",
    "serialize",
    "json_decode",
    "base64_encode",
    "md5_file",
    "is_writable",
    "function_exists",
    "class_exists",
    "method_exists",
    "curl_init",
    "file_exists",
    "is_array",
    "strip_tags",
    "filegroup",
    "fileowner",
    "fileperms",
    "strrev",
    "unpack",
    "is_file",
    "is_dir",
    "is_readable",
    "array_keys",
    "array_values",
    "in_array",
    "get_object_vars",
    "mysql_query",
    "mysqli_query",
    "pg_query",
    "sqlite_query",
    "preg_match",
    "htmlspecialchars",
    "addslashes",
]);

/// File timestamps and sizes (`filemtime($f)`): a call is PHP code, but it runs, reads and
/// writes nothing and reveals no content, so it is no injection by itself. Paranoia 2 (CRS
/// removed these names from its function lists for false positives).
const PROBE_FUNCTIONS: &[&str] = &["filemtime", "fileatime", "filectime", "filesize"];

/// Common-word function names: they count only as a call with an argument
/// (`exec('id')`, `eval($x)`, `chr(123)`), never as words ("the system is down").
const WORD_FUNCTIONS: crate::detect::Words = crate::detect::Words::new(&[
    "eval",
    "exec",
    "system",
    "assert",
    "popen",
    "chr",
    "ord",
    "include",
    "include_once",
    "require",
    "require_once",
    "mail",
    "putenv",
    "getenv",
    "copy",
    "unlink",
    "rename",
    "file",
    "header",
    "print",
    "echo",
    "die",
    "exit",
    "sleep",
    "strlen",
    "implode",
    "explode",
    "pack",
    "dl",
    "chown",
    "chmod",
    "glob",
    "extract",
]);

/// `php.ini` directives and namespaces that matter to an attacker (code loading, sandbox,
/// mail, limits).
const INI_DIRECTIVES: &[&str] = &[
    "allow_url_fopen",
    "allow_url_include",
    "auto_prepend_file",
    "auto_append_file",
    "disable_functions",
    "disable_classes",
    "open_basedir",
    "safe_mode",
    "extension",
    "extension_dir",
    "include_path",
    "display_errors",
    "error_log",
    "log_errors",
    "register_globals",
    "short_open_tag",
    "smtp",
    "smtp_port",
    "sendmail_path",
    "sendmail_from",
    "upload_tmp_dir",
    "file_uploads",
    "memory_limit",
    "max_execution_time",
    "expose_php",
    "output_handler",
    "error_reporting",
    "enable_dl",
    "doc_root",
    "user_dir",
    "zend_extension",
    "html_errors",
    "max_input_vars",
    "post_max_size",
    "upload_max_filesize",
    "unserialize_max_depth",
    "unserialize_callback_func",
    "variables_order",
    "request_order",
    "auto_detect_line_endings",
    "default_charset",
    "input_encoding",
    "internal_encoding",
];

/// [`INI_DIRECTIVES`] for lookups, packed ([`super::pack_words!`]): one hash instead of a scan,
/// and one byte per name in the module instead of a `&str` (issue 13).
pub(super) static INI_DIRECTIVE_SET: super::WordSet =
    super::WordSet::packed(super::pack_words!(INI_DIRECTIVES));

const INI_NAMESPACES: &[&str] = &[
    "mbstring.",
    "session.",
    "opcache.",
    "pcre.",
    "zend.",
    "xdebug.",
    "phar.",
    "assert.",
    "user_ini.",
    "mysqli.",
    "pdo_mysql.",
    "mail.",
    "date.",
    "filter.",
    "suhosin.",
];

const WRAPPERS: crate::detect::Words = crate::detect::Words::new(&[
    "phar://",
    "zip://",
    "compress.zlib://",
    "compress.bzip2://",
    "glob://",
    "expect://",
    "ssh2.shell://",
    "ssh2.exec://",
    "ssh2.tunnel://",
    "ssh2.sftp://",
    "ssh2.scp://",
    "rar://",
    "ogg://",
    "zlib://",
    "data://text",
    "php://",
]);

/// Whether `input` holds a byte every [`open_tag`] form needs (`<?`, `[php]`, `{php}`): the
/// byte set answers for most values before five searches.
fn may_hold_open_tag(input: &crate::extract::Input<'_>) -> bool {
    input.bytes.has(b'<') || input.bytes.has(b'[') || input.bytes.has(b'{')
}

fn open_tag(l: &str) -> bool {
    // BBCode-style `[php]` and Smarty's `{php}` blocks run their content as PHP.
    if l.has_lit("[php]") || l.has_lit("[/php]") || l.has_lit("{php}") || l.has_lit("{/php}") {
        return true;
    }
    let mut from = 0;
    while let Some(p) = l
        .get(from..)
        .and_then(|h| h.find_lit("<?"))
        .map(|p| p + from)
    {
        let rest = l.get(p + 2..).unwrap_or_default();
        // `<?` ending the value: an open tag whose code follows in the next parameter.
        if rest.trim().is_empty() {
            return true;
        }
        // `<?php` (also `<? php`) or `<?=` followed by code; a bare `<?php` runs nothing.
        if let Some(code) = rest.trim_start().strip_prefix("php") {
            if !code.first_char().is_some_and(|c| c.is_ascii_alphanumeric())
                && !code.trim().is_empty()
            {
                return true;
            }
        } else if rest.starts_with('=') || !xml_processing_instruction(rest) && short_tag_code(rest)
        {
            return true;
        }
        from = p + 2;
    }
    false
}

/// `<?target name="value" ...?>`: an XML processing instruction (`<?xml version="1.0"?>`,
/// `<?xml-stylesheet href=..?>`, `<?xpacket begin=..?>`), which PHP does not run as code.
/// `rest` follows the `<?`.
fn xml_processing_instruction(rest: &str) -> bool {
    let b = rest.as_bytes();
    let target = b
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':'))
        .count();
    if target == 0 || !b.first().is_some_and(u8::is_ascii_alphabetic) {
        return false;
    }
    // Pseudo-attributes: `name = "value"` pairs, then `?>` or the end of the value.
    let mut i = target;
    let mut pairs = 0;
    loop {
        let ws = b.get(i..).map_or(0, |r| {
            r.iter().take_while(|c| c.is_ascii_whitespace()).count()
        });
        i += ws;
        match b.get(i) {
            None => return pairs > 0,
            Some(b'?') => return pairs > 0 && b.get(i + 1) == Some(&b'>'),
            Some(_) if ws == 0 => return false,
            Some(_) => {}
        }
        let name = b.get(i..).map_or(0, |r| {
            r.iter()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b':'))
                .count()
        });
        if name == 0 {
            return false;
        }
        i += name;
        while b.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        if b.get(i) != Some(&b'=') {
            return false;
        }
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        let Some(&q @ (b'"' | b'\'')) = b.get(i) else {
            return false;
        };
        let Some(len) = b.get(i + 1..).and_then(|r| r.iter().position(|&c| c == q)) else {
            return false;
        };
        i += len + 2;
        pairs += 1;
    }
}

/// Code after a short open tag `<?`: a variable, a call, or a statement keyword with an
/// operand (`<?echo "x";`, `<? system('id')`), not prose (`<? should not trigger`).
fn short_tag_code(rest: &str) -> bool {
    let r = rest.trim_start();
    if r.starts_with('$') {
        return true;
    }
    let word_len = r
        .bytes()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
        .count();
    if word_len == 0 {
        return false;
    }
    let word = r.get(..word_len).unwrap_or_default();
    let after = r.get(word_len..).unwrap_or_default();
    let next = after.trim_start().bytes().next();
    let keyword = matches!(
        word,
        "echo"
            | "print"
            | "include"
            | "require"
            | "include_once"
            | "require_once"
            | "eval"
            | "die"
            | "exit"
            | "return"
            | "if"
            | "foreach"
            | "while"
            | "for"
            | "function"
            | "new"
            | "throw"
            | "global"
            | "static"
            | "unset"
            | "switch"
            | "class"
    );
    // Two words in a row are PHP only when the first is a keyword (`echo x;`); after any
    // other word (`<?xb echo 1;`, an XML-ish target) PHP would stop with a parse error.
    let word_follows = next.is_some_and(|c| c.is_ascii_alphabetic() || c == b'_');
    matches!(next, Some(b'(' | b';' | b'$' | b'"' | b'\'' | b'='))
        || ((keyword || !word_follows)
            && r.split("?>").next().is_some_and(|code| code.has_char(';')))
        || (keyword && after.first_char().is_some_and(|c| c.is_whitespace()) && next.is_some())
}

/// Every `data://` URL in `v` carries content without a `<` once its base64 is decoded
/// (`data://text/plain;base64,SSBsb3ZlIFBIUAo=` is "I love PHP"): included by PHP, such a
/// document prints itself and runs nothing; code needs an open tag. Paranoia 2 then, as
/// CRS leaves a bare `data://` to no paranoia 1 rule.
fn inert_data_wrapper(v: &str) -> bool {
    let mut any = false;
    let all_inert = v.match_indices(['d', 'D']).all(|(p, _)| {
        let rest = v.get(p..).unwrap_or_default();
        if !rest
            .get(..7)
            .is_some_and(|h| h.eq_ignore_ascii_case("data://"))
        {
            return true;
        }
        any = true;
        let Some((head, data)) = rest.split_once_char(',') else {
            return false;
        };
        // The data runs to the end of the URL (a space, a quote, `&` or the value's end).
        let data = data
            .split_ws_or(&['"', '\'', '&'])
            .next()
            .unwrap_or_default();
        if head.ascii_lower().ends_with(";base64") {
            let mut markup = false;
            super::generic::each_base64_byte(data, |b| markup |= b == b'<');
            !markup
        } else {
            !data.has_char('<') && !data.ascii_lower().has_lit("%3c")
        }
    });
    any && all_inert
}

#[cfg(test)]
#[test]
fn data_wrappers() {
    assert!(inert_data_wrapper(
        "data://text/plain;base64,SSBsb3ZlIFBIUAo="
    ));
    assert!(inert_data_wrapper("data://text/plain,hello"));
    // `<?php phpinfo();?>` in base64, and in clear.
    assert!(!inert_data_wrapper(
        "data://text/plain;base64,PD9waHAgcGhwaW5mbygpOz8+"
    ));
    assert!(!inert_data_wrapper(
        "data://text/plain,<?php system('id');?>"
    ));
    assert!(!inert_data_wrapper("data://text/plain;base64"));
}

fn php_file(l: &str) -> bool {
    let name: String = l.without_whitespace();
    let name = name.trim_end_set(b"./\\:");
    let ext = name.rsplit_first('.').unwrap_or_default();
    name.has_char('.')
        && (matches!(
            ext,
            "php" | "phtml" | "phar" | "phps" | "pht" | "pgif" | "shtml" | "inc"
        ) || ext
            .strip_prefix("php")
            .is_some_and(|v| v.len() == 1 && v.bytes().all(|b| b.is_ascii_digit())))
}

fn superglobal(l: &str) -> bool {
    const NAMES: &[&str] = &[
        "$_get",
        "$_post",
        "$_server",
        "$_cookie",
        "$_request",
        "$_files",
        "$_env",
        "$_session",
        "$globals",
        "http_raw_post_data",
        "$http_get_vars",
        "$http_post_vars",
        "$http_cookie_vars",
        "$http_server_vars",
        "$http_env_vars",
        "$http_session_vars",
        "$http_post_files",
    ];
    // Names whose bytes the value lacks are not searched (a `${jndi:` run has `$` but no
    // `_`: each name was a substring search per window).
    let set = crate::extract::ByteSet::of(l.as_bytes());
    NAMES.iter().filter(|n| set.has_all(n.as_bytes())).any(|n| {
        l.find_lit(n).is_some_and(|p| {
            !l.as_bytes()
                .get(p + n.len())
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        })
    })
}

fn ini_directive(l: &str) -> bool {
    let Some((name, _)) = l.split_once_char('=') else {
        return false;
    };
    let name = name.trim();
    INI_DIRECTIVE_SET.contains(name)
        || INI_NAMESPACES.iter().any(|ns| {
            name.strip_prefix(ns).is_some_and(|r| {
                !r.is_empty()
                    && r.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
            })
        })
}

/// `${'x'}`, `${$a}`, `$ {'a'.'b'}`: variable variables.
fn variable_variable(l: &str) -> bool {
    let b = l.as_bytes();
    b.iter().enumerate().any(|(i, &c)| {
        if c != b'$' {
            return false;
        }
        let mut j = i + 1;
        while b.get(j).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        if b.get(j) != Some(&b'{') {
            return false;
        }
        j += 1;
        while b.get(j).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        matches!(b.get(j), Some(b'\'' | b'"' | b'$'))
    })
}

fn serialized_object(v: &str) -> bool {
    let b = v.as_bytes();
    b.iter().enumerate().any(|(i, &c)| {
        if !matches!(c, b'O' | b'C' | b'o' | b'c' | b'a') || b.get(i + 1) != Some(&b':') {
            return false;
        }
        if i > 0 && b.get(i - 1).is_some_and(u8::is_ascii_alphanumeric) {
            return false;
        }
        let mut j = i + 2;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let start = j;
        while b.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        if j == start || b.get(j) != Some(&b':') {
            return false;
        }
        match c {
            b'a' => {
                b.get(j + 1) == Some(&b'{')
                    && b.get(j + 2..)
                        .is_some_and(|r| r.starts_with(b"s:") || r.starts_with(b"i:"))
            }
            // `O:8:"stdClass":1:{`: the class name, then its member count and `{`, which
            // `unserialize` needs; `O:8:"stdClass"` alone (quoted in a sentence) builds
            // nothing.
            _ => {
                b.get(j + 1) == Some(&b'"')
                    && b.get(j + 2..).is_some_and(|r| {
                        let Some(close) = r.iter().take(256).position(|&x| x == b'"') else {
                            return false;
                        };
                        let rest = r.get(close + 1..).unwrap_or_default();
                        let digits = rest
                            .get(1..)
                            .unwrap_or_default()
                            .iter()
                            .take_while(|d| d.is_ascii_digit())
                            .count();
                        rest.first() == Some(&b':')
                            && digits > 0
                            && rest.get(1 + digits..).is_some_and(|t| t.starts_with(b":{"))
                    })
            }
        }
    })
}

/// A name from the dangerous-function lists followed (after spaces) by `(`.
fn any_function_name(l: &str) -> bool {
    let b = l.as_bytes();
    DISTINCTIVE_FUNCTIONS
        .iter()
        .chain(PROBE_FUNCTIONS.iter())
        .chain(WORD_FUNCTIONS.iter())
        .any(|f| {
            l.match_indices(f).any(|(p, _)| {
                let mut j = p + f.len();
                while b.get(j) == Some(&b' ') && j < p + f.len() + 4 {
                    j += 1;
                }
                let before = p.checked_sub(1).and_then(|i| b.get(i));
                !before.is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                    && b.get(j) == Some(&b'(')
            })
        })
}

/// `$name` or `${`: PHP's variable syntax.
fn php_variable(l: &str) -> bool {
    let b = l.as_bytes();
    super::byte_offsets(l, b'$').any(|p| {
        b.get(p + 1)
            .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_' || *c == b'{')
    })
}

/// Paranoia 2: a call to a function of a PHP extension, recognised by PHP's naming
/// (`array_diff (`, `ldap_get_entries()`, `sodium_crypto_..._keygen (`): an extension
/// prefix and more name joined by `_`, then `(`.
fn extension_call(l: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "array_",
        "ldap_",
        "odbc_",
        "sodium_",
        "tidy_",
        "zend_",
        "mysqli_",
        "mysql_",
        "pg_",
        "curl_",
        "posix_",
        "proc_",
        "pcntl_",
        "stream_",
        "socket_",
        "xml_",
        "xmlrpc_",
        "mb_",
        "iconv_",
        "openssl_",
        "hash_",
        "str_",
        "preg_",
        "ftp_",
        "imap_",
        "session_",
        "ob_",
        "func_",
        "call_",
        "create_",
        "ini_",
        "apache_",
        "shell_",
        "exif_",
        "finfo_",
        "gmp_",
        "json_",
        "libxml_",
        "simplexml_",
        "sqlite_",
        "oci_",
        "dba_",
        "filter_",
        "highlight_",
        "php_",
        "debug_",
        "error_",
        "spl_",
        "class_",
        "method_",
        "property_",
        "file_",
    ];
    let b = l.as_bytes();
    super::byte_offsets(l, b'(').any(|p| {
        let mut j = p;
        while j > 0 && b.get(j - 1).is_some_and(|c| *c == b' ' || *c == b'\t') {
            j -= 1;
        }
        let end = j;
        while j > 0
            && b.get(j - 1)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        {
            j -= 1;
        }
        let name = l.get(j..end).unwrap_or_default();
        name.len() >= 6
            && name.first_char().is_some_and(|c| c.is_ascii_alphabetic())
            && PREFIXES
                .iter()
                .any(|x| name.strip_prefix(x).is_some_and(|r| !r.is_empty()))
    })
}

/// An identifier argument as PHP reads it (a constant, a nested call, a member, followed by
/// `)`, `,`, `(`, `.`, `[`, `::` or `->`), not words of a parenthesised remark
/// ("file (aka: bundle, ...)").
fn constant_arg(sk: &Skipper<'_>, b: &[u8], k: usize) -> bool {
    let mut j = k;
    while b
        .get(j)
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
    {
        j += 1;
    }
    let j = sk.skip(j);
    match b.get(j) {
        Some(b')' | b',' | b'(' | b'.' | b'[') => true,
        Some(b':') => b.get(j + 1) == Some(&b':'),
        Some(b'-') => b.get(j + 1) == Some(&b'>'),
        _ => false,
    }
}

/// An identifier argument that is itself a call (`md5(1)`, `chr (65)`).
fn nested_call_arg(sk: &Skipper<'_>, b: &[u8], k: usize) -> bool {
    let mut j = k;
    while b
        .get(j)
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
    {
        j += 1;
    }
    b.get(sk.skip(j)) == Some(&b'(')
}

/// A dangerous function called: `name` + optional whitespace/comments + `(` + argument.
fn function_call(l: &str) -> bool {
    calls(
        l,
        DISTINCTIVE_FUNCTIONS.as_slice(),
        WORD_FUNCTIONS.as_slice(),
    )
}

/// `report - Copy (2).pdf`, `file (1).txt`: how browsers and file managers name a second
/// copy of a download (a space, a number in parentheses, an extension ending the name), not
/// a call: a number as the only argument and an extension after it run nothing.
fn numbered_copy(b: &[u8], name_end: usize, open: usize) -> bool {
    if b.get(name_end) != Some(&b' ') {
        return false;
    }
    let rest = b.get(open + 1..).unwrap_or_default();
    let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    let ext = rest.get(digits + 2..).unwrap_or_default();
    let n = ext.iter().take_while(|c| c.is_ascii_alphanumeric()).count();
    (1..=3).contains(&digits)
        && rest.get(digits) == Some(&b')')
        && rest.get(digits + 1) == Some(&b'.')
        && (1..=5).contains(&n)
        && ext
            .get(n)
            .is_none_or(|c| c.is_ascii_whitespace() || matches!(c, b'"' | b'\'' | b';' | b','))
}

/// A call of a [`PROBE_FUNCTIONS`] name, judged like [`function_call`].
fn probe_call(l: &str) -> bool {
    calls(l, PROBE_FUNCTIONS, &[])
}

/// A call of one of `distinctive` (matched inside longer words too) or of `words` (whole
/// words only): `name` + optional whitespace/comments + `(` + argument.
fn calls(l: &str, distinctive: &[&str], words: &[&str]) -> bool {
    let b = l.as_bytes();
    // Every call below is a name followed by `(`.
    if !b.has_byte(b'(') {
        return false;
    }
    let sk = Skipper::new(b);
    let prose = super::lfi::prose(l);
    let call_after = |end: usize, need_arg: bool, empty_ok: bool, call_arg_only: bool| {
        let j = sk.skip(end);
        if b.get(j) != Some(&b'(')
            || super::lfi::prose_arguments(b, j + 1)
            || numbered_copy(b, end, j)
        {
            return false;
        }
        if !need_arg {
            return true;
        }
        let k = sk.skip(j + 1);
        b.get(k).is_some_and(|c| {
            matches!(
                c,
                b'$' | b'\'' | b'"' | b'`' | b'0'..=b'9' | b'_' | b'(' | b'@'
            )
        }) || b.get(k).is_some_and(u8::is_ascii_alphabetic)
            && if call_arg_only {
                nested_call_arg(&sk, b, k)
            } else {
                // PHP reads a bare word as a constant, which no probe passes to a function.
                !super::lfi::parenthetical_remark(b, end, k, || prose) && constant_arg(&sk, b, k)
            }
            || empty_ok && b.get(k) == Some(&b')')
    };
    let set = ByteSet::of(b);
    let found = distinctive
        .iter()
        .filter(|f| set.has_all(f.as_bytes()))
        .any(|f| {
            let mut from = 0;
            while let Some(p) = l.get(from..).and_then(|h| h.find(f)).map(|p| p + from) {
                let after_word = !b
                    .get(p + f.len())
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_');
                let bare_call_ok = f.has_char('_') || f.len() >= 7;
                // A PHP-only name called even without arguments (`strrev()`) is a probe;
                // in a sentence ("shell_exec() in PHP returns output") it is the name of the
                // function, so there the call needs an argument.
                if after_word
                    && !other_language(b, p, prose)
                    && call_after(p + f.len(), !bare_call_ok || prose, !prose, false)
                {
                    return true;
                }
                from = p + 1;
            }
            false
        });
    found
        || words.iter().filter(|f| set.has_all(f.as_bytes())).any(|f| {
            let mut from = 0;
            while let Some(p) = find_word(l, f, from) {
                // A comment between the name and `(` (`exec/**/()`, `exec #\n ()`) is PHP
                // syntax no sentence has: then even an empty call counts.
                let end = p + f.len();
                let gap = l.get(end..sk.skip(end)).unwrap_or_default();
                let commented = gap.has_lit("/*") || gap.has_char('#') || gap.has_lit("//");
                // Output and pure functions (`print`, `strlen`) also exist in Python and
                // other languages (`print(i)`, `print(os.getcwd())`): with an identifier
                // argument they count only around a nested call (`print(md5(1))`).
                let harmless = matches!(
                    *f,
                    "print"
                        | "echo"
                        | "die"
                        | "exit"
                        | "strlen"
                        | "implode"
                        | "explode"
                        | "chr"
                        | "ord"
                        | "pack"
                        | "sleep"
                        | "file"
                        | "header"
                        | "copy"
                        | "rename"
                        | "glob"
                        | "extract"
                );
                // Output and string functions with a literal argument (`print('hi')`,
                // `strlen("abc")`) show nothing the application would not echo anyway:
                // a probe passes them a call or a variable (`print(md5(1))`). `chr(115)`
                // still counts: strings assembled from codes are how payloads hide.
                let output = matches!(
                    *f,
                    "print" | "echo" | "die" | "exit" | "strlen" | "implode" | "explode"
                );
                let open = sk.skip(end);
                let literal = b.get(open) == Some(&b'(')
                    && b.get(sk.skip(open + 1))
                        .is_some_and(|c| matches!(c, b'\'' | b'"' | b'0'..=b'9'));
                if !(output && literal && !commented || other_language(b, p, prose))
                    && call_after(end, true, commented, harmless)
                {
                    return true;
                }
                from = p + 1;
            }
            false
        })
}

/// Whether the name at `p` is called in another language: a class instantiated
/// (`new File("/tmp")`), or in a sentence a member of a name (`os.system('ls')`,
/// `child_process.exec(cmd)`, Ruby's `Kernel#system('make')`): a module's or object's method
/// in Python, JavaScript, Go, Java or Ruby. PHP reads `os.` as an undefined constant and
/// concatenation (an Error since PHP 8) and a comment after `#`, and could not parse the
/// sentence around the call anyway. A string or a call before the `.` (`'x'.system(`,
/// `).system(`) is PHP's concatenation and counts, as does any member call as the whole
/// value (`os.system('id')`, `$a.system('id')`).
fn other_language(b: &[u8], p: usize, prose: bool) -> bool {
    let before = b.get(..p).unwrap_or_default();
    before.ends_with(b"new ")
        || prose
            && matches!(before.last(), Some(b'.' | b'#'))
            && before
                .len()
                .checked_sub(2)
                .and_then(|i| before.get(i))
                .is_some_and(u8::is_ascii_alphanumeric)
}

/// Whether an argument's whole value (lowercase) names a PHP function that calls another
/// by name or runs a command (`call_user_func_array`, `create_function`, `shell_exec`...):
/// a callable passed as data, which frameworks that dispatch on a parameter then call with
/// the request's other parameters (ThinkPHP's `function=call_user_func_array&vars[0]=system`,
/// callbacks handed to `array_map` or `usort`). Only names no other language or word has;
/// `system` or `exec` alone is a word. Each holds `_`, so the extractor's inert tokens
/// (`a-z`, `0-9`, `-`) stay inert; the php gate admits such a word ([`crate::detect::gate`]).
pub(crate) fn callable_name(l: &str) -> bool {
    matches!(
        l.trim(),
        "call_user_func"
            | "call_user_func_array"
            | "create_function"
            | "shell_exec"
            | "proc_open"
            | "pcntl_exec"
            | "forward_static_call_array"
    )
}

/// Skips spaces, `/* */` comments and `//` or `#` line comments (PHP's comment forms).
fn skip_php_space(sk: &Skipper<'_>, b: &[u8], mut j: usize) -> usize {
    loop {
        let k = sk.skip(j);
        if b.get(k) == Some(&b'/') && b.get(k + 1) == Some(&b'/') {
            j = sk.newline(k).map_or(b.len(), |p| p + 1);
            continue;
        }
        return k;
    }
}

/// The end of a balanced `[...]` or `{...}` group starting at `j`, if short (at most 128 bytes)
/// and non-empty. `matches` is [`bracket_matches`] of `b`: looking the closer up instead of
/// scanning for it keeps `${${${...` linear.
fn group_end(matches: &[u32], j: usize) -> Option<usize> {
    let k = *matches.get(j)? as usize;
    (k != u32::MAX as usize && k > j + 1 && k < j + 128).then_some(k + 1)
}

/// For every `[`/`{` in `b`, the index of the `]`/`}` that brings the bracket depth back to
/// where it was (the kinds are not told apart, as PHP's lexer would not either for this
/// purpose), `u32::MAX` for unmatched and non-bracket bytes. One pass with a stack.
fn bracket_matches(b: &[u8]) -> Vec<u32> {
    let mut out = vec![u32::MAX; b.len()];
    let mut stack: Vec<usize> = Vec::new();
    for (k, &c) in b.iter().enumerate() {
        match c {
            b'[' | b'{' => stack.push(k),
            b']' | b'}' => {
                if let Some(open) = stack.pop() {
                    if let Some(slot) = out.get_mut(open) {
                        *slot = u32::try_from(k).unwrap_or(u32::MAX);
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// `$f(`, `$_(`, `@$__[o](`, `$x['a'](`, `${@a}(`, `$a/*c*/[1](`: calling a variable.
fn variable_function(l: &str) -> bool {
    let b = l.as_bytes();
    let sk = Skipper::new(b);
    let matches = std::cell::OnceCell::new();
    let group_end = |j: usize| group_end(matches.get_or_init(|| bracket_matches(b)), j);
    b.iter().enumerate().any(|(i, &c)| {
        if c != b'$' {
            return false;
        }
        let mut j = skip_php_space(&sk, b, i + 1);
        if b.get(j) == Some(&b'{') {
            match group_end(j) {
                Some(e) => j = e,
                None => return false,
            }
        } else {
            let start = j;
            if !b
                .get(j)
                .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
            {
                return false;
            }
            while b
                .get(j)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
            {
                j += 1;
            }
            if j == start {
                return false;
            }
        }
        // Index chains with content, comments allowed between.
        loop {
            let k = skip_php_space(&sk, b, j);
            if matches!(b.get(k), Some(b'[' | b'{')) {
                match group_end(k) {
                    Some(e) => j = e,
                    None => return false,
                }
            } else {
                j = k;
                break;
            }
        }
        b.get(j) == Some(&b'(')
    })
}

/// A string or expression used as a callable: `"system"('id')`, `"sys"."tem"('id')`,
/// `(x)/**/('id')`, `{[system][0]}('id')`.
fn string_callable(l: &str) -> bool {
    let b = l.as_bytes();
    let sk = Skipper::new(b);
    b.iter().enumerate().any(|(i, &c)| {
        if !matches!(c, b'"' | b'\'' | b')' | b']' | b'}') {
            return false;
        }
        let j = sk.skip(i + 1);
        if j == i + 1 && c == b')' {
            // `(foo)(` glued: only with a quoted argument below.
        }
        if b.get(j) != Some(&b'(') {
            return false;
        }
        let k = sk.skip(j + 1);
        let quoted_arg = matches!(b.get(k), Some(b'\'' | b'"'));
        let closes = b
            .get(k..)
            .and_then(|r| super::find_byte(super::head(r, 80), b')'))
            .map(|p| k + p);
        let Some(close) = closes else {
            return false;
        };
        let glued = j == i + 1;
        let statement_end = b
            .get(sk.skip(close + 1))
            .is_none_or(|x| matches!(x, b';' | b'.'));
        let word_arg = b
            .get(k)
            .is_some_and(|x| x.is_ascii_alphanumeric() || *x == b'$');
        match c {
            b'"' | b'\'' => {
                let semicolon = b.get(sk.skip(close + 1)) == Some(&b';');
                quoted_arg || (glued && word_arg) || (word_arg && semicolon)
            }
            // `{[system][0]}('id')`, not a Markdown link `[text](https://...)`.
            b']' | b'}' => {
                let arg = b.get(k..close).unwrap_or_default();
                let url = arg.windows(3).any(|w| w == b"://");
                (quoted_arg || word_arg && !url) && statement_end
            }
            _ => {
                quoted_arg
                    && b.get(i + 1..j)
                        .is_some_and(|gap| gap.is_empty() || gap.has_byte(b'/'))
            }
        }
    })
}

fn session_file(l: &str) -> bool {
    l.rsplit_first_any(b"/\\").is_some_and(|base| {
        base.strip_prefix("sess_").is_some_and(|id| {
            id.len() >= 20
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b',')
        })
    })
}

fn scan_input(input: &Input, out: &mut Findings) {
    let l = input.lower.as_str();
    if input.location.source == Source::Arg && callable_name(l) {
        out.hit(input, CAT, "php.callable-name", Severity::Critical, 1);
    }
    if super::is_plain_input(input)
        && !super::java::is_upload_name(input.location.source, &input.location.name)
    {
        return;
    }
    let hit = |out: &mut Findings, rule| out.hit(input, CAT, rule, Severity::Critical, 1);
    if super::java::is_upload_name(input.location.source, &input.location.name) {
        if php_file(l) {
            hit(out, "php.script-upload");
        }
        if session_file(l) {
            hit(out, "php.session-upload");
        }
        return;
    }
    // Needles are searched only when the value holds all their bytes (a long run of a few
    // repeated bytes otherwise pays a full substring search per needle).
    let has = |n: &str| input.lower_has(n);
    if (has("<?") || has("php]") || has("php}")) && open_tag(l) {
        hit(out, "php.open-tag");
    }
    // Every wrapper holds `:` (`wrappers_hold_a_colon`): one byte asked for the list.
    if input.bytes.has(b':') && WRAPPERS.iter().any(|w| has(w)) {
        // `data://` alone, carrying no markup: paranoia 2 (see `inert_data_wrapper`).
        let only_data = WRAPPERS
            .iter()
            .filter(|w| **w != "data://text")
            .all(|w| !has(w));
        let level = if only_data && inert_data_wrapper(&input.value) {
            2
        } else {
            1
        };
        out.hit(input, CAT, "php.wrapper", Severity::Critical, level);
    }
    if input.bytes.has(b'$') || has("http_raw_post_data") {
        if superglobal(l) {
            // A sentence naming one ("$_POST is empty in php 8") documents it; code indexes
            // or assigns it (`$_SERVER['x']`, `$_GET[0]`), or it stands alone: paranoia 2
            // for a mention in prose without `[`.
            let mention = super::lfi::prose(l) && !input.bytes.has(b'[');
            out.hit(
                input,
                CAT,
                "php.superglobal",
                Severity::Critical,
                if mention { 2 } else { 1 },
            );
        }
        if variable_variable(l) {
            hit(out, "php.variable-variable");
        }
        if variable_function(l) {
            hit(out, "php.variable-function");
        }
    }
    if input.bytes.has(b'=') && ini_directive(l) {
        hit(out, "php.ini-directive");
    }
    if input.bytes.has(b':') && serialized_object(&input.value) {
        hit(out, "php.serialized-object");
    }
    if input.bytes.has(b'(') {
        if function_call(l) {
            hit(out, "php.function-call");
        } else if out.wants(CAT, 2) && probe_call(l) {
            out.hit(input, CAT, "php.probe-call", Severity::Critical, 2);
        } else if out.wants(CAT, 2) && extension_call(l) {
            out.hit(input, CAT, "php.extension-call", Severity::Critical, 2);
        } else if out.wants(CAT, 3) && any_function_name(l) {
            // Paranoia 3: a dangerous PHP function name before `(`, whatever the argument.
            out.hit(input, CAT, "php.function-name", Severity::Critical, 3);
        }
        if string_callable(l) {
            hit(out, "php.string-callable");
        }
    }
    // Paranoia 4: a PHP variable (`$name`, `${name}`).
    if out.wants(CAT, 4) && php_variable(l) {
        out.hit(input, CAT, "php.variable", Severity::Critical, 4);
    }
}

pub(crate) fn scan(p: &Prepared<'_>, out: &mut Findings) {
    if !out.wants(CAT, 1) {
        return;
    }
    for input in p.inputs_of(INJECTION) {
        if out.decided() {
            break;
        }
        if input.location.source == Source::Header
            && !super::java::is_upload_name(input.location.source, &input.location.name)
            && input.location.name == "user-agent"
        {
            if may_hold_open_tag(input) && open_tag(&input.lower) {
                out.hit(input, CAT, "php.open-tag", Severity::Critical, 1);
            }
            continue;
        }
        scan_input(input, out);
    }
    if let Some(path) = p.inputs.iter().find(|i| i.location.source == Source::Path) {
        if path.bytes.has(b':')
            && WRAPPERS
                .iter()
                .any(|w| path.may_contain(w) && path.lower.has_lit(w))
            || (may_hold_open_tag(path) && open_tag(&path.lower))
            || function_call(&path.lower)
        {
            out.hit(path, CAT, "php.wrapper", Severity::Critical, 1);
        }
        if path.lower.has_char('(') && extension_call(&path.lower) {
            out.hit(path, CAT, "php.extension-call", Severity::Critical, 2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wrapper screens ask the value for `:` before the list: every wrapper holds one.
    #[test]
    fn wrappers_hold_a_colon() {
        assert!(WRAPPERS.iter().all(|w| w.contains(':')));
    }

    #[test]
    fn tags() {
        assert!(open_tag("<?php echo 1;"));
        assert!(open_tag("<?= \"x\""));
        assert!(open_tag("<? exec('x')"));
        assert!(open_tag("<?xml :echo 1;"));
        assert!(open_tag("code[/php]"));
        assert!(!open_tag("<?xml version=\"1.0\"?>"));
        assert!(!open_tag("<?xml version=\"1.0\" encoding=\"utf-8\""));
        assert!(!open_tag(
            "<?xml-stylesheet type=\"text/xsl\" href=\"s.xsl\"?><a/>"
        ));
        assert!(!open_tag("&lt;? should not trigger"));
        assert!(!open_tag("<?php"));
        assert!(open_tag("<?echo \"test\";?>"));
        assert!(open_tag("<?php\nsystem($_GET[1]);"));
    }

    #[test]
    fn calls() {
        for s in [
            "eval($foo)",
            "exec\n('bar')",
            "chr(123)",
            "foocall_user_func()",
            "base64_decode()",
            "system /* x */ ('id')",
        ] {
            assert!(function_call(s), "{s}");
        }
        for s in [
            "exec (",
            "executor()",
            "the system is down()",
            "the files (yep)",
            "cheval($foo)",
        ] {
            assert!(!function_call(s), "{s}");
        }
    }

    #[test]
    fn variables() {
        assert!(variable_function("$a(1)"));
        assert!(variable_function("@$__[o](4)"));
        assert!(variable_function("$__['o'](5)"));
        assert!(!variable_function("$a#foo()"));
        assert!(!variable_function("$a[]()"));
        assert!(!variable_function("costs $5 (approx)"));
        assert!(variable_function("$__[$_[1]](7)"));
        assert!(variable_function("${@a}(10)"));
        assert!(variable_function("$a /*c*/ [@5](19)"));
        assert!(variable_function("$a //x\n()"));
        assert!(!variable_function("$a//foo()"));
        assert!(variable_variable("${'ff'}"));
        assert!(variable_variable("$ {$a}"));
        assert!(!variable_variable("${ }"));
        assert!(!variable_variable("${name}"));
        assert!(superglobal("$_server['x']"));
        assert!(!superglobal("$_se rver"));
    }

    #[test]
    fn callables_and_objects() {
        assert!(string_callable("(string)\"system\"('uname');"));
        assert!(string_callable("\"sys\".\"t\".\"em\" ('uname');"));
        assert!(string_callable("(x)/* comment */('uname');"));
        assert!(!string_callable("this is a \"dog\" (not a cat)"));
        assert!(!string_callable("(foo)bar or foo(bar)"));
        assert!(string_callable("[system][0](ls);"));
        assert!(string_callable("[ system ] [ 0 ] ( ls );"));
        assert!(string_callable("\"system\"(ls);"));
        assert!(!string_callable("x=(/foo)/(/bar)"));
        assert!(serialized_object("O:8:\"stdClass\":0:{}"));
        assert!(serialized_object("a:2:{i:0;s:1:\"a\";}"));
        assert!(!serialized_object("ratio 16:9"));
        assert!(serialized_object(
            "C:11:\"ArrayObject\":21:{x:i:0;a:0:{};m:a:0:{}}"
        ));
        // A class named in a sentence is no object.
        assert!(!serialized_object(
            "Serialize PHP objects (O:8:\"stdClass\") to JSON"
        ));
    }

    #[test]
    fn files_and_ini() {
        assert!(php_file("a.php.."));
        assert!(php_file("x.php5"));
        assert!(php_file("shell. phtml"));
        assert!(!php_file("safe.phpinfo"));
        assert!(session_file("/tmp/sess_abc123def456ghi789jkl"));
        assert!(!session_file("sess_short"));
        assert!(ini_directive("allow_url_include=1"));
        assert!(ini_directive("mbstring.regex_stack_limit=true"));
        assert!(!ini_directive("color=red"));
    }
}

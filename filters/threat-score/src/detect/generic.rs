//! Generic application attacks (CRS 934): Node.js code and deserialization markers,
//! prototype pollution, server-side template injection, CPU-burning loops, Ruby process
//! calls, SSRF to cloud metadata services and internal host names, and `data:` URIs used as
//! include targets.

use super::{Findings, INJECTION};
use crate::detect::HasByte as _;
use crate::detect::Lit as _;
use crate::detect::Outlined as _;
use crate::extract::{BodyKind, Input, Prepared};
use crate::model::{Category, Severity, Source};

const CAT: Category = Category::Generic;

/// Cloud metadata endpoints: the first stop of any SSRF.
const METADATA: crate::detect::Words = crate::detect::Words::new(&[
    "169.254.169.254",
    "169.254.170.2",
    "metadata.google.internal",
    "metadata.goog",
    "100.100.100.200",
    "fd00:ec2::254",
    "metadata.packet.net",
    "metadata.azure.com",
    "instance-data",
    "169.254.0.23",
    "192.0.0.192",
]);

/// Names that resolve to the host or its container runtime.
const INTERNAL_HOSTS: crate::detect::Words = crate::detect::Words::new(&[
    "localhost",
    "localhost4",
    "localhost6",
    "localhost.localdomain",
    "localhost4.localdomain4",
    "localhost6.localdomain6",
    "ip6-localhost",
    "ipv6-localhost",
    "ip6-loopback",
    "host.docker.internal",
    "gateway.docker.internal",
    "host.containers.internal",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
    // Google Compute Engine's metadata server by its short name (the resolver's search
    // domain completes it), as the long `metadata.google.internal` is in [`METADATA`].
    "metadata",
]);

/// Public DNS names whose every subdomain resolves to 127.0.0.1: `localhost` under another
/// name, registered for local development, and the classic way around a filter that
/// compares host names (`http://lvh.me:6379/`, `http://admin.localtest.me/`).
const LOOPBACK_DOMAINS: &[&str] = &["lvh.me", "localtest.me", "vcap.me"];

/// Whether `host` is a [`LOOPBACK_DOMAINS`] name or a subdomain of one.
fn loopback_alias(host: &str) -> bool {
    LOOPBACK_DOMAINS.iter().any(|d| {
        host.strip_suffix(d)
            .is_some_and(|h| h.is_empty() || h.ends_with('.'))
    })
}

/// Node.js injection: code that reaches the process, module loader or function constructor.
fn node_injection(l: &str) -> bool {
    const MARKERS: crate::detect::Words = crate::detect::Words::new(&[
        "process.env",
        "process.mainmodule",
        "process.binding",
        "process.kill",
        "process.exit",
        "child_process",
        "require(",
        "require[",
        "constructor.constructor",
        "__js_function",
        "_$$nd_func$$_",
        "process[",
        "global.process",
        "module.constructor",
        "console.log(",
        "console.info(",
        "console.error(",
        "console.warn(",
        "console.debug(",
        "console.info.call(",
        "console.log.call(",
    ]);
    let set = crate::extract::ByteSet::of(l.as_bytes());
    // In prose ("loads a .env file into process.env", "a require() hook", "wraps
    // child_process.exec() with promises") the names are documentation; code calls them:
    // then the marker's word must carry a call with an argument (`require('fs')`,
    // `child_process.exec(cmd)`, `process.env[k]` is not prose anyway).
    // Asked once, and only when a marker is there (a pass over the value).
    let prose = std::cell::OnceCell::new();
    let prose = || *prose.get_or_init(|| super::lfi::prose(l));
    MARKERS.iter().any(|m| {
        set.has_all(m.as_bytes())
            && super::lit_offsets(l, m).any(|p| !prose() || call_with_argument(word_around(l, p)))
    }) || ((set.has_all(b"function") && l.has_lit("function")
        || set.has_all(b"=>") && l.has_lit("=>"))
        && invoked_function(l))
}

/// A function literal called where it is written: `function(){...}()`,
/// `(function(){...})()`, `(()=>{...})()`. Eval'd and deserialized payloads
/// (`_$$ND_FUNC$$_function(){...}()`) run this way; a definition alone (`function() {
/// return this; }` in a code snippet) runs nothing. `function()=>` is no JavaScript at all
/// and counts as well. Each body is scanned once: a literal nested in a body already read
/// has the outer literal's answer, so the scan is linear.
fn invoked_function(l: &str) -> bool {
    let c: Vec<u8> = l.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if c.windows(12).any(|w| w == b"function()=>") {
        return true;
    }
    let mut scanned = 0;
    let mut i = 0;
    while i < c.len() {
        let rest = c.get(i..).unwrap_or_default();
        let head = if rest.starts_with(b"function(){") {
            10
        } else if rest.starts_with(b"()=>{") {
            4
        } else {
            0
        };
        if head == 0 || i < scanned {
            i += 1;
            continue;
        }
        // Find the brace closing the body.
        let mut depth = 0usize;
        let mut j = i + head;
        let mut end = None;
        while let Some(&b) = c.get(j) {
            match b {
                b'{' => depth += 1,
                b'}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        end = Some(j);
                        break;
                    }
                }
                _ => {}
            }
            j += 1;
        }
        scanned = j;
        let Some(e) = end else {
            // The value leaves the body open (`function() {`): the code around the
            // injection point completes it, and whether it is called is not ours to see.
            return true;
        };
        let after = c.get(e + 1..).unwrap_or_default();
        if after.starts_with(b"(") || after.starts_with(b")(") {
            return true;
        }
        i += 1;
    }
    false
}

/// The whitespace-delimited word of `l` that holds byte `p`.
pub(crate) fn word_around(l: &str, p: usize) -> &str {
    let start = l
        .get(..p)
        .and_then(|h| h.rfind(char::is_whitespace))
        .map_or(0, |i| i + 1);
    let end = l
        .get(p..)
        .and_then(|t| t.find(char::is_whitespace))
        .map_or(l.len(), |i| p + i);
    l.get(start..end).unwrap_or_default()
}

/// Whether `w` holds a call with an argument: `(` followed by a quote, backtick, `$`, a
/// letter or a digit (`require('x')`, `exec(cmd)`), not `()`.
fn call_with_argument(w: &str) -> bool {
    super::byte_offsets(w, b'(').any(|i| {
        w.as_bytes().get(i + 1).is_some_and(|c| {
            c.is_ascii_alphanumeric() || matches!(c, b'\'' | b'"' | b'`' | b'$' | b'_')
        })
    })
}

/// A call, with an argument, of another language's API that starts a process or
/// deserializes code: Python's `subprocess.Popen(['id'])`, `pickle.loads(data)`, .NET's
/// `System.Diagnostics.Process.Start("cmd.exe")`, Java's `new ProcessBuilder("id")`. The
/// name alone (`use subprocess.run() instead`, a search for `pickle.loads`) is prose.
fn process_api_call(l: &str) -> bool {
    const CALLS: &[&str] = &[
        "subprocess.popen(",
        "subprocess.call(",
        "subprocess.run(",
        "subprocess.check_output(",
        "subprocess.check_call(",
        "subprocess.getoutput(",
        "subprocess.getstatusoutput(",
        "pickle.loads(",
        "cpickle.loads(",
        "marshal.loads(",
        "yaml.unsafe_load(",
        "process.start(",
        "processbuilder(",
    ];
    // One pass over the `(`s: the name before each is compared with the list.
    let b = l.as_bytes();
    super::byte_offsets(l, b'(').any(|p| {
        b.get(p + 1).is_some_and(|&n| {
            n.is_ascii_alphanumeric() || matches!(n, b'\'' | b'"' | b'`' | b'$' | b'_' | b'[')
        }) && b
            .get(..=p)
            .is_some_and(|h| CALLS.iter().any(|c| h.ends_with(c.as_bytes())))
    })
}

/// Base64 values that decode to a Node serialization marker (`_$$ND_FUNC$$_`).
pub(crate) fn base64_marker(v: &str) -> bool {
    // `trim` is the identity when both ends are ASCII and not whitespace (most tokens): no
    // Unicode whitespace walk from each end then.
    let plain_end =
        |c: Option<&u8>| c.is_some_and(|&c| c.is_ascii() && !char::from(c).is_whitespace());
    let b = v.as_bytes();
    let t = if plain_end(b.first()) && plain_end(b.last()) {
        v
    } else {
        v.trim()
    };
    if t.len() < 12 || t.len() > 8192 || !may_decode_to_marker_byte(t.as_bytes()) {
        return false;
    }
    // Every marker below needs all the bytes of one of [`MARKER_NEEDS`] in the decoded text
    // (lowercased): without them, nothing is built (no decoded copy, no lowercase copy).
    // One pass over one table ([`each_base64_byte`]'s decoding: `=` skipped, standard and URL
    // alphabets).
    let (mut acc, mut bits, mut seen) = (0u32, 0u32, 0u32);
    // Four digits at a time while no `=` or other byte interrupts them: each group is three
    // whole bytes (the per-digit loop below is back at no pending bits after every fourth
    // digit, so it resumes exactly there).
    let digit = |c: u8| BASE64[usize::from(c)].wrapping_sub(1);
    let mut rest = t.as_bytes();
    while let [a, b, c, e, after @ ..] = rest {
        let (a, b, c, e) = (digit(*a), digit(*b), digit(*c), digit(*e));
        // A digit is below 64; `=` and bytes outside the alphabet are not.
        if (a | b | c | e) >= 64 {
            break;
        }
        let n = (u32::from(a) << 18) | (u32::from(b) << 12) | (u32::from(c) << 6) | u32::from(e);
        let bit = |byte: u32| MARKER_BITS[(byte & 0xFF) as usize];
        seen |= bit(n >> 16) | bit(n >> 8) | bit(n);
        rest = after;
    }
    for &c in rest {
        match BASE64[usize::from(c)] {
            INVALID => return false,
            PAD => {}
            d => {
                acc = (acc << 6) | u32::from(d - 1);
                bits += 6;
                if bits >= 8 {
                    bits -= 8;
                    let byte = (acc >> bits) & 0xFF;
                    seen |= MARKER_BITS[byte as usize];
                }
            }
        }
    }
    if !MARKER_NEEDS.iter().any(|&need| need & !seen == 0) {
        return false;
    }
    let decoded = decode_base64(t);
    let s = String::from_utf8_lossy(&decoded).ascii_lower();
    // `d_func$$_` also matches the marker with its first letter escaped (`_$$\u004eD_FUNC$$_`).
    s.has_lit("d_func$$_")
        || s.has_lit("require(")
        || s.has_lit("child_process")
        || endless_loop(&s)
}

/// Whether `t` (trimmed) may decode, as [`base64_marker`] decodes it, to a `(` or `_`: every
/// marker needs one ([`MARKER_NEEDS`]). One table read per byte ([`GROUP_CLASS`]) instead of
/// the decoding's digit, shift and marker-bit reads: most long tokens (`value-3-abcdef`, a
/// session id) are out here. A byte outside both alphabets means no marker at all (the
/// decoding gives up on it); a `=` inside shifts the groups, so the decoding decides.
/// A superset: `marker_byte_screen_keeps_every_paren_and_underscore` decodes generated
/// tokens and checks it.
fn may_decode_to_marker_byte(t: &[u8]) -> bool {
    let c = |b: u8| GROUP_CLASS[usize::from(b)];
    let mut rest = t;
    loop {
        // A missing digit of the last group is no `(`, `_` or `=`, and not out of the alphabet.
        let (a, b, d, e, after) = match rest {
            [a, b, d, e, after @ ..] => (c(*a), c(*b), c(*d), c(*e), after),
            [a, b, d] => (c(*a), c(*b), c(*d), VALID, &[][..]),
            [a, b] => (c(*a), c(*b), VALID, VALID, &[][..]),
            [a] => (c(*a), VALID, VALID, VALID, &[][..]),
            [] => return false,
        };
        if a & b & d & e & VALID == 0 {
            return false;
        }
        // Out at the first possible byte or `=`: the decoding reads the rest (and still
        // rejects a byte out of the alphabet there).
        if (a & AT0) | (b & (d >> 1) & AT1) | (e & AT3) | ((a | b | d | e) & PAD_BYTE) != 0 {
            return true;
        }
        rest = after;
    }
}

/// [`GROUP_CLASS`]: a digit that, first of its group of four, gives a decoded `(` or `_`
/// its top six bits.
const AT0: u8 = 1;
/// [`GROUP_CLASS`]: second of a group, the top four bits of the group's second byte.
const AT1: u8 = 2;
/// [`GROUP_CLASS`]: third of a group, the low four bits of the second byte (`AT1 << 1`).
const AT2: u8 = 4;
/// [`GROUP_CLASS`]: fourth of a group, the low six bits of the third byte.
const AT3: u8 = 8;
/// [`GROUP_CLASS`]: `=`.
const PAD_BYTE: u8 = 16;
/// [`GROUP_CLASS`]: a digit of either alphabet, or `=` (the other bytes are 0: most of the
/// table, which the module then does not store).
const VALID: u8 = 32;

/// For each byte, where in a group of four digits it can help decode a `(` or `_`
/// ([`may_decode_to_marker_byte`]), from [`BASE64`] and the two bytes' bits.
const GROUP_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let d = BASE64[c].wrapping_sub(1);
        t[c] = if BASE64[c] == INVALID {
            0
        } else if BASE64[c] == PAD {
            PAD_BYTE | VALID
        } else {
            let mut k = 0;
            let mut class = 0;
            let targets = [b'(', b'_'];
            while k < targets.len() {
                let x = targets[k];
                if d == x >> 2 {
                    class |= AT0;
                }
                if d & 15 == x >> 4 {
                    class |= AT1;
                }
                if d >> 2 == x & 15 {
                    class |= AT2;
                }
                if d == x & 63 {
                    class |= AT3;
                }
                k += 1;
            }
            class | VALID
        };
        c += 1;
    }
    t
};

/// The bytes the markers of [`base64_marker`] are made of, one bit each (a capital letter
/// has its lowercase letter's bit: the markers are matched on the lowercased text).
const MARKER_CHARS: &[u8] = b"d_func$reqi(hlpos;)w";

/// Each byte's bit in [`MARKER_CHARS`] (0 for the other bytes).
const MARKER_BITS: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < MARKER_CHARS.len() {
        let c = MARKER_CHARS[i];
        t[c as usize] = 1 << i;
        if c.is_ascii_lowercase() {
            t[c.to_ascii_uppercase() as usize] = 1 << i;
        }
        i += 1;
    }
    t
};

/// The bits of `needle`'s bytes in [`MARKER_BITS`].
const fn marker_need(needle: &[u8]) -> u32 {
    let mut m = 0;
    let mut i = 0;
    while i < needle.len() {
        m |= MARKER_BITS[needle[i] as usize];
        i += 1;
    }
    m
}

/// What each marker of [`base64_marker`] needs in the decoded text, whitespace aside:
/// `d_func$$_`, `require(`, `child_process`, and [`endless_loop`]'s `for(;;)` and `while(`.
const MARKER_NEEDS: [u32; 5] = [
    marker_need(b"d_func$$_"),
    marker_need(b"require("),
    marker_need(b"child_process"),
    marker_need(b"for(;;)"),
    marker_need(b"while("),
];

/// [`BASE64`]: not in the alphabet (0: the module stores only the table's middle, from `+`
/// to `z`).
const INVALID: u8 = 0;
/// [`BASE64`]: `=`, skipped.
const PAD: u8 = 65;
/// Each byte's base64 digit plus one (standard and URL alphabets), [`PAD`] or [`INVALID`].
const BASE64: [u8; 256] = {
    let mut t = [INVALID; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = match b {
            b'A'..=b'Z' => b - b'A' + 1,
            b'a'..=b'z' => b - b'a' + 27,
            b'0'..=b'9' => b - b'0' + 53,
            b'+' | b'-' => 63,
            b'/' | b'_' => 64,
            b'=' => PAD,
            _ => INVALID,
        };
        c += 1;
    }
    t
};

/// A small, lenient base64 decoder (standard and URL alphabets, padding optional).
fn decode_base64(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    each_base64_byte(s, |b| out.push(b));
    out
}

/// Calls `f` with each byte [`decode_base64`] would return, without storing them.
pub(crate) fn each_base64_byte(s: &str, mut f: impl FnMut(u8)) {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        })
    };
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter_map(val) {
        acc = (acc << 6) | c;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            f(((acc >> bits) & 0xFF) as u8);
        }
    }
}

/// `__proto__` used as a property (`a.__proto__.x`, `__proto__[isAdmin]`, a JSON key or a
/// field name), not mentioned in prose ("provide __proto__ with ...").
fn prototype_pollution(l: &str) -> bool {
    let b = l.as_bytes();
    l.match_indices("__proto__").any(|(p, m)| {
        let before = p.checked_sub(1).and_then(|i| b.get(i)).copied();
        let after = b.get(p + m.len()).copied();
        before.is_none_or(|c| matches!(c, b'[' | b'.' | b'"' | b'\'' | b'{' | b'='))
            || after.is_none_or(|c| matches!(c, b'[' | b'.' | b']' | b'=' | b'"' | b'\'' | b':'))
    }) || l.has_lit("constructor[prototype]")
        || l.has_lit("constructor.prototype")
        || l.has_lit("[constructor][prototype]")
}

/// An opener of a template language (`{{`, `${`, `#{`, `<%`, `{%`) with its closer after it.
fn any_template(l: &str) -> bool {
    [
        ("{{", "}}"),
        ("${", "}"),
        ("#{", "}"),
        ("<%", "%>"),
        ("{%", "%}"),
    ]
    .iter()
    .any(|(open, close)| {
        l.find_lit(open)
            .is_some_and(|p| l.get(p + open.len()..).is_some_and(|r| r.has_lit(close)))
    })
}

/// `@{[ ... ]}`: Perl runs the code inside when it interpolates the string.
fn perl_interpolation(l: &str) -> bool {
    let b = l.as_bytes();
    let skip = |mut j: usize| {
        while b.get(j).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        j
    };
    super::byte_offsets(l, b'@').any(|p| {
        let mut j = p + 1;
        while b.get(j) == Some(&b'@') && j < p + 3 {
            j += 1;
        }
        j = skip(j);
        b.get(j) == Some(&b'{') && b.get(skip(j + 1)) == Some(&b'[')
    })
}

/// A URL (`scheme:` with or without `//`) whose host is an IPv4 address written so that
/// filters miss it: one decimal or hex integer (`2852039166`, `0x7f000001`), dotted octal
/// (`0177.0.0.1`), an IPv4-mapped IPv6 literal, or circled/enclosed digits and letters.
fn obfuscated_ip_url(l: &str) -> bool {
    let b = l.as_bytes();
    // Each colon's authority is found with cursors that only move forward (its end, the last
    // `@` in it): colons come in order and so do their authorities' ends, so a run of
    // `jndi:jndi:...` costs one pass, not up to 300 bytes and a reverse search per colon.
    let is_stop = |c: &u8| matches!(c, b'/' | b'?' | b'#') || c.is_ascii_whitespace();
    let mut stop = 0usize; // bytes from the current authority start to here hold no stop
    let mut at_scanned = 0usize; // bytes before this were looked at for `@`
    let mut last_at: Option<usize> = None; // the last `@` before `at_scanned`
    super::byte_offsets(l, b':').any(|p| {
        // The scheme: up to 32 scheme characters before the colon (bounded: every colon
        // looks back at most that far and forward at most one authority).
        let scheme_len = b
            .get(p.saturating_sub(32)..p)
            .unwrap_or_default()
            .iter()
            .rev()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.' | b'_'))
            .count();
        let scheme = l.get(p - scheme_len..p).unwrap_or_default();
        if scheme.len() < 2 || !scheme.first_char().is_some_and(|c| c.is_ascii_alphabetic()) {
            return false;
        }
        let after = l.get(p + 1..).unwrap_or_default();
        let start = p + 1 + (after.len() - after.trim_start_set(b"/").len());
        // The authority ends at the path, query or fragment, and is at most 300 bytes.
        stop = stop.max(start);
        let limit = (start + 300).min(b.len());
        while stop < limit && !b.get(stop).is_some_and(is_stop) {
            stop += 1;
        }
        let end = stop.min(limit);
        while at_scanned < end {
            if b.get(at_scanned) == Some(&b'@') {
                last_at = Some(at_scanned);
            }
            at_scanned += 1;
        }
        // The host follows the authority's last `@`.
        let from = last_at.filter(|&x| x >= start).map_or(start, |x| x + 1);
        let rest = l.get(from..end).unwrap_or_default();
        if rest.starts_with("[::ffff:") {
            return true;
        }
        let host = rest.split_first_any(b"/?#:").unwrap_or_default();
        if host.chars().any(|c| ('\u{2460}'..='\u{24ff}').contains(&c)) {
            return true;
        }
        let hex = host
            .strip_prefix("0x")
            .is_some_and(|h| h.len() >= 6 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        let decimal = host.len() >= 8 && host.bytes().all(|b| b.is_ascii_digit());
        let mut parts = 0;
        let mut leading_zero = false;
        let mut numeric = true;
        for x in host.split_char('.') {
            parts += 1;
            numeric &= !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
            leading_zero |= x.len() > 1 && x.starts_with('0');
        }
        let octal = parts == 4 && numeric && leading_zero;
        hex || decimal || octal
    })
}

/// Template expressions: `{{7*7}}`, `{{''.__class__}}`, `${7*7}`, `#{7*7}`, `<%= 7*7 %>`.
#[cfg(test)]
fn template_injection(l: &str) -> bool {
    template_injection_in(l, &crate::extract::ByteSet::of(l.as_bytes()))
}

/// [`template_injection`] when the set of `l`'s bytes is known (the input's): an opener with
/// a byte the set lacks is not searched for (each opener's search reads the whole value).
fn template_injection_in(l: &str, set: &crate::extract::ByteSet) -> bool {
    let inner_code = |open: &str, inner: &str| {
        let t = inner.trim();
        !t.is_empty()
            && (t.has_any(b"*[+") && !(open == "${" && shell_expansion(t))
                || call_outside_filters(t)
                || t.has_lit("__")
                || starts_with_object(t))
    };
    let pairs: [(&str, &str); 6] = [
        ("{{", "}}"),
        ("${", "}"),
        ("#{", "}"),
        // Thymeleaf's selection expression (`*{7*7}`, `*{T(java.lang.Runtime)...}`); a CSS
        // universal rule (`*{margin:0}`) holds no code.
        ("*{", "}"),
        ("<%", "%>"),
        ("{%", "%}"),
    ];
    // Openers that share a closer (`{{{{ ... }}`) nest: the first one's inner text contains
    // every later one's. Searching the closer and testing `inner_code` again for each of them
    // was quadratic; instead the closer is found once per group and the containment tests
    // (monotone: true for a later inner text implies true for the first) run once on the
    // widest inner text, while the later openers only get the prefix tests.
    // An opener without a closer after it ends the pair's walk: no later opener has one
    // either (a `<%<%<%` run was a `lit_offsets` step per opener after the search failed).
    pairs.iter().any(|(open, close)| {
        if !set.has_all(open.as_bytes()) {
            return false;
        }
        let mut closer: Option<usize> = None; // absolute position of the last closer found
        let mut group_start = usize::MAX;
        for p in super::lit_offsets(l, open) {
            let from = p + open.len();
            let e = match closer {
                Some(c) if c >= from => c,
                _ => {
                    let found = l.get(from..).and_then(|r| r.find(close)).map(|e| e + from);
                    closer = found;
                    group_start = p;
                    match found {
                        Some(c) => c,
                        None => return false,
                    }
                }
            };
            let raw_inner = l.get(from..e).unwrap_or_default();
            let inner = raw_inner.trim_start_set(b"=-");
            // `<% code %>` runs code; `<%= name %>` only prints a variable unless the
            // expression itself is code.
            let scriptlet = *open == "<%" && !raw_inner.starts_with('=');
            let code = if p == group_start {
                (scriptlet && !inner.trim().is_empty()) || inner_code(open, inner)
            } else {
                inner_prefix_code(inner)
            };
            if code {
                return true;
            }
        }
        false
    })
}

/// Thymeleaf's preprocessing, `__${...}__` (or `*{`, `#{`, `@{`, `~{`), next to a fragment
/// selector `::`: the expression is evaluated first and its result parsed as a template
/// name, which is how a view name taken from the request runs code (`__${7*7}__::.x`,
/// `home::__${param.x}__`). The first opener decides: a closer `}__` after a later opener is
/// after the first one too (linear). A `__${name}__` placeholder without `::` is left to
/// the expression's own test.
fn thymeleaf_preprocessing(l: &str) -> bool {
    let b = l.as_bytes();
    let Some(p) = super::lit_offsets(l, "__").find(|&p| {
        matches!(b.get(p + 2), Some(b'$' | b'*' | b'#' | b'@' | b'~'))
            && b.get(p + 3) == Some(&b'{')
    }) else {
        return false;
    };
    let fragment_before = l.get(..p).unwrap_or_default().trim_end().ends_with("::");
    let Some(c) = super::find_bytes(b, b"}__", p + 4) else {
        return false;
    };
    fragment_before
        || l.get(c + 3..)
            .unwrap_or_default()
            .trim_start()
            .starts_with("::")
}

/// A shell parameter expansion, the text inside `${...}` (POSIX and Bash): an optional `#`
/// (length) or `!` (indirection), a variable name (a letter or `_` first), an optional
/// array subscript (`[@]`, `[*]`, `[0]`, `[$i]`, `[i+1]`), then nothing or an operator and
/// its word: `:-` `:=` `:+` `:?` `-` `=` `+` `?` (defaults), `#` `##` `%` `%%` (trimming,
/// whose patterns are globs: `${f%.*}`, `${p##*/}`), `/` `//` (replacement), `^` `,` (case),
/// `:` (slice), `@` (transform). `${#files[@]}`, `${name%%.*}`, `${v:+--flag}` are scripts,
/// not template code. A word that holds a call, another expression opener or `__` is not
/// taken as one (`${a:T(java.lang.Runtime)...}`, `${a:-${7*7}}` stay template code; a
/// command substitution in a word is the shell detector's), and neither is arithmetic on a
/// number (`${7*7}`): no name starts with a digit.
fn shell_expansion(t: &str) -> bool {
    let b = t.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'#' | b'!')));
    let name_start = i;
    if !b
        .get(i)
        .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
    {
        return false;
    }
    while b
        .get(i)
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
    {
        i += 1;
    }
    if i == name_start {
        return false;
    }
    if b.get(i) == Some(&b'[') {
        let sub = b.get(i + 1..).unwrap_or_default();
        let Some(len) = sub.iter().position(|&c| c == b']') else {
            return false;
        };
        let inside = sub.get(..len).unwrap_or_default();
        if inside.is_empty()
            || !inside.iter().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, b'_' | b'@' | b'*' | b'$' | b'+' | b'-')
            })
        {
            return false;
        }
        i += len + 2;
    }
    let Some(&op) = b.get(i) else {
        return true;
    };
    let word = b.get(i + 1..).unwrap_or_default();
    matches!(
        op,
        b':' | b'-' | b'=' | b'+' | b'?' | b'#' | b'%' | b'/' | b'^' | b',' | b'@'
    ) && !word.has_byte(b'(')
        && !word
            .windows(2)
            .any(|w| matches!(w, b"${" | b"#{" | b"{{" | b"__"))
}

/// A `(` in a template expression that is not the argument list of an output filter
/// (`{{ price|round(2) }}`, `{{ items|join(', ') }}` format a value; `{{ self.__init__() }}`,
/// `{{ cycler.__init__.__globals__.os.popen('id') }}` call code). Filters that take a
/// callable or build names from character codes (`map`, `filter`, `reduce`, `sort`,
/// `apply`, `attr`, `format`, Twig's `registerUndefinedFilterCallback` gadgets) count as calls.
fn call_outside_filters(t: &str) -> bool {
    super::byte_offsets(t, b'(').any(|p| {
        let head = t.get(..p).unwrap_or_default().trim_end_set(b" ");
        let name_start = head
            .bytes()
            .rposition(|c| !(c.is_ascii_alphanumeric() || c == b'_'))
            .map_or(0, |q| q + 1);
        let name = head.get(name_start..).unwrap_or_default();
        let pipe = head
            .get(..name_start)
            .unwrap_or_default()
            .trim_end_set(b" ")
            .ends_with('|');
        !(pipe
            && !name.is_empty()
            && !matches!(
                name,
                "map" | "filter" | "reduce" | "sort" | "apply" | "attr" | "format" | "call"
            ))
    })
}

/// The prefix tests of `inner_code` (`self`, `config`...): not monotone in the inner text, so
/// they run for every opener, on a bounded prefix.
fn inner_prefix_code(inner: &str) -> bool {
    starts_with_object(inner.trim_start())
}

/// The expression starts with one of [`TEMPLATE_OBJECTS`] as a whole name (`{{ config }}`,
/// `{{self.__init__}}`), not as the start of a longer one (`{{ requestId }}`,
/// `{{ selfie_url }}`, `{{ settingsUrl }}` are the application's own variables).
fn starts_with_object(t: &str) -> bool {
    TEMPLATE_OBJECTS.iter().any(|w| {
        t.strip_prefix(w).is_some_and(|rest| {
            !rest
                .bytes()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
        })
    })
}

/// Objects template engines expose (`{{config}}`, `{{self.__init__}}`). Jinja's `range` is
/// not one: it is harmful only called or through `__` attributes (both counted), and
/// `{{ range .Items }}` is Go's (and Helm's) loop.
const TEMPLATE_OBJECTS: &[&str] = &[
    "config",
    "self",
    "request",
    "settings",
    "constructor",
    "lipsum",
    "cycler",
    "joiner",
    "namespace",
];

/// `while(true)`, `while(!0)`, `for(;;)`: loops that never end, a cheap DoS in eval'd code.
fn endless_loop(l: &str) -> bool {
    let c: String = l.without_whitespace();
    c.has_lit("for(;;)")
        || c.match_indices("while(").any(|(p, _)| {
            let rest = c.get(p + 6..).unwrap_or_default();
            // Constant conditions are short: look for the `)` in the next 16 bytes only.
            let near = rest.as_bytes().get(..16).unwrap_or(rest.as_bytes());
            near.iter().position(|&b| b == b')').is_some_and(|e| {
                let cond = rest.get(..e).unwrap_or_default().trim_start_set(b"!-+");
                matches!(
                    cond,
                    "true"
                        | "1"
                        | "false"
                        | "0"
                        | "infinity"
                        | "\"\""
                        | "''"
                        | "[]"
                        | "{}"
                        | "!0"
                        | "!1"
                        // Truthy or falsy constants: always the same answer.
                        | "``"
                        | "null"
                        | "undefined"
                        | "nan"
                        | "this"
                        | "newdate"
                        | "newobject"
                        | "string"
                        | "object"
                        | "array"
                        | "number"
                        | "boolean"
                        | "date"
                        | "window"
                        | "self"
                        | "globalthis"
                ) || cond.bytes().all(|b| b.is_ascii_digit()) && !cond.is_empty()
                    || cond.starts_with('!') && cond.len() <= 8
                    || cond == "\"\""
                    || cond.is_empty()
            })
        })
}

fn ruby_injection(l: &str) -> bool {
    // As for Node.js: in prose a name is documentation unless its word calls it with an
    // argument (`Run commands with a nicer API than child_process.spawn()`).
    let prose = std::cell::OnceCell::new();
    let prose = || *prose.get_or_init(|| super::lfi::prose(l));
    let set = crate::extract::ByteSet::of(l.as_bytes());
    [
        "process.spawn",
        "kernel.exec",
        "kernel.system",
        "kernel.spawn",
        "io.popen",
        "open3.",
        "%x{",
        "instance_eval",
        "class_eval",
        "const_get",
    ]
    .iter()
    .filter(|m| set.has_all(m.as_bytes()))
    .any(|m| {
        super::lit_offsets(l, m)
            .any(|p| !prose() || call_with_argument(word_around(l, p)) || m.ends_with('{'))
    }) || erb_backticks(l)
}

/// `<%= `id` %>`: a Ruby backtick command inside an ERB tag (bounded look-ahead per tag).
fn erb_backticks(l: &str) -> bool {
    let b = l.as_bytes();
    // A tag's code runs from its `<%` to the first `%>`, at most 256 bytes; it must hold two
    // backticks with something between the first two. Openers come in order, and so do the
    // first `%>` and the first backticks after each: forward-only cursors find them, and the
    // text between two backticks is judged once however many tags share it (a run of `<%`
    // used to search 256 bytes twice per opener).
    let find_from = |from: usize, needle: &[u8]| super::find_bytes(b, needle, from);
    let mut close: Option<Option<usize>> = None; // first `%>` at or after the last asked
    let mut tick: Option<Option<usize>> = None; // first backtick at or after the last asked
                                                // (first backtick, the next one, whether text between them is more than space)
    let mut judged: Option<(usize, Option<usize>, bool)> = None;
    // No backtick after an opener: none after any later one (a `<%<%` run ends the walk
    // there instead of a `lit_offsets` step per opener).
    for p in super::lit_offsets(l, "<%") {
        let mut end = (p + 258).min(l.len());
        while !l.is_char_boundary(end) {
            end -= 1;
        }
        let from = p + 2;
        let c = match close {
            Some(Some(c)) if c >= from => Some(c),
            Some(None) => None,
            _ => find_from(from, b"%>"),
        };
        close = Some(c);
        let code_end = c.filter(|&c| c + 2 <= end).unwrap_or(end);
        let t1 = match tick {
            Some(Some(t)) if t >= from => Some(t),
            Some(None) => None,
            _ => find_from(from, b"`"),
        };
        tick = Some(t1);
        let Some(t1) = t1 else {
            return false;
        };
        if t1 >= code_end {
            continue;
        }
        let (t2, filled) = match judged {
            Some((t, t2, filled)) if t == t1 => (t2, filled),
            _ => {
                let t2 = find_from(t1 + 1, b"`");
                let filled =
                    t2.is_some_and(|t2| l.get(t1 + 1..t2).is_some_and(|i| !i.trim().is_empty()));
                judged = Some((t1, t2, filled));
                (t2, filled)
            }
        };
        if filled && t2.is_some_and(|t2| t2 < code_end) {
            return true;
        }
    }
    false
}

fn ssrf(l: &str) -> bool {
    // Borrowed slices, counted in bytes: a long value without `/` (a 4 KiB window of a
    // hostile body) is its own "host", and was copied twice per window.
    // `url`: whether `s` holds `://` (asked once: three searches of every 4 KiB window).
    // `rfc`: the authority ends at the first `/`, `?` or `#` and the host follows its last
    // `@` (RFC 3986: `http://169.254.169.254#@x.example/` goes to the first host);
    // otherwise the host follows the last `@` of the whole value
    // (`http://x.example#@169.254.169.254/`, as lenient parsers read it). Where URL parsers
    // disagree the request is an attack either way, so both readings are judged.
    fn host_part(s: &str, url: bool, rfc: bool) -> &str {
        let s = if url {
            s.find_lit("://")
                .map_or(s, |p| s.get(p + 3..).unwrap_or_default())
        } else {
            s
        };
        let s = if rfc {
            s.split_first_any(b"/?#").unwrap_or_default()
        } else {
            s
        };
        let s = s.rsplit_once_char('@').map_or(s, |(_, r)| r);
        s.split(['/', '?', '#'])
            .next()
            .unwrap_or_default()
            .trim_start_set(b"[")
            .trim_end_set(b"]")
    }
    let url = l.has_lit("://");
    let t = l.trim();
    let lenient = host_part(t, url, false);
    let rfc = host_part(t, url, true);
    ssrf_host(t, url, lenient) || rfc != lenient && ssrf_host(t, url, rfc)
}

/// [`ssrf`] for one reading of the value's host.
#[inline(never)]
fn ssrf_host(t: &str, url: bool, host: &str) -> bool {
    // The value is the URL (`http://localhost:6379/`), as a fetch target is; a loopback URL
    // inside a sentence ("open http://localhost:3000 in your browser") is documentation.
    // Metadata addresses count wherever they stand.
    let l = t;
    let whole_url =
        url && t.find_lit("://").is_some_and(|p| {
            t.get(..p).is_some_and(|scheme| {
                scheme
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
            })
        }) && !host.bytes().any(|c| c.is_ascii_whitespace());
    let host_no_port = if host.bytes().filter(|&c| c == b':').count() == 1 {
        host.split_char(':').next().unwrap_or_default()
    } else {
        host
    };
    (url && (METADATA.iter().any(|m| host.has_lit(m)) || link_local(host_no_port)))
        // A loopback address in any notation (`http://127.1/`, `http://0/`,
        // `http://017700000001/`) is `localhost` spelled otherwise: counted where `localhost`
        // is, as the value itself.
        || (whole_url && inet_aton(host_no_port).is_some_and(|a| a >> 24 == 127 || a == 0))
        || METADATA
            .iter()
            .filter(|m| m.contains(char::is_alphabetic))
            .any(|m| host_no_port == *m)
        || (INTERNAL_HOSTS.iter().any(|h| *h == host_no_port) || loopback_alias(host_no_port))
            && (if url { whole_url } else { l.has_char('/') })
}

/// A URL host in IPv4's link-local block 169.254.0.0/16, where cloud metadata services
/// answer, in any notation a resolver accepts (`inet_aton`: `2852039166`, `0xa9fea9fe`,
/// `0251.0376.0251.0376`, `169.254.43518`) or as an IPv4-mapped IPv6 address
/// (`::ffff:a9fe:a9fe`). The dotted-decimal spellings of the known addresses are in
/// [`METADATA`] already; this catches the rest of the block and the other spellings.
fn link_local(host: &str) -> bool {
    if host.has_char(':') {
        return host
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .and_then(|a| a.to_ipv4_mapped())
            .is_some_and(|a| a.octets()[..2] == [169, 254]);
    }
    inet_aton(host).is_some_and(|a| a >> 16 == 0xA9FE)
}

/// IPv4 in the notations of `inet_aton`: one to four parts, each decimal, `0x` hex or
/// `0`-led octal; the last part fills the remaining bytes.
fn inet_aton(host: &str) -> Option<u32> {
    let host = host.strip_suffix('.').unwrap_or(host);
    let mut parts = [0u64; 4];
    let mut n = 0;
    for part in host.split_char('.') {
        let slot = parts.get_mut(n)?;
        n += 1;
        let (digits, radix) = if let Some(h) = part.strip_prefix("0x") {
            (h, 16)
        } else if part.len() > 1 && part.starts_with('0') {
            (part.get(1..).unwrap_or_default(), 8)
        } else {
            (part, 10)
        };
        if digits.is_empty() && radix != 16 || digits.len() > 11 {
            return None;
        }
        *slot = if digits.is_empty() {
            0
        } else {
            u64::from_str_radix(digits, radix).ok()?
        };
    }
    let [a, b, c, d] = parts;
    let (value, max_last) = match n {
        1 => (a, u64::from(u32::MAX)),
        2 if a <= 255 => ((a << 24) | b, 0xFF_FFFF),
        3 if a <= 255 && b <= 255 => ((a << 24) | (b << 16) | c, 0xFFFF),
        4 if a <= 255 && b <= 255 && c <= 255 => ((a << 24) | (b << 16) | (c << 8) | d, 0xFF),
        _ => return None,
    };
    let last = [a, b, c, d].get(n - 1).copied()?;
    if last > max_last {
        return None;
    }
    u32::try_from(value).ok()
}

/// `__name__`: two underscores, an identifier, two underscores (or, for JavaScript's
/// `__definegetter__`/`__proto__` family, a name after two underscores ending in two).
fn dunder_name(l: &str) -> bool {
    super::lit_offsets(l, "__").any(|p| {
        let rest = l.get(p + 2..).unwrap_or_default();
        let n = rest
            .bytes()
            .take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            .count();
        n >= 2 && rest.get(n..).is_some_and(|r| r.starts_with("__"))
    })
}

/// Parameter names that carry a URL the browser is redirected to (`redirect_uri`,
/// `returnUrl`, `return_to`), which the server does not fetch.
fn browser_redirect_name(name: &str) -> bool {
    let n = name.ascii_lower();
    n.has_lit("redirect") || n.has_lit("return")
}

/// A cloud metadata address as the URL's host.
fn metadata_target(l: &str) -> bool {
    METADATA.iter().any(|m| l.has_lit(m))
}

/// A URL anywhere in `l` whose host is a cloud metadata address ([`METADATA`], or any
/// address of the link-local block in any notation, [`link_local`]):
/// `+http://169.254.169.254/latest/meta-data/` in a `User-Agent` comment,
/// `http://metadata.google.internal/...` as a `Referer`. No browser or crawler comes from
/// such a page, and applications fetch these headers' URLs (link previews, pingbacks,
/// analytics that resolve the referrer): an SSRF probe, wherever it stands. Each host is
/// read to its first delimiter, at most 256 bytes, once per `://`: linear.
fn metadata_url(l: &str) -> bool {
    super::lit_offsets(l, "://").any(|p| {
        let rest = l.get(p + 3..).unwrap_or_default();
        let end = rest
            .bytes()
            .take(256)
            .position(|c| {
                c.is_ascii_whitespace()
                    || matches!(c, b'/' | b'?' | b'#' | b')' | b';' | b',' | b'"' | b'\'')
            })
            .unwrap_or(rest.len().min(256));
        let authority = rest.get(..end).unwrap_or_default();
        let host = authority
            .rsplit_once_char('@')
            .map_or(authority, |(_, h)| h);
        let host = host.trim_start_set(b"[");
        let host = match host.split_once_char(']') {
            Some((h, _)) => h,
            None if host.bytes().filter(|&c| c == b':').count() == 1 => {
                host.split_char(':').next().unwrap_or_default()
            }
            None => host,
        };
        METADATA.iter().any(|m| host.has_lit(m)) || link_local(host)
    })
}

/// `<!ENTITY name SYSTEM "...">`, `<!ENTITY % name PUBLIC ...>`: an XML external entity
/// declaration, which makes a parser read a file or fetch a URL (XXE).
fn external_entity(l: &str) -> bool {
    super::lit_offsets(l, "<!entity").any(|p| {
        // Declarations are short; a bounded look-ahead keeps `<!entity<!entity...` linear.
        let mut end = (p + 104).min(l.len());
        while !l.is_char_boundary(end) {
            end -= 1;
        }
        let decl = l.get(p + 8..end).unwrap_or_default();
        let mut words = decl.split_ascii_whitespace().take(3);
        let mut w = words.next();
        if w == Some("%") {
            w = words.next();
        }
        w.is_some_and(|n| !n.is_empty())
            && words.next().is_some_and(|k| k == "system" || k == "public")
    })
}

/// An XSLT instruction with an attribute (`<xsl:value-of select="system-property('x')"/>`,
/// `<xsl:include href="http://...">`): markup a stylesheet-driven server runs (XSLT
/// injection), not a tag named in prose (`the <xsl:value-of> element`). Linear: a bounded
/// look after each `<xsl:`.
fn xslt_instruction(l: &str) -> bool {
    let b = l.as_bytes();
    super::lit_offsets(l, "<xsl:").any(|p| {
        let rest = b.get(p + 5..).unwrap_or_default();
        let name = super::head(rest, 24)
            .iter()
            .take_while(|c| c.is_ascii_lowercase() || **c == b'-')
            .count();
        let after = rest.get(name..).unwrap_or_default();
        let space = after.iter().take_while(|c| c.is_ascii_whitespace()).count();
        let attr = super::head(after.get(space..).unwrap_or_default(), 24)
            .iter()
            .take_while(|c| c.is_ascii_lowercase() || **c == b'-')
            .count();
        name > 0 && space > 0 && attr > 0 && after.get(space + attr) == Some(&b'=')
    })
}

/// A server-side include directive (`<!--#exec cmd="id" -->`, `<!--#include
/// virtual="/etc/passwd" -->`, `<!--#echo var="DOCUMENT_ROOT" -->`): Apache's mod_include,
/// nginx's `ssi on` and IIS run it when a page that stores or reflects the value is served
/// with includes on. An HTML comment opening with `#` and the name of a directive those
/// servers know, then a space or the comment's end; `<!-- #region -->`, `<!--#1-->` and
/// `<!--#endregion-->` are comments. Linear: a bounded look after each `<!--#`.
fn ssi_directive(l: &str) -> bool {
    super::lit_offsets(l, "<!--#").any(|p| {
        let rest = l.as_bytes().get(p + 5..).unwrap_or_default();
        let n = super::head(rest, 9)
            .iter()
            .take_while(|c| c.is_ascii_lowercase())
            .count();
        matches!(
            rest.get(..n).unwrap_or_default(),
            b"exec"
                | b"include"
                | b"echo"
                | b"printenv"
                | b"config"
                | b"set"
                | b"fsize"
                | b"flastmod"
                | b"if"
                | b"elif"
        ) && rest
            .get(n)
            .is_some_and(|c| c.is_ascii_whitespace() || *c == b'-')
    })
}

/// A .NET `BinaryFormatter` stream in base64 at the start of a value (`AAEAAAD/////`: the
/// serialization header record, root id 1, header id -1; `_` for `/` in the URL-safe
/// alphabet): the payload ysoserial.net builds for `BinaryFormatter`, `LosFormatter` and
/// `ObjectStateFormatter` sinks (cookies, hidden fields, a `__VIEWSTATE` without a MAC).
/// ASP.NET's own ViewState starts `/wE` and passes. Case matters: read on the value as sent.
fn dotnet_serialized(v: &str) -> bool {
    let t = v.trim_start().as_bytes();
    t.starts_with(b"AAEAAAD/////") || t.starts_with(b"AAEAAAD_____")
}

/// A YAML tag that makes the loader build a native object or call a function
/// (`!!python/object/apply:os.system`, `!ruby/object:Gem::Installer`, `!!js/function`):
/// deserialization gadgets of PyYAML, Psych and js-yaml. YAML's own tags (`!!str`, `!!map`)
/// name data types and pass. Java's (`!!javax.script...`) are the java detector's.
fn yaml_object_tag(l: &str) -> bool {
    super::byte_offsets(l, b'!').any(|p| {
        let before = p.checked_sub(1).and_then(|i| l.as_bytes().get(i)).copied();
        let rest = l.get(p + 1..).unwrap_or_default();
        // A tag starts a node: after the start, a space, `[`, `{`, `,`, `:` or `-`.
        before.is_none_or(|c| {
            c.is_ascii_whitespace() || matches!(c, b'[' | b'{' | b',' | b':' | b'-' | b'"' | b'\'')
        }) && [
            "!python/object",
            "!python/name:",
            "!python/module:",
            "ruby/object:",
            "ruby/hash:",
            "ruby/struct:",
            "!js/function",
            "!js/eval",
        ]
        .iter()
        .any(|t| rest.starts_with(t))
    })
}

fn scan_input(input: &Input, out: &mut Findings) {
    let l = input.lower.as_str();
    let hit = |out: &mut Findings, rule| out.hit(input, CAT, rule, Severity::Critical, 1);
    if node_injection(l) || base64_marker(&input.value) {
        hit(out, "generic.nodejs");
    }
    let set = &input.bytes;
    if (set.has(b'_') || set.has_all(b"constructor")) && prototype_pollution(l) {
        hit(out, "generic.prototype-pollution");
    }
    if (set.has(b'{') || set.has(b'%')) && template_injection_in(l, set)
        || set.has(b'{') && set.has(b':') && set.has(b'_') && thymeleaf_preprocessing(l)
    {
        hit(out, "generic.template-injection");
    }
    if input.lower_has("while") && endless_loop(l)
        || input.lower_has("for") && input.lower_has(";;") && endless_loop(l)
    {
        hit(out, "generic.endless-loop");
    }
    if ruby_injection(l) {
        hit(out, "generic.ruby");
    }
    if set.has(b'(') && set.has(b'.') && process_api_call(l) {
        hit(out, "generic.process-api");
    }
    // A Referer or Origin names the page the browser came from (`http://localhost:3000/`
    // in development): where a client was is not where it asks the server to go.
    let origin_header = input.location.source == Source::Header
        && matches!(input.location.name.as_str(), "referer" | "origin");
    // Likewise a parameter naming where to send the *browser* next (`redirect_uri`,
    // `return_to`: OAuth clients register `http://localhost:8080/callback`); a metadata
    // address still counts there.
    let browser_target =
        matches!(input.location.source, Source::Arg) && browser_redirect_name(&input.location.name);
    let ssrf_here = if origin_header {
        set.has(b':') && metadata_url(l)
    } else {
        (!browser_target || metadata_target(l)) && ssrf(l)
    };
    if ssrf_here {
        hit(out, "generic.ssrf");
    }
    if set.has(b'<') && external_entity(l) {
        hit(out, "generic.xxe");
    }
    if set.has(b'<') && xslt_instruction(l) {
        hit(out, "generic.xslt");
    }
    if set.has(b'!') && yaml_object_tag(l) {
        hit(out, "generic.yaml-object");
    }
    if input.may_contain("<!--#") && ssi_directive(l) {
        hit(out, "generic.ssi");
    }
    if input.has_upper && (set.has(b'/') || set.has(b'_')) && dotnet_serialized(&input.value) {
        hit(out, "generic.dotnet-serialized");
    }
    // Paranoia 2: Perl code interpolated into a string (`@{[ system 'id' ]}`), and URLs whose
    // host is an IP address in an obfuscated notation (decimal, octal, hex, circled digits).
    // Paranoia 3: any template expression, plain variables included (`{{name}}`, `${x}`).
    if out.wants(CAT, 3) && any_template(l) {
        out.hit(
            input,
            CAT,
            "generic.template-expression",
            Severity::Critical,
            3,
        );
    }
    // Paranoia 4: special names of Python and JavaScript objects (`__init__`, `__class__`,
    // `__defineGetter__`), the handles of sandbox escapes and prototype pollution.
    if out.wants(CAT, 4) && set.has(b'_') && dunder_name(l) {
        out.hit(input, CAT, "generic.dunder-name", Severity::Critical, 4);
    }
    if out.wants(CAT, 2) && input.bytes.has(b'@') && perl_interpolation(l) {
        out.hit(
            input,
            CAT,
            "generic.perl-interpolation",
            Severity::Critical,
            2,
        );
    }
    if out.wants(CAT, 2) && input.bytes.has(b':') && obfuscated_ip_url(l) {
        out.hit(
            input,
            CAT,
            "generic.ssrf-obfuscated-ip",
            Severity::Critical,
            2,
        );
    }
    if l.trim_start().starts_with("data:") && !l.trim_start().starts_with("data://") {
        // A raster image, audio, video or font (`data:image/png;base64,...`: avatars and
        // attachments in JSON APIs) can carry neither script nor markup: paranoia 2. Every
        // other type (`text/html`, `image/svg+xml`, `text/plain`, none) counts at 1.
        let media = l.trim_start().get(5..).unwrap_or_default();
        let inert = ["image/", "audio/", "video/", "font/"]
            .iter()
            .any(|t| media.starts_with(t))
            && !media.starts_with("image/svg");
        out.hit(
            input,
            CAT,
            "generic.data-uri",
            Severity::Critical,
            if inert { 2 } else { 1 },
        );
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
        if input.location.source == Source::Header && input.location.name == "user-agent" {
            // Only a metadata URL counts in a `User-Agent` (a crawler's `+http://...` page
            // is a public site; the rest of this family reads parameters).
            if input.bytes.has(b':') && metadata_url(&input.lower) {
                out.hit(input, CAT, "generic.ssrf", Severity::Critical, 1);
            }
            continue;
        }
        scan_input(input, out);
    }
    // An XML body's document type declaration is markup, not a value the extractor yields:
    // its entity declarations are read from the body itself (`<!DOCTYPE r [<!ENTITY x
    // SYSTEM "http://...">]>`), one short window per `<!`, so the work stays linear. ASCII
    // lowercasing: the keywords are ASCII, and Unicode's `to_lowercase` was the module's only
    // use of the case tables (~16 KB of code and data; issue 13).
    if p.body_kind == BodyKind::Xml && !out.fired("generic.xxe") {
        let body = p.request.body.unwrap_or_default();
        let xxe = body.windows(2).enumerate().any(|(i, w)| {
            w == b"<!"
                && body
                    .get(i..(i + 112).min(body.len()))
                    .is_some_and(|d| external_entity(&String::from_utf8_lossy(d).ascii_lower()))
        });
        if xxe {
            out.hit_request(CAT, "generic.xxe", Severity::Critical, 1, Source::Body, "");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `base64_marker` as it was (an alphabet pass, then a decoding pass), against the
    /// one-pass table version, on encoded markers, near misses and random tokens.
    /// The screen of [`base64_marker`] keeps every token that decodes to a `(` or `_`: generated
    /// tokens over both alphabets, `=` and a few other bytes, of every length and alignment.
    #[test]
    fn marker_byte_screen_keeps_every_paren_and_underscore() {
        let alphabet =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_=KXCSiyFVlgh89of.";
        let mut state: u64 = 0x0dd_ba11_cafe_f00d;
        let (mut kept, mut out) = (0, 0);
        for round in 0..300_000 {
            state = crate::detect::xorshift(state);
            let len = 1 + (state % 24) as usize;
            let mut t = Vec::new();
            for k in 0..len {
                let r = state.rotate_left((k * 7) as u32) as usize;
                // Mostly digits, `=` and other bytes now and then.
                let n = if round % 4 == 0 { alphabet.len() } else { 64 };
                t.push(alphabet[r % n]);
            }
            let Ok(t) = std::str::from_utf8(&t) else {
                continue;
            };
            let valid = t.bytes().all(|b| BASE64[usize::from(b)] != INVALID);
            let mut marker_byte = false;
            each_base64_byte(t, |c| marker_byte |= c == b'(' || c == b'_');
            if valid && marker_byte {
                kept += 1;
                assert!(may_decode_to_marker_byte(t.as_bytes()), "{t:?}");
            } else if !may_decode_to_marker_byte(t.as_bytes()) {
                out += 1;
            }
        }
        // Both sides of the screen are reached.
        assert!(kept > 1_000 && out > 1_000, "{kept} {out}");
    }

    #[test]
    fn base64_marker_matches_the_two_pass_version() {
        let reference = |v: &str| {
            let t = v.trim();
            if t.len() < 12
                || t.len() > 8192
                || !t.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_')
                })
            {
                return false;
            }
            let mut marker_byte = false;
            each_base64_byte(t, |c| marker_byte |= c == b'(' || c == b'_');
            if !marker_byte {
                return false;
            }
            let s = String::from_utf8_lossy(&decode_base64(t)).ascii_lower();
            s.has_lit("d_func$$_")
                || s.has_lit("require(")
                || s.has_lit("child_process")
                || endless_loop(&s)
        };
        let mut cases: Vec<String> = [
            "XyQkTkRfRlVOQyQkXwo=",
            "eyJhbGciOiAiUlMyNTYifQ",
            "cmVxdWlyZSgnY2hpbGRfcHJvY2VzcycpIA==",
            "  cmVxdWlyZSgnY2hpbGRfcHJvY2VzcycpIA  ",
            "d2hpbGUodHJ1ZSl7fQ==",
            "value-3-abcdef",
            "\u{a0}XyQkTkRfRlVOQyQkXwo=",
            "XyQkTkRfRlVOQyQkXwo=\u{e9}",
            "XyQkTkRf.RlVOQyQkXwo=",
            "XyQkTkRfRlVOQyQkXwo=\u{b}",
            "\u{b}XyQkTkRfRlVOQyQkXwo=\u{85}",
            "\tcmVxdWlyZSgnY2hpbGRfcHJvY2VzcycpIA==\r\n",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Every marker encoded, in capitals, spaced, and cut by one byte (the screen of the
        // decoded bytes must let each through, and may reject the cut ones).
        let b64 = |b: &[u8]| {
            const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            let mut out = String::new();
            for chunk in b.chunks(3) {
                let n = chunk
                    .iter()
                    .enumerate()
                    .fold(0u32, |n, (i, &c)| n | u32::from(c) << (16 - 8 * i));
                for k in 0..=chunk.len() {
                    out.push(char::from(A[(n >> (18 - 6 * k) & 63) as usize]));
                }
            }
            out
        };
        for marker in [
            "_$$ND_FUNC$$_function(){}",
            "_$$\\u004eD_FUNC$$_",
            "var x = require('child_process')",
            "REQUIRE('fs')",
            "CHILD_PROCESS.exec",
            "for (;;) {}",
            "FOR(;;){}",
            "while ( true ) {}",
            "WHILE(1){}",
            "while(!0)",
            "while\u{a0}(true)",
        ] {
            for text in [marker.to_string(), format!("xx {marker} yy")] {
                let b = text.as_bytes();
                for cut in [b, &b[..b.len() - 1], &b[1..]] {
                    cases.push(b64(cut));
                    cases.push(format!(" {}=", b64(cut)));
                }
            }
        }
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ .(";
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for n in 0..4000 {
            let len = 8 + n % 40;
            let token: String = (0..len)
                .map(|_| {
                    seed = crate::detect::xorshift(seed);
                    // Mostly the base64 alphabet, now and then a byte outside it.
                    let k = (seed >> 9) as usize % alphabet.len();
                    char::from(alphabet[if n % 7 == 0 { k } else { k % 66 }])
                })
                .collect();
            cases.push(token);
        }
        for c in &cases {
            assert_eq!(base64_marker(c), reference(c), "{c:?}");
        }
        assert!(cases.iter().any(|c| base64_marker(c)));
    }

    /// `erb_backticks` and `obfuscated_ip_url` as they were (a look-ahead per opener or
    /// colon), kept to prove the forward-cursor versions give the same answers.
    fn obfuscated_ip_url_reference(l: &str) -> bool {
        let b = l.as_bytes();
        l.match_indices(':').any(|(p, _)| {
            // The scheme: up to 32 scheme characters before the colon (bounded: every colon
            // looks back at most that far and forward at most one authority).
            let scheme_len = b
                .get(p.saturating_sub(32)..p)
                .unwrap_or_default()
                .iter()
                .rev()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.' | b'_'))
                .count();
            let scheme = l.get(p - scheme_len..p).unwrap_or_default();
            if scheme.len() < 2 || !scheme.first_char().is_some_and(|c| c.is_ascii_alphabetic()) {
                return false;
            }
            let rest = l.get(p + 1..).unwrap_or_default().trim_start_set(b"/");
            // The authority ends at the path, query or fragment, and is at most 300 bytes.
            let end = rest
                .bytes()
                .take(300)
                .position(|c| matches!(c, b'/' | b'?' | b'#') || c.is_ascii_whitespace())
                .unwrap_or(rest.len().min(300));
            let rest = rest.get(..end).unwrap_or_default();
            let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
            if rest.starts_with("[::ffff:") {
                return true;
            }
            let host = rest.split(['/', '?', '#', ':']).next().unwrap_or_default();
            if host.chars().any(|c| ('\u{2460}'..='\u{24ff}').contains(&c)) {
                return true;
            }
            let hex = host
                .strip_prefix("0x")
                .is_some_and(|h| h.len() >= 6 && h.bytes().all(|b| b.is_ascii_hexdigit()));
            let decimal = host.len() >= 8 && host.bytes().all(|b| b.is_ascii_digit());
            let mut parts = 0;
            let mut leading_zero = false;
            let mut numeric = true;
            for x in host.split('.') {
                parts += 1;
                numeric &= !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
                leading_zero |= x.len() > 1 && x.starts_with('0');
            }
            let octal = parts == 4 && numeric && leading_zero;
            hex || decimal || octal
        })
    }
    /// [`template_injection`] before an opener without a closer ended its walk.
    fn template_injection_reference(l: &str) -> bool {
        let inner_code = |open: &str, inner: &str| {
            let t = inner.trim();
            !t.is_empty()
                && (t.contains(['*', '[', '+']) && !(open == "${" && shell_expansion(t))
                    || call_outside_filters(t)
                    || t.has_lit("__")
                    || starts_with_object(t))
        };
        let pairs: [(&str, &str); 6] = [
            ("{{", "}}"),
            ("${", "}"),
            ("#{", "}"),
            ("*{", "}"),
            ("<%", "%>"),
            ("{%", "%}"),
        ];
        // Openers that share a closer (`{{{{ ... }}`) nest: the first one's inner text contains
        // every later one's. Searching the closer and testing `inner_code` again for each of them
        // was quadratic; instead the closer is found once per group and the containment tests
        // (monotone: true for a later inner text implies true for the first) run once on the
        // widest inner text, while the later openers only get the prefix tests.
        pairs.iter().any(|(open, close)| {
            let mut closer: Option<Option<usize>> = None; // (searched) absolute closer position
            let mut group_start = usize::MAX;
            crate::detect::lit_offsets(l, open).any(|p| {
                let from = p + open.len();
                let e = match closer {
                    Some(None) => return false, // no closer after an earlier opener: none here
                    Some(Some(c)) if c >= from => c,
                    _ => {
                        let found = l.get(from..).and_then(|r| r.find(close)).map(|e| e + from);
                        closer = Some(found);
                        group_start = p;
                        match found {
                            Some(c) => c,
                            None => return false,
                        }
                    }
                };
                let raw_inner = l.get(from..e).unwrap_or_default();
                let inner = raw_inner.trim_start_set(b"=-");
                // `<% code %>` runs code; `<%= name %>` only prints a variable unless the
                // expression itself is code.
                let scriptlet = *open == "<%" && !raw_inner.starts_with('=');
                if p == group_start {
                    (scriptlet && !inner.trim().is_empty()) || inner_code(open, inner)
                } else {
                    inner_prefix_code(inner)
                }
            })
        })
    }

    #[test]
    fn template_injection_matches_the_walk_over_every_opener() {
        let pieces = [
            "{{", "}}", "${", "}", "#{", "<%", "%>", "{%", "%}", "=", "-", " ", "7*7", "self",
            "config", "__", "x|join(", "(", ")", "id", "é", "FILL", "*{", "#arr[@]",
        ];
        let (mut hits, mut misses) = (0, 0);
        random_values(&pieces, 60_000, |l| {
            let got = template_injection(l);
            assert_eq!(got, template_injection_reference(l), "{l:?}");
            if got {
                hits += 1;
            } else {
                misses += 1;
            }
        });
        assert!(hits > 1_000 && misses > 1_000, "{hits} / {misses}");
        for (_, unit) in crate::hostile::GENERATORS {
            let l = unit.repeat(2000);
            assert_eq!(template_injection(&l), template_injection_reference(&l));
        }
    }

    fn erb_backticks_reference(l: &str) -> bool {
        l.match_indices("<%").any(|(p, _)| {
            let mut end = (p + 258).min(l.len());
            while !l.is_char_boundary(end) {
                end -= 1;
            }
            let tag = l.get(p + 2..end).unwrap_or_default();
            let code = tag.split("%>").next().unwrap_or_default();
            let mut ticks = code.split('`');
            ticks.next();
            ticks.next().is_some_and(|inner| !inner.trim().is_empty()) && ticks.next().is_some()
        })
    }

    /// Random strings from pieces that matter to both checks (and long runs of filler, so the
    /// 256- and 300-byte bounds fall inside, between and across pieces).
    fn random_values(pieces: &[&str], n: usize, mut f: impl FnMut(&str)) {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..n {
            let mut l = String::new();
            let mut next = || {
                seed = crate::detect::xorshift(seed);
                seed
            };
            let k = next() % 16;
            for _ in 0..k {
                let r = next() as usize;
                let piece = pieces[r % pieces.len()];
                if piece == "FILL" {
                    l.push_str(&"x".repeat((r >> 8) % 300));
                } else {
                    l.push_str(piece);
                }
            }
            f(&l);
        }
    }

    #[test]
    fn erb_backticks_matches_the_look_ahead_version() {
        let pieces = ["<%", "%>", "`", " ", "id", "%", ">", "<", "é", "FILL", "\n"];
        let mut hits = 0;
        random_values(&pieces, 30_000, |l| {
            assert_eq!(erb_backticks(l), erb_backticks_reference(l), "{l:?}");
            hits += usize::from(erb_backticks(l));
        });
        assert!(
            hits > 100,
            "{hits} positive cases: the comparison must see both answers"
        );
        assert!(erb_backticks("<%= `id` %>"));
        assert!(!erb_backticks("<%= ` ` %>"));
    }

    #[test]
    fn obfuscated_ip_url_matches_the_look_ahead_version() {
        let pieces = [
            "http:",
            "//",
            "/",
            "@",
            ":",
            "0x7f000001",
            "2852039166",
            "0177.0.0.1",
            "[::ffff:",
            "①",
            "ab",
            "?",
            "#",
            " ",
            "FILL",
            "1",
            ".",
        ];
        let mut hits = 0;
        random_values(&pieces, 30_000, |l| {
            assert_eq!(
                obfuscated_ip_url(l),
                obfuscated_ip_url_reference(l),
                "{l:?}"
            );
            hits += usize::from(obfuscated_ip_url(l));
        });
        assert!(
            hits > 100,
            "{hits} positive cases: the comparison must see both answers"
        );
    }

    #[test]
    fn function_literals_count_when_invoked_or_open() {
        for s in [
            "(function(){ alert(1) })()",
            "function(){x()}()",
            "(()=>{ x() })()",
            "function() {",
            "function()=>1",
            "_$$nd_func$$_function (){require('child_process').exec('id')}()",
        ] {
            assert!(invoked_function(s), "{s}");
        }
        for s in [
            "function() { return this; }",
            "const f = () => { return 1; };",
            "arr.map(() => { return 1; }).join(',')",
        ] {
            assert!(!invoked_function(s), "{s}");
        }
    }

    #[test]
    fn attacks() {
        assert!(node_injection("process.env"));
        assert!(node_injection("this.constructor.constructor"));
        // Code inside prose still counts when it calls with an argument.
        assert!(node_injection(
            "hello there from me, require('child_process').exec('id')"
        ));
        assert!(base64_marker("XyQkTkRfRlVOQyQkXwo="));
        assert!(prototype_pollution("__proto__[x]"));
        assert!(template_injection("{{7*7}}"));
        assert!(template_injection("{{''.__class__.__mro__}}"));
        assert!(template_injection("<%= 7*7 %>"));
        assert!(template_injection("#{7*7}"));
        assert!(endless_loop("while(!false)"));
        assert!(endless_loop("while(true);"));
        assert!(ruby_injection("process.spawn(\"id\")"));
        assert!(ssrf("http://169.254.169.254/latest"));
        assert!(ssrf("https://metadata.packet.net/userdata"));
        assert!(ssrf("gateway.docker.internal/"));
    }

    #[test]
    fn ordinary() {
        assert!(!node_injection("the process is simple"));
        // Package descriptions name the APIs they wrap.
        assert!(!node_injection(
            "reads variables from a .env file into process.env"
        ));
        assert!(!node_injection(
            "a tiny wrapper around child_process.exec() with promises"
        ));
        assert!(!node_injection(
            "node.js require() hook that compiles on the fly"
        ));
        assert!(!template_injection("{{name}}"));
        assert!(!template_injection("price ${amount}"));
        assert!(!endless_loop("while (foo) is bar."));
        assert!(!ssrf("my localhost notes"));
        assert!(any_template("{{name}}"));
        assert!(!any_template("{{name"));
        assert!(perl_interpolation("@{[system 'id']}"));
        assert!(perl_interpolation("@{ [ x ] }"));
        assert!(!perl_interpolation("user@{domain}"));
        assert!(obfuscated_ip_url("gopher://0x7f000001"));
        assert!(obfuscated_ip_url("http:2852039166"));
        assert!(obfuscated_ip_url("ssh://0177.00.00.01"));
        assert!(!obfuscated_ip_url("https://example.com:8080/x"));
        assert!(!obfuscated_ip_url("time 12:30:00"));
        assert!(!prototype_pollution(
            "provide __proto__ with some limitations"
        ));
        assert!(prototype_pollution("__proto__"));
        assert!(prototype_pollution("a.__proto__.admin=1"));
        assert!(!base64_marker("eyJhbGciOiAiUlMyNTYifQ"));
    }
}

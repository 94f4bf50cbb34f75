//! Java attacks (CRS 944): JNDI/log4j lookups (with nested-lookup obfuscation resolved the way
//! log4j resolves it), serialized-object markers, process-execution classes, deserialization
//! gadget classes, JSP uploads, OGNL and Spring class-loader manipulation.

use super::KeyedSets;
use super::{has_word, Findings, INJECTION};
use crate::detect::Lit as _;
use crate::detect::Outlined as _;
use crate::extract::ByteSet;
use crate::extract::Prepared;
use crate::model::{Category, Severity, Source};

const CAT: Category = Category::Java;

/// Gadget classes of the well-known deserialization chains (commons-collections, JDK XML
/// decoding, Xalan templates): their names in a request are never innocent.
pub(crate) const GADGETS: crate::detect::Words = crate::detect::Words::new(&[
    "clonetransformer",
    "forclosure",
    "instantiatefactory",
    "instantiatetransformer",
    "invokertransformer",
    "prototypeclonefactory",
    "prototypeserializationfactory",
    "whileclosure",
    "chainedtransformer",
    "constanttransformer",
    "lazymap",
    "transformedmap",
    "templatesimpl",
    "xmldecoder",
    "annotationinvocationhandler",
    "badattributevalueexpexception",
    "jdbcrowsetimpl",
]);

/// JDK packages whose classes are instantiated or invoked by deserialization and expression
/// language attacks (`java.lang.Runtime`, `java.io.ObjectInputStream`, `org.omg.CORBA`...).
const PACKAGES: crate::detect::Words = crate::detect::Words::new(&[
    "java.lang.",
    "java.io.",
    "java.net.",
    "java.nio.",
    "java.util.",
    "java.rmi.",
    "java.beans.",
    "java.security.",
    "java.sql.",
    "javax.naming.",
    "javax.management.",
    "javax.script.",
    "javax.xml.",
    "org.omg.corba",
    "sun.misc.",
    "sun.reflect.",
    "com.sun.jndi",
    "com.sun.rowset",
    "com.sun.org.apache",
    "jdk.internal.",
    // Framework internals that expression-language and deserialization payloads name
    // (Struts2/XWork OGNL, commons-collections and beanutils gadgets, Groovy, BeanShell,
    // Rhino, c3p0, Xalan).
    "com.opensymphony.xwork2",
    "org.apache.struts2.",
    "org.apache.commons.collections",
    "org.apache.commons.beanutils",
    "org.codehaus.groovy.runtime",
    "bsh.interpreter",
    "org.mozilla.javascript.",
    "com.mchange.v2.c3p0",
    "org.apache.xalan.",
    "ognl.ognlcontext",
]);

/// Lookup prefixes log4j understands; `${prefix:` in input is a lookup attempt.
const LOOKUPS: crate::detect::Words = crate::detect::Words::new(&[
    "jndi", "env", "sys", "lower", "upper", "ctx", "main", "date", "java", "base64", "bundle",
    "k8s", "docker", "log4j", "marker", "spring", "web", "map", "sd", "event", "",
]);

/// Whether `prefix` is one of [`LOOKUPS`]; outlined for its two callers.
#[inline(never)]
fn lookup_prefix(prefix: &str) -> bool {
    LOOKUPS.iter().any(|l| *l == prefix)
}

/// `org.apache.commons.Foo`, `com.example.App`: three or more dotted identifiers, the
/// package parts lowercase, the class capitalised.
fn qualified_class_name(v: &str) -> bool {
    v.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '$')))
        .any(|tok| {
            let parts: Vec<&str> = tok.split_char('.').collect();
            let Some((class, package)) = parts.split_last() else {
                return false;
            };
            package.len() >= 2
                && package.iter().all(|p| {
                    p.first_char().is_some_and(|c| c.is_ascii_lowercase())
                        && p.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                })
                && class.first_char().is_some_and(|c| c.is_ascii_uppercase())
                && class.bytes().any(|b| b.is_ascii_lowercase())
        })
}

/// The screens of [`GADGETS`] and [`PACKAGES`] ([`KeyedSets`]), built once (at configure
/// time, [`crate::detect::build_tables`]): a name whose bytes are not all in a value cannot
/// occur in it, and a value is asked only for the names filed under a byte it holds (a
/// test per key instead of a set test per name, for every value Java reads).
static GADGET_SETS: std::sync::OnceLock<(KeyedSets, KeyedSets)> = std::sync::OnceLock::new();

pub(crate) fn gadget_sets() -> &'static (KeyedSets, KeyedSets) {
    GADGET_SETS.get_or_init(|| {
        (
            KeyedSets::new(GADGETS.as_slice()),
            KeyedSets::new(PACKAGES.as_slice()),
        )
    })
}

/// `input.lower_contains_any(GADGETS)`, each name screened by its precomputed byte set.
fn gadget_in(input: &crate::extract::Input<'_>) -> bool {
    let names = GADGETS.as_slice();
    gadget_sets().0.any_candidate(&input.bytes, &mut |i| {
        names
            .get(i)
            .is_some_and(|g| super::find_bytes(input.lower.as_bytes(), g.as_bytes(), 0).is_some())
    })
}

pub(crate) fn scan(p: &Prepared<'_>, out: &mut Findings) {
    for input in p
        .inputs_of(INJECTION)
        .chain(p.inputs_of(const { crate::extract::source_mask(&[Source::Path]) }))
    {
        if out.decided() {
            break;
        }
        let l = input.lower.as_str();
        let has = |needle: &str| input.lower_has(needle);
        if input.location.source != Source::Filename {
            // The rules marked "keyed" each need one of [`KEYED`]'s bytes; a value with none
            // (`/healthz`, `/api/items/3`) is asked only the four others (gadget names,
            // serialization magic, Spring's context).
            let keyed = input.bytes.intersects(&KEYED);
            let exec = || {
                input.may_contain("runtime") && has_word(l, "runtime")
                    || has("processbuilder")
                    || has("getruntime")
            };
            // Keyed (`$`, `j`).
            if keyed && (has("${") || has("jndi:")) {
                if jndi(l) {
                    out.hit(input, CAT, "java.jndi-lookup", Severity::Critical, 1);
                }
                // Paranoia 1: a closed lookup of log4j's own syntax, which only log4j
                // resolves (`${sys:java.version}`, `${lower:j}`: exfiltration and the
                // pieces of an obfuscated `jndi`). `${env:NAME}` is PowerShell's syntax too,
                // so it counts at 1 only in a header, where Log4Shell probes go (logged
                // `User-Agent`, `X-Api-Version`...).
                if log4j_lookup(l, input.location.source == Source::Header) {
                    out.hit(input, CAT, "java.log4j-lookup", Severity::Critical, 1);
                }
                if out.wants(CAT, 2) && lookup(l) {
                    out.hit(input, CAT, "java.lookup", Severity::Critical, 2);
                }
            }
            // Keyed (`j`).
            if keyed && (has("java.lang.runtime") || has("java.lang.processbuilder")) {
                out.hit(input, CAT, "java.process-class", Severity::Critical, 1);
            }
            // Keyed (`j`): both need `java`.
            if keyed {
                let exec = exec();
                if exec && has("java.") {
                    out.hit(input, CAT, "java.process-reference", Severity::Critical, 1);
                } else if exec && input.may_contain("java") && has_word(l, "java") {
                    out.hit(input, CAT, "java.process-reference", Severity::Critical, 2);
                }
            }
            if gadget_in(input) {
                if exec() {
                    out.hit(input, CAT, "java.gadget-exec", Severity::Critical, 1);
                } else {
                    out.hit(input, CAT, "java.gadget", Severity::Critical, 2);
                }
            }
            // Keyed (`.`): every package name holds one, and so does a qualified class name.
            if keyed && jdk_class(l, &input.bytes) {
                out.hit(input, CAT, "java.jdk-class", Severity::Critical, 1);
            } else if keyed
                && out.wants(CAT, 3)
                && ["java.", "javax.", "sun.", "jdk."].iter().any(|p| {
                    input.may_contain(p)
                        && super::lit_offsets(l, p).any(|i| {
                            i == 0
                                || l.as_bytes()
                                    .get(i - 1)
                                    .is_some_and(|c| !c.is_ascii_alphanumeric() && *c != b'.')
                        })
                })
            {
                // Paranoia 3: any reference into the JDK's namespaces.
                out.hit(input, CAT, "java.package", Severity::Critical, 3);
            }
            // Paranoia 4: any fully qualified class name (`com.example.app.Main`), the
            // currency of deserialization and expression-language payloads.
            if keyed && out.wants(CAT, 4) && qualified_class_name(&input.value) {
                out.hit(input, CAT, "java.class-name", Severity::Critical, 4);
            }
            if (input.may_contain("aced0005") || input.bytes.has_all(&[0xAC, 0xED, 0x00, 0x05]))
                && serialized(&input.value)
            {
                out.hit(input, CAT, "java.serialized-object", Severity::Critical, 1);
            }
            if input.may_contain("ro0ab") && input.value.has_lit("rO0AB") {
                // A value that is one base64 token opening with the stream magic is a
                // serialized Java object (the five letters start 1 in 64^5 random tokens);
                // the letters elsewhere in a value count from paranoia 2, as CRS 944210.
                let level = if base64_stream(&input.value) { 1 } else { 2 };
                out.hit(
                    input,
                    CAT,
                    "java.serialized-base64",
                    Severity::Critical,
                    level,
                );
            }
            // Keyed: every OGNL opener (`%{`, `${`, `(#`) holds `{` or `#`.
            if keyed && (input.bytes.has(b'{') || input.bytes.has(b'#')) && ognl_in(l, &input.bytes)
            {
                out.hit(input, CAT, "java.ognl", Severity::Critical, 1);
            }
            // Keyed (`.`).
            if keyed && (has("class.module.classloader") || has("class.classloader")) {
                out.hit(input, CAT, "java.classloader", Severity::Critical, 1);
            }
            if has("springframework") && has("applicationcontext") {
                out.hit(input, CAT, "java.spring-context", Severity::Critical, 2);
            }
        }
        if is_upload_name(input.location.source, &input.location.name) && jsp_file(l) {
            out.hit(input, CAT, "java.jsp-upload", Severity::Critical, 1);
        }
    }
    // Struts-style OGNL in Content-Type (not an inspected header by default).
    if let Some(ct) = p.headers.content_type {
        if ognl(&ct.ascii_lower()) {
            out.hit_request(
                CAT,
                "java.ognl",
                Severity::Critical,
                1,
                Source::Header,
                "content-type",
            );
        }
    }
}

/// One of these is in every value the keyed rules of [`scan`] can match: `${` or `jndi:`
/// (log4j), `java` (process classes and references), `.` (package, class and class-loader
/// names), `{` or `#` (OGNL). Asked of the value's byte set once, before ~12 needle tests;
/// test `keyed_rules_need_a_key` runs the rules on values with and without them.
const KEYED: ByteSet = ByteSet::from_ranges(&[
    (b'.', b'.'),
    (b'$', b'$'),
    (b'{', b'{'),
    (b'#', b'#'),
    (b'j', b'j'),
]);

/// Multipart file names and the upload-name headers some frameworks use.
pub(crate) fn is_upload_name(source: Source, name: &str) -> bool {
    source == Source::Filename
        || (source == Source::Header
            && matches!(
                name,
                "x-filename" | "x_filename" | "x.filename" | "x-file-name"
            ))
}

/// A file name ending in `.jsp`/`.jspx` once the padding servers ignore is removed.
fn jsp_file(l: &str) -> bool {
    let name: String = l.without_whitespace();
    let name = name.trim_end_set(b"./\\:");
    name.ends_with(".jsp") || name.ends_with(".jspx")
}

/// A `java.lang.Foo`-style reference into the JDK's dangerous packages.
fn jdk_class(l: &str, set: &ByteSet) -> bool {
    // Every package name holds `.` (`packages_hold_a_dot`): one byte asked for the list.
    let names = PACKAGES.as_slice();
    set.has(b'.')
        && gadget_sets().1.any_candidate(set, &mut |i| {
            let Some(p) = names.get(i) else {
                return false;
            };
            let mut from = 0;
            while let Some(pos) = l.get(from..).and_then(|h| h.find(p)) {
                let at = from + pos;
                let before_ok = at == 0
                    || l.as_bytes()
                        .get(at - 1)
                        .is_some_and(|b| !b.is_ascii_alphanumeric() && *b != b'.');
                let after = l.as_bytes().get(at + p.len());
                // Exception and error classes in stack traces are never an exploit's vehicle.
                // (A class name is looked at over at most 128 bytes: bounded work per match.)
                let rest = l.as_bytes().get(at + p.len()..).unwrap_or_default();
                let len = rest
                    .iter()
                    .take(128)
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'$'))
                    .count();
                let class = l.get(at + p.len()..at + p.len() + len).unwrap_or_default();
                if class.ends_with("exception") || class.ends_with("error") {
                    from = at + 1;
                    continue;
                }
                let after_ok = if p.ends_with('.') {
                    after.is_some_and(u8::is_ascii_alphabetic)
                } else {
                    after.is_none_or(|b| !b.is_ascii_alphanumeric())
                };
                if before_ok && after_ok {
                    return true;
                }
                from = at + 1;
            }
            false
        })
}

/// Java serialization stream magic, raw or hex-encoded.
fn serialized(v: &str) -> bool {
    let l = v.ascii_lower();
    l.has_lit("aced0005")
        || v.as_bytes()
            .windows(4)
            .any(|w| w == [0xAC, 0xED, 0x00, 0x05])
}

/// A whole value that is base64 (standard or URL alphabet) of a Java serialization stream:
/// `0xACED0005` encodes as `rO0AB`, and a stream holds at least a class descriptor.
fn base64_stream(v: &str) -> bool {
    let t = v.trim();
    t.starts_with("rO0AB")
        && t.len() >= 16
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'))
}

/// OGNL expressions as used against Struts: member-access tampering, static calls.
fn ognl(l: &str) -> bool {
    ognl_in(l, &ByteSet::of(l.as_bytes()))
}

/// [`ognl`] with the byte set of `l` (or a superset) known: each needle is searched only
/// when all its bytes occur (eight searches over every 4 KiB window of a hostile body
/// holding `{` or `#`, most of them for needles with a letter the window lacks).
fn ognl_in(l: &str, set: &ByteSet) -> bool {
    let has = |needle: &str| set.has_all(needle.as_bytes()) && l.has_lit(needle);
    // Struts' `%{` opens an OGNL expression; a `#name` variable right inside it, or in
    // parentheses (`%{(#_='multipart/form-data').(#cmd='id')}`), is OGNL's own syntax
    // (Ruby's `%{#{x}}` interpolates instead; Bash's `${#x}` is not `%{`).
    (set.has_all(b"%{#")
        && super::lit_offsets(l, "%{").any(|p| {
            let r = l.as_bytes().get(p + 2..).unwrap_or_default();
            let r = r.strip_prefix(b"(").unwrap_or(r);
            r.first() == Some(&b'#')
                && r.get(1)
                    .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
        }))
        || (has("%{") || has("${") || has("(#"))
            && (has("#_memberaccess")
                || has("@ognl")
                || has("#context")
                || has("@java.lang")
                || has("ognlcontext"))
}

/// Whether resolving log4j lookups in `l` yields a JNDI lookup.
fn jndi(l: &str) -> bool {
    // Log4j substitutes a lookup only when its `}` closes it: "detects ${jndi: patterns in
    // logs" names the pattern.
    // Some lookup before the last `}` exactly when the first one is: one search (a
    // `${jndi:` run without a `}` was a two-way searcher step per lookup).
    let closed_lookup = |r: &str| {
        r.rfind_char('}')
            .is_some_and(|c| r.find_lit("${jndi:").is_some_and(|p| c > p))
    };
    if closed_lookup(l) {
        return true;
    }
    let found = |r: &str| closed_lookup(r) || r.has_lit("jndi:ldap") || r.has_lit("jndi:rmi");
    // `$&lbrace;jndi:ldap://...}`: a lookup whose brace a decoder we do not know produces.
    // Without a `${`, or without a `}` to close one, nothing resolves: `l` is its own
    // resolution (this skips the rebuild on a long unclosed `${jndi:${jndi:...` run).
    if !l.has_lit("${") || !l.has_char('}') {
        return found(l);
    }
    let resolved = resolve(l);
    // A second pass resolves lookups that the first one formed (`$` + `{lower:j}`).
    found(&resolved) || resolved.has_lit("${") && resolved != l && found(&resolve(&resolved))
}

/// Resolves nested lookups innermost-first, in one left-to-right pass with a stack of open
/// lookups (linear time, no substitution budget): `${prefix:key:-default}` becomes its
/// default, `${lower:X}`/`${upper:X}` become `X`, `${date:'j'}` becomes `j`, other lookups
/// vanish; a `${jndi:...}` lookup is kept as written for the caller to find, and so is an
/// unclosed `${`.
fn resolve(l: &str) -> String {
    // One output buffer; `marks` holds where each open lookup's content starts in it (just
    // after its `${`, which is written as it comes). An unclosed lookup therefore stays as
    // written with no work at the end, and an opener allocates nothing (a `${${${...` run
    // used to allocate a level per opener and copy every level into its parent at the end:
    // quadratic in the run).
    let mut out = String::with_capacity(l.len());
    let mut marks: Vec<usize> = Vec::new();
    let b = l.as_bytes();
    let mut i = 0;
    let mut run = 0; // start of the pending plain text
    while i < b.len() {
        if b.get(i) == Some(&b'$') && b.get(i + 1) == Some(&b'{') {
            out.push_str(l.get(run..i + 2).unwrap_or_default());
            marks.push(out.len());
            i += 2;
            run = i;
        } else if b.get(i) == Some(&b'}') && !marks.is_empty() {
            out.push_str(l.get(run..i).unwrap_or_default());
            let m = marks.pop().unwrap_or_default();
            let inner = out.get(m..).unwrap_or_default();
            // Where the substitution lies in `inner` (it is a piece of it, or "").
            let piece = substitute(inner).map(|v| {
                let off = (v.as_ptr() as usize).wrapping_sub(inner.as_ptr() as usize);
                (off <= inner.len() && off + v.len() <= inner.len() && !v.is_empty())
                    .then_some((m + off, v.len()))
            });
            let open = m.saturating_sub(2);
            match piece {
                // Kept as written: its `${` and content are in place, close it.
                None => out.push('}'),
                // Move the piece over the `${` and drop the rest.
                Some(Some((start, len))) => {
                    out.replace_range(open..start, "");
                    out.truncate(open + len);
                }
                // It vanishes.
                Some(None) => out.truncate(open),
            }
            i += 1;
            run = i;
        } else {
            i += 1;
        }
    }
    out.push_str(l.get(run..).unwrap_or_default());
    out
}

/// What a closed lookup with content `inner` becomes; `None` keeps it as written (JNDI).
fn substitute(inner: &str) -> Option<&str> {
    if inner.starts_with("jndi:") {
        return None;
    }
    Some(if let Some((_, default)) = inner.split_once(":-") {
        default
    } else if let Some(rest) = inner
        .strip_prefix("lower:")
        .or_else(|| inner.strip_prefix("upper:"))
    {
        rest
    } else if let Some(rest) = inner.strip_prefix("date:") {
        rest.trim_set(b"'")
    } else {
        ""
    })
}

/// A `${prefix:` lookup with a prefix log4j knows (paranoia 2: template syntax is common).
fn lookup(l: &str) -> bool {
    let mut from = 0;
    while let Some(pos) = l.get(from..).and_then(|h| h.find_lit("${")) {
        let at = from + pos + 2;
        let rest = l.get(at..).unwrap_or_default();
        let prefix_len = rest
            .bytes()
            .take_while(|c| c.is_ascii_alphanumeric())
            .count();
        let prefix = rest.get(..prefix_len).unwrap_or_default();
        if rest.get(prefix_len..).is_some_and(|r| r.starts_with(':')) && lookup_prefix(prefix) {
            return true;
        }
        if rest.starts_with("${") {
            return true;
        }
        from = at;
    }
    false
}

/// A closed `${prefix:...}` lookup whose prefix only log4j gives a meaning: [`LOOKUPS`]
/// without the empty prefix and, unless `env` is set, without `env` (PowerShell writes
/// `${env:PATH}`). Linear: each `${` looks at the prefix after it, then one search for a
/// `}` after the first such lookup (a later one has a closer only if the first does).
fn log4j_lookup(l: &str, env: bool) -> bool {
    let b = l.as_bytes();
    let first = super::lit_offsets(l, "${").find(|&p| {
        let rest = b.get(p + 2..).unwrap_or_default();
        let n = rest
            .iter()
            .take(8)
            .take_while(|c| c.is_ascii_alphanumeric())
            .count();
        let prefix = l.get(p + 2..p + 2 + n).unwrap_or_default();
        rest.get(n) == Some(&b':')
            && !prefix.is_empty()
            && (env || prefix != "env")
            && lookup_prefix(prefix)
    });
    first.is_some_and(|p| {
        b.get(p..)
            .is_some_and(|r| super::find_byte(r, b'}').is_some())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The resolver as it was (a stack of `String` levels, each copied into its parent), kept
    /// to prove the one-buffer version gives the same text.
    fn resolve_reference(l: &str) -> String {
        // Text of the enclosing levels; the last is the innermost open lookup's content.
        let mut levels: Vec<String> = vec![String::with_capacity(l.len())];
        let b = l.as_bytes();
        let mut i = 0;
        let mut run = 0; // start of the pending plain text
        let flush = |levels: &mut Vec<String>, from: usize, to: usize| {
            if let (Some(top), Some(text)) = (levels.last_mut(), l.get(from..to)) {
                top.push_str(text);
            }
        };
        while i < b.len() {
            if b.get(i) == Some(&b'$') && b.get(i + 1) == Some(&b'{') {
                flush(&mut levels, run, i);
                levels.push(String::new());
                i += 2;
                run = i;
            } else if b.get(i) == Some(&b'}') && levels.len() > 1 {
                flush(&mut levels, run, i);
                let inner = levels.pop().unwrap_or_default();
                let value = substitute(&inner);
                if let Some(top) = levels.last_mut() {
                    match value {
                        Some(v) => top.push_str(v),
                        None => {
                            top.push_str("${");
                            top.push_str(&inner);
                            top.push('}');
                        }
                    }
                }
                i += 1;
                run = i;
            } else {
                i += 1;
            }
        }
        flush(&mut levels, run, b.len());
        // Unclosed lookups stay as written.
        while levels.len() > 1 {
            let inner = levels.pop().unwrap_or_default();
            if let Some(top) = levels.last_mut() {
                top.push_str("${");
                top.push_str(&inner);
            }
        }
        levels.pop().unwrap_or_default()
    }

    #[test]
    fn resolve_matches_the_level_stack_version() {
        const PIECES: &[&str] = &[
            "${", "}", "jndi:", "lower:", "upper:", "date:'", "'", ":-", "ldap", "a", "é", "$",
            "{", ":",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let mut l = String::new();
            seed = crate::detect::xorshift(seed);
            let n = (seed % 12) as usize;
            for k in 0..n {
                let r = (seed >> (k * 5)) as usize;
                l.push_str(PIECES[r % PIECES.len()]);
            }
            assert_eq!(resolve(&l), resolve_reference(&l), "{l:?}");
        }
    }

    #[test]
    fn jndi_plain_and_obfuscated() {
        for s in [
            "${jndi:ldap://x/a}",
            "${${lower:j}ndi:ldap://x}",
            "${${::-j}${::-n}${::-d}${::-i}:rmi://x/y}",
            "${${env:nope:-j}ndi${env:nope:-:}ldap://x}",
            "$${env:a:-${env:b:-$}{jndi:ldap://e/w}}}",
            "${${date:'j'}${upper:n}di:ldap://x}",
        ] {
            assert!(jndi(&s.ascii_lower()), "{s}");
        }
        assert!(!jndi("${user.name} costs $5"));
        assert!(!jndi("price: ${price}"));
    }

    #[test]
    fn jdk_classes_need_a_class_after_the_package() {
        let jdk_class = |l: &str| jdk_class(l, &ByteSet::of(l.as_bytes()));
        assert!(jdk_class("java.io.objectinputstream"));
        assert!(jdk_class("x=org.omg.corba"));
        assert!(!jdk_class("my.java.lang."));
        assert!(!jdk_class("java.io"));
        assert!(!jdk_class("i like java and coffee"));
    }

    /// What the keyed rules of `scan` need holds a [`KEYED`] byte: each needle they search
    /// first (the jndi block is entered on `${` or `jndi:`; `has_word(l, "java")`), every
    /// package name (`jdk_class`, the paranoia 3 prefixes), the OGNL openers, the class-loader
    /// names; and a qualified class name needs two dots (random values without one are none).
    #[test]
    fn keyed_rules_need_a_key() {
        let key = |s: &str| s.bytes().any(|c| KEYED.has(c));
        let needles = [
            "${",
            "jndi:",
            "java.lang.runtime",
            "java.lang.processbuilder",
            "java.",
            "java",
            "javax.",
            "sun.",
            "jdk.",
            "%{",
            "(#",
            "class.module.classloader",
            "class.classloader",
        ];
        for n in needles.iter().copied().chain(PACKAGES.iter().copied()) {
            assert!(key(n), "{n}");
        }
        // Without a key none of the keyed predicates holds, whatever the rest.
        let alphabet = b"aAbcCeOlmnoprsStuvxz019_-:/()%@ \"<>;=,+";
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            seed = crate::detect::xorshift(seed);
            let len = (seed % 48) as usize;
            let v: String = (0..len)
                .map(|_| {
                    seed = crate::detect::xorshift(seed);
                    char::from(alphabet[(seed % alphabet.len() as u64) as usize])
                })
                .collect();
            let l = v.to_ascii_lowercase();
            let set = ByteSet::of(l.as_bytes());
            assert!(!set.intersects(&KEYED));
            assert!(!qualified_class_name(&v), "{v}");
            assert!(!jdk_class(&l, &set), "{v}");
            assert!(!ognl_in(&l, &set), "{v}");
            assert!(!jndi(&l) && !lookup(&l) && !has_word(&l, "java"), "{v}");
        }
    }

    /// `jdk_class` asks the value for `.` before the list: every package name holds one.
    #[test]
    fn packages_hold_a_dot() {
        assert!(PACKAGES.iter().all(|p| p.contains('.')));
    }

    #[test]
    fn jsp_names() {
        assert!(jsp_file("shell. jsp"));
        assert!(jsp_file("a.jsp.."));
        assert!(jsp_file("b.jspx"));
        assert!(!jsp_file("a.jsp.png"));
    }

    #[test]
    fn base64_streams() {
        assert!(base64_stream("rO0ABXNyABFqYXZhLnV0aWwuSGFzaE1hcA=="));
        assert!(!base64_stream("rO0AB"));
        assert!(!base64_stream("see rO0ABXNyABFqYXZhLnV0aWwu"));
    }

    #[test]
    fn serialized_markers() {
        assert!(serialized("ACED0005737200"));
        assert!(!serialized("aced000"));
    }

    #[test]
    fn lookups_at_pl2() {
        assert!(lookup("${env:home}"));
        assert!(lookup("${::-j}"));
        assert!(!lookup("${price}"));
    }
}

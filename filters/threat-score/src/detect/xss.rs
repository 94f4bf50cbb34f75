//! Cross-site scripting (CRS 941), HTML/JS-aware: values are read as an HTML tokenizer would
//! (tag names after `<`, including namespaced `<x:script` and `<?import`; attributes with
//! event handlers `on*=`), URLs are checked for script schemes after removing the whitespace
//! and control characters browsers ignore inside them (`java&#9;script:`), and JavaScript
//! sinks are recognised by call shape (`alert(1)`, `self['x']`). Entities and escapes are
//! already decoded by the extractor.

use super::{Findings, INJECTION};
use crate::detect::HasByte as _;
use crate::detect::Lit as _;
use crate::detect::Outlined as _;
use crate::extract::{Input, Prepared};
use crate::model::{Category, Severity, Source};

const CAT: Category = Category::Xss;

/// Tags that execute script or load active content by themselves.
const ACTIVE_TAGS: &[&str] = &[
    "script",
    "iframe",
    "frame",
    "frameset",
    "object",
    "embed",
    "applet",
    "svg",
    "math",
    "meta",
    "base",
    "xml",
    "import",
    "vmlframe",
    "isindex",
    "style",
    "link",
    "form",
    "xss",
    "bgsound",
    "layer",
    "ilayer",
    "template",
    "portal",
    "animate",
    "set",
    "handler",
    "listener",
    "xmp",
    "noscript",
    "plaintext",
];

/// A bare tag named as a noun: "Inline <script> tags in HTML files", "create <style>
/// elements", "Vue SFC <style> blocks". No attribute, the next word says what the tag is, and
/// no closing tag follows anywhere (`<script> tag=1;alert(1)</script>` runs): paranoia 2.
fn named_in_prose(l: &str, first: &str, attrs: &str) -> bool {
    first.trim().is_empty()
        && !l.has_lit("</")
        && attrs.get(first.len() + 1..).is_some_and(|rest| {
            let word = rest
                .trim_start()
                .split_first_any(b" .,;:!?)")
                .unwrap_or_default();
            matches!(
                word,
                "tag" | "tags" | "element" | "elements" | "block" | "blocks"
            )
        })
}

/// Whether `name` is one of [`ACTIVE_TAGS`]: one comparison switch in the module for the
/// five places that ask (each `contains` on the constant list was unrolled where it stood).
#[inline(never)]
fn active_tag(name: &str) -> bool {
    ACTIVE_TAGS.contains(&name)
}

/// Active tags that run or load code without any attribute.
const SELF_ACTIVE_TAGS: crate::detect::Words = crate::detect::Words::new(&[
    "script",
    "iframe",
    "frame",
    "frameset",
    "object",
    "embed",
    "applet",
    "xml",
    "import",
    "vmlframe",
    "isindex",
    "xss",
    "bgsound",
    "ilayer",
    "svg",
    "plaintext",
    "xmp",
    "style",
]);

/// Tags that become dangerous with an event handler or a script URL.
const PASSIVE_TAGS: &[&str] = &[
    "img", "image", "video", "audio", "source", "body", "html", "marquee", "details", "input",
    "button", "textarea", "select", "keygen", "div", "a", "span", "p", "table", "td", "tr",
    "input", "option", "track", "picture", "canvas", "dialog", "menu", "output", "area", "map",
    "font", "b", "i", "u", "h1", "abbr", "address", "article", "aside", "blink", "center", "code",
    "del", "em", "strong", "x", "svg", "title", "head",
];

/// [`PASSIVE_TAGS`] for lookups, packed ([`super::pack_words!`]): one hash instead of a scan of
/// 50 names, and one byte per name in the module instead of a `&str` (issue 13).
pub(super) static PASSIVE_TAG_SET: super::WordSet =
    super::WordSet::packed(super::pack_words!(PASSIVE_TAGS));

const SINKS: crate::detect::Words = crate::detect::Words::new(&[
    "alert",
    "prompt",
    "confirm",
    "eval",
    "settimeout",
    "setinterval",
    "atob",
    "btoa",
    "fromcharcode",
    "execscript",
    "msgbox",
    "fetch",
    "import",
    "constructor",
    "function",
    "window.open",
    "top.location",
    "unescape",
]);

const GLOBALS: crate::detect::Words = crate::detect::Words::new(&[
    "self",
    "window",
    "top",
    "parent",
    "this",
    "document",
    "globalthis",
    "frames",
    "content",
]);

/// A parsed tag opening: its (lowercase) name and the text up to the next `<` (attributes).
fn tags(l: &str) -> impl Iterator<Item = (&str, &str)> {
    let b = l.as_bytes();
    super::byte_offsets(l, b'<').filter_map(move |at| {
        let mut j = at + 1;
        // `< x:script` is parsed by some old engines; `</`, `<?`, `<!` too.
        while b
            .get(j)
            .is_some_and(|c| matches!(c, b' ' | b'/' | b'?' | b'!' | b'%'))
            && j < at + 4
        {
            j += 1;
        }
        let start = j;
        while b
            .get(j)
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b':' | b'-' | b'_'))
        {
            j += 1;
        }
        if j > start + 1 && j <= start + 4 && b.get(j - 1) == Some(&b':') {
            j = spaced_local_name(b, j);
        }
        if j == start
            || !b
                .get(start)
                .is_some_and(|c| c.is_ascii_alphabetic() || *c == b':')
        {
            return None;
        }
        let name = l.get(start..j)?;
        // HTML parses `<?...>` as a bogus comment: only IE's `<?import` ever acted on it.
        if b.get(at + 1..start).is_some_and(|p| p.has_byte(b'?')) && name != "import" {
            return None;
        }
        let rest_end = b
            .get(j..)?
            .iter()
            .position(|&c| c == b'<')
            .map_or(l.len(), |p| p + j);
        Some((name, l.get(j..rest_end)?))
    })
}

/// `<` followed by at least three single letters separated by whitespace (`<f o r m`,
/// `< x: script` is handled by the tag parser).
fn spaced_tag(l: &str) -> bool {
    let b = l.as_bytes();
    super::byte_offsets(l, b'<').any(|p| {
        let mut j = p + 1;
        let mut letters = 0;
        loop {
            while b.get(j).is_some_and(|c| *c == b' ' || *c == b'\t') {
                j += 1;
            }
            let letter = b.get(j).is_some_and(u8::is_ascii_alphabetic);
            let single = !b.get(j + 1).is_some_and(u8::is_ascii_alphanumeric);
            if letter && single {
                letters += 1;
                j += 1;
            } else {
                break;
            }
        }
        letters >= 3
    })
}

/// `< x: script`: old engines also join a namespace prefix of up to three letters (ending
/// at `j`, after its `:`) and the local name across spaces. Returns the end of the local
/// name, or `j` when none follows. Up to four spaces, once per tag: linear.
#[inline(never)]
fn spaced_local_name(b: &[u8], j: usize) -> usize {
    let mut k = j;
    while b.get(k) == Some(&b' ') && k < j + 4 {
        k += 1;
    }
    if k == j || !b.get(k).is_some_and(u8::is_ascii_alphabetic) {
        return j;
    }
    while b
        .get(k)
        .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_'))
    {
        k += 1;
    }
    k
}

fn tag_base(name: &str) -> &str {
    name.rsplit_first(':').unwrap_or(name).trim_start()
}

/// A tag closed with a character that a server writing text as US-ASCII (the high bit
/// dropped: `¼` U+00BC is `<`) or truncating characters to bytes (`м` U+043C, `ļ` U+013C)
/// turns into `<` (CRS 941310, the US-ASCII malformed encoding): `¼/name` closing an element
/// opened before it with `¼name` or `<name` (`¼script¾alert(1)¼/script¾`). Without its end
/// tag a script never runs; prose puts a space or a digit after `¼` (`¼ cup`, `¼in`), not an
/// element and its end tag. Every such character's UTF-8 form ends with the byte `0xBC` (the
/// caller asks the byte set first). Names kept: 64 at most, so the scan stays linear.
#[inline(never)]
fn low_byte_tag(l: &str) -> bool {
    // The character ending at byte `end`, when it is one that becomes `<`.
    let lt_at = |end: usize| {
        l.get(..=end)
            .and_then(|h| h.chars().next_back())
            .filter(|c| {
                let v = u32::from(*c);
                (0x80..0x100).contains(&v) && v & 0x7f == 0x3c || v >= 0x100 && v & 0xff == 0x3c
            })
            .map(char::len_utf8)
    };
    let b = l.as_bytes();
    // End tags looked at: 16 at most, each a search of the text before it: linear.
    super::byte_offsets(l, 0xbc)
        .filter(|&p| b.get(p + 1) == Some(&b'/') && lt_at(p).is_some())
        .take(16)
        .any(|p| {
            let rest = b.get(p + 2..).unwrap_or_default();
            let len = rest
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric())
                .count();
            let (Some(name), Some(before)) = (l.get(p + 2..p + 2 + len), l.get(..=p)) else {
                return false;
            };
            name.bytes().next().is_some_and(|c| c.is_ascii_alphabetic())
                && before.match_indices(name).any(|(q, _)| {
                    q > 0
                        && (b.get(q - 1) == Some(&b'<')
                            || b.get(q - 1) == Some(&0xbc) && lt_at(q - 1).is_some())
                })
        })
}

/// `on<event>=` as an attribute: preceded by whitespace, `/`, a quote or the tag name.
fn event_handler(attrs: &str, need_context: bool) -> bool {
    let b = attrs.as_bytes();
    let mut from = 0;
    // A byte scan per occurrence, not a substring searcher set up for each.
    while let Some(p) = super::find_bytes(b, b"on", from) {
        let before = p.checked_sub(1).and_then(|i| b.get(i)).copied();
        let boundary = before.is_none_or(|c| !c.is_ascii_alphanumeric() && c != b'_' && c != b'-');
        let mut j = p + 2;
        while b.get(j).is_some_and(u8::is_ascii_alphabetic) {
            j += 1;
        }
        let name_len = j - p - 2;
        while b
            .get(j)
            .is_some_and(|c| c.is_ascii_whitespace() || *c == b'/')
        {
            j += 1;
        }
        // DOM event names are short: the longest are about 45 letters
        // (`onwebkitplaybacktargetavailabilitychanged`).
        if boundary && (3..=48).contains(&name_len) && b.get(j) == Some(&b'=') {
            let ctx = before.is_some_and(|c| {
                matches!(
                    c,
                    b' ' | b'\t' | b'\n' | b'\r' | b'/' | b'"' | b'\'' | b'`' | b'\x0c'
                )
            });
            if !need_context || ctx {
                return true;
            }
        }
        from = p + 2;
    }
    false
}

/// Removes what browsers skip inside a URL scheme: whitespace and control characters.
fn compact(l: &str) -> String {
    l.chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .collect()
}

/// `javascript:`, `vbscript:`, `data:text/html` URLs with code after the colon.
fn script_url(l: &str) -> bool {
    // Every scheme below ends with `:`, and `compact` only removes characters.
    if !l.has_char(':') {
        return false;
    }
    // Nor can `compact` add a byte: a scheme whose bytes are not all in `l` is not in it.
    let set = crate::extract::ByteSet::of(l.as_bytes());
    let schemes = ["javascript:", "vbscript:", "livescript:", "mocha:"];
    if !schemes
        .iter()
        .chain(&["data:"])
        .any(|s| set.has_all(s.as_bytes()))
    {
        return false;
    }
    let c = compact(l);
    // Whether the text after a match holds `(`, `=`, a backtick or `\\`: each is there when
    // its last occurrence is, so a run of schemes is not re-read to its end per match.
    let last = |x: u8| c.bytes().rposition(|b| b == x);
    let code_bytes = [last(b'('), last(b'='), last(b'`'), last(b'\\')];
    for scheme in schemes {
        if !set.has_all(scheme.as_bytes()) {
            continue;
        }
        // The raw text must not have a space right after the colon: "JavaScript: The Good
        // Parts" is a title, not a URL. Characters hidden inside the scheme are an evasion
        // whatever follows. (Both are about the whole value: asked once per scheme.)
        let raw_colon_space = l
            .match_indices(scheme)
            .any(|(q, _)| l.as_bytes().get(q + scheme.len()) == Some(&b' '));
        let hidden = !l.has_lit(scheme);
        let mut from = 0;
        while let Some(p) = c.get(from..).and_then(|h| h.find(scheme)).map(|p| p + from) {
            let at = p + scheme.len();
            let rest = c.get(at..).unwrap_or_default();
            let code_like = code_bytes.iter().any(|x| x.is_some_and(|i| i >= at))
                || rest.starts_with("//")
                || SINKS.iter().any(|s| rest.starts_with(s));
            if hidden
                || scheme != "javascript:" && !rest.is_empty()
                || !rest.is_empty() && code_like && !raw_colon_space
            {
                return true;
            }
            from = p + 1;
        }
    }
    let data_markup = c.find_lit("data:").is_some_and(|p| {
        c.get(p..).is_some_and(|r| {
            r.get(..48.min(r.len())).is_some_and(|w| w.has_char(',')) && r.has_char('<')
        })
    });
    data_markup
        || c.has_lit("data:text/html")
        || c.has_lit("data:image/svg")
        || c.has_lit("data:application/x-")
        || c.has_lit("data:text/javascript")
}

fn css_script(l: &str) -> bool {
    // Every needle below holds `(`, `-` or `@`, and `compact` only removes characters.
    if !l.bytes().any(|b| matches!(b, b'(' | b'-' | b'@')) {
        return false;
    }
    let c = compact(l);
    CSS_NEEDLES.iter().any(|n| c.has_lit(n))
}

/// What [`css_script`] looks for in the compacted value. `@import` counts as CSS grammar has
/// it, before a string, a `url(` or a comment (`@import'//evil/x.css'`): prose names the
/// rule ("Parse CSS @import statements").
const CSS_NEEDLES: [&str; 8] = [
    ":expression(",
    "-moz-binding",
    "behavior:url(",
    "url(javascript",
    "@import'",
    "@import\"",
    "@importurl(",
    "@import/*",
];

/// JS sinks called with a literal or an expression: `alert(1)`, `eval('x')`,
/// ``alert`1` ``, `self['alert']`.
fn js_sink(l: &str) -> bool {
    let b = l.as_bytes();
    let set = crate::extract::ByteSet::of(b);
    let calls = SINKS.iter().filter(|s| set.has_all(s.as_bytes())).any(|s| {
        let mut from = 0;
        while let Some(p) = super::find_word(l, s, from) {
            let mut j = p + s.len();
            while b.get(j).is_some_and(|c| *c == b' ' || *c == b'\t') {
                j += 1;
            }
            let open = b.get(j).copied();
            // A tagged template call: ``alert`1` `` (a closing backtick follows). Not after
            // the keyword `import` (no JavaScript parses ``import`x` ``), nor `function` with
            // a space (only the constructor is called so: ``Function`x` ``), nor when a
            // backtick opens the name's dotted token: that is a Markdown code span closing
            // (`` `window.alert` ``, "the lodash function `baseEach`").
            // The look back runs only for a name followed by a backtick, and stops at the
            // first byte outside a dotted name: a backtick or space ends the previous such
            // name's token, so each byte is looked at once (linear).
            if open == Some(b'`')
                && *s != "import"
                && (*s != "function" || j == p + s.len())
                && b.get(j + 1..).is_some_and(|r| r.has_byte(b'`'))
                && b.get(..p)
                    .unwrap_or_default()
                    .iter()
                    .rev()
                    .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'$')))
                    != Some(&b'`')
            {
                return true;
            }
            // `fetch('/api/me')`: the page's own API, read as every front end does; sending
            // data away needs another origin (`fetch('//evil/?'+x)`, `fetch(url)`).
            if open == Some(b'(')
                && !(*s == "fetch"
                    && b.get(j + 1)
                        .is_some_and(|q| matches!(q, b'\'' | b'"' | b'`'))
                    && b.get(j + 2) == Some(&b'/')
                    && b.get(j + 3) != Some(&b'/'))
            {
                let arg = b.get(j + 1).copied();
                let any_arg = matches!(
                    *s,
                    "settimeout" | "setinterval" | "execscript" | "fromcharcode" | "atob" | "btoa"
                );
                if arg.is_some_and(|a| {
                    matches!(
                        a,
                        b'0'..=b'9' | b'\'' | b'"' | b'`' | b'/' | b'[' | b'-' | b'!' | b'+'
                    )
                }) || any_arg && arg.is_some_and(|a| a.is_ascii_alphabetic())
                    // `alert()`: an empty call counts unless a sentence mentions it
                    // ("Using alert() for debugging"). Only a dialog shows anything empty:
                    // `eval()`, `fetch()`, `new Function()` run nothing, and count as the
                    // probe they are only as the whole value ("Browser fetch() API" names
                    // one).
                    || arg == Some(b')')
                        && !definition(b, j + 2)
                        && if matches!(*s, "alert" | "prompt" | "confirm" | "msgbox") {
                            !super::lfi::prose(l)
                        } else {
                            matches!(b.get(..p).map(<[u8]>::trim_ascii), Some(b"" | b"new"))
                                && matches!(b.get(j + 2..).map(<[u8]>::trim_ascii), Some(b"" | b";"))
                        }
                    || l.get(j + 1..).is_some_and(|r| {
                        r.starts_with("document")
                            || r.starts_with("window")
                            || r.starts_with("string.")
                            || r.starts_with("self")
                            || r.starts_with("this")
                    })
                {
                    return true;
                }
            }
            from = p + 1;
        }
        false
    });
    calls
        || GLOBALS
            .iter()
            .filter(|g| set.has_all(g.as_bytes()))
            .any(|g| {
                let mut from = 0;
                while let Some(p) = super::find_word(l, g, from) {
                    let mut j = p + g.len();
                    while b.get(j).is_some_and(|c| *c == b' ') {
                        j += 1;
                    }
                    if b.get(j) == Some(&b'[')
                        && b.get(j + 1)
                            .is_some_and(|c| matches!(c, b'\'' | b'"' | b'`' | b'/'))
                    {
                        return true;
                    }
                    from = p + 1;
                }
                false
            })
        || dom_call(l)
        || dom_property(l)
}

/// Whether the `)` closing an empty parameter list ends at `after` a function definition
/// (`function() { ... }`, `constructor() {`, `function () => x`): code that defines a
/// function runs nothing by itself.
fn definition(b: &[u8], after: usize) -> bool {
    let mut j = after;
    while b.get(j).is_some_and(u8::is_ascii_whitespace) {
        j += 1;
    }
    b.get(j) == Some(&b'{') || b.get(j..j + 2) == Some(b"=>")
}

/// `document.cookie`, `window.location`, `.innerHTML`: reading or setting them is what a
/// script payload does. In a sentence ("a document.cookie helper with SameSite support")
/// the name is documentation unless its word carries code (`=`, `+`, `(`, `;`, quotes).
fn dom_property(l: &str) -> bool {
    const PROPERTIES: crate::detect::Words = crate::detect::Words::new(&[
        "document.cookie",
        "document.domain",
        ".innerhtml",
        "window.location",
        "document.location",
    ]);
    let prose = super::lfi::prose(l);
    PROPERTIES.iter().any(|m| {
        super::lit_offsets(l, m)
            .any(|p| !prose || super::generic::word_around(l, p).has_any(b"=+();'\"`["))
    })
}

/// Members through which a script on the page does harm, as the last member of a chain
/// that calls or assigns it: writing markup or nodes, running code, sending the user away or
/// data out (`write(`, `appendChild(`, `location=`, `cookie=`), and properties that load,
/// run or rewrite content when assigned (`.src=`, `.textContent=`). Reading the tree
/// (`getElementById`, `querySelector`, `classList.add`, `title`, a `.href` read) is what
/// every page and every question about one does; CRS's node-validator list (941180) names
/// sinks too, not readers.
static DOM_SINKS: super::WordSet = super::WordSet::packed(super::pack_words!(&[
    "write",
    "writeln",
    "open",
    "cookie",
    "domain",
    "location",
    "appendchild",
    "insertbefore",
    "replacechild",
    "replacewith",
    "append",
    "prepend",
    "insertadjacenthtml",
    "execcommand",
    "setattribute",
    "submit",
    "eval",
    "src",
    "href",
    "action",
    "srcdoc",
    "innerhtml",
    "outerhtml",
    "textcontent",
    "innertext",
    "outertext",
    "createelement",
]));

/// `document.x(`, `document.x.y =` when the chain's last member is a sink ([`DOM_SINKS`],
/// or an `on*` handler) it calls or assigns: `document.write(`,
/// `document.body.appendChild(x)`, `document.querySelector('p').textContent = 'x'`.
/// `document.createElement(` counts with an active tag's name or a computed one.
///
/// The chain goes on through a short argument list or index (`getElementById('x').src`,
/// `forms[0].action`), whose text is data (`querySelector('.open')` names a class); a
/// `document.` inside an earlier chain is skipped, which keeps the scan linear.
fn dom_call(l: &str) -> bool {
    let b = l.as_bytes();
    let mut path_end = 0;
    super::lit_offsets(l, "document.").any(|p| {
        if p < path_end {
            return false;
        }
        // The last member (`m..j` once the loop ends).
        let (mut j, mut m) = (p + 8, p + 9);
        while let Some(&c) = b.get(j) {
            if c == b'.' {
                m = j + 1;
            } else if matches!(c, b'(' | b'[') {
                match b
                    .get(j..(j + 64).min(b.len()))
                    .and_then(|w| w.iter().position(|c| matches!(c, b')' | b']')))
                {
                    Some(k) if b.get(j + k + 1) == Some(&b'.') => j += k,
                    _ => break,
                }
            } else if !(c.is_ascii_alphanumeric() || c == b'_') {
                break;
            }
            j += 1;
        }
        path_end = j;
        let member = l.get(m..j).unwrap_or_default();
        let mut k = j;
        while b.get(k) == Some(&b' ') {
            k += 1;
        }
        (b.get(k) == Some(&b'(') || b.get(k) == Some(&b'=') && b.get(k + 1) != Some(&b'='))
            && (DOM_SINKS.contains(member) || member.len() > 2 && member.starts_with("on"))
            && (member != "createelement" || {
                // `createElement('script')`: the name right after `('`.
                let mut k = j + 2;
                while b.get(k).is_some_and(u8::is_ascii_alphanumeric) {
                    k += 1;
                }
                !matches!(b.get(j..j + 2), Some([b'(', b'\'' | b'"' | b'`']))
                    || active_tag(l.get(j + 2..k).unwrap_or_default())
            })
    })
}

/// XML that makes the parser fetch documents: XInclude and schema locations.
fn xml_include(l: &str) -> bool {
    l.has_lit("xmlns") && (l.has_lit(":include") || l.has_lit("schemalocation"))
}

/// JSFuck-style code: built only from `[]()!+`.
fn jsfuck(l: &str) -> bool {
    let c = compact(l);
    let symbols = c.bytes().filter(|b| b"[]()!+".contains(b)).count();
    c.len() >= 5 && c.has_lit("[]") && symbols * 10 >= c.len() * 9
}

/// Tagged-template calls (``f.call`...` ``) and the DOM reached through comments or brackets
/// (`document/**/.cookie`, `(document)["cookie"]`).
fn obfuscated_js(l: &str) -> bool {
    let mut stripped = String::with_capacity(l.len());
    let mut rest = l;
    while let Some(p) = rest.find_lit("/*") {
        stripped.push_str(rest.get(..p).unwrap_or_default());
        rest = rest
            .get(p + 2..)
            .and_then(|r| r.find_lit("*/").map(|e| r.get(e + 2..).unwrap_or_default()))
            .unwrap_or_default();
    }
    stripped.push_str(rest);
    let c = compact(&stripped).replace("(document)", "document");
    OBFUSCATED_JS_NEEDLES.iter().any(|n| c.has_lit(n))
}

/// What [`obfuscated_js`] looks for in the compacted value. Building it only removes
/// characters, so a value lacking a byte of every needle holds none of them.
const OBFUSCATED_JS_NEEDLES: [&str; 6] = [
    ".call`",
    ".apply`",
    ".bind`",
    "document.cookie",
    "document[",
    "document.domain",
];

fn scan_input(input: &Input, out: &mut Findings) {
    let l = input.lower.as_str();
    let hit = |out: &mut Findings, rule| out.hit(input, CAT, rule, Severity::Critical, 1);
    if input.bytes.has(b'<') {
        for (name, attrs) in tags(l) {
            let base = tag_base(name);
            if active_tag(base) {
                // Tags that run or load code by themselves count bare; the others (`<form>`,
                // `<style>`, `<link>` named in prose) need an attribute at paranoia 1.
                // Frames and plug-ins load only what an attribute names (`<iframe>` in "use
                // the <iframe> sandbox attribute" loads nothing), and an `<svg>` or `<math>`
                // runs script only through a handler, a link or a child (`<svg width="10">`
                // drawing an icon does not): those need such an attribute.
                let first = attrs.split_char('>').next().unwrap_or_default();
                let has_attr = first.has_char('=');
                let loads = |a: &str| {
                    [
                        "src",
                        "data",
                        "code",
                        "href",
                        "srcdoc",
                        "action",
                        "formaction",
                        "on",
                    ]
                    .iter()
                    .any(|n| {
                        a.match_indices(n).any(|(p, _)| {
                            let before = p.checked_sub(1).and_then(|i| a.as_bytes().get(i));
                            before.is_none_or(|c| !c.is_ascii_alphanumeric() && *c != b'-')
                        })
                    }) || a.has_lit("javascript")
                        || a.has_lit("data:")
                };
                let needs_loading_attr = matches!(
                    base,
                    "iframe" | "frame" | "object" | "embed" | "applet" | "svg" | "math"
                );
                let level = if needs_loading_attr {
                    if loads(first) || first.trim_start().starts_with('/') {
                        1
                    } else {
                        2
                    }
                } else if (SELF_ACTIVE_TAGS.iter().any(|t| *t == base) || has_attr)
                    && !named_in_prose(l, first, attrs)
                {
                    1
                } else {
                    2
                };
                out.hit(input, CAT, "xss.active-tag", Severity::Critical, level);
                if level == 1 {
                    break;
                }
            }
            // Every handler is `on<name>` then `=`: a tag's attributes without a `=` (the
            // ` on` of each `<a on` of a hostile run, ~800 per window) hold none.
            if attrs.bytes().any(|c| c == b'=') && event_handler(attrs, false) {
                hit(out, "xss.tag-event-handler");
                break;
            }
            if (PASSIVE_TAG_SET.contains(base) || name.has_char(':'))
                && (script_url(attrs)
                    || attrs.has_lit("src=") && attrs.has_lit("javascript")
                    || css_script(attrs))
            {
                hit(out, "xss.tag-script-url");
                break;
            }
        }
    }
    // Checks run only when the bytes they need are in the value (`input.bytes`).
    let set = &input.bytes;
    if set.has_all(b"on=")
        && event_handler(l, true)
        && (input.bytes.has(b'"')
            || input.bytes.has(b'\'')
            || input.bytes.has(b'<')
            || input.bytes.has(b'/')
            || input.bytes.has(b'>'))
    {
        hit(out, "xss.event-handler");
    }
    let trimmed = input.value.trim_start();
    if trimmed.len() < input.value.len()
        && l.trim_start().starts_with("on")
        && event_handler(l.trim_start(), false)
    {
        hit(out, "xss.event-handler");
    }
    if input.bytes.has(b'<') && out.wants(CAT, 2) {
        // Paranoia 2: any tag carrying an attribute (`<a href="x"`).
        if tags(l).any(|(_, attrs)| {
            attrs.split_char('>').next().is_some_and(|a| {
                a.first_char()
                    .is_some_and(|c| c.is_ascii_whitespace() || c == '/')
                    && a.has_char('=')
            })
        }) {
            out.hit(input, CAT, "xss.tag-attribute", Severity::Critical, 2);
        }
    }
    // A tag name spelled with spaces between its letters (`<f o r m`), which some parsers
    // join; prose never writes three single letters after a `<`.
    if input.bytes.has(b'<') && spaced_tag(l) {
        hit(out, "xss.spaced-tag");
    }
    // Paranoia 3: any HTML element (`<b>`, `<p class=x>`); paranoia 4: anything a browser
    // would start parsing as markup (`<x`, `</`, `<!`, `<?`).
    if input.bytes.has(b'<') && out.wants(CAT, 3) {
        if tags(l).any(|(name, _)| {
            let base = tag_base(name);
            active_tag(base) || PASSIVE_TAG_SET.contains(base)
        }) {
            out.hit(input, CAT, "xss.html-tag", Severity::Critical, 3);
        }
        let b = l.as_bytes();
        if super::byte_offsets(l, b'<').any(|p| {
            b.get(p + 1)
                .is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, b'/' | b'!' | b'?'))
        }) {
            out.hit(input, CAT, "xss.markup", Severity::Critical, 4);
        }
    }
    // Paranoia 2: closing an HTML comment (`-->`) to leave a comment context.
    if out.wants(CAT, 2) && input.lower_has("-->") {
        out.hit(input, CAT, "xss.comment-close", Severity::Critical, 2);
    }
    if input.bytes.has(0xbc) && low_byte_tag(l) {
        hit(out, "xss.low-byte-tag");
    }
    if input.bytes.has(b'<') && input.may_contain("xmlns") && xml_include(l) {
        hit(out, "xss.xml-include");
    }
    if input.bytes.has(b':') && script_url(l) {
        hit(out, "xss.script-url");
    }
    // The needles' bytes first: `compact` only removes characters, so a value lacking a byte
    // of every needle (a run of punctuation) holds none of them, without the compacted copy.
    if (set.has(b'(') || set.has(b'-') || set.has(b'@'))
        && CSS_NEEDLES.iter().any(|n| input.may_contain(n))
        && css_script(l)
    {
        hit(out, "xss.css-script");
    }
    if input.lower_has("+adw-") && input.lower_has("+ad4-") {
        hit(out, "xss.utf7");
    }
    // Both read a compacted copy, which holds no byte `l` lacks: `jsfuck` needs `[]`, and
    // `obfuscated_js` one of its needles (a run of punctuation has no letters for them).
    if (input.bytes.has(b'[') || input.bytes.has(b'`') || input.lower_has("/*"))
        && (input.may_contain("[]") && jsfuck(l)
            || OBFUSCATED_JS_NEEDLES.iter().any(|n| input.may_contain(n)) && obfuscated_js(l))
    {
        hit(out, "xss.obfuscated-js");
    }
    if (set.has(b'(')
        || set.has(b'`')
        || set.has(b'[')
        || set.has_all(b"document.")
        || set.has_all(b".innerhtml")
        || set.has_all(b"window.location"))
        && js_sink(l)
    {
        hit(out, "xss.js-sink");
    }
}

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
        if input.location.source == Source::Path {
            if tags(&input.lower).any(|(n, _)| active_tag(tag_base(n))) {
                out.hit(input, CAT, "xss.active-tag", Severity::Critical, 1);
            }
            continue;
        }
        if super::is_plain_input(input) && !input.bytes.has(b'.') {
            continue;
        }
        scan_input(input, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte screen before `css_script` at its body call site never hides a hit: whenever
    /// it finds a needle, the value's byte set holds every byte of one.
    #[test]
    fn css_needle_screen_keeps_every_hit() {
        let pieces = [
            ":",
            "expression",
            "(",
            "-moz-",
            "binding",
            "behavior",
            "url",
            "javascript",
            "@",
            "import",
            " ",
            "\t",
            "\u{7}",
            "x",
            "\u{a0}",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut hits = 0;
        for _ in 0..100_000 {
            let mut l = String::new();
            seed = crate::detect::xorshift(seed);
            let mut r = seed;
            for _ in 0..(r % 8) + 1 {
                r = r.rotate_left(9) ^ seed.wrapping_mul(0x5851_f42d);
                l.push_str(pieces[(r as usize >> 5) % pieces.len()]);
            }
            if css_script(&l) {
                hits += 1;
                let set = crate::extract::ByteSet::of(l.as_bytes());
                assert!(
                    CSS_NEEDLES.iter().any(|n| set.has_all(n.as_bytes())),
                    "{l:?}"
                );
            }
        }
        assert!(hits > 100, "{hits}");
    }

    /// `script_url` as it was (the rest of the value re-read per scheme match), kept to prove
    /// the version with precomputed last positions gives the same answers.
    fn script_url_reference(l: &str) -> bool {
        // Every scheme below ends with `:`, and `compact` only removes characters.
        if !l.contains(':') {
            return false;
        }
        let c = compact(l);
        for scheme in ["javascript:", "vbscript:", "livescript:", "mocha:"] {
            let mut from = 0;
            while let Some(p) = c.get(from..).and_then(|h| h.find(scheme)).map(|p| p + from) {
                let rest = c.get(p + scheme.len()..).unwrap_or_default();
                let code_like = rest.contains('(')
                    || rest.contains('=')
                    || rest.contains('`')
                    || rest.starts_with("//")
                    || rest.contains('\\')
                    || SINKS.iter().any(|s| rest.starts_with(s));
                // The raw text must not have a space right after the colon: "JavaScript: The
                // Good Parts" is a title, not a URL. Characters hidden inside the scheme are an
                // evasion whatever follows.
                let raw_colon_space = l
                    .match_indices(scheme)
                    .any(|(q, _)| l.as_bytes().get(q + scheme.len()) == Some(&b' '));
                let hidden = !l.contains(scheme);
                if hidden
                    || scheme != "javascript:" && !rest.is_empty()
                    || !rest.is_empty() && code_like && !raw_colon_space
                {
                    return true;
                }
                from = p + 1;
            }
        }
        let data_markup = c.find_lit("data:").is_some_and(|p| {
            c.get(p..).is_some_and(|r| {
                r.get(..48.min(r.len())).is_some_and(|w| w.contains(',')) && r.contains('<')
            })
        });
        data_markup
            || c.has_lit("data:text/html")
            || c.has_lit("data:image/svg")
            || c.has_lit("data:application/x-")
            || c.has_lit("data:text/javascript")
    }

    #[test]
    fn script_url_matches_the_rescanning_version() {
        const PIECES: &[&str] = &[
            "javascript:",
            "java",
            "script:",
            "vbscript:",
            "mocha:",
            "data:",
            "text/html",
            ",",
            "<",
            "(",
            "=",
            "`",
            "\\",
            "//",
            " ",
            "\t",
            "alert",
            "x",
            "é",
            ":",
        ];
        let mut seed = 0x0bad_5eed_1234_5678u64;
        let mut hits = 0;
        for _ in 0..30_000 {
            let mut l = String::new();
            seed = crate::detect::xorshift(seed);
            for k in 0..(seed % 12) {
                l.push_str(PIECES[(seed >> (k * 5)) as usize % PIECES.len()]);
            }
            assert_eq!(script_url(&l), script_url_reference(&l), "{l:?}");
            hits += usize::from(script_url(&l));
        }
        assert!(hits > 100, "{hits} positive cases");
    }

    fn any(l: &str) -> bool {
        tags(l).any(|(n, a)| active_tag(tag_base(n)) || event_handler(a, false))
            || (event_handler(l, true) && l.contains(['"', '\'', '<', '/', '>']))
            || script_url(l)
            || css_script(l)
            || js_sink(l)
    }

    #[test]
    fn attacks() {
        for s in [
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "\"><svg/onload=confirm`1`>",
            "< x:script",
            "<v:vmlframe src=\"foo.com/sup.fml\"/>",
            "java\tscript:alert(1)",
            "\" onmouseover=\"alert(1)",
            "<div style=\"width:expression(alert(1))\">",
            "self[\"\\x24\"]",
            "eval('2 + 2')",
            "<?import implementation=",
            "<iframe src=//evil>",
            "ja\tvascript: ",
            "vbscript:msgbox 1",
            "document.body.appendchild(x)",
            "data: , <x>",
            "javascript:/*-/*`/*\\`/*'/*\"/**/(/* */onerror=alert('THM') )//",
        ] {
            assert!(any(&s.ascii_lower()), "{s}");
        }
    }

    #[test]
    fn ordinary_text() {
        for s in [
            "a < b and c > d",
            "JavaScript: The Good Parts",
            "I am online=yes",
            "set an alert(s) for me",
            "x<3 y",
            "Once upon a time",
            "the button is on the left",
        ] {
            assert!(!any(&s.ascii_lower()), "{s}");
        }
    }

    /// The `=` screen before `event_handler` at the tag call site hides no hit: every
    /// attribute text it finds a handler in holds a `=` (generated attribute texts over the
    /// handler's alphabet, and every hostile generator's run).
    #[test]
    fn event_handlers_hold_an_equals_sign() {
        const PIECES: [&str; 10] = ["on", "click", "load", "=", " ", "/", "\"", "x", "-", "\t"];
        let mut texts: Vec<String> = crate::hostile::GENERATORS
            .iter()
            .map(|(_, u)| crate::hostile::repeat(u, 600))
            .collect();
        let mut frontier = vec![String::new()];
        for _ in 0..5 {
            let mut next = Vec::new();
            for t in &frontier {
                for p in PIECES {
                    next.push(format!("{t}{p}"));
                }
            }
            texts.extend(next.iter().cloned());
            frontier = next;
        }
        let mut found = 0;
        for t in &texts {
            if event_handler(t, false) {
                found += 1;
                assert!(t.contains('='), "{t:?}");
            }
        }
        assert!(found > 100, "{found}");
    }
}

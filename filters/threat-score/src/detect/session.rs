//! Session fixation (CRS 943): a request that sets a session identifier through a parameter
//! (so a victim can be made to log in with the attacker's id), recognised by the naming
//! conventions of session cookies across frameworks; or a `Set-Cookie` smuggled into a value.

use super::Findings;
use crate::detect::Lit as _;
use crate::detect::Outlined as _;
use crate::extract::{ByteSet, Prepared};
use crate::model::{Category, Severity, Source};

const CAT: Category = Category::SessionFixation;

/// Session id parameter names of the big frameworks (Java, PHP, ASP, ColdFusion).
const FRAMEWORK_IDS: &[&str] = &[
    "jsessionid",
    "phpsessid",
    "asp.net_sessionid",
    "cfid",
    "cftoken",
    "aspsessionid",
];

/// Whether `name` follows a session-cookie naming convention.
pub fn session_like(name: &str) -> bool {
    session_like_lower(&name.ascii_lower())
}

/// [`session_like`] of a name already lowercased (an input's `lower`): no copy per name.
fn session_like_lower(n: &str) -> bool {
    n.has_lit("sess")
        || n == "sid"
        || n.ends_with(".sid")
        || n.ends_with("_sid")
        || n.ends_with("-sid")
        || (n.has_lit("token")
            && (n.has_lit("session")
                || n.has_lit("login")
                || n.has_lit("auth")
                || n.has_lit("shiny")))
        || FRAMEWORK_IDS.iter().any(|f| n.starts_with(f))
        || n == "cakephp"
}

/// The letters of a word as a byte set ([`ByteSet::is_subset_of`] of a value's set: whether
/// the value holds them all).
const fn letters(w: &[u8]) -> ByteSet {
    let mut words = [0u64; 4];
    let mut i = 0;
    while i < w.len() {
        let c = w[i] as usize;
        words[c >> 6] |= 1 << (c & 63);
        i += 1;
    }
    ByteSet::from_words(words)
}

/// Whether a name whose lowercase form holds the bytes `b` may be [`session_like`]: every
/// name it accepts holds the letters of `se` (`sess` and the framework ids with it), `sid`
/// (`sid`, `.sid`...), `token`, `cfid` or `cakephp`. The byte set rules most names out first
/// (`sku`, `qty`, `filter7`: a JSON body's member names repeat once per object), one word
/// test per set.
fn may_be_session_name(b: &ByteSet) -> bool {
    // Each holds `s` (`se`, `sid`), `k` (`token`, `cakephp`) or `d` (`cfid`): most names
    // (`name`, `qty`, `price`) hold none, one test.
    b.intersects(&SKD)
        && [&SE, &SID, &TOKEN, &CFID, &CAKEPHP]
            .iter()
            .any(|need| need.is_subset_of(b))
}

/// Whether the lowercase token `n` (`a-z 0-9 -`, as the extractor's inert screen reads it)
/// may name a session id in any convention [`session_like`] knows: each holds an `s` (`sess`,
/// `sid`), a `k` (`token`, `cakephp`), or opens with `cfid`. The extractor leaves names that
/// cannot out at paranoia 1 without building their byte set ([`may_be_session_name`] asks the
/// same of a name it has one for).
pub(crate) fn may_name_session(n: &str) -> bool {
    n.bytes().any(|c| c == b's' || c == b'k') || n.starts_with("cfid")
}

const SKD: ByteSet = letters(b"skd");
const SE: ByteSet = letters(b"se");
const SID: ByteSet = letters(b"sid");
const TOKEN: ByteSet = letters(b"token");
const CFID: ByteSet = letters(b"cfid");
const CAKEPHP: ByteSet = letters(b"cakephp");
const SESS_EQ: ByteSet = letters(b"sess=");

fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let host = rest.split_first_any(b"/?#")?;
    let host = host.rsplit_first('@')?;
    Some(host.split_char(':').next()?.ascii_lower())
}

pub(crate) fn scan(p: &Prepared<'_>, out: &mut Findings) {
    if !out.wants(CAT, 1) {
        return;
    }
    let referer = p.headers.referer;
    let offsite = referer.and_then(host_of).is_some_and(|h| {
        // The own host lowercased only for a request with a referer (most have none).
        let own = p
            .headers
            .host()
            .map(|h| h.split_char(':').next().unwrap_or(h).ascii_lower());
        own.as_deref()
            .is_none_or(|o| h != o && !h.ends_with(&format!(".{o}")))
    });
    // One walk over the values (names and values together; the two walks through
    // `inputs_of` cost ~100 Wasm instructions a value on a body of a hundred values, for a
    // byte-set test each). The names' hits are reported as they are met; `session.set-cookie`
    // after the walk, at its first value, so the findings come in the order they did when
    // the values were walked after the names.
    let mut set_cookie = None;
    for input in &p.inputs {
        match input.location.source {
            Source::ArgName => {
                // `lower` is the name lowercased, as `session_like` compares it.
                let n = input.lower.as_str();
                if !may_be_session_name(&input.bytes) || !session_like_lower(n) {
                    continue;
                }
                if offsite {
                    out.hit(input, CAT, "session.id-from-offsite", Severity::Critical, 1);
                }
                if referer.is_none() && FRAMEWORK_IDS.iter().any(|f| n.starts_with(f)) {
                    out.hit(input, CAT, "session.id-in-parameter", Severity::Critical, 1);
                }
            }
            // Every rule needs `sess` and `=`: the byte set rules most values out first.
            // The first value that sets a cookie and is not excluded is the one reported
            // (`Findings::hit` skips an excluded one and keeps the first per rule).
            Source::Arg | Source::Cookie
                if set_cookie.is_none()
                    && SESS_EQ.is_subset_of(&input.bytes)
                    && !input.excluded.contains(CAT) =>
            {
                let l = &input.lower;
                if l.has_char('=')
                    && (l.has_lit("document.cookie")
                        || l.has_lit("http-equiv")
                        || l.has_lit("set-cookie"))
                    && l.has_lit("sess")
                {
                    set_cookie = Some(input);
                }
            }
            _ => {}
        }
    }
    if let Some(input) = set_cookie {
        out.hit(input, CAT, "session.set-cookie", Severity::Critical, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for n in [
            "jsessionid",
            "PHPSESSid",
            "sails.sid",
            "ci_session",
            "next-auth.session-token",
            "koa:sess",
            "cftoken",
            "meteor_login_token",
        ] {
            assert!(session_like(n), "{n}");
        }
        for n in ["username", "password", "q", "sort"] {
            assert!(!session_like(n), "{n}");
        }
    }

    /// The byte-set screen lets through every name `session_like` accepts: the names above,
    /// and every name built from pieces of the conventions, lowercase and capitalised.
    #[test]
    fn name_screen_keeps_every_session_name() {
        let pieces = [
            "sess",
            "sid",
            ".",
            "_",
            "-",
            "token",
            "session",
            "login",
            "auth",
            "shiny",
            "cf",
            "id",
            "jsessionid",
            "phpsessid",
            "asp.net_sessionid",
            "cfid",
            "cftoken",
            "aspsessionid",
            "cakephp",
            "s",
            "e",
            "sku",
            "x",
            "ion",
        ];
        let mut state: u64 = 0x5851_f42d_4c95_7f2d;
        let mut next = |n: usize| {
            state = crate::detect::xorshift(state);
            (state >> 33) as usize % n
        };
        let mut accepted = 0;
        for i in 0..50_000 {
            let mut name = String::new();
            for _ in 0..1 + next(4) {
                name.push_str(pieces[next(pieces.len())]);
            }
            if i % 2 == 1 {
                name = name.to_ascii_uppercase();
            }
            let lower = name.to_ascii_lowercase();
            let bytes = ByteSet::of(lower.as_bytes());
            if session_like(&name) {
                accepted += 1;
                assert!(may_be_session_name(&bytes), "{name:?}");
            }
            assert_eq!(
                SESS_EQ.is_subset_of(&bytes),
                ["s", "e", "="].iter().all(|c| lower.contains(c)),
                "{name:?}"
            );
        }
        assert!(accepted > 1000, "{accepted}");
        for n in ["sku", "qty", "price", "filter7", "q"] {
            assert!(!may_be_session_name(&ByteSet::of(n.as_bytes())), "{n}");
        }
    }

    #[test]
    fn hosts() {
        assert_eq!(
            host_of("https://evil.example/x").as_deref(),
            Some("evil.example")
        );
        assert_eq!(host_of("http"), None);
    }
}

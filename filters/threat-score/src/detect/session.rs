//! Session fixation (CRS 943): a request that sets a session identifier through a parameter
//! (so a victim can be made to log in with the attacker's id), recognised by the naming
//! conventions of session cookies across frameworks; or a `Set-Cookie` smuggled into a value.

use super::Findings;
use crate::detect::Lit as _;
use crate::detect::Outlined as _;
use crate::extract::Prepared;
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
    for input in p.inputs_of(const { crate::extract::source_mask(&[Source::ArgName]) }) {
        // `lower` is the name lowercased, as `session_like` compares it.
        let n = input.lower.as_str();
        // Every name `session_like` accepts holds an `s` (`sess`, `sid`, the framework
        // ids), `token`, `cfid` or `cakephp`: the byte set rules most names out first.
        let b = &input.bytes;
        let may = b.has(b's') || b.has_all(b"token") || b.has_all(b"cfid") || b.has_all(b"cakephp");
        if !may || !session_like_lower(n) {
            continue;
        }
        if offsite {
            out.hit(input, CAT, "session.id-from-offsite", Severity::Critical, 1);
        }
        if referer.is_none() && FRAMEWORK_IDS.iter().any(|f| n.starts_with(f)) {
            out.hit(input, CAT, "session.id-in-parameter", Severity::Critical, 1);
        }
    }
    for input in p.inputs_of(const { crate::extract::source_mask(&[Source::Arg, Source::Cookie]) })
    {
        let l = &input.lower;
        // Every rule needs `sess` and `=`: the byte set rules most values out first.
        if !(input.may_contain("sess=") && l.has_char('=')) {
            continue;
        }
        if (l.has_lit("document.cookie") || l.has_lit("http-equiv") || l.has_lit("set-cookie"))
            && l.has_lit("sess")
            && l.has_char('=')
        {
            out.hit(input, CAT, "session.set-cookie", Severity::Critical, 1);
        }
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

    #[test]
    fn hosts() {
        assert_eq!(
            host_of("https://evil.example/x").as_deref(),
            Some("evil.example")
        );
        assert_eq!(host_of("http"), None);
    }
}

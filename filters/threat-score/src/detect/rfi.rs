//! Remote file inclusion (CRS 931): a parameter holding a URL whose shape only inclusion
//! attacks use: a literal IP host, a trailing `?` that cuts off the suffix the application
//! appends, or a remote URL in a parameter whose name says it is a path or an include. At
//! paranoia 2, any URL pointing to another host than the request's.

use super::{Findings, INJECTION};
use crate::detect::Outlined as _;
use crate::extract::{Input, Prepared};
use crate::model::{Category, Severity, Source};

const CAT: Category = Category::Rfi;

const SCHEMES: &[&str] = &[
    "http://", "https://", "ftp://", "ftps://", "file://", "smb://", "\\\\",
];

/// Parameter names that hold server-side paths in PHP apps (`_CONF[path]`,
/// `mosConfig_absolute_path`, `include_dir`...).
///
/// Compared per name part (split at `_`, `-`, `.`, `[`, `]`...): a part that is the word,
/// ends with it (`basedir`, `filepath`) or, for words of four letters or more, starts with
/// it (`pathname`, `config`). A substring elsewhere is another word: `redirect_uri` holds
/// `dir`, `incoming` holds `inc`.
pub(crate) fn path_like_name(name: &str) -> bool {
    let n = name.ascii_lower();
    n.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|part| !part.is_empty())
        .any(|part| {
            [
                "path", "dir", "include", "inc", "root", "template", "tpl", "module", "lib",
                "require", "load", "conf",
            ]
            .iter()
            .any(|w| part == *w || part.ends_with(w) || w.len() >= 4 && part.starts_with(w))
        })
}

/// The host of a URL at the start of `v` (after the scheme), lowercase.
fn url_host(v: &str) -> Option<(&'static str, String)> {
    let l = v.trim_start().ascii_lower();
    let scheme = SCHEMES.iter().find(|s| l.starts_with(**s))?;
    let rest = l.get(scheme.len()..)?;
    // A UNC path (`\\host\share\x.dll`) names its host up to the next backslash, with no
    // user part; `\\host@SSL@443\x` and `\\host@80\x` are WebDAV's spellings of a port.
    if *scheme == "\\\\" {
        let end = rest.find_any(b"\\/@").unwrap_or(rest.len());
        return Some((scheme, rest.get(..end).unwrap_or_default().to_string()));
    }
    let rest = rest.rsplit_once_char('@').map_or(rest, |(_, h)| {
        if h.has_char('/') || !rest.has_char('/') {
            h
        } else {
            rest
        }
    });
    let host = if let Some(v6) = rest.strip_prefix('[') {
        v6.split_char(']').next().unwrap_or_default().to_string()
    } else {
        let end = rest.find_any(b"/?#").unwrap_or(rest.len());
        let hostport = rest.get(..end).unwrap_or_default();
        // IPv6 without brackets has several colons; keep it whole.
        if hostport.count_char(':') > 1 {
            hostport.to_string()
        } else {
            hostport
                .split_char(':')
                .next()
                .unwrap_or_default()
                .to_string()
        }
    };
    Some((scheme, host))
}

/// A value starting with a URL scheme used for server-side fetches rather than links, or an
/// absolute URL with an explicit port.
fn odd_scheme(l: &str) -> bool {
    const ODD: &[&str] = &[
        "gopher:",
        "jar:",
        "dict:",
        "local_file:",
        "netdoc:",
        "tftp:",
        "ldap:",
        "ldaps:",
        "url:",
        "file:",
        "sftp:",
        "smb:",
        "expect:",
        "glob:",
        "imap:",
        "pop3:",
        "acap:",
        "rtmp:",
        "irc:",
        "ssh:",
        "telnet:",
    ];
    let t = l.trim_start();
    ODD.iter().any(|s| t.starts_with(s))
        || t.split_once("://").is_some_and(|(scheme, rest)| {
            let host = rest.split_first_any(b"/?#").unwrap_or_default();
            scheme.starts_with("http")
                && !host.starts_with('[')
                && host.rsplit_once_char(':').is_some_and(|(_, port)| {
                    !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
                })
        })
}

/// `gopher://`, `dict://`, `ldap://`... whose host is an IP literal or `localhost`.
fn server_scheme_to_address(l: &str) -> bool {
    let Some((scheme, rest)) = l.trim_start().split_once("://") else {
        return false;
    };
    if matches!(scheme, "http" | "https" | "ftp" | "ftps" | "file") {
        return false;
    }
    let authority = rest.split_first_any(b"/?#").unwrap_or_default();
    let host = authority
        .rsplit_once_char('@')
        .map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host.strip_prefix('[') {
        v6.split_char(']').next().unwrap_or_default()
    } else {
        host.split_char(':').next().unwrap_or_default()
    };
    host == "localhost" || is_ip(host)
}

/// `//host.tld/...`: two slashes, then a host name with a dot.
fn protocol_relative(l: &str) -> bool {
    l.strip_prefix("//").is_some_and(|r| {
        let host = r.split_first_any(b"/?#").unwrap_or_default();
        host.has_char('.')
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
    })
}

fn is_ip(host: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_ok()
}

fn scan_input(input: &Input, request_host: Option<&str>, out: &mut Findings) {
    let v = input.value.trim();
    let l = input.lower.trim();
    if matches!(l, "http?" | "https?" | "ftp?" | "ftps?" | "file?") {
        out.hit(
            input,
            CAT,
            "rfi.trailing-question-mark",
            Severity::Critical,
            1,
        );
        return;
    }
    // Paranoia 2: URL schemes a web parameter has no business carrying (SSRF and
    // inclusion through `gopher://`, `jar:`, `dict://`, `local_file://`...).
    if l.has_char(':') && odd_scheme(l) {
        out.hit(input, CAT, "rfi.unusual-scheme", Severity::Critical, 2);
        // Paranoia 1: such a scheme aimed at a loopback or literal address
        // (`gopher://127.0.0.1:6379/_SET`, `dict://10.0.0.5:11211/stats`) is a request
        // forged for a service behind the server.
        if server_scheme_to_address(l) {
            out.hit(
                input,
                CAT,
                "rfi.unusual-scheme-address",
                Severity::Critical,
                1,
            );
        }
    }
    // Paranoia 4: a protocol-relative URL (`//cdn.example/x.js`), which a fetch completes
    // with the page's scheme.
    if out.wants(CAT, 4) && input.location.source == Source::Arg && protocol_relative(l) {
        out.hit(input, CAT, "rfi.protocol-relative", Severity::Critical, 4);
    }
    let Some((scheme, host)) = url_host(v) else {
        return;
    };
    // A UNC path with a WebDAV port (`\\host@SSL@443\x`, `\\host@80\x`): Windows fetches
    // it over HTTP and answers the server's NTLM challenge (hash theft and relay); file
    // shares are written without one.
    if scheme == "\\\\" && l.get(2 + host.len()..).is_some_and(|r| r.starts_with('@')) {
        out.hit(input, CAT, "rfi.unc-webdav", Severity::Critical, 1);
    }
    // Paranoia 3: any URL in an argument, even to this host.
    if input.location.source == Source::Arg {
        out.hit(input, CAT, "rfi.url-argument", Severity::Critical, 3);
    }
    if is_ip(&host) {
        out.hit(input, CAT, "rfi.ip-host", Severity::Critical, 1);
    }
    if l.ends_with('?') && !host.is_empty() {
        out.hit(
            input,
            CAT,
            "rfi.trailing-question-mark",
            Severity::Critical,
            1,
        );
    }
    if input.location.source == Source::Arg && path_like_name(&input.location.name) {
        out.hit(input, CAT, "rfi.include-parameter", Severity::Critical, 1);
    }
    let own = request_host.map(|h| h.split_char(':').next().unwrap_or(h).ascii_lower());
    if !host.is_empty()
        && own.as_deref() != Some(host.as_str())
        && input.location.source == Source::Arg
    {
        out.hit(input, CAT, "rfi.off-domain", Severity::Critical, 2);
    }
}

pub(crate) fn scan(p: &Prepared<'_>, out: &mut Findings) {
    if !out.wants(CAT, 1) {
        return;
    }
    let host = p.headers.host();
    for input in p.inputs_of(INJECTION) {
        if out.decided() {
            break;
        }
        if input.location.source == Source::Header {
            continue;
        }
        scan_input(input, host, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(
            url_host("http://1.2.3.4/x").map(|h| h.1).as_deref(),
            Some("1.2.3.4")
        );
        assert_eq!(
            url_host("https://[2001:db8::1]/g.php")
                .map(|h| h.1)
                .as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(
            url_host("https://2001:41d0:701:1100::29c8/gecko.php")
                .map(|h| h.1)
                .as_deref(),
            Some("2001:41d0:701:1100::29c8")
        );
        assert_eq!(
            url_host("ftp://u:p@host:21/x").map(|h| h.1).as_deref(),
            Some("host")
        );
        assert!(url_host("not a url").is_none());
        assert!(is_ip("66.240.183.75"));
        assert!(!is_ip("example.com"));
    }

    #[test]
    fn names() {
        assert!(path_like_name("mosConfig_absolute_path"));
        assert!(path_like_name("_CONF[path]"));
        assert!(!path_like_name("q"));
    }
}

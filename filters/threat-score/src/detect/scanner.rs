//! Security scanners (CRS 913), recognised by the product tokens of their `User-Agent`
//! (`Nikto/2.1`, `sqlmap/1.5`, `Mozilla/5.0 (... Nmap Scripting Engine ...)`): the UA is
//! split into words and each word compared with the scanner names, so substrings of ordinary
//! products do not match.

use super::Findings;
use crate::extract::Prepared;
use crate::model::{Category, Severity, Source};

const CAT: Category = Category::Scanner;

/// Scanner and attack-tool product names (lowercase words).
const SCANNERS: &[&str] = &[
    "nikto",
    "sqlmap",
    "nmap",
    "nessus",
    "openvas",
    "acunetix",
    "w3af",
    "dirbuster",
    "gobuster",
    "wpscan",
    "masscan",
    "zgrab",
    "nuclei",
    "arachni",
    "havij",
    "zmeu",
    "morfeus",
    "netsparker",
    "skipfish",
    "wfuzz",
    "ffuf",
    "feroxbuster",
    "commix",
    "jaeles",
    "xsstrike",
    "dirb",
    "fimap",
    "bsqlbf",
    "paros",
    "webinspect",
    "appscan",
    "whatweb",
    "jorgee",
    "zap",
    "owasp-zap",
    "burpcollaborator",
    "qualys",
    "metasploit",
    "hydra",
    "medusa",
    "brutus",
    "grabber",
    "joomscan",
    "droopescan",
    "cmsmap",
    "wapiti",
    "vega",
    "webshag",
    "uniscan",
    "sf",
    "nsauditor",
    "detectify",
    "fuzz",
    "httprint",
    "blackwidow",
    "grendel-scan",
    "nasl",
    "openvas-vt",
    "pangolin",
    "sqlninja",
    "sqlsus",
    "absinthe",
    "crimscanner",
    "webvulnscan",
    "internet-ninja",
    "netlab360",
    "l9explore",
    "l9tcpid",
    "zgrab2",
    "censysinspect",
    "xfa1",
    "tsunami",
];

/// The scanner names, sorted once for binary search.
static SCANNER_SET: super::WordSet = super::WordSet::new(SCANNERS);

/// Words of a (lowercased) user agent: split on everything that is not alphanumeric, `-` or
/// `_`. URLs (`(+http://example.com/grabber)`, a bot's info page) are skipped: their path
/// names pages, not the product sending the request. Borrowed: no copy per word.
fn words(ua: &str) -> impl Iterator<Item = &str> + '_ {
    ua.split(|c: char| c.is_ascii_whitespace() || matches!(c, '(' | ')' | ';' | ','))
        .filter(|chunk| !chunk.contains("://"))
        .flat_map(|chunk| {
            chunk.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        })
        .filter(|w| !w.is_empty())
}

/// The first scanner name found in `ua`: its words looked up in [`SCANNERS`] (lowercased
/// once, binary search), or Nmap's scripting engine.
pub fn scanner_in(ua: &str) -> Option<&'static str> {
    let lower = ua.to_ascii_lowercase();
    let product = words(&lower)
        .find(|w| SCANNER_SET.contains(w))
        .and_then(|w| SCANNERS.iter().find(|s| **s == w).copied());
    product.or_else(|| lower.contains("nmap scripting engine").then_some("nmap"))
}

pub(crate) fn scan(p: &Prepared<'_>, out: &mut Findings) {
    if !out.wants(CAT, 1) {
        return;
    }
    for ua in p.request.header_all("user-agent") {
        if scanner_in(ua).is_some() {
            out.hit_request(
                CAT,
                "scanner.user-agent",
                Severity::Critical,
                1,
                Source::Header,
                "user-agent",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::scanner_in;

    #[test]
    fn products() {
        assert_eq!(
            scanner_in("Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000001)"),
            Some("nikto")
        );
        assert_eq!(
            scanner_in("sqlmap/1.7#stable (https://sqlmap.org)"),
            Some("sqlmap")
        );
        assert_eq!(scanner_in("Arachni/0.2.1"), Some("arachni"));
        assert_eq!(
            scanner_in(
                "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)"
            ),
            Some("nmap")
        );
        assert_eq!(scanner_in("Mozilla/5.0 (Macintosh) Safari/605.1.15"), None);
        assert_eq!(scanner_in("urlgrabber/3.10 yum/3.4.3"), None);
        // A product's info URL names a page, not a product.
        assert_eq!(
            scanner_in("Mozilla/5.0 (compatible; ExampleBot/2.1; +https://example.com/nikto)"),
            None
        );
        assert_eq!(
            scanner_in("Mozilla/5.0 (Nikto/2.1.6; +http://cirt.net)"),
            Some("nikto")
        );
        assert_eq!(scanner_in("okhttp/4.12.0"), None);
    }
}

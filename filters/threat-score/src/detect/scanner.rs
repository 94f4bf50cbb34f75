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

/// The scanner names, hashed once; packed, so the names are no `&str` table in the module.
pub(super) static SCANNER_SET: super::WordSet =
    super::WordSet::packed(super::pack_words!(SCANNERS));

/// The longest name in [`SCANNERS`]: a longer word cannot be one.
const LONGEST: usize = 16;

/// The first scanner name found in `ua`: its words looked up in [`SCANNERS`] (each word
/// lowercased into a small buffer, hashed), or Nmap's scripting engine. Runs on every
/// request: one pass over the bytes, no allocation; only words that could be a name (a
/// letter first, at most [`LONGEST`] bytes) are looked up.
pub fn scanner_in(ua: &str) -> Option<&'static str> {
    let b = ua.as_bytes();
    // Chunks between spaces, parentheses, `;` and `,`; a URL chunk (a bot's info page, e.g.
    // `(+http://example.com/grabber)`) names pages, not the product sending the request.
    let separator = |c: u8| c.is_ascii_whitespace() || matches!(c, b'(' | b')' | b';' | b',');
    let mut i = 0;
    while i < b.len() {
        let start = i;
        while b.get(i).is_some_and(|&c| !separator(c)) {
            i += 1;
        }
        let chunk = b.get(start..i).unwrap_or_default();
        i += 1;
        if let Some(s) = scanner_word(chunk) {
            return Some(s);
        }
    }
    contains_ignore_case(b, b"nmap scripting engine").then_some("nmap")
}

/// The scanner named by a word of `chunk` (runs of alphanumerics, `-` and `_`), unless the
/// chunk is a URL.
fn scanner_word(chunk: &[u8]) -> Option<&'static str> {
    let url = chunk
        .iter()
        .enumerate()
        .any(|(k, &c)| c == b':' && chunk.get(k + 1..k + 3) == Some(b"//"));
    if url {
        return None;
    }
    let word_byte = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
    let mut buf = [0u8; LONGEST];
    let mut i = 0;
    while i < chunk.len() {
        let start = i;
        while chunk.get(i).copied().is_some_and(word_byte) {
            i += 1;
        }
        let w = chunk.get(start..i).unwrap_or_default();
        i += 1;
        // Every name starts with a letter (checked in a test).
        if !w.first().is_some_and(u8::is_ascii_alphabetic) {
            continue;
        }
        let Some(lw) = buf.get_mut(..w.len()) else {
            continue;
        };
        lw.copy_from_slice(w);
        lw.make_ascii_lowercase();
        let Ok(lw) = std::str::from_utf8(lw) else {
            continue;
        };
        if let Some(s) = SCANNER_SET.get(lw) {
            return Some(s);
        }
    }
    None
}

/// Whether `needle` (lowercase ASCII, not empty) occurs in `hay`, ASCII case ignored: only
/// windows that start with the needle's first letter are compared.
fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    let Some(&first) = needle.first() else {
        return true;
    };
    hay.windows(needle.len()).any(|w| {
        w.first().is_some_and(|c| c.to_ascii_lowercase() == first) && w.eq_ignore_ascii_case(needle)
    })
}

pub(crate) fn scan(p: &Prepared<'_>, out: &mut Findings) {
    if !out.wants(CAT, 1) {
        return;
    }
    for ua in p.request.header_all("user-agent") {
        // A `User-Agent` of plain browser product tokens names no scanner: every letter
        // run of it is a product word and no scanner name is made of those
        // (`names_are_not_product_words`). The extractor asked the same of it (and leaves
        // such a value out): the answer is remembered, and the word walk below would cost
        // as much again.
        if crate::detect::gate::product_user_agent(ua) {
            continue;
        }
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

    /// `scan` skips product `User-Agent`s (`gate::product_user_agent`): sound only while no scanner
    /// name is made of product words (`gate::product_user_agent`'s letter runs), so that no
    /// product string can hold a scanner name as a word.
    #[test]
    fn names_are_not_product_words() {
        for s in super::SCANNERS {
            let runs: Vec<&str> = s
                .split(|c: char| !c.is_ascii_alphabetic())
                .filter(|r| !r.is_empty())
                .collect();
            let product = runs
                .iter()
                .all(|r| r.len() == 1 || crate::detect::gate::PRODUCT_SET.contains(r));
            assert!(!product, "scanner name {s} is made of product words");
            assert!(!crate::detect::gate::product_user_agent(s), "{s}");
        }
        // Nmap's phrase needs a word no product string has.
        assert!(!crate::detect::gate::PRODUCT_SET.contains("scripting"));
    }

    #[test]
    fn names_are_words_the_scan_looks_up() {
        for s in super::SCANNERS {
            assert!(s.len() <= super::LONGEST, "{s}");
            assert!(s.as_bytes()[0].is_ascii_alphabetic(), "{s}");
            assert_eq!(scanner_in(s), Some(*s), "{s}");
        }
    }

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

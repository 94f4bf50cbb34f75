//! Path globs for [`crate::matcher`]: the `glob` crate's (0.3) `Pattern::new` and
//! `Pattern::matches_with`, ported for the one set of options the matchers use (case-sensitive,
//! `require_literal_separator`, no literal leading dot).
//!
//! Why a port: the crate's matcher carries a case-insensitive branch that calls
//! `char::to_uppercase`, which links Unicode's whole upper-case table (~13 KB) into every module
//! with a path matcher, although the matchers never ask for it (they fold case themselves).
//! The grammar, the error messages and the answers are the crate's: `?` one character, `*` any
//! run within a segment, `**` as a whole segment any number of segments, `[a-z]`/`[!a-z]`
//! classes; a differential test compares both on every short pattern and path over a small
//! alphabet.

/// A compiled glob pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<Token>,
}

/// Why a pattern is not a glob: the position (in characters) and the `glob` crate's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobError {
    pub pos: usize,
    pub msg: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    AnyChar,
    AnySequence,
    AnyRecursiveSequence,
    AnyWithin(Vec<Spec>),
    AnyExcept(Vec<Spec>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spec {
    Single(char),
    Range(char, char),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Match,
    SubPatternDoesntMatch,
    EntirePatternDoesntMatch,
}

const ERROR_WILDCARDS: &str = "wildcards are either regular `*` or recursive `**`";
const ERROR_RECURSIVE_WILDCARDS: &str = "recursive wildcards must form a single path component";
const ERROR_INVALID_RANGE: &str = "invalid range pattern";

fn is_separator(c: char) -> bool {
    c == '/'
}

fn specs(s: &[char]) -> Vec<Spec> {
    let mut cs = Vec::new();
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        match (s.get(i + 1), s.get(i + 2)) {
            (Some('-'), Some(&end)) => {
                cs.push(Spec::Range(c, end));
                i += 3;
            }
            _ => {
                cs.push(Spec::Single(c));
                i += 1;
            }
        }
    }
    cs
}

fn in_specs(specs: &[Spec], c: char) -> bool {
    specs.iter().any(|s| match *s {
        Spec::Single(sc) => c == sc,
        Spec::Range(start, end) => c >= start && c <= end,
    })
}

impl Glob {
    /// Compile `pattern` (the `glob` crate's `Pattern::new`).
    pub fn new(pattern: &str) -> Result<Glob, GlobError> {
        let chars: Vec<char> = pattern.chars().collect();
        let at = |i: usize| chars.get(i).copied();
        let mut tokens = Vec::new();
        let mut i = 0;
        while let Some(c) = at(i) {
            match c {
                '?' => {
                    tokens.push(Token::AnyChar);
                    i += 1;
                }
                '*' => {
                    let old = i;
                    while at(i) == Some('*') {
                        i += 1;
                    }
                    let count = i - old;
                    if count > 2 {
                        return Err(GlobError {
                            pos: old + 2,
                            msg: ERROR_WILDCARDS,
                        });
                    }
                    if count < 2 {
                        tokens.push(Token::AnySequence);
                        continue;
                    }
                    // `**` only as a whole path component (`a/**/b`, `**/b`, `a/**`).
                    let starts_component = i == 2 || at(i - count - 1).is_some_and(is_separator);
                    if !starts_component {
                        return Err(GlobError {
                            pos: old - 1,
                            msg: ERROR_RECURSIVE_WILDCARDS,
                        });
                    }
                    if at(i).is_some_and(is_separator) {
                        i += 1;
                    } else if i != chars.len() {
                        return Err(GlobError {
                            pos: i,
                            msg: ERROR_RECURSIVE_WILDCARDS,
                        });
                    }
                    // Consecutive `**/` collapse into one.
                    if !(tokens.len() > 1 && tokens.last() == Some(&Token::AnyRecursiveSequence)) {
                        tokens.push(Token::AnyRecursiveSequence);
                    }
                }
                '[' => {
                    if i + 4 <= chars.len() && at(i + 1) == Some('!') {
                        if let Some(j) = chars
                            .get(i + 3..)
                            .and_then(|rest| rest.iter().position(|x| *x == ']'))
                        {
                            let cs = specs(chars.get(i + 2..i + 3 + j).unwrap_or_default());
                            tokens.push(Token::AnyExcept(cs));
                            i += j + 4;
                            continue;
                        }
                    } else if i + 3 <= chars.len() && at(i + 1) != Some('!') {
                        if let Some(j) = chars
                            .get(i + 2..)
                            .and_then(|rest| rest.iter().position(|x| *x == ']'))
                        {
                            let cs = specs(chars.get(i + 1..i + 2 + j).unwrap_or_default());
                            tokens.push(Token::AnyWithin(cs));
                            i += j + 3;
                            continue;
                        }
                    }
                    return Err(GlobError {
                        pos: i,
                        msg: ERROR_INVALID_RANGE,
                    });
                }
                c => {
                    tokens.push(Token::Char(c));
                    i += 1;
                }
            }
        }
        Ok(Glob { tokens })
    }

    /// Whether all of `s` matches.
    pub fn matches(&self, s: &str) -> bool {
        self.matches_from(true, s.chars(), 0) == Outcome::Match
    }

    fn matches_from(
        &self,
        mut follows_separator: bool,
        mut file: std::str::Chars,
        i: usize,
    ) -> Outcome {
        for (ti, token) in self.tokens.get(i..).unwrap_or_default().iter().enumerate() {
            match token {
                Token::AnySequence | Token::AnyRecursiveSequence => {
                    match self.matches_from(follows_separator, file.clone(), i + ti + 1) {
                        Outcome::SubPatternDoesntMatch => {}
                        m => return m,
                    }
                    while let Some(c) = file.next() {
                        follows_separator = is_separator(c);
                        match token {
                            Token::AnyRecursiveSequence if !follows_separator => continue,
                            Token::AnySequence if follows_separator => {
                                return Outcome::SubPatternDoesntMatch
                            }
                            _ => {}
                        }
                        match self.matches_from(follows_separator, file.clone(), i + ti + 1) {
                            Outcome::SubPatternDoesntMatch => {}
                            m => return m,
                        }
                    }
                }
                _ => {
                    let Some(c) = file.next() else {
                        return Outcome::EntirePatternDoesntMatch;
                    };
                    let is_sep = is_separator(c);
                    let ok = match token {
                        Token::AnyChar | Token::AnyWithin(_) | Token::AnyExcept(_) if is_sep => {
                            false
                        }
                        Token::AnyChar => true,
                        Token::AnyWithin(specs) => in_specs(specs, c),
                        Token::AnyExcept(specs) => !in_specs(specs, c),
                        Token::Char(c2) => c == *c2,
                        Token::AnySequence | Token::AnyRecursiveSequence => false,
                    };
                    if !ok {
                        return Outcome::SubPatternDoesntMatch;
                    }
                    follows_separator = is_sep;
                }
            }
        }
        if file.next().is_none() {
            Outcome::Match
        } else {
            Outcome::SubPatternDoesntMatch
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Glob;

    fn strings(alphabet: &[char], max: usize) -> Vec<String> {
        let mut all = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..max {
            let next: Vec<String> = last
                .iter()
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            all.extend(next.iter().cloned());
            last = next;
        }
        all
    }

    /// Every pattern of up to 5 characters over glob's metacharacters and a few literals, on
    /// every path of up to 4 characters: the same compile result (error position and message)
    /// and the same answer as the `glob` crate with the matchers' options.
    #[test]
    fn same_as_the_glob_crate() {
        let opts = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: false,
        };
        let paths = strings(&['a', '/', '-', '!'], 4);
        let mut compiled = 0;
        for p in strings(&['a', '/', '*', '?', '[', ']', '!', '-'], 5) {
            let ours = Glob::new(&p);
            let theirs = glob::Pattern::new(&p);
            match (&ours, &theirs) {
                (Ok(g), Ok(pat)) => {
                    compiled += 1;
                    for s in &paths {
                        assert_eq!(g.matches(s), pat.matches_with(s, opts), "{p} on {s}");
                    }
                }
                (Err(e), Err(t)) => assert_eq!((e.pos, e.msg), (t.pos, t.msg), "{p}"),
                _ => panic!("{p}: ours {ours:?}, glob {theirs:?}"),
            }
        }
        assert!(compiled > 10_000, "{compiled}");
    }

    #[test]
    fn examples() {
        let g = |p: &str| Glob::new(p).unwrap_or_else(|e| panic!("{p}: {e:?}"));
        assert!(g("/static/**/*.css").matches("/static/a/b/c.css"));
        assert!(g("/static/**/*.css").matches("/static/c.css"));
        assert!(!g("/static/*.css").matches("/static/a/c.css"));
        assert!(g("/s/[a-c]/[!x]").matches("/s/b/y"));
        assert!(!g("/s/[a-c]/[!x]").matches("/s/d/y"));
        assert!(g("/é/?").matches("/é/ü"));
        assert!(Glob::new("/a***").is_err() && Glob::new("/a**").is_err());
        assert!(Glob::new("/[").is_err());
    }
}

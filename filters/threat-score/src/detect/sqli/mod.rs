//! SQL injection (CRS 942) by tokenizing and fingerprinting, in the spirit of libinjection:
//! each value is tokenized three times (as unquoted SQL, and as if it started inside a
//! single- or a double-quoted string), and the token-type sequence is matched against the
//! shapes injections need: closing the string then extending the query (`' OR 'a'='a`,
//! `admin'--`, `'; DROP`), tautologies (`OR 1=1`), `UNION SELECT`, stacked statements, time
//! and file functions, complete statements. Natural text rarely tokenizes into these shapes,
//! which keeps false positives low without lists of payloads.

pub mod lexer;

use super::{Findings, INJECTION};
use crate::detect::Lit as _;
use crate::detect::Outlined as _;
use crate::extract::{Input, Prepared};
use crate::model::{Category, Severity, Source};
use lexer::{tokenize, Context, Kind, Token};

const CAT: Category = Category::Sqli;

/// Functions that only injections call from a request parameter: delays, file access,
/// error-based extraction, command execution.
const DANGEROUS_FUNCTIONS: &[&str] = &[
    "sleep",
    "benchmark",
    "pg_sleep",
    "load_file",
    "extractvalue",
    "updatexml",
    "xp_cmdshell",
    "utl_inaddr",
    "utl_http",
    "dbms_pipe",
    "dbms_lock",
    "sys_eval",
    "sys_exec",
    "load_extension",
    "pg_read_file",
    "lo_import",
    "openrowset",
    "opendatasource",
    "name_const",
    "is_srvrolemember",
];

/// Function names that exist only in SQL dialects (not in prose, not generic programming
/// names like `user(` or `count(`): a call to one in a parameter is an injection probe.
const SQL_ONLY_FUNCTIONS: crate::detect::Words = crate::detect::Words::new(&[
    "benchmark",
    "coalesce",
    "concat",
    "concat_ws",
    "group_concat",
    "xmltype",
    "current_user",
    "system_user",
    "session_user",
    "database",
    "db_name",
    "extractvalue",
    "updatexml",
    "load_file",
    "make_set",
    "name_const",
    "sysdate",
    "ifnull",
    "nullif",
    "unhex",
    "hex",
    "md5",
    "mid",
    "substr",
    "substring",
    "rtrim",
    "ltrim",
    "rand",
    "compress",
    "uncompress",
    "ascii",
    "char",
    "chr",
    "find_in_set",
    "json_extract",
    "json_build_object",
    "unistr",
    "xp_cmdshell",
    "pg_sleep",
    "sleep",
    "sqlite_version",
    "randomblob",
    "utl_inaddr.get_host_name",
    "dbms_pipe.receive_message",
    "to_char",
    "string_to_array",
    "is_srvrolemember",
    "schema_name",
    "table_name",
    "column_name",
]);

/// PostgreSQL type names: `x::int` casts are a staple of error-based injection.
const PG_TYPES: crate::detect::Words = crate::detect::Words::new(&[
    "int", "int4", "int8", "integer", "bigint", "smallint", "text", "varchar", "json", "jsonb",
    "numeric", "bool", "boolean", "regclass", "oid", "bytea", "float", "real", "xml", "char",
]);

/// System catalogs that only reconnaissance queries name.
const CATALOGS: crate::detect::Words = crate::detect::Words::new(&[
    "information_schema",
    "mysql.user",
    "sysobjects",
    "syscolumns",
    "sys.objects",
    "sys.tables",
    "pg_catalog",
    "pg_shadow",
    "sqlite_master",
    "all_tables",
    "user_tables",
    "msysobjects",
    "msysaccessobjects",
    "msdb",
    "mysql.db",
]);

/// MongoDB query operators: as argument names (`user[$ne]=`, `{"$where": ...}`) they turn a
/// lookup into a query.
const MONGO_OPERATORS: crate::detect::Words = crate::detect::Words::new(&[
    "$ne",
    "$eq",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$regex",
    "$where",
    "$exists",
    "$text",
    "$expr",
    "$or",
    "$and",
    "$nor",
    "$not",
    "$elemmatch",
    "$function",
    "$accumulator",
    "$lookup",
    "$jsonschema",
    "$mod",
    "$all",
    "$size",
    "$type",
]);

fn is_operand(k: Kind) -> bool {
    matches!(
        k,
        Kind::Str | Kind::Num | Kind::Var | Kind::Func | Kind::Bare | Kind::LParen
    )
}

fn is_literal(k: Kind) -> bool {
    matches!(k, Kind::Str | Kind::Num | Kind::Var)
}

/// The shape rules over one token stream. Returns the rule name that matched.
pub fn fingerprint(tokens: &[Token], ctx: Context) -> Option<&'static str> {
    // `SELECT/**/password/**/FROM/**/users`: block comments standing for the spaces of a
    // query are written to slip past filters, never by people.
    if let Some(i) = tokens
        .iter()
        .position(|t| t.kind == Kind::Stmt && t.text == "select")
    {
        let spaced = |j: usize| tokens.get(j).is_some_and(|t| t.text == "/*");
        if spaced(i + 1)
            && tokens
                .iter()
                .enumerate()
                .skip(i + 2)
                .take(12)
                .any(|(j, t)| t.text == "from" && spaced(j - 1) && spaced(j + 1))
        {
            return Some("sqli.statement");
        }
    }
    // Comments are transparent for most shapes (`UNION/**/SELECT`).
    let nc: Vec<&Token> = tokens.iter().filter(|t| t.kind != Kind::Comment).collect();
    let kind = |i: usize| nc.get(i).map(|t| t.kind);

    for i in 0..nc.len() {
        let k = kind(i);
        // UNION [ALL|DISTINCT] [(] SELECT
        if k == Some(Kind::Union) {
            let mut j = i + 1;
            while matches!(kind(j), Some(Kind::Keyword | Kind::LParen)) && j < i + 4 {
                j += 1;
            }
            if kind(j) == Some(Kind::Stmt) {
                return Some("sqli.union");
            }
        }
        // ; STATEMENT
        if k == Some(Kind::Semi) && kind(i + 1) == Some(Kind::Stmt) && statement(&nc, i + 1) {
            return Some("sqli.stacked");
        }
        // logic  literal op literal  (tautology / contradiction)
        if k == Some(Kind::Logic) {
            let a = kind(i + 1);
            let o = nc.get(i + 2);
            let b = kind(i + 3);
            if a.is_some_and(is_literal)
                && o.is_some_and(|t| t.kind == Kind::Op && is_comparison(&t.text))
                && b.is_some_and(is_literal)
            {
                return Some("sqli.tautology");
            }
        }
        // dangerous_function (
        if k == Some(Kind::Func)
            && nc.get(i).is_some_and(|t| {
                DANGEROUS_FUNCTIONS.iter().any(|f| {
                    // `f` or `f.` + more, without formatting a string per token.
                    t.text
                        .strip_prefix(f)
                        .is_some_and(|r| r.is_empty() || r.starts_with('.'))
                })
            })
            && kind(i + 1) == Some(Kind::LParen)
            && kind(i + 2).is_some_and(|k| is_operand(k) || k == Kind::RParen)
            // `Sleep(8 hours)`: two operands in a row are words of a sentence, not
            // arguments any database accepts.
            && !(kind(i + 2).is_some_and(|k| matches!(k, Kind::Num | Kind::Bare | Kind::Str))
                && kind(i + 3) == Some(Kind::Bare))
        {
            return Some("sqli.function");
        }
        // waitfor delay 'x'
        if nc.get(i).is_some_and(|t| t.text == "waitfor")
            && nc
                .get(i + 1)
                .is_some_and(|t| t.text == "delay" || t.text == "time")
        {
            return Some("sqli.function");
        }
        // CASE WHEN ... THEN: conditional blind injection.
        if nc.get(i).is_some_and(|t| t.text == "case")
            && nc.get(i + 1).is_some_and(|t| t.text == "when")
            && nc.iter().skip(i + 2).take(16).any(|t| t.text == "then")
        {
            return Some("sqli.conditional");
        }
        if nc.get(i).is_some_and(|t| t.text == "procedure")
            && nc.get(i + 1).is_some_and(|t| t.text == "analyse")
        {
            return Some("sqli.statement");
        }
        // SELECT <expr> ... : a statement with an SQL-looking start.
        if k == Some(Kind::Stmt) && statement(&nc, i) {
            return Some("sqli.statement");
        }
    }

    match ctx {
        Context::Single | Context::Double => quoted_break_out(tokens),
        Context::Backtick => identifier_break_out(tokens),
        Context::None => numeric(&nc, nc.len() != tokens.len()),
    }
}

/// Operators that relate two operands in every dialect: equality, ordering, pattern and
/// membership tests, `IS`, `NOT`, `BETWEEN`, JSON member access, `DIV`/`MOD`.
fn is_relational(op: &str) -> bool {
    matches!(
        op,
        "=" | "=="
            | "<"
            | ">"
            | "<="
            | ">="
            | "<>"
            | "!="
            | "<=>"
            | "->"
            | "->>"
            | "like"
            | "rlike"
            | "regexp"
            | "ilike"
            | "is"
            | "not"
            | "in"
            | "sounds"
            | "between"
            | "div"
            | "mod"
    )
}

/// What may join two literals into a tautology: a relation, arithmetic, bitwise and the
/// PostgreSQL cast, containment and JSON operators.
fn is_comparison(op: &str) -> bool {
    is_relational(op)
        || matches!(
            op,
            "-" | "+"
                | "*"
                | "/"
                | "^"
                | "|"
                | "&"
                | "::"
                | "@>"
                | "<@"
                | "#>"
                | "#>>"
                | "?"
                | "?|"
                | "?&"
        )
}

/// Whether the statement keyword at `i` starts something a database would run.
fn statement(nc: &[&Token], i: usize) -> bool {
    let t = |j: usize| nc.get(j).copied();
    let Some(kw) = t(i) else {
        return false;
    };
    let next = t(i + 1);
    let prev = i.checked_sub(1).and_then(t);
    let at_boundary = prev.is_none_or(|p| {
        matches!(
            p.kind,
            Kind::LParen
                | Kind::Semi
                | Kind::Str
                | Kind::Num
                | Kind::Comment
                | Kind::RParen
                | Kind::Logic
                | Kind::Union
        )
    });
    match kw.text.as_str() {
        "select" => {
            let Some(n) = next else {
                return false;
            };
            let sub = n.kind == Kind::LParen
                && t(i + 2).is_some_and(|x| matches!(x.kind, Kind::Func | Kind::Stmt | Kind::Var));
            // `SELECT ALL|DISTINCT|TOP` must go on with an expression (`TOP 1`, `DISTINCT(x)`,
            // `ALL *`) or reach `FROM`: "select all that apply" does neither.
            let quantifier = n.kind == Kind::Keyword
                && matches!(n.text.as_str(), "distinct" | "top" | "all")
                && t(i + 2).is_some_and(|x| {
                    matches!(
                        x.kind,
                        Kind::Var | Kind::Func | Kind::Num | Kind::Str | Kind::LParen
                    ) || x.kind == Kind::Op && x.text == "*"
                });
            // `SELECT *` ends its select list there: `FROM`, `INTO`, a comma, the end of the
            // statement or a comment follow (`I love SQL; select * is my motto` is prose).
            let star = n.kind == Kind::Op
                && n.text == "*"
                && t(i + 2).is_none_or(|x| {
                    matches!(
                        x.kind,
                        Kind::Semi | Kind::Comment | Kind::Comma | Kind::RParen
                    ) || matches!(x.text.as_str(), "from" | "into")
                });
            // `FROM` of the same statement: no `;` in between ("SELECT is a keyword; so is
            // FROM.").
            let same_statement = nc
                .iter()
                .skip(i + 1)
                .take(12)
                .take_while(|x| x.kind != Kind::Semi)
                .collect::<Vec<_>>();
            // `Select 'Yes' to confirm`, `Select "Save" and exit`: a select list of literals
            // without `FROM` names no column; a bare word there may only be an alias right
            // after a value (`select 'x' a`). A word after another word or after `AND`/`OR`
            // is a sentence, not a query any database runs.
            let literal_prose = n.kind == Kind::Str
                && !same_statement.iter().any(|x| x.text == "from")
                && same_statement.windows(2).any(|w| {
                    w[1].kind == Kind::Bare && matches!(w[0].kind, Kind::Bare | Kind::Logic)
                });
            let expr_start = sub
                || matches!(n.kind, Kind::Var | Kind::Func | Kind::Num)
                || n.kind == Kind::Str && !literal_prose
                || star
                || quantifier;
            let has_from = same_statement.iter().any(|x| x.text == "from")
                && same_statement.iter().any(|x| {
                    matches!(
                        x.kind,
                        Kind::Comma | Kind::Op | Kind::Func | Kind::Var | Kind::Keyword
                    ) && x.text != "from"
                })
                && !prose_around_from(nc, i);
            (expr_start || has_from) && at_boundary
        }
        "insert" => {
            nc.iter().skip(i + 1).take(3).any(|x| x.text == "into")
                && nc
                    .iter()
                    .skip(i + 2)
                    .take(12)
                    .any(|x| x.text == "values" || x.text == "select")
        }
        // MySQL `REPLACE [INTO] t [(cols)] VALUES (...)`, `... SELECT ...`, `... SET ...`:
        // after the table only a column list comes before them ("replace missing values in
        // your data", "replace known values in apps" go on with words); `replace(a, b, c)`
        // is a function.
        "replace" => {
            let mut j = i + 1 + usize::from(next.is_some_and(|n| n.text == "into"));
            if !t(j).is_some_and(|x| matches!(x.kind, Kind::Bare | Kind::Keyword)) {
                return false;
            }
            j += 1;
            if t(j).is_some_and(|x| x.kind == Kind::LParen) {
                match nc
                    .iter()
                    .skip(j)
                    .take(12)
                    .position(|x| x.kind == Kind::RParen)
                {
                    Some(p) => j += p + 1,
                    None => return false,
                }
            }
            t(j).is_some_and(|x| match x.text.as_str() {
                "values" => t(j + 1).is_some_and(|y| y.kind == Kind::LParen),
                "select" => statement(nc, j),
                "set" => true,
                _ => false,
            })
        }
        "update" => {
            next.is_some_and(|n| n.kind == Kind::Bare) && t(i + 2).is_some_and(|x| x.text == "set")
        }
        "delete" => {
            next.is_some_and(|n| n.text == "from")
                && t(i + 2).is_some_and(|x| x.kind == Kind::Bare || x.kind == Kind::Keyword)
                // After the table (and an alias) SQL goes on with a clause keyword or ends:
                // "Delete from cart button not working" goes on with words.
                && !(t(i + 3).is_some_and(|x| x.kind == Kind::Bare)
                    && t(i + 4).is_some_and(|x| {
                        matches!(x.kind, Kind::Bare | Kind::Logic | Kind::Op)
                    }))
        }
        "drop" | "create" | "alter" | "truncate" => {
            next.is_some_and(|n| {
                matches!(
                    n.text.as_str(),
                    "table"
                        | "database"
                        | "schema"
                        | "user"
                        | "procedure"
                        | "function"
                        | "view"
                        | "index"
                        | "trigger"
                        | "login"
                )
            }) && t(i + 2).is_some()
                // After the object's name SQL goes on with punctuation or a keyword, not with
                // more words ("drop table tennis lessons on Friday"); DDL keywords are SQL.
                // A last word after the name is prose too ("Create table reservations
                // online").
                && !(t(i + 3).is_some_and(|x| {
                    matches!(x.kind, Kind::Bare | Kind::Keyword)
                        && !AFTER_OBJECT.iter().any(|w| x.text == *w)
                }) && t(i + 4).is_none_or(|x| {
                    matches!(x.kind, Kind::Bare | Kind::Keyword | Kind::Op | Kind::Logic)
                }))
        }
        // T-SQL runs a string or a variable (`EXEC('SELECT 1')`, `EXEC (@q)`); `exec (` with
        // nothing to run is a word and a parenthesis (PHP's `exec (`, prose).
        "exec" | "execute" => next.is_some_and(|n| {
            n.text.starts_with("xp_")
                || n.text.starts_with("sp_")
                || n.text.starts_with("master.")
                || n.text == "immediate"
                || (n.kind == Kind::LParen
                    && t(i + 2).is_some_and(|x| matches!(x.kind, Kind::Str | Kind::Var)))
                // `EXEC 'proc'` ends there or goes on with SQL, not with a word ("Failed
                // to execute 'define' on 'X'").
                || n.kind == Kind::Str
                    && t(i + 2).is_none_or(|x| !matches!(x.kind, Kind::Bare | Kind::Keyword))
        }),
        "declare" => next.is_some_and(|n| n.kind == Kind::Var),
        // A statement of its own: at the start, after `;` or a comment ("... restart,
        // reboot and shutdown" ends a sentence).
        "shutdown" => {
            prev.is_none_or(|p| matches!(p.kind, Kind::Semi | Kind::Comment))
                && next.is_none_or(|n| n.kind == Kind::Semi || n.text == "with")
        }
        "waitfor" => next.is_some_and(|n| n.text == "delay" || n.text == "time"),
        _ => false,
    }
}

/// Three words in a row where SQL has at most a name and its alias: in the select list
/// (`select the best match from`) or after `FROM` (`from a list of candidates`). SQL
/// separates expressions with commas and operators and follows a table with a keyword.
fn prose_around_from(nc: &[&Token], select: usize) -> bool {
    let three_words = |from: usize, to: usize| {
        let mut run = 0;
        nc.iter().take(to).skip(from).any(|t| {
            run = if t.kind == Kind::Bare { run + 1 } else { 0 };
            run >= 3
        })
    };
    let Some(from) = nc
        .iter()
        .skip(select + 1)
        .take(12)
        .position(|x| x.text == "from")
        .map(|p| p + select + 1)
    else {
        return false;
    };
    // After `FROM` a table (a name or keyword-like name; a subquery is no prose), an optional
    // alias, then the statement ends or goes on with punctuation or a clause: "from your
    // data set", "from a list with weighted..." go on with words.
    let table = nc
        .get(from + 1)
        .is_some_and(|x| matches!(x.kind, Kind::Bare | Kind::Keyword));
    three_words(select + 1, from)
        || table
            && !after_table(nc, from + 2)
            && !(nc.get(from + 2).is_some_and(|x| x.kind == Kind::Bare)
                && after_table(nc, from + 3))
}

/// Whether the token at `k` may follow a table (and its alias) in a `FROM` clause: the end,
/// punctuation, a comment, `UNION`, `GROUP BY`/`ORDER BY`/`LIMIT`, a clause keyword
/// ([`FROM_CLAUSE`]) or a table hint (`WITH (NOLOCK)`).
fn after_table(nc: &[&Token], k: usize) -> bool {
    nc.get(k).is_none_or(|x| {
        matches!(
            x.kind,
            Kind::Semi | Kind::Comment | Kind::Comma | Kind::RParen | Kind::Union | Kind::Group
        ) || FROM_CLAUSE.iter().any(|w| x.text == *w)
            || x.text == "with" && nc.get(k + 1).is_some_and(|y| y.kind == Kind::LParen)
    })
}

/// Words that may follow a table (and its alias) in a `FROM` clause.
const FROM_CLAUSE: crate::detect::Words = crate::detect::Words::new(&[
    "where",
    "join",
    "inner",
    "left",
    "right",
    "cross",
    "natural",
    "straight_join",
    "full",
    "outer",
    "into",
    "for",
    "procedure",
    "offset",
    "fetch",
    "on",
    "using",
    "as",
    "intersect",
    "except",
    "minus",
    "returning",
    "lock",
    "window",
]);

/// Words that may follow the object's name in `CREATE`/`DROP`/`ALTER`/`TRUNCATE`.
const AFTER_OBJECT: crate::detect::Words = crate::detect::Words::new(&[
    "add",
    "change",
    "modify",
    "rename",
    "column",
    "constraint",
    "engine",
    "cascade",
    "restrict",
    "purge",
    "owner",
    "to",
    "if",
    "exists",
    "as",
    "like",
    "identified",
    "on",
    "character",
    "charset",
    "default",
    "with",
    "set",
    "before",
    "after",
    "from",
]);

/// Shapes after the context's string is closed by the input (`tokens[0]` is that string).
fn quoted_break_out(tokens: &[Token]) -> Option<&'static str> {
    let mut i = 1;
    // `')`, `'))`: closing the query's parentheses too.
    while tokens.get(i).is_some_and(|t| t.kind == Kind::RParen) && i < 4 {
        i += 1;
    }
    let t = |j: usize| tokens.get(j);
    let k = |j: usize| t(j).map(|x| x.kind);
    let first = t(i)?;
    match first.kind {
        Kind::Comment => {
            // admin'--  admin'#  admin'/*
            Some("sqli.quote-comment")
        }
        Kind::Semi => Some("sqli.quote-stacked"),
        Kind::Logic => {
            let x = k(i + 1)?;
            let after = k(i + 2);
            let continues = matches!(
                after,
                Some(Kind::Op | Kind::Logic | Kind::Comment | Kind::Semi | Kind::RParen)
            );
            let strong = matches!(x, Kind::Num | Kind::Var | Kind::Func | Kind::LParen)
                || (x == Kind::Str && continues);
            let bare_cmp = x == Kind::Bare
                && matches!(after, Some(Kind::Op | Kind::Comment | Kind::Logic) | None);
            let not = x == Kind::Op && t(i + 1).is_some_and(|o| o.text == "not" || o.text == "!");
            (strong || bare_cmp || not).then_some("sqli.quote-logic")
        }
        // `' REGEXP `: a pattern-match operator only SQL has, whose operand is the query's
        // own text after the value.
        Kind::Op if matches!(first.text.as_str(), "regexp" | "rlike") && k(i + 1).is_none() => {
            Some("sqli.quote-operator")
        }
        Kind::Op => {
            let x = k(i + 1)?;
            let after = k(i + 2);
            // A bare word must be an SQL identifier (`'-£#,##0` in a number format is not).
            let ascii_word = t(i + 1).is_some_and(|w| {
                w.text
                    .bytes()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_' || c == b'`')
            });
            // Division and modulo by a column name are not how a query is extended: after a
            // quote, `/word` and `%word` are paths and format strings (`'/api/items'`,
            // `src="/img/a.png"`, `"%d"`).
            let path_or_format = matches!(first.text.as_str(), "/" | "%");
            let operand = matches!(
                x,
                Kind::Str | Kind::Num | Kind::Var | Kind::Func | Kind::LParen
            ) || x == Kind::Bare && ascii_word && !path_or_format;
            let ends = matches!(
                after,
                None | Some(
                    Kind::Logic
                        | Kind::Comment
                        | Kind::Op
                        | Kind::Union
                        | Kind::Semi
                        | Kind::Group
                        | Kind::Keyword
                )
            );
            let only_string =
                x == Kind::Str && after.is_none() && first.text != "=" && first.text != "||";
            // `IN` takes a parenthesised list and `IS` a truth value or NULL: `" in strings`,
            // `' is fine` are words after a quote.
            let operand_fits = match first.text.as_str() {
                "in" => x == Kind::LParen,
                "is" => t(i + 1).is_some_and(|w| {
                    matches!(
                        w.text.as_str(),
                        "null" | "not" | "true" | "false" | "unknown" | "distinct"
                    )
                }),
                _ => true,
            };
            // `"-Xmx2g -Dlog4j2...=true"`, `"-L/opt/lib"`: a `-` and a word right after the
            // quote, then an operator, is a command-line option: options follow each other or
            // take a path or value. A query reopens its string after such an operator
            // (`'-col-'`); `'-1-'`, `'-sleep(5)-'` have a number or a call.
            let option = first.text == "-"
                && x == Kind::Bare
                && after == Some(Kind::Op)
                && k(i + 3) != Some(Kind::Str);
            (operand
                && !option
                && operand_fits
                && ends
                && !only_string
                && is_comparison_or_concat(&first.text))
            .then_some("sqli.quote-operator")
        }
        // After the break-out, a keyword must start SQL, not prose: `' UNION SELECT`,
        // `' ORDER BY 2`, `'; DROP TABLE` but not `'create new packaging'` or `'grant' vs`.
        Kind::Union => matches!(k(i + 1), Some(Kind::Stmt | Kind::Keyword | Kind::LParen))
            .then_some("sqli.quote-keyword"),
        Kind::Group => matches!(
            k(i + 1),
            Some(Kind::Num | Kind::Bare | Kind::Var | Kind::Func | Kind::LParen | Kind::Str)
        )
        .then_some("sqli.quote-keyword"),
        Kind::Stmt => {
            let nc: Vec<&Token> = tokens
                .get(i..)
                .unwrap_or_default()
                .iter()
                .filter(|t| t.kind != Kind::Comment)
                .take(16)
                .collect();
            statement(&nc, 0).then_some("sqli.quote-keyword")
        }
        Kind::Keyword => {
            let kw = first.text.as_str();
            let follows = match kw {
                "where" | "from" | "into" | "having" | "procedure" => k(i + 1).is_some(),
                // Comments are spaces here (`collate/**/utf8_bin`).
                "collate" => tokens
                    .iter()
                    .skip(i + 1)
                    .find(|n| n.kind != Kind::Comment)
                    .is_some_and(collation_name),
                _ => false,
            };
            (follows || alias_from(tokens, i)).then_some("sqli.quote-keyword")
        }
        _ => None,
    }
}

/// Whether the token after `COLLATE` can name a collation, without which the statement fails
/// to parse or to resolve and the break-out runs nothing (`user'collate foo--`). Collation
/// names are a character set and qualifiers joined by `_` in MySQL, SQL Server and Oracle
/// (`utf8mb4_bin`, `Latin1_General_CI_AS`, `BINARY_CI`), a few bare names (`binary`, SQLite's
/// `nocase` and `rtrim`, PostgreSQL's `c`, `posix`, `unicode`, `default`), or a quoted
/// identifier (`"C"`, `` `utf8_bin` ``, `[x]`, PostgreSQL's Unicode-escaped `U&"..."`, which
/// the tokenizer reads as the word `u`). Anything else is not a collation in any
/// dialect the filter knows, so the shape does not count.
fn collation_name(t: &Token) -> bool {
    match t.kind {
        Kind::Bare | Kind::Keyword => {
            let n = t.text.as_str();
            n.has_char('_')
                || matches!(
                    n,
                    "binary" | "nocase" | "rtrim" | "c" | "posix" | "unicode" | "default" | "u"
                )
        }
        Kind::Var | Kind::Num => false,
        // A quoted name, or something the tokenizer reads otherwise: count it.
        _ => true,
    }
}

/// `AS name FROM` at `i`: a column alias, then the table clause (`' AS x FROM`,
/// `` ` AS `edit_user_id` from ``): the break-out ends a select list's column and goes on with
/// the query.
fn alias_from(tokens: &[Token], i: usize) -> bool {
    let t = |j: usize| tokens.get(j);
    t(i).is_some_and(|x| x.kind == Kind::Keyword && x.text == "as")
        && t(i + 1).is_some_and(|x| matches!(x.kind, Kind::Bare | Kind::Str))
        && t(i + 2).is_some_and(|x| x.text == "from")
}

/// The break-out from a MySQL quoted identifier (`` `...` ``, an application's column or
/// table name): after the closing backtick, a statement end (`` admin`; ``), `UNION SELECT`,
/// a statement, a column alias and `FROM`, or a pattern-match operator. Comments are not
/// counted here: Markdown puts options in code spans (``use the `--force` flag``), which
/// this reading would see as a break-out and a comment.
#[inline(never)]
fn identifier_break_out(tokens: &[Token]) -> Option<&'static str> {
    let first = tokens.get(1)?;
    let k = |j: usize| tokens.get(j).map(|x| x.kind);
    let hit = match first.kind {
        Kind::Semi => true,
        Kind::Union => matches!(k(2), Some(Kind::Stmt | Kind::Keyword | Kind::LParen)),
        Kind::Keyword => alias_from(tokens, 1),
        Kind::Op => {
            matches!(first.text.as_str(), "regexp" | "rlike")
                && matches!(k(2), None | Some(Kind::Str | Kind::Num | Kind::LParen))
        }
        _ => false,
    };
    hit.then_some("sqli.identifier-break-out")
}

fn is_comparison_or_concat(op: &str) -> bool {
    is_comparison(op) || matches!(op, "||" | "%" | "&" | "|" | ":=")
}

/// Unquoted shapes: a numeric parameter extended with logic, grouping or comments.
fn numeric(nc: &[&Token], has_comment: bool) -> Option<&'static str> {
    let k = |j: usize| nc.get(j).map(|t| t.kind);
    let mut i = 0;
    if !matches!(k(0), Some(Kind::Num | Kind::Var)) {
        // A value that starts with a logic operator: `OR x=y`, ` AND 1`.
        if k(0) == Some(Kind::Logic)
            && k(1).is_some_and(is_operand)
            && (k(2) == Some(Kind::Op) || k(1) == Some(Kind::Func) && k(2) == Some(Kind::LParen))
        {
            return Some("sqli.logic-suffix");
        }
        return None;
    }
    i += 1;
    while k(i) == Some(Kind::RParen) && i < 4 {
        i += 1;
    }
    match k(i) {
        Some(Kind::Logic) => {
            let x = k(i + 1)?;
            let call = matches!(x, Kind::Func | Kind::LParen);
            let ends = matches!(
                k(i + 2),
                None | Some(Kind::Op | Kind::Logic | Kind::RParen | Kind::Semi)
            );
            let literal = matches!(x, Kind::Num | Kind::Str | Kind::Var | Kind::Bare);
            // `7 or 8` alone is a choice between numbers (paranoia 2, as operators only);
            // `1 or 1=1`, `1 or 1--`, `1 or x)` continue a query.
            let plain_pair = x == Kind::Num && k(i + 2).is_none() && !has_comment;
            (call || (literal && ends && !plain_pair)).then_some("sqli.numeric-logic")
        }
        Some(Kind::Group) => k(i + 1)
            .is_some_and(|x| matches!(x, Kind::Num | Kind::Bare))
            .then_some("sqli.numeric-group"),
        Some(Kind::Union | Kind::Stmt) => Some("sqli.numeric-keyword"),
        Some(Kind::Semi) => k(i + 1).map(|_| "sqli.numeric-stacked"),
        _ => None,
    }
}

/// SQL functions a query calls: at paranoia 2 a call to any of them in a parameter counts
/// (`ABS(`, `now()`, `FLOOR (`), in the spirit of CRS 942410. Sorted (a test keeps it so), read
/// through [`SQL_FUNCTION_SET`].
const SQL_FUNCTIONS: &[&str] = &[
    "abs",
    "acos",
    "ascii",
    "asin",
    "atan",
    "atan2",
    "avg",
    "benchmark",
    "bin",
    "bit_length",
    "cast",
    "ceil",
    "ceiling",
    "char",
    "char_length",
    "charindex",
    "chr",
    "coalesce",
    "concat",
    "concat_ws",
    "conv",
    "convert",
    "cos",
    "cot",
    "count",
    "crc32",
    "curdate",
    "current_database",
    "current_date",
    "current_time",
    "current_timestamp",
    "current_user",
    "curtime",
    "database",
    "date_add",
    "date_format",
    "date_sub",
    "datediff",
    "dayname",
    "dayofmonth",
    "dayofweek",
    "dayofyear",
    "db_name",
    "decode",
    "default",
    "degrees",
    "elt",
    "encode",
    "exp",
    "extractvalue",
    "field",
    "find_in_set",
    "floor",
    "from_base64",
    "from_unixtime",
    "greatest",
    "group_concat",
    "hex",
    "hour",
    "if",
    "ifnull",
    "iif",
    "insert",
    "instr",
    "is_srvrolemember",
    "isnull",
    "json_extract",
    "json_keys",
    "last_insert_id",
    "lcase",
    "least",
    "len",
    "length",
    "ln",
    "load_file",
    "localtime",
    "localtimestamp",
    "locate",
    "log",
    "log10",
    "log2",
    "lower",
    "lpad",
    "ltrim",
    "make_set",
    "max",
    "md5",
    "mid",
    "min",
    "minute",
    "monthname",
    "name_const",
    "now",
    "nullif",
    "nvl",
    "oct",
    "octet_length",
    "ord",
    "pg_sleep",
    "pi",
    "position",
    "pow",
    "power",
    "quote",
    "radians",
    "rand",
    "random",
    "randomblob",
    "regexp_like",
    "regexp_substr",
    "repeat",
    "replace",
    "reverse",
    "round",
    "row_count",
    "rpad",
    "rtrim",
    "schema",
    "sec_to_time",
    "session_user",
    "sha1",
    "sha2",
    "sign",
    "sin",
    "sleep",
    "soundex",
    "sqrt",
    "stddev",
    "str_to_date",
    "strcmp",
    "string_agg",
    "substr",
    "substring",
    "substring_index",
    "sum",
    "sysdate",
    "system_user",
    "tan",
    "time_to_sec",
    "to_base64",
    "to_char",
    "to_number",
    "trim",
    "ucase",
    "unhex",
    "unix_timestamp",
    "updatexml",
    "upper",
    "user",
    "utc_date",
    "utc_time",
    "uuid",
    "version",
    "weekday",
    "xmltype",
];

/// [`SQL_FUNCTIONS`] for lookups, packed ([`crate::detect::pack_words!`]): one hash instead of
/// a binary search's string comparisons, and one byte per name in the module instead of a
/// `&str` (issue 13). Built with the other tables ([`crate::detect::build_tables`]).
pub(in crate::detect) static SQL_FUNCTION_SET: crate::detect::WordSet =
    crate::detect::WordSet::packed(crate::detect::pack_words!(SQL_FUNCTIONS));

/// Paranoia 2: fragments of SQL that fit into a query the application builds, shorter than
/// the complete shapes of [`fingerprint`] (CRS 942210, 942362, 942380, 942410): a logic
/// operator chaining a comparison (`AND deleted = 0)`, `|| c == '`), a stacked statement
/// keyword (`; insert into`, `;drop`), a column alias (`) AS x FROM`), a clause (`ORDER BY`,
/// `HAVING 1=`, `FROM t WHERE`), a call to an SQL function (`ABS(`).
// Each arm is one shape; an arm that does not match must not fall through to the next
// (which a guard would do), hence the `if`s inside the arms.
#[allow(clippy::collapsible_match)]
fn fragment(tokens: &[Token]) -> Option<&'static str> {
    let nc: Vec<&Token> = tokens.iter().filter(|t| t.kind != Kind::Comment).collect();
    let kind = |i: usize| nc.get(i).map(|t| t.kind);
    let text = |i: usize| nc.get(i).map_or("", |t| t.text.as_str());
    let literal = |i: usize| kind(i).is_some_and(is_literal);
    // The whole value is a comparison of literals (`1=1`, `42 like 42`, `1 is not 2`) or
    // only operators (`<=>`, `||`, `in (0,1)`, `IS NULL`).
    let sql_op = |t: &Token| {
        t.kind == Kind::Logic
            || t.kind == Kind::Op
                && (is_relational(&t.text)
                    || matches!(t.text.as_str(), ">>" | "<<" | "notnull" | "isnull" | "glob"))
    };
    let ops_only = !nc.is_empty()
        && nc.len() <= 8
        && nc.iter().any(|t| sql_op(t))
        && nc.iter().all(|t| {
            sql_op(t)
                || matches!(
                    t.kind,
                    Kind::Num | Kind::LParen | Kind::RParen | Kind::Comma
                )
        });
    let comparison = literal(0)
        && literal(nc.len().saturating_sub(1))
        && nc.len() >= 3
        && nc.len() <= 5
        && nc
            .iter()
            .skip(1)
            .take(nc.len() - 2)
            .all(|t| t.kind == Kind::Op && is_comparison(&t.text))
        && nc
            .get(1)
            .is_some_and(|t| t.text != "-" && t.text != "+" && t.text != "/");
    if ops_only || comparison {
        return Some("sqli.fragment-operator");
    }
    for i in 0..nc.len() {
        // A comment used as whitespace inside SQL (`DROP/**/x`, `SELECT/*a*/password`), or
        // ending it after an operator, a number or a `;` (`OR 1#`, `x;--`).
        if kind(i) == Some(Kind::Comment) {
            let prev = i.checked_sub(1).and_then(kind);
            let inline = text(i) == "/*"
                && matches!(
                    prev,
                    Some(Kind::Stmt | Kind::Bare | Kind::Keyword | Kind::Logic)
                )
                && matches!(kind(i + 1), Some(Kind::Bare | Kind::Keyword | Kind::Stmt));
            let tail = text(i) != "/*"
                && i > 0
                && matches!(prev, Some(Kind::Semi | Kind::Logic | Kind::Num | Kind::Str))
                && nc.len() <= 8;
            if inline || tail {
                return Some("sqli.fragment-comment");
            }
        }
        match kind(i) {
            Some(Kind::Logic)
                if kind(i + 1).is_none()
                    || kind(i + 1) == Some(Kind::LParen) && kind(i + 2).is_none() =>
            {
                // `x OR `, `3 and(`: the value ends in a logic operator the query completes.
                if i > 0 && nc.len() <= 4 {
                    return Some("sqli.fragment-logic");
                }
            }
            Some(Kind::Logic) => {
                let mut j = i + 1;
                while kind(j) == Some(Kind::LParen) && j < i + 4 {
                    j += 1;
                }
                let operand = kind(j).is_some_and(|k| {
                    matches!(
                        k,
                        Kind::Bare | Kind::Num | Kind::Var | Kind::Str | Kind::Func
                    )
                });
                let cmp = kind(j + 1) == Some(Kind::Op)
                    && (is_comparison(text(j + 1)) || matches!(text(j + 1), "===" | "!=="));
                // The right-hand side: a literal, a group, a negation, or the query's own
                // continuation (the value ends at the operator).
                let rhs = match kind(j + 2) {
                    None => true,
                    Some(Kind::Num | Kind::Str | Kind::Var | Kind::LParen | Kind::Func) => true,
                    Some(Kind::Op) => matches!(text(j + 2), "!" | "-" | "not" | "~"),
                    _ => false,
                };
                if operand && cmp && rhs {
                    return Some("sqli.fragment-logic");
                }
            }
            Some(Kind::Semi) => {
                let stmt = kind(i + 1) == Some(Kind::Stmt);
                if stmt && !matches!(kind(i + 2), Some(Kind::Bare | Kind::Op | Kind::Logic))
                    || stmt && text(i + 1) != "select" && kind(i + 2) == Some(Kind::Bare)
                {
                    return Some("sqli.fragment-stacked");
                }
                if text(i + 1) == "set" && kind(i + 2) == Some(Kind::Var) {
                    return Some("sqli.fragment-stacked");
                }
            }
            Some(Kind::Keyword) if text(i) == "as" => {
                if kind(i + 1).is_some() && text(i + 2) == "from" && i > 0 {
                    return Some("sqli.fragment-alias");
                }
            }
            Some(Kind::Keyword) if text(i) == "set" && kind(i + 1) == Some(Kind::Var) => {
                return Some("sqli.fragment-stacked");
            }
            Some(Kind::Keyword | Kind::Func) if text(i) == "values" => {
                if kind(i + 1) == Some(Kind::LParen) && literal(i + 2) {
                    return Some("sqli.fragment-clause");
                }
            }
            Some(Kind::Op) if text(i) == "in" => {
                // `in (0,1)`: a list of literals, not "in (see below)".
                if kind(i + 1) == Some(Kind::LParen)
                    && literal(i + 2)
                    && matches!(kind(i + 3), Some(Kind::Comma | Kind::RParen))
                {
                    return Some("sqli.fragment-clause");
                }
            }
            Some(Kind::Stmt) if matches!(text(i), "exec" | "execute") => {
                if kind(i + 1) == Some(Kind::Bare) && nc.len() <= 3 {
                    return Some("sqli.fragment-stacked");
                }
                // `EXEC(`/`execute (` whose argument the query supplies; paranoia 1 needs
                // something to run inside the parenthesis (see [`statement`]).
                if kind(i + 1) == Some(Kind::LParen) && kind(i + 2).is_none() {
                    return Some("sqli.fragment-function");
                }
            }
            Some(Kind::Keyword) if text(i) == "from" => {
                // `from t group by`, `from `db`.`t` limit`: a table then a clause.
                let mut j = i + 1;
                while matches!(kind(j), Some(Kind::Bare | Kind::Op)) && j < i + 6 {
                    j += 1;
                }
                if j > i + 1 && matches!(kind(j), Some(Kind::Group)) {
                    return Some("sqli.fragment-clause");
                }
                let condition = kind(i + 3).is_none()
                    || kind(i + 3) == Some(Kind::Func)
                    || (i + 3..i + 9).any(|j| {
                        kind(j) == Some(Kind::Op)
                            && is_comparison(text(j))
                            && matches!(
                                kind(j + 1),
                                None | Some(Kind::Num | Kind::Str | Kind::Var | Kind::LParen)
                            )
                    });
                if matches!(kind(i + 1), Some(Kind::Bare | Kind::Keyword))
                    && text(i + 2) == "where"
                    && condition
                {
                    return Some("sqli.fragment-clause");
                }
            }
            Some(Kind::Group) => {
                let after = kind(i + 1);
                let ok = match text(i) {
                    "limit" => {
                        after == Some(Kind::Num)
                            && matches!(kind(i + 2), None | Some(Kind::Comma | Kind::Comment))
                    }
                    "having" => after.is_some_and(is_operand) && kind(i + 2) == Some(Kind::Op),
                    // order by / group by
                    _ => {
                        after.is_none()
                            || matches!(after, Some(Kind::Num | Kind::Var | Kind::Func))
                            || (after == Some(Kind::Bare)
                                && matches!(
                                    kind(i + 2),
                                    None | Some(Kind::Comma | Kind::Comment | Kind::Semi)
                                )
                                && nc.len() <= i + 4)
                    }
                };
                if ok {
                    return Some("sqli.fragment-clause");
                }
            }
            Some(Kind::Stmt) if text(i) == "select" => {
                if kind(i + 1) == Some(Kind::LParen) && text(i + 2) == "case" {
                    return Some("sqli.fragment-clause");
                }
            }
            Some(Kind::Func | Kind::Keyword | Kind::Bare | Kind::Stmt)
                if kind(i + 1) == Some(Kind::LParen) && SQL_FUNCTION_SET.contains(text(i)) =>
            {
                return Some("sqli.fragment-function");
            }
            _ => {}
        }
    }
    None
}

/// Paranoia 2: the input closes the string and continues with any SQL: a keyword
/// (`'ALTER a`, `'UNION a`), a logic operator or an operator word with an operand
/// (`' or homer 9`, `id'not glob-id--`), a comment after an operator. Paranoia 1 needs
/// the complete shapes of [`quoted_break_out`].
fn weak_break_out(tokens: &[Token]) -> Option<&'static str> {
    let mut i = 1;
    while tokens.get(i).is_some_and(|t| t.kind == Kind::RParen) && i < 4 {
        i += 1;
    }
    let k = |j: usize| tokens.get(j).map(|x| x.kind);
    let operand = |j: usize| {
        matches!(
            k(j),
            Some(
                Kind::Bare
                    | Kind::Num
                    | Kind::Var
                    | Kind::Func
                    | Kind::LParen
                    | Kind::Str
                    | Kind::Op
                    | Kind::Comment
            )
        )
    };
    match k(i)? {
        Kind::Stmt | Kind::Union => k(i + 1).map(|_| "sqli.quote-fragment"),
        Kind::Logic | Kind::Op => operand(i + 1).then_some("sqli.quote-fragment"),
        _ => None,
    }
}

/// CRS 942430-942432: characters SQL needs (quotes, operators, brackets, comment and
/// statement marks) counted in one value; many of them in one parameter is how fragments
/// and obfuscated injections look. Returns the paranoia level the count reaches: 2 for 12
/// or more, 3 for 6 or more, 4 for 2 or more.
fn special_char_level(v: &str) -> Option<u8> {
    let n = v
        .bytes()
        .filter(|b| {
            matches!(
                b,
                b'~' | b'!'
                    | b'@'
                    | b'#'
                    | b'$'
                    | b'%'
                    | b'^'
                    | b'&'
                    | b'*'
                    | b'('
                    | b')'
                    | b'-'
                    | b'+'
                    | b'='
                    | b'{'
                    | b'}'
                    | b'['
                    | b']'
                    | b'|'
                    | b':'
                    | b';'
                    | b'"'
                    | b'\''
                    | b'`'
                    | b'<'
                    | b'>'
            )
        })
        .take(12)
        .count();
    match n {
        12.. => Some(2),
        6.. => Some(3),
        2.. => Some(4),
        _ => None,
    }
}

/// `lower` is `text` lowercased (the same offsets): the tokenizer reads it, so that its words
/// are borrowed, not copied (case changes no token).
fn scan_value(input: &Input, text: &str, lower: &str, out: &mut Findings) {
    // Phrases of plain words (`Item number 3 for order`): nothing to tokenize.
    if lexer::inert_phrase(lower) {
        return;
    }
    for ctx in [
        Context::None,
        Context::Single,
        Context::Double,
        Context::Backtick,
    ] {
        let has_quote = match ctx {
            Context::None => true,
            Context::Single => text.has_char('\''),
            Context::Double => text.has_char('"'),
            Context::Backtick => text.has_char('`'),
        };
        if !has_quote {
            continue;
        }
        let tokens = tokenize(lower, ctx);
        if let Some(rule) = fingerprint(&tokens, ctx) {
            let quote = match ctx {
                Context::Single => Some('\''),
                Context::Double => Some('"'),
                Context::Backtick => Some('`'),
                Context::None => None,
            };
            // Paranoia 2: SQL quoted in a sentence ("Use 'SELECT 1' as a health check"), and
            // a quoted CSS id (`$('#app')`), where a break-out would leave the quote's prose
            // (or selector) to the query.
            if quote.is_some_and(|q| quoted_mention(text, q) || quoted_selector(text, q)) {
                out.hit(input, CAT, "sqli.quoted-mention", Severity::Critical, 2);
                continue;
            }
            // A JSON document carried as a string (`{"and":[{"==":[{"var":"a"},1]}]}`,
            // `{"where":{"id":1},"select":["name"]}`): its own double quotes and keys make
            // the unquoted and double-quoted readings, and a single quote in one string
            // (`O'Brien`) makes a single-quoted reading run across the others. The extractor
            // inspects each of its leaves as a value of its own
            // (`extract::Builder::nested_document`): a break-out inside a leaf
            // (`{"a":"1' or '1'='1"}`) counts there, at paranoia 1. The whole: paranoia 2.
            if json_document(text) {
                out.hit(input, CAT, "sqli.json-document", Severity::Critical, 2);
                continue;
            }
            // Paranoia 2: prose the query would have to parse as SQL (an article about
            // injection that quotes `' OR '1'='1' --` on a line of its own).
            if prose_breaks_query(text, &tokens, ctx) {
                out.hit(input, CAT, "sqli.prose-in-query", Severity::Critical, 2);
                continue;
            }
            // A path is prose-like (`/wiki/Sleep_(film`): a call counts there once closed.
            if rule == "sqli.function"
                && input.location.source == Source::Path
                && text.has_char('(')
                && !text.has_char(')')
            {
                continue;
            }
            out.hit(input, CAT, rule_for(rule), Severity::Critical, 1);
            return;
        }
        if out.wants(CAT, 2) {
            let rule = match ctx {
                Context::None => fragment(&tokens),
                Context::Single | Context::Double => weak_break_out(&tokens),
                Context::Backtick => None,
            };
            if let Some(rule) = rule {
                out.hit(input, CAT, rule, Severity::Critical, 2);
            }
        }
    }
}

/// A quoted span inside a sentence: exactly two `q` quotes, the first at the start or after
/// a space or `(`, the second at the end or before a space or punctuation, no SQL comment
/// inside (a comment would cut the sentence off and let the query run), and prose outside.
/// Breaking out of the query's string there leaves the sentence's words after the SQL, which
/// no database parses; people quote statements that way ("Use 'SELECT 1' as a health check",
/// `what does "union all" do`).
fn quoted_mention(text: &str, q: char) -> bool {
    let mut quotes = text.match_indices(q).map(|(p, _)| p);
    let (Some(open), Some(close), None) = (quotes.next(), quotes.next(), quotes.next()) else {
        return false;
    };
    let b = text.as_bytes();
    let before = open.checked_sub(1).and_then(|i| b.get(i)).copied();
    let after = b.get(close + 1).copied();
    let inside = text.get(open + 1..close).unwrap_or_default();
    let outside = format!(
        "{} {}",
        text.get(..open).unwrap_or_default(),
        text.get(close + 1..).unwrap_or_default()
    );
    before.is_none_or(|c| c.is_ascii_whitespace() || c == b'(')
        && after.is_none_or(|c| {
            c.is_ascii_whitespace() || matches!(c, b'.' | b',' | b';' | b':' | b'!' | b'?' | b')')
        })
        && !inside.has_lit("--")
        && !inside.has_char('#')
        && !inside.has_lit("/*")
        && super::lfi::prose(&outside)
}

/// Whether the SQL this value makes, read from its break-out (the start of the value unquoted,
/// the value's first quote in a quoted reading) to its first `;`, holds words no dialect
/// parses, outside strings and comments: four plain words in a row (a name takes one alias;
/// the longest keyword-free runs, `at time zone`, `day to second`, are three words), a word
/// or number, a string and a word or number (the string is the first operand's alias, and
/// the next has no place: `susan 'is data and' susan`, `1 '=' 1`; a word that types the
/// string, `date '...' d`, is left out), or a string followed by a number (no alias is a
/// number). The statement then fails before anything in it runs, wherever the shape was
/// found. Only `;` ends a statement; a `--` or `#` comment ends at the line's end, so a
/// payload line in an article (`' OR '1'='1' --` between paragraphs) leaves the next
/// paragraph to the parser. What comes after the first `;` is not read: MySQL runs stacked
/// statements one by one.
///
/// Only values of several lines: a document quoting SQL, the shape people paste; one line of
/// prose and SQL stays at paranoia 1 as before, and so does a value whose other lines are SQL.
/// Quoting the tokenizer does not know (Oracle's `q'[...]'`, PostgreSQL's `$$...$$`, a
/// backslash that PostgreSQL does not read as an escape) could hide words from it or invent
/// them: such values do not get this reading. Runs only once a shape matched: one pass over
/// the tokens already built.
fn prose_breaks_query(text: &str, tokens: &[Token], ctx: Context) -> bool {
    if !text.has_char('\n')
        || text.has_char('\\')
        || text.has_lit("$$")
        || text.has_lit("q'")
        || text.has_lit("Q'")
    {
        return false;
    }
    let start = match ctx {
        Context::None => 0,
        // The first token is the query's own string, closed by the value's first quote.
        Context::Single | Context::Double => match tokens.first() {
            Some(t) if t.kind == Kind::Str && !t.open => 1,
            _ => return false,
        },
        // A break-out from a quoted identifier keeps its finding: this reading is not made.
        Context::Backtick => return false,
    };
    let word = |t: &Token| {
        t.kind == Kind::Bare
            && !t.text.is_empty()
            && t.text.bytes().all(|c| c.is_ascii_alphabetic())
    };
    // A word that can type the string after it (`date '2024-01-01' d`, `interval '1' day`,
    // the prefixes of `N'...'`, `X'4a'`, `B'01'`, `E'...'`, `U&'...'`).
    let types = |t: &Token| {
        matches!(
            t.text.as_str(),
            "date"
                | "time"
                | "timestamp"
                | "interval"
                | "datetime"
                | "inet"
                | "json"
                | "uuid"
                | "zone"
                | "to"
                | "using"
                | "n"
                | "x"
                | "b"
                | "e"
                | "u"
        )
    };
    let mut run = 0;
    // SQL Server's `[a name with spaces]` is one identifier.
    let mut bracket = false;
    let rest: Vec<&Token> = tokens
        .get(start..)
        .unwrap_or_default()
        .iter()
        .filter(|t| t.kind != Kind::Comment)
        .collect();
    for (i, t) in rest.iter().enumerate() {
        match t.kind {
            Kind::Semi => return false,
            Kind::Op if t.text == "[" => {
                bracket = true;
                run = 0;
            }
            Kind::Op if t.text == "]" => bracket = false,
            _ if bracket => {}
            _ if word(t) || t.kind == Kind::Num => {
                run = if t.kind == Kind::Num { 0 } else { run + 1 };
                // Four words in a row, or a word or number, a string and a word or number:
                // an operand takes one alias, and a string after it is that alias, so what
                // follows has no place (`susan 'is data and' susan`, `1 '=' 1`).
                let alias_then_operand = !types(t)
                    && rest.get(i + 1).is_some_and(|s| s.kind == Kind::Str)
                    && rest
                        .get(i + 2)
                        .is_some_and(|w| word(w) || w.kind == Kind::Num);
                if run >= 4 || alias_then_operand {
                    return true;
                }
            }
            // A string followed by a number: no alias is a number (`'OR' 1`).
            Kind::Str if rest.get(i + 1).is_some_and(|n| n.kind == Kind::Num) => return true,
            _ => run = 0,
        }
    }
    false
}

/// A whole JSON object or array, as the body reader accepts one ([`crate::extract::json::check`]:
/// serde_json's grammar, at most 127 levels deep; serde_json's parser is not in the module).
fn json_document(text: &str) -> bool {
    let t = text.trim();
    (t.starts_with('{') && t.ends_with('}') || t.starts_with('[') && t.ends_with(']'))
        && crate::extract::json::check(t.as_bytes()).is_ok()
}

/// `'#app'`, `"#fff"`: the first quote opens a CSS id selector or colour, not a `#` comment.
fn quoted_selector(text: &str, q: char) -> bool {
    let Some(open) = text.find(q) else {
        return false;
    };
    let rest = text.get(open + 1..).unwrap_or_default();
    let Some(name) = rest.strip_prefix('#') else {
        return false;
    };
    let len = name
        .bytes()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_'))
        .count();
    len > 0 && name.get(len..).is_some_and(|r| r.starts_with(q))
}

/// Collapses the shape names into a few stable rule names for metrics.
fn rule_for(shape: &'static str) -> &'static str {
    shape
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
        if input.value.is_empty() {
            continue;
        }
        // A plain token, unless a non-ASCII space separates its words (`1\u{a0}OR\u{a0}1=1`):
        // the tokenizer reads that as a space (`lexer::ascii_spaces`).
        let plain =
            super::is_plain_input(input) && !lexer::has_unicode_space(&input.bytes, &input.value);
        let is_header = input.location.source == Source::Header;
        // User agents and the path are prose-like; only unmistakable shapes count there.
        if input.location.source == Source::Path {
            // Path segments carry injections in REST-style APIs: scan each decoded segment.
            // A path of plain words between `/` (`/api/users/3/profile`) holds no SQL shape
            // as a whole (`lexer::inert_path`): only its segments are read.
            // An inert path's segments are inert phrases (`lexer::inert_path` reads each
            // segment as `inert_phrase` does: test `inert_path_segments_are_inert`), where
            // `scan_value` returns at once: they are read only when the whole is not inert.
            if !lexer::inert_path(&input.lower) {
                scan_value(input, &input.value, &input.lower, out);
                // `/` has no case: the lowercase form splits into the same segments.
                for (seg, lower) in input.value.split_char('/').zip(input.lower.split_char('/')) {
                    if !seg.is_empty() {
                        scan_value(input, seg, lower, out);
                    }
                }
            }
            // A call needs `(`, a cast `::` (as for arguments below). In a path only a
            // closed call is that unmistakable (`/wiki/Sleep_(film`: the `(` of a title).
            let l = &input.lower;
            if (l.has_char('(') && l.has_char(')') && sql_function_call(l))
                || (l.has_lit("::") && pg_cast(l))
            {
                out.hit(input, CAT, "sqli.function-call", Severity::Critical, 1);
            }
            continue;
        }
        // A User-Agent is product tokens and comments (`;`, `(`, `/`): read as SQL only when
        // it carries a quote, which no browser or library puts there and which is how an
        // injection into a logged User-Agent starts (`Mozilla/5.0' or 1=1--`).
        let user_agent = is_header && input.location.name == "user-agent";
        if !plain && (!user_agent || input.value.has_any(b"'\"")) {
            if lexer::has_unicode_space(&input.bytes, &input.value) {
                let (v, lw) = (
                    lexer::ascii_spaces(&input.value),
                    lexer::ascii_spaces(&input.lower),
                );
                scan_value(input, &v, &lw, out);
            } else {
                scan_value(input, &input.value, &input.lower, out);
            }
        }
        if matches!(input.location.source, Source::Arg | Source::ArgName) && out.wants(CAT, 2) {
            if let Some(level) = special_char_level(&input.value) {
                let rule = match level {
                    2 => "sqli.special-chars-12",
                    3 => "sqli.special-chars-6",
                    _ => "sqli.special-chars-2",
                };
                out.hit(input, CAT, rule, Severity::Warning, level);
            }
        }
        let l = &input.lower;
        if input.lower_contains_any(CATALOGS.as_slice()) {
            out.hit(input, CAT, "sqli.catalog", Severity::Critical, 1);
        }
        // Paranoia 2: a stored procedure or package of the database's own namespaces
        // (`xp_dirtree`, `sp_executesql`, `utl_http`, `dbms_pipe`), named even without a call.
        if out.wants(CAT, 2) && input.bytes.has(b'_') && system_procedure(l) {
            out.hit(input, CAT, "sqli.system-procedure", Severity::Critical, 2);
        }
        if l.ends_with('(') && open_call_at_end(l) {
            out.hit(input, CAT, "sqli.open-call", Severity::Critical, 1);
        }
        if input.bytes.has(b'(') && sql_function_call(l) {
            out.hit(input, CAT, "sqli.function-call", Severity::Critical, 1);
        }
        if input.lower_has(".e(") && glued_number_call(l) {
            out.hit(input, CAT, "sqli.function-call", Severity::Critical, 1);
        }
        if input.lower_has("::") && pg_cast(l) {
            out.hit(input, CAT, "sqli.pg-cast", Severity::Critical, 1);
        }
        if (input.bytes.has(b'\'') && or_truthy_string(l, b'\''))
            || (input.bytes.has(b'"') && or_truthy_string(l, b'"'))
        {
            out.hit(input, CAT, "sqli.quote-logic", Severity::Critical, 1);
        }
        if input.lower_has("/*!") {
            out.hit(input, CAT, "sqli.mysql-comment", Severity::Critical, 1);
        }
        if input.bytes.has(b']') && xpath_breakout(l) {
            out.hit(input, CAT, "sqli.xpath-breakout", Severity::Critical, 1);
        }
        if matches!(input.location.source, Source::ArgName | Source::Arg) && mongo_operator(l) {
            out.hit(input, CAT, "sqli.nosql-operator", Severity::Critical, 1);
        }
    }
}

/// `name(` for a function only SQL has, allowing whitespace and comments before `(`.
fn sql_function_call(l: &str) -> bool {
    let b = l.as_bytes();
    let sk = super::Skipper::new(b);
    let set = crate::extract::ByteSet::of(b);
    let prose = std::cell::OnceCell::new();
    SQL_ONLY_FUNCTIONS
        .iter()
        .filter(|f| set.has_all(f.as_bytes()))
        .any(|f| {
            let mut from = 0;
            while let Some(at) = super::find_word(l, f, from) {
                let j = sk.skip(at + f.len());
                let j = if b.get(j) == Some(&b'\\') { j + 1 } else { j };
                // A word in parentheses is a remark where the function takes no argument
                // ("connection(s) to database(s)") or, in a sentence, after a space ("the
                // Forecast Database (NDFD)"): no query passes a bare word there.
                let remark = b.get(j + 1).is_some_and(u8::is_ascii_alphabetic)
                    && matches!(
                        *f,
                        "database" | "current_user" | "system_user" | "session_user"
                    )
                    || super::lfi::parenthetical_remark(b, at + f.len(), j + 1, || {
                        *prose.get_or_init(|| super::lfi::prose(l))
                    });
                if b.get(j) == Some(&b'(')
                    && !remark
                    && !super::lfi::prose_arguments(b, j + 1)
                    && !prose_after_call(b, j)
                {
                    return true;
                }
                from = at + f.len();
            }
            false
        })
}

/// Whether the call opened at `open` is followed by words of a sentence: right after its
/// `)`, two plain words in a row (after one relation word at most: `char(10) is a newline`,
/// `concat(a, b) joins strings`). After a call SQL goes on with an operator, a keyword, a
/// comment or one alias; a second word after an alias fails to parse, so such a value is a
/// mention, not an injection. Reads at most 64 bytes to the `)` and three words after it.
fn prose_after_call(b: &[u8], open: usize) -> bool {
    const SQL_WORDS: &[&[u8]] = &[
        b"and",
        b"as",
        b"asc",
        b"between",
        b"collate",
        b"desc",
        b"div",
        b"else",
        b"end",
        b"escape",
        b"for",
        b"from",
        b"group",
        b"having",
        b"in",
        b"into",
        b"is",
        b"like",
        b"limit",
        b"mod",
        b"not",
        b"null",
        b"or",
        b"order",
        b"procedure",
        b"regexp",
        b"rlike",
        b"select",
        b"sounds",
        b"then",
        b"union",
        b"using",
        b"when",
        b"where",
        b"xor",
    ];
    let mut depth = 0usize;
    let mut close = None;
    for (k, c) in b.iter().enumerate().skip(open).take(64) {
        match c {
            b'(' => depth += 1,
            b')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    close = Some(k);
                    break;
                }
            }
            _ => {}
        }
    }
    let Some(close) = close else {
        return false;
    };
    let rest = b.get(close + 1..).unwrap_or_default();
    if rest.first() != Some(&b' ') {
        return false;
    }
    let mut words = rest
        .split(|c| *c == b' ')
        .filter(|w| !w.is_empty())
        .take(3)
        .map(|w| {
            let w = w
                .strip_suffix(b".")
                .or_else(|| w.strip_suffix(b","))
                .unwrap_or(w);
            (!w.is_empty() && w.iter().all(u8::is_ascii_alphabetic)).then_some(w)
        });
    let sql = |w: &[u8]| SQL_WORDS.iter().any(|s| w.eq_ignore_ascii_case(s));
    let plain =
        |w: Option<&[u8]>, long: bool| w.is_some_and(|w| !sql(w) && (!long || w.len() >= 2));
    let (w1, w2, w3) = (
        words.next().flatten(),
        words.next().flatten(),
        words.next().flatten(),
    );
    (plain(w1, false) && plain(w2, true))
        || (w1.is_some_and(|w| matches!(w, b"is" | b"in" | b"like"))
            && plain(w2, false)
            && plain(w3, true))
}

/// `' or '1`, `x" OR "2`: the value closes the query's string, then `OR` and a string the
/// query's own closing quote completes, which starts with a non-zero digit: MySQL reads it as
/// a number, PostgreSQL as `true`, so the condition holds for every row. The text before the
/// break-out holds no quote and the last string none either ("choose 'yes' or 'no'" quotes
/// words on both sides; `'x' or 'x` is false in MySQL). Reads the value once from each end.
fn or_truthy_string(l: &str, q: u8) -> bool {
    let b = l.trim_end().as_bytes();
    let Some(last) = b.iter().rposition(|c| *c == q) else {
        return false;
    };
    if !b.get(last + 1).is_some_and(|c| matches!(c, b'1'..=b'9')) {
        return false;
    }
    let Some(first) = b.iter().position(|c| *c == q) else {
        return false;
    };
    let mid = b.get(first + 1..last).unwrap_or_default().trim_ascii();
    mid.eq_ignore_ascii_case(b"or") || mid == b"||"
}

/// A value that is an SQL function name and an opening parenthesis, nothing after it
/// (`COS(`, `trim (`): a call the application's query is meant to complete.
fn open_call_at_end(l: &str) -> bool {
    let head = l.trim_end().trim_end_set(b"(").trim_end();
    let name = head.trim_start();
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && SQL_FUNCTION_SET.contains(name)
}

/// A word in SQL Server's extended and system procedure namespaces (`xp_`, `sp_`) or
/// Oracle's supplied packages (`utl_`, `dbms_`): the prefix, then letters and `_` only.
fn system_procedure(l: &str) -> bool {
    l.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .flat_map(|w| w.split_char('.'))
        .any(|w| {
            ["xp_", "sp_", "utl_", "dbms_"].iter().any(|p| {
                w.strip_prefix(p).is_some_and(|rest| {
                    rest.len() >= 3 && rest.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                })
            })
        })
}

/// `1.e(ascii(...`: MySQL reads `1.e` as a number with an empty exponent and the next token
/// starts right after it, so the number stands where a space would, glued to a call of an
/// SQL function (or a subquery). No language writes a number with an empty exponent, and
/// an outline's `1.e(i)` names no SQL function.
#[inline(never)]
fn glued_number_call(l: &str) -> bool {
    let b = l.as_bytes();
    super::lit_offsets(l, ".e(").any(|p| {
        let digit = p
            .checked_sub(1)
            .and_then(|i| b.get(i))
            .is_some_and(u8::is_ascii_digit);
        let rest = b.get(p + 3..).unwrap_or_default();
        let len = rest
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
            .count();
        let name = l.get(p + 3..p + 3 + len).unwrap_or_default();
        digit && (name == "select" || SQL_FUNCTION_SET.contains(name))
    })
}

/// `expr::type` casts (PostgreSQL).
fn pg_cast(l: &str) -> bool {
    let mut from = 0;
    while let Some(p) = l
        .get(from..)
        .and_then(|h| h.find_lit("::"))
        .map(|p| p + from)
    {
        let before = p.checked_sub(1).and_then(|i| l.as_bytes().get(i)).copied();
        let rest = l.get(p + 2..).unwrap_or_default();
        let ty = rest
            .get(..rest.bytes().take_while(u8::is_ascii_alphanumeric).count())
            .unwrap_or_default();
        let after = l.as_bytes().get(p + 2 + ty.len()).copied();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b')' | b'\'' | b'"'))
            && PG_TYPES.iter().any(|t| *t == ty)
            && after
                .is_none_or(|c| !c.is_ascii_alphanumeric() && c != b'_' && c != b'(' && c != b':')
        {
            return true;
        }
        from = p + 2;
    }
    false
}

/// `$ne`-style operators as a JSON key or in bracket syntax (`user[$ne]`).
/// Runs for every argument name and value, so it must not allocate: every operator starts with
/// `$` (checked in a test), which most values lack; the bracket and `op:` forms are then matched
/// in place.
///
/// The bracket form is read from each `[$` to the next `]` (remembered, so a `[$[$` run
/// is read once): what the operator between them is asked of the list, instead of a search
/// of the value per operator (26 two-way searches per 4 KiB window of a `$` run).
fn mongo_operator(l: &str) -> bool {
    if !l.has_char('$') {
        return false;
    }
    if MONGO_OPERATORS
        .iter()
        .any(|op| l == *op || l.strip_prefix(op).is_some_and(|rest| rest.starts_with(':')))
    {
        return true;
    }
    if operator_member(l) {
        return true;
    }
    let b = l.as_bytes();
    // The first `]` at or after `close_from` (`None`: none there, nor after any later start).
    let mut close: Option<(usize, Option<usize>)> = None;
    for p in crate::detect::lit_offsets(l, "[$") {
        let start = p + 1;
        let q = match close {
            Some((_, None)) => return false,
            Some((_, Some(q))) if q >= start => q,
            _ => {
                let found = b
                    .get(start..)
                    .and_then(|r| crate::detect::find_byte(r, b']'))
                    .map(|k| start + k);
                close = Some((start, found));
                match found {
                    Some(q) => q,
                    None => return false,
                }
            }
        };
        // Operators hold no `]`: the operator is the whole text up to the first one.
        if l.get(start..q)
            .is_some_and(|w| MONGO_OPERATORS.iter().any(|op| *op == w))
        {
            return true;
        }
    }
    false
}

/// XPath injection that leaves a predicate: a quote closes the query's string, `]` (after
/// `)`s) closes its predicate, and a location path (`/`) or a union (`|`) follows
/// (`']/../user[position()=1]/password['`, `x'] | //*['`); the value ends by reopening
/// what the query closes after it (a predicate or call and a quote: `['`, `('`, `='`), as
/// such payloads must. Code that indexes and divides (`row['sum']/row['n']`) ends
/// otherwise. Linear: a bounded look around each `]`.
fn xpath_breakout(l: &str) -> bool {
    let b = l.trim_end().as_bytes();
    let (Some(&q), Some(&reopen)) = (b.last(), b.len().checked_sub(2).and_then(|i| b.get(i)))
    else {
        return false;
    };
    if !matches!(q, b'\'' | b'"') || !matches!(reopen, b'[' | b'(' | b'=' | b',') {
        return false;
    }
    crate::detect::byte_offsets(l, b']').any(|p| {
        let mut i = p;
        while i > 0 && p - i < 4 && b.get(i - 1) == Some(&b')') {
            i -= 1;
        }
        if i == 0 || b.get(i - 1) != Some(&q) {
            return false;
        }
        let next = b
            .get(p + 1..)
            .unwrap_or_default()
            .iter()
            .take(8)
            .find(|c| !c.is_ascii_whitespace());
        matches!(next, Some(b'/' | b'|'))
    })
}

/// An operator written as an object member inside text: a JSON or JavaScript document
/// carried in a string (`{"user":{"$ne":null}}` as a query parameter, a JSON field holding
/// `{'$where': ...}`), which the application parses and hands to the database. The operator
/// opens a member: after `{` or `,` (spaces allowed), quoted or not, then `:`. A price
/// (`"$in": ` is no price) or a `$` in prose has no such shape. Linear: a bounded look at
/// each `$` (and at most one [`prose`](crate::detect::lfi::prose) reading of the value).
fn operator_member(l: &str) -> bool {
    let b = l.as_bytes();
    let mut prose = None;
    crate::detect::byte_offsets(l, b'$').any(|p| {
        let quote = p
            .checked_sub(1)
            .and_then(|i| b.get(i))
            .copied()
            .filter(|&c| c == b'"' || c == b'\'');
        // What opens the member: `{` or `,`, then spaces, then the quote if any.
        let open = p - usize::from(quote.is_some());
        let before = b
            .get(open.saturating_sub(8)..open)
            .unwrap_or_default()
            .iter()
            .rev()
            .find(|c| !c.is_ascii_whitespace());
        // Unquoted (`{ $gte: 100 }`) it is JavaScript's object syntax, which a JSON parser
        // refuses: in a sentence it is shell or driver code quoted in a question
        // ("db.orders.find({ total: { $gte: 100 } }) is slow").
        if open == 0
            || !matches!(before, Some(b'{' | b','))
            || quote.is_none() && *prose.get_or_insert_with(|| crate::detect::lfi::prose(l))
        {
            return false;
        }
        let word = b
            .get(p + 1..)
            .unwrap_or_default()
            .iter()
            .take(12)
            .take_while(|c| c.is_ascii_lowercase())
            .count();
        // Every operator has two letters or more (`$in`): a `$` before `{` or a digit (a
        // `${${...` run has one per `{`) is no operator, without a lookup.
        if word < 2 {
            return false;
        }
        let Some(op) = l.get(p..p + 1 + word) else {
            return false;
        };
        if !MONGO_OPERATORS.iter().any(|o| *o == op) {
            return false;
        }
        let mut j = p + 1 + word;
        if let Some(q) = quote {
            if b.get(j) != Some(&q) {
                return false;
            }
            j += 1;
        }
        b.get(j..)
            .unwrap_or_default()
            .iter()
            .take(8)
            .find(|c| !c.is_ascii_whitespace())
            == Some(&b':')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `operator_member` skips a `$` followed by fewer than two lowercase letters without a
    /// lookup: no operator is that short, and each is `$` and lowercase letters only.
    #[test]
    fn every_operator_has_two_lowercase_letters() {
        for op in MONGO_OPERATORS.iter() {
            let name = op.strip_prefix('$').unwrap_or_default();
            assert!(
                name.len() >= 2 && name.bytes().all(|c| c.is_ascii_lowercase()),
                "{op}"
            );
        }
        assert!(operator_member(r#"{"user":{"$ne":null}}"#));
        assert!(operator_member("{'$in': [1]}"));
        assert!(!operator_member(&"${".repeat(100)));
    }

    fn detect(s: &str) -> Option<&'static str> {
        [Context::None, Context::Single, Context::Double]
            .into_iter()
            .find_map(|ctx| fingerprint(&tokenize(s, ctx), ctx))
    }

    /// The version `mongo_operator` replaced (a search of the value per operator).
    fn mongo_operator_reference(l: &str) -> bool {
        if !l.contains('$') {
            return false;
        }
        MONGO_OPERATORS.iter().any(|op| {
            l == *op
                || l.strip_prefix(op).is_some_and(|rest| rest.starts_with(':'))
                || l.match_indices(op)
                    .any(|(i, _)| l[..i].ends_with('[') && l[i + op.len()..].starts_with(']'))
        })
    }

    #[test]
    fn mongo_operator_matches_the_search_per_operator() {
        const PIECES: &[&str] = &[
            "[", "]", "$", "[$", "$ne", "$nin", "$in", "ne", ":", "a", "$where", "$gte", "é", " ",
            "[$ne]", "][",
        ];
        let mut seed = 0x243f_6a88_85a3_08d3u64;
        for _ in 0..50_000 {
            let mut v = String::new();
            seed = crate::detect::xorshift(seed);
            for k in 0..(seed % 10) {
                v.push_str(PIECES[(seed >> (k * 6)) as usize % PIECES.len()]);
            }
            assert_eq!(mongo_operator(&v), mongo_operator_reference(&v), "{v:?}");
        }
    }

    #[test]
    fn mongo_operators_in_every_form() {
        assert!(MONGO_OPERATORS.iter().all(|op| op.starts_with('$')));
        // One `$` and no `]` each: occurrences never overlap, and the bracket form ends at
        // the first `]` (what `mongo_operator` relies on).
        assert!(MONGO_OPERATORS
            .iter()
            .all(|op| op.matches('$').count() == 1 && !op.contains(']')));
        for hit in ["$ne", "user[$ne]", "a[b][$gt]=1", "$where:1", "x[$regex]"] {
            assert!(mongo_operator(hit), "{hit}");
        }
        for miss in [
            "ne", "user[ne]", "$nothing", "price $5", "[$ne", "$ne]", "a$ne:",
        ] {
            assert!(!mongo_operator(miss), "{miss}");
        }
    }

    #[test]
    fn injections() {
        for s in [
            "1 OR 1=1",
            "1' OR '1'='1",
            "admin'--",
            "admin\" #",
            "x'; DROP TABLE users;--",
            "-1 UNION ALL SELECT username, password FROM users",
            "1 union/**/select @@version",
            "1 AND SLEEP(5)",
            "'; WAITFOR DELAY '0:0:5'--",
            "') or ('a'='a",
            "1) ORDER BY 3--",
            "' and extractvalue(1,concat(0x7e,version()))--",
            "SELECT * FROM users WHERE id=1",
            "if(now()=sysdate(),sleep(12),0)",
            "1;shutdown--",
            "x' OR username LIKE '%",
        ] {
            assert!(detect(s).is_some(), "missed: {s}");
        }
    }

    #[test]
    fn ordinary_text() {
        for s in [
            "select a data plan",
            "O'Reilly and sons",
            "It's a nice day, isn't it?",
            "Rock 'n' roll",
            "size = 10 and color = red",
            "Please select your country from the list",
            "the \"best\" offer",
            "2024-01-01",
            "john.doe@example.com",
            "1 or 2 days",
            "I'm here and it's ok",
            "union station",
            "drop me a line",
            "we're open; come in",
            "rock and roll",
            "-created_at",
            "Bob's burgers -- best in town",
            "what does 'or' mean in logic",
            "reinstall drop and select (again).",
            "I'm into rock and roll; select the best",
            "Add a 'create new packaging' button in 'set_quantity' screen",
            "'grant' vs 'loan'",
        ] {
            assert_eq!(detect(s), None, "false positive: {s}");
        }
    }

    #[test]
    fn open_calls() {
        assert!(open_call_at_end("cos("));
        assert!(open_call_at_end("sin ("));
        assert!(!open_call_at_end("see the table (")); // not a function name alone
        assert!(!open_call_at_end("cosine("));
    }

    #[test]
    fn function_list_is_sorted() {
        assert!(SQL_FUNCTIONS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn fragments_at_paranoia_2() {
        let frag = |s: &str| fragment(&tokenize(s, Context::None));
        for s in [
            "AND deleted = 0)",
            "OR (7319=8742)",
            "|| c == '",
            "&& setPath !=",
            "; insert into",
            ";drop",
            ") AS `carrier_id` from",
            "ORder by",
            "HAVING 1=",
            "FROM t WHERE name=\"x\"",
            "ABS(",
            "FLOOR (",
            "Execute(",
            "SELECT (CASE",
        ] {
            assert!(frag(s).is_some(), "missed: {s}");
        }
        for s in [
            "size = 10 and color = red",
            "we're open; come in",
            "in order to win",
            "speed limit 50 mph",
            "from home where it is warm",
        ] {
            assert_eq!(frag(s), None, "false positive: {s}");
        }
        assert_eq!(special_char_level("a-b"), None);
        assert_eq!(special_char_level("'a'-b"), Some(4));
        assert_eq!(special_char_level("')) or (('1'='1"), Some(3));
    }

    #[test]
    fn system_procedures() {
        for s in [
            "xp_dirtree",
            "exec master..xp_cmdshell 'id'",
            "sp_executesql",
            "utl_http.request",
            "sys.dbms_pipe",
        ] {
            assert!(system_procedure(s), "{s}");
        }
        for s in ["sp_500", "my_sp_list", "xp_", "sp_ab", "wp_options"] {
            assert!(!system_procedure(s), "{s}");
        }
    }

    #[test]
    fn function_calls_and_casts() {
        assert!(sql_function_call("benchmark("));
        assert!(sql_function_call("concat /*x*/ (0x7e"));
        assert!(!sql_function_call("user(id: 1) { name }"));
        assert!(!sql_function_call("my database is down"));
        assert!(pg_cast("password::int"));
        assert!(pg_cast("(x)::jsonb @> y"));
        assert!(!pg_cast("std::string"));
        assert!(!pg_cast("fe80::1"));
    }

    #[test]
    fn quoted_sql_in_a_sentence() {
        assert!(quoted_mention("Use 'SELECT 1' as a health check", '\''));
        assert!(quoted_mention(
            "Run \"SELECT version();\" to see the server version",
            '"'
        ));
        // A comment inside cuts the sentence off: a real break-out.
        assert!(!quoted_mention("please 'or 1=1--' thanks a lot", '\''));
        // Glued to a word: the quote closes the query's string.
        assert!(!quoted_mention("x' union select a from b where 'a", '\''));
        assert!(quoted_selector("$('#app').hide()", '\''));
        assert!(!quoted_selector("admin'#", '\''));
        assert_eq!(
            detect("SELECT/**/password/**/FROM/**/users"),
            Some("sqli.statement")
        );
        assert_eq!(detect("SELECT is a keyword; so is FROM."), None);
        assert_eq!(detect("Create table reservations online"), None);
        assert_eq!(detect("fetch('/api/items').then(r => r.json())"), None);
    }

    #[test]
    fn mongo() {
        assert!(mongo_operator("$ne"));
        assert!(mongo_operator("user[$gt]"));
        assert!(!mongo_operator("price$"));
    }
}

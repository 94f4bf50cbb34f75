//! The request mix every scenario is driven with, so all scenarios are compared on the same
//! traffic: mostly API reads with a realistic set of headers, ~1 KB JSON and form bodies, a few
//! static assets, and about one request in ten carrying an attack pattern (SQL injection, XSS,
//! path traversal) for the inspecting filters to find. Twenty users (`x-user-id` and a session
//! cookie) rotate, so a sticky split sees different keys.

use crate::load::Request;

/// Users the mix rotates through.
const USERS: usize = 20;

/// The mix, in the order wrk rotates through it (40 requests).
pub fn mix() -> Vec<Request> {
    let mut out = Vec::new();
    for i in 0..USERS {
        let user = format!("user-{i:02}");
        let base = |method: &str, path: &str| {
            Request::new(method, path)
                // A name, not wrk's default `127.0.0.1:PORT`: CRS scores a numeric Host (920350),
                // and browsers send names. Spelled `Host` so wrk's `wrk.format` keeps it.
                .header("Host", "shop.example.com")
                .header(
                    "user-agent",
                    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
                )
                .header("accept", "application/json, text/plain, */*")
                .header("accept-language", "en-US,en;q=0.9")
                .header("x-user-id", &user)
                .header("cookie", &format!("session={user}-7f3a9c2e; theme=dark"))
        };
        let req = match i % 5 {
            0 => base("GET", &format!("/api/items?id={i}&sort=asc&page=2")),
            1 => base("POST", "/api/orders")
                .header("content-type", "application/json")
                .body(json_body(i)),
            2 => base("GET", &format!("/api/users/{i}/profile")),
            3 => base("POST", "/api/search")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form_body(i)),
            _ => base("GET", "/static/js/app.3f9a1c.js"),
        };
        out.push(req);
        // Each user sends a second request; four of the forty are hostile.
        let second = match i % 10 {
            0 => base(
                "GET",
                "/api/items?q=1%27%20UNION%20SELECT%20password%20FROM%20users--",
            ),
            5 => base("GET", "/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E"),
            3 | 7 => base("GET", "/healthz"),
            _ => base("GET", &format!("/api/items/{i}?fields=name,price")),
        };
        out.push(second);
    }
    out
}

fn json_body(i: usize) -> String {
    let mut items = Vec::new();
    for n in 0..12 {
        items.push(format!(
            r#"{{"sku":"SKU-{i:03}-{n:02}","name":"Item number {n} for order","qty":{q},"price":{p}.99}}"#,
            q = n + 1,
            p = 10 + n
        ));
    }
    format!(
        r#"{{"customer":"user-{i:02}","currency":"EUR","items":[{}],"note":"leave at the door"}}"#,
        items.join(",")
    )
}

fn form_body(i: usize) -> String {
    let mut fields = vec![
        format!("user=user-{i:02}"),
        "q=blue+running+shoes+size+42".to_string(),
        "category=sports".to_string(),
    ];
    for n in 0..45 {
        fields.push(format!("filter{n}=value-{n}-abcdef"));
    }
    fields.join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_about_one_kilobyte_and_one_in_ten_is_hostile() {
        let mix = mix();
        assert_eq!(mix.len(), 40);
        for r in mix.iter().filter(|r| !r.body.is_empty()) {
            assert!(
                (700..1400).contains(&r.body.len()),
                "{} bytes",
                r.body.len()
            );
        }
        let hostile = mix
            .iter()
            .filter(|r| r.path.contains("UNION") || r.path.contains("script"))
            .count();
        assert_eq!(hostile, 4);
    }
}

use threat_score::{Config, DetectorKind, Request};
fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let engine = Config::default().compile().unwrap();
    for name in a[1..].iter() {
        let unit = threat_score::hostile::GENERATORS.iter().find(|(n, _)| n == name).unwrap().1;
        let kind = if a[0] == "json" { threat_score::hostile::Wrap::Json } else { threat_score::hostile::Wrap::Text };
        let (ct, body) = kind.body(unit, 65536);
        let headers = vec![("host".to_string(), "example.com".to_string()), ("content-type".to_string(), ct.to_string())];
        let req = Request::new("POST", "/upload").with_headers(&headers).with_body(&body);
        let p = engine.prepare(&req);
        let w = p.windowed().unwrap_or(p);
        let mut line = format!("{name:>15}");
        for &k in DetectorKind::ALL {
            let t = std::time::Instant::now();
            for _ in 0..5 { std::hint::black_box(engine.run_detector(k, &w)); }
            line += &format!(" {:?}={:.1}", k, t.elapsed().as_secs_f64() * 200.0);
        }
        println!("{line}");
    }
}

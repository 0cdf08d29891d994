//! Strings from users and servers (model names, labels, config values, errors) appear in
//! the HTML, the Markdown and the charts only escaped: no element or attribute is injected.

use serde_json::json;

use crate::support::api::report::{self, h2h::Settings};
use crate::support::api::store::Store;
use crate::support::report::*;

/// Elements the page and plotters' SVG may contain; anything else was injected.
const ALLOWED: &[&str] = &[
    "html",
    "head",
    "meta",
    "title",
    "style",
    "body",
    "header",
    "h1",
    "h2",
    "h3",
    "h4",
    "p",
    "nav",
    "a",
    "main",
    "section",
    "article",
    "ul",
    "li",
    "strong",
    "div",
    "table",
    "tr",
    "th",
    "td",
    "span",
    "br",
    "figure",
    "figcaption",
    "details",
    "summary",
    "dl",
    "dt",
    "dd",
    "pre",
    "code",
    "footer",
    "svg",
    "rect",
    "text",
    "polyline",
    "circle",
    "line",
    "path",
    "polygon",
    "g",
];

/// Every opening tag in `doc`: (name, attribute names, attribute text). Text never holds
/// a raw `<` once escaped.
fn tags(doc: &str) -> Vec<(String, Vec<String>, String)> {
    let mut out = Vec::new();
    let mut rest = doc;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let end = rest.find('>').expect("tag closes");
        let inner = &rest[..end];
        rest = &rest[end..];
        if inner.starts_with("!DOCTYPE") || inner.starts_with('/') {
            continue;
        }
        let inner = inner.trim_end_matches('/');
        let (name, attrs) = inner.split_once(char::is_whitespace).unwrap_or((inner, ""));
        // Attribute names sit outside the quoted (escaped) values.
        let names = attrs
            .split('"')
            .step_by(2)
            .flat_map(|part| part.split_whitespace())
            .map(|w| w.trim_end_matches('=').to_ascii_lowercase())
            .filter(|w| !w.is_empty())
            .collect();
        out.push((name.to_ascii_lowercase(), names, attrs.to_string()));
    }
    out
}

fn assert_no_injection(what: &str, doc: &str) {
    for (name, names, attrs) in tags(doc) {
        assert!(
            ALLOWED.contains(&name.as_str()),
            "{what}: element <{name}> injected"
        );
        for attr in &names {
            assert!(
                !attr.starts_with("on"),
                "{what}: attribute {attr} in <{name} {attrs}>"
            );
            assert!(
                !["src", "style", "xlink:href"].contains(&attr.as_str()),
                "{what}: {attr} in <{name} {attrs}>"
            );
            assert!(attr != "href" || name == "a", "{what}: href on <{name}>");
        }
        if name == "a" {
            assert!(
                attrs.starts_with("href=\"#") || attrs.starts_with("href=\"index.html"),
                "{what}: link {attrs}"
            );
        }
    }
    assert!(
        !doc.contains("</script>") && !doc.contains("<img") && !doc.contains("<script"),
        "{what}"
    );
}

#[test]
fn payloads_appear_only_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path());
    store.ensure_layout().unwrap();
    let model = format!("gemma3:4b{PAYLOAD}");
    let mut a = Spec::new("ollama", &model, "2024-10-28T08:00:00Z", 120.0);
    a.ttft_p50 = Some(300.0);
    a.failure = 3;
    a.labels = json!({"note": PAYLOAD, "input": PAYLOAD});
    a.config = json!({"chat_template": PAYLOAD, PAYLOAD: 1});
    a.errors_by_kind = json!({PAYLOAD: 3});
    let ollama = publish(&store, &a);
    write_raw_log(
        &store,
        &ollama,
        103,
        300.0,
        3,
        &format!("HTTP 500 {PAYLOAD}"),
    );
    let mut b = Spec::new("vllm-serve", &model, "2024-10-28T09:00:00Z", 400.0);
    b.ttft_p50 = Some(80.0);
    b.labels = json!({"input": PAYLOAD});
    let vllm = publish(&store, &b);
    write_raw_log(&store, &vllm, 100, 80.0, 0, "");
    // A model name that is nothing but the payload, alone on its input.
    let mut c = Spec::new("ollama", PAYLOAD, "2024-10-29T09:00:00Z", 50.0);
    c.input_sha = None;
    publish(&store, &c);

    let runs = store.load_all().unwrap();
    let written =
        crate::support::api::derive::write_report(&store, &runs, &Settings::default()).unwrap();
    assert_eq!(
        written.groups, 1,
        "the two runs labelled with the same input pair up"
    );
    let read = |p: &str| std::fs::read_to_string(dir.path().join(p)).unwrap();

    let html = read(report::HTML_PATH);
    assert_no_injection("index.html", &html);
    // The payload is there, escaped: as model name, label, config, error kind and message.
    let escaped = "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;|x";
    assert!(
        html.matches(escaped).count() >= 6,
        "{}",
        html.matches(escaped).count()
    );
    assert!(
        html.contains(&format!("HTTP 500 {escaped}")),
        "example error from the raw log"
    );

    let md = read(report::COMPARISON_PATH);
    assert!(!md.contains("</script>") && !md.contains("<img"));
    assert!(md.contains("&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;&#124;x"));
    // Every table row keeps its column count: no payload pipe escaped the cell.
    for block in md.split("\n\n").filter(|b| b.starts_with('|')) {
        let counts: Vec<usize> = block.lines().map(|l| l.matches('|').count()).collect();
        assert!(
            counts.windows(2).all(|w| w[0] == w[1]),
            "ragged table:\n{block}"
        );
    }

    for entry in std::fs::read_dir(dir.path().join(report::CHARTS_DIR)).unwrap() {
        let path = entry.unwrap().path();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert_no_injection(&path.display().to_string(), &svg);
        assert!(
            !svg.chars().any(|c| c.is_control() && c != '\n'),
            "control characters make invalid XML"
        );
    }

    // Summary JSON keeps the real strings (it is data, not markup).
    let summary = read(report::SUMMARY_PATH);
    let v: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(v["runs"][0]["model"], model.as_str());
}

#[test]
fn hostile_metadata_paths_stay_inside_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path());
    store.ensure_layout().unwrap();
    let mut s = Spec::new("ollama", "gemma3:4b", "2024-10-28T08:00:00Z", 10.0);
    s.ttft_p50 = Some(100.0);
    let id = publish(&store, &s);
    // Point the raw file and the GPU series outside the store.
    let path = store.metadata_path(&id);
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    v["test"]["output_file"] = json!("raw/../../../../etc/passwd");
    v["gpu"] = json!({"series_file": "/etc/passwd"});
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    let runs = store.load_all().unwrap();
    crate::support::api::derive::write_report(&store, &runs, &Settings::default()).unwrap();
    let html = std::fs::read_to_string(dir.path().join(report::HTML_PATH)).unwrap();
    assert!(!html.contains("root:x:0:0"));
}

//! The page's inline style sheet (no external CSS may load, see the CSP).

pub(super) const STYLE: &str = r#"
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 0; color: #1b1f24; background: #f6f7f9; line-height: 1.45; }
header { background: #14233a; color: #fff; padding: 18px 28px 12px; }
header h1 { margin: 0 0 4px; font-size: 24px; }
header p { margin: 0 0 8px; color: #c9d3e0; font-size: 14px; }
nav a { color: #9cc7ff; margin-right: 18px; font-size: 14px; text-decoration: none; }
main { max-width: 1240px; margin: 0 auto; padding: 8px 24px 40px; }
section { background: #fff; border: 1px solid #dde1e6; border-radius: 8px; padding: 6px 22px 18px; margin: 18px 0; }
h2 { font-size: 20px; border-bottom: 1px solid #e6e9ed; padding-bottom: 6px; }
h3 { font-size: 16px; margin: 22px 0 6px; }
h4 { font-size: 14px; margin: 14px 0 4px; }
p.note, p.rules { color: #4a5562; font-size: 13px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #dde1e6; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f0f2f5; font-weight: 600; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.scroll { overflow-x: auto; }
.good { color: #0a7a3b; font-weight: 600; }
.bad { color: #b3261e; font-weight: 600; }
.base { font-style: italic; color: #4a5562; }
.r { font-size: 12px; color: #4a5562; }
.r.good { color: #0a7a3b; }
.r.bad { color: #b3261e; }
ul.ratios { margin: 6px 0; padding-left: 20px; }
ul.ratios li { margin: 2px 0; }
figure { margin: 10px 0; }
figcaption { font-size: 12px; color: #4a5562; }
svg.chart { max-width: 100%; height: auto; border: 1px solid #eef0f3; }
details { border: 1px solid #dde1e6; border-radius: 6px; margin: 6px 0; padding: 4px 10px; background: #fbfbfc; }
details[open] { background: #fff; }
summary { cursor: pointer; font-size: 14px; }
summary .st { font-size: 12px; padding: 1px 6px; border-radius: 8px; background: #e6e9ed; margin-left: 6px; }
summary .st.failed, summary .st.interrupted { background: #f8d7d5; }
summary .st.partial, summary .st.running { background: #fdeccc; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; font-size: 13px; margin: 6px 0; }
dt { color: #4a5562; }
dd { margin: 0; word-break: break-word; }
pre { background: #f6f7f9; border: 1px solid #e6e9ed; padding: 8px; font-size: 12px; overflow-x: auto; white-space: pre-wrap; word-break: break-word; }
p.verdict { font-size: 15px; font-weight: 600; margin: 4px 0; }
ul.caveats { margin: 6px 0; padding-left: 20px; color: #7a4a00; font-size: 13px; }
p.caveat { color: #7a4a00; }
p.cost { font-size: 14px; margin: 4px 0; }
footer { text-align: center; color: #6b7582; font-size: 12px; padding: 10px; }
"#;

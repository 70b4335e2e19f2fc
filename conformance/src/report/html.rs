//! The HTML report: one self-contained page (no external assets, no script), a matrix in the
//! manner of Autobahn|Testsuite's: cases down, targets across, each cell coloured by outcome.
//!
//! Each cell links to its verdict (`#CAPTURE/KIND/NNNN@TARGET`), which opens in a panel at the
//! bottom of the window (CSS `:target`): the request, the expected and the actual reply as
//! Erlang terms side by side, and the bytes of both replies around the first difference with
//! the differing byte marked. Cases are grouped by capture; a capture with nothing but passes
//! starts closed, and within a capture the cases that pass on every target are folded away,
//! so the page stays usable at thousands of cases.

use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::{count, hex_window, HexLine, Matrix, Row};
use crate::case::{Exchange, Outcome, Verdict};

/// The page as HTML text.
pub fn render(verdicts: &[Verdict], title: &str) -> String {
    let matrix = Matrix::of(verdicts);
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(CSS)) }
            }
            body {
                header {
                    h1 { (title) }
                    p.totals {
                        (matrix.rows.len()) " cases, " (verdicts.len()) " verdicts, "
                        (matrix.targets.len()) (if matrix.targets.len() == 1 { " target" } else { " targets" })
                        ". Click a cell for the request and the replies."
                    }
                    (summary(verdicts, &matrix))
                    (failing(verdicts))
                }
                main {
                    @for (capture, rows) in matrix.by_capture() {
                        (capture_section(capture, &rows, &matrix))
                    }
                }
                @for v in verdicts {
                    (panel(v))
                }
            }
        }
    };
    page.into_string()
}

/// Per target, how many verdicts ended in each outcome.
fn summary(verdicts: &[Verdict], matrix: &Matrix<'_>) -> Markup {
    html! {
        table.summary {
            thead {
                tr {
                    th { "target" }
                    @for o in Outcome::ALL { th class={"o-" (o.name())} { (o.name()) } }
                    th { "total" }
                }
            }
            tbody {
                @for target in &matrix.targets {
                    @let counts = count(verdicts.iter().filter(|v| v.target == *target).map(|v| v.outcome));
                    tr {
                        th { (target) }
                        @for (o, n) in Outcome::ALL.iter().zip(counts) {
                            td class={ "n " @if n > 0 { "o-" (o.name()) } @else { "zero" } } { (n) }
                        }
                        td.n { (counts.iter().sum::<usize>()) }
                    }
                }
            }
        }
    }
}

/// Failing cells to jump to, at most [`FAILING_LISTED`] of them.
fn failing(verdicts: &[Verdict]) -> Markup {
    let failing: Vec<&Verdict> = verdicts
        .iter()
        .filter(|v| v.outcome == Outcome::Fail)
        .collect();
    html! {
        @if !failing.is_empty() {
            p.failing {
                "Failing: "
                @for (i, v) in failing.iter().take(FAILING_LISTED).enumerate() {
                    @if i > 0 { ", " }
                    a href={"#" (anchor(v))} { (v.id) " on " (v.target) }
                }
                @if failing.len() > FAILING_LISTED {
                    ", and " (failing.len() - FAILING_LISTED) " more"
                }
            }
        }
    }
}

/// How many failing cells the page's header links to.
const FAILING_LISTED: usize = 50;

fn capture_section(capture: &str, rows: &[&Row<'_>], matrix: &Matrix<'_>) -> Markup {
    let (passing, others): (Vec<&Row>, Vec<&Row>) =
        rows.iter().partition(|r| r.worst() == Outcome::Pass);
    let counts = count(
        rows.iter()
            .flat_map(|r| r.cells.iter().flatten().map(|v| v.outcome)),
    );
    html! {
        details.capture open[!others.is_empty()] {
            summary {
                span.name { (capture) }
                " " span.cases {
                    (rows.len()) " cases"
                    @if matrix.targets.len() > 1 { ", " (counts.iter().sum::<usize>()) " verdicts" }
                    ":"
                }
                @for (o, n) in Outcome::ALL.iter().zip(counts) {
                    @if n > 0 { " " span class={"chip o-" (o.name())} { (n) " " (o.name()) } }
                }
            }
            @if !others.is_empty() {
                (matrix_table(&others, matrix))
            }
            @if !passing.is_empty() {
                details.passes {
                    summary { (passing.len()) " cases pass on every target" }
                    (matrix_table(&passing, matrix))
                }
            }
        }
    }
}

fn matrix_table(rows: &[&Row<'_>], matrix: &Matrix<'_>) -> Markup {
    html! {
        table.matrix {
            colgroup {
                col.id;
                col.sum;
                @for _ in &matrix.targets { col.t; }
            }
            thead {
                tr {
                    th { "case" }
                    th { "summary" }
                    @for t in &matrix.targets { th.t title=(t) { (t) } }
                }
            }
            tbody {
                @for row in rows {
                    tr {
                        td.id { (row.id.kind) "/" (format!("{:04}", row.id.number)) }
                        td.sum title=(row.summary()) { (row.summary()) }
                        @for cell in &row.cells {
                            @match cell {
                                Some(v) => td class={"cell o-" (v.outcome.name())} {
                                    a href={"#" (anchor(v))} title=(v.detail) { (v.outcome.name()) }
                                },
                                None => td.cell.none { "–" },
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The verdict's fragment: `otp25-boot/server/0042@in-process`.
fn anchor(v: &Verdict) -> String {
    format!("{}@{}", v.id, v.target)
}

/// A verdict in full, shown when its fragment is the page's target.
fn panel(v: &Verdict) -> Markup {
    html! {
        section.case id=(anchor(v)) {
            div.bar {
                a.close href="#_" title="close" { "×" }
                b { (v.id) } " on " b { (v.target) } " "
                span class={"chip o-" (v.outcome.name())} { (v.outcome.name()) }
                " " span.summary { (v.summary) }
            }
            @if !v.detail.is_empty() { p.detail { (v.detail) } }
            @if let Some(e) = &v.exchange { (exchange(e)) }
        }
    }
}

fn exchange(e: &Exchange) -> Markup {
    let at = e.first_difference();
    html! {
        div.terms {
            div { h3 { "request" } pre { (e.sent_text()) } }
            div { h3 { "expected (OTP)" } pre { (e.expected_text()) } }
            div { h3 { "actual" } pre.actual[at.is_some()] { (e.actual_text()) } }
        }
        @if let Some(at) = at {
            p.difference {
                "first difference at byte " b { (at) } " (expected " (size(&e.expected)) ", actual " (size(&e.actual)) ")"
            }
            div.hexes {
                div { h3 { "expected" } (hex(e.expected.as_deref(), at)) }
                div { h3 { "actual" } (hex(e.actual.as_deref(), at)) }
            }
        } @else {
            p.same { "the replies are byte-identical (" (size(&e.expected)) ")" }
        }
    }
}

fn size(bytes: &Option<Vec<u8>>) -> String {
    match bytes {
        None => "nothing".into(),
        Some(b) if b.len() == 1 => "1 byte".into(),
        Some(b) => format!("{} bytes", b.len()),
    }
}

/// Offset, hex and characters around `at`, the byte at `at` marked.
fn hex(bytes: Option<&[u8]>, at: usize) -> Markup {
    let Some(bytes) = bytes else {
        return html! { pre.hex { "(nothing)" } };
    };
    let lines = hex_window(bytes, at);
    html! {
        pre.hex {
            @if lines.is_empty() { "(ends at byte " (bytes.len()) ")" }
            @for line in &lines { (hex_line(line, at)) "\n" }
        }
    }
}

fn hex_line(line: &HexLine<'_>, at: usize) -> Markup {
    let marked = |i: usize| line.offset + i == at;
    html! {
        span.off { (format!("{:08x}", line.offset)) }
        @for (i, b) in line.bytes.iter().enumerate() {
            " " @if marked(i) { mark { (format!("{b:02x}")) } } @else { (format!("{b:02x}")) }
        }
        // Pad a short last line so the characters stay in their column.
        (" ".repeat(3 * (16 - line.bytes.len()))) "  "
        @for (i, &b) in line.bytes.iter().enumerate() {
            @let c = if (0x20..0x7f).contains(&b) { char::from(b) } else { '.' };
            @if marked(i) { mark { (c) } } @else { (c) }
        }
    }
}

const CSS: &str = r#"
:root { --pass: #3c9a3c; --non-strict: #c9a800; --fail: #d23b3b; --info: #4a86c5; --unsupported: #8c8c8c; }
* { box-sizing: border-box; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 0 0 60vh 0; color: #222; background: #fafafa; }
header { padding: 12px 20px; background: #fff; border-bottom: 1px solid #ddd; }
h1 { font-size: 20px; margin: 0 0 4px 0; }
.totals { margin: 0 0 8px 0; color: #555; }
.failing { margin: 8px 0 0 0; }
.failing a { color: var(--fail); font-family: ui-monospace, monospace; font-size: 12px; }
main { padding: 8px 20px; }
table { border-collapse: collapse; }
table.summary th, table.summary td { padding: 3px 10px; border: 1px solid #ddd; text-align: left; }
table.summary thead th { color: #fff; }
table.summary thead th:first-child, table.summary thead th:last-child { color: #222; background: #eee; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
td.zero { color: #bbb; background: #fff; }
.o-pass { background: var(--pass); color: #fff; }
.o-non-strict { background: var(--non-strict); color: #222; }
.o-fail { background: var(--fail); color: #fff; }
.o-info { background: var(--info); color: #fff; }
.o-unsupported { background: var(--unsupported); color: #fff; }
details.capture { background: #fff; border: 1px solid #ddd; margin: 6px 0; }
details.capture > summary { padding: 6px 10px; cursor: pointer; }
details.capture > summary .name { font-weight: 600; font-family: ui-monospace, monospace; }
details.capture > summary .cases { color: #666; }
.chip { display: inline-block; padding: 0 6px; border-radius: 3px; font-size: 12px; }
details.passes { margin: 4px 10px 8px 10px; }
details.passes > summary { cursor: pointer; color: #3c6e3c; }
table.matrix { table-layout: fixed; width: calc(100% - 20px); margin: 4px 10px; }
table.matrix col.id { width: 130px; }
table.matrix col.t { width: 110px; }
table.matrix th { text-align: left; font-weight: 600; border-bottom: 2px solid #ccc; padding: 2px 6px;
  overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
table.matrix td { padding: 1px 6px; border-bottom: 1px solid #eee; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
table.matrix td.id, table.matrix td.sum { font-family: ui-monospace, monospace; font-size: 12px; }
table.matrix tbody tr:hover td.id, table.matrix tbody tr:hover td.sum { background: #f0f4ff; }
td.cell { text-align: center; border-left: 2px solid #fff; }
td.cell a { color: inherit; text-decoration: none; display: block; }
td.cell.none { color: #bbb; }
section.case { display: none; }
section.case:target { display: block; position: fixed; left: 0; right: 0; bottom: 0; max-height: 58vh;
  overflow: auto; background: #fff; border-top: 3px solid #555; box-shadow: 0 -4px 16px rgba(0,0,0,.2);
  padding: 8px 20px 16px 20px; }
.bar { font-size: 15px; }
.bar .summary { font-family: ui-monospace, monospace; font-size: 13px; color: #444; }
.close { float: right; font-size: 22px; line-height: 1; text-decoration: none; color: #555; }
.detail { margin: 6px 0; }
.terms, .hexes { display: grid; gap: 12px; }
.terms { grid-template-columns: repeat(3, minmax(0, 1fr)); }
.hexes { grid-template-columns: repeat(2, max-content); }
h3 { font-size: 12px; text-transform: uppercase; color: #666; margin: 8px 0 2px 0; }
pre { margin: 0; padding: 6px; background: #f4f4f4; border: 1px solid #e2e2e2; font-size: 12px;
  white-space: pre-wrap; word-break: break-all; max-height: 30vh; overflow: auto; }
pre.actual { border-color: var(--fail); }
pre.hex { white-space: pre; word-break: normal; }
.off { color: #888; }
mark { background: var(--fail); color: #fff; }
.difference, .same { margin: 8px 0 0 0; }
"#;

#[cfg(test)]
mod tests {
    use super::super::sample;
    use super::*;

    #[test]
    fn page() {
        insta::assert_snapshot!(render(&sample::verdicts(), "erlboot conformance"));
    }

    #[test]
    fn every_verdict_has_a_cell_and_a_panel() {
        let verdicts = sample::verdicts();
        let page = render(&verdicts, "t");
        for v in &verdicts {
            let anchor = anchor(v);
            assert!(page.contains(&format!(r##"href="#{anchor}""##)), "{anchor}");
            assert!(page.contains(&format!(r#"id="{anchor}""#)), "{anchor}");
        }
        assert_eq!(
            page.matches("<section class=\"case\"").count(),
            verdicts.len()
        );
        // Self-contained: nothing fetched from elsewhere.
        for outside in ["src=", "<link", "http://", "https://", "@import"] {
            assert!(!page.contains(outside), "{outside}");
        }
    }

    #[test]
    fn the_first_differing_byte_is_marked() {
        let verdicts = sample::verdicts();
        let page = render(&verdicts[1..2], "t");
        // {get,{ok,<<"hello">>}} against <<"help!">>: byte 24 is 'l' (6c) against 'p' (70).
        assert!(page.contains("first difference at byte <b>24</b>"));
        assert!(page.contains("<mark>6c</mark>"));
        assert!(page.contains("<mark>70</mark>"));
        assert!(page.contains("<mark>p</mark>"));
    }

    #[test]
    fn text_is_escaped() {
        let mut verdicts = sample::verdicts();
        verdicts[0].summary = "<script>alert(1)</script>".into();
        let page = render(&verdicts, "a <b> & c");
        assert!(!page.contains("<script>"));
        assert!(page.contains("&lt;script&gt;"));
        assert!(page.contains("<title>a &lt;b&gt; &amp; c</title>"));
    }
}

//! The JSON report: `{"summary": {...}, "cases": [...]}`, one object per verdict.
//!
//! A case object has `id` (`otp25-boot/server/0042`), `capture`, `kind`, `number`, `target`,
//! `outcome` (`pass`, `non-strict`, `fail`, `info`, `unsupported`), `summary` and `detail`,
//! and, when the case compared bytes, `exchange`: `sent`, `expected` and `actual` as Erlang
//! text (`none` for silence), their sizes in bytes (`null` for silence) and
//! `first_difference` (a byte offset, or `null`). `summary` has `total`, a count per outcome
//! and `targets`.

use serde_json::{json, Map, Value};

use super::targets;
use crate::case::{tally, Exchange, Verdict};

/// The report as a JSON value.
pub fn value(verdicts: &[Verdict]) -> Value {
    let mut summary = Map::new();
    summary.insert("total".into(), verdicts.len().into());
    for (outcome, n) in tally(verdicts) {
        summary.insert(outcome.name().into(), n.into());
    }
    summary.insert("targets".into(), json!(targets(verdicts)));
    json!({
        "summary": summary,
        "cases": verdicts.iter().map(case).collect::<Vec<Value>>(),
    })
}

/// The report as pretty-printed JSON text, ending in a newline.
pub fn render(verdicts: &[Verdict]) -> String {
    let mut text = serde_json::to_string_pretty(&value(verdicts))
        .expect("a JSON value of strings and numbers always serialises");
    text.push('\n');
    text
}

fn case(v: &Verdict) -> Value {
    let mut case = json!({
        "id": v.name(),
        "capture": v.id.capture,
        "kind": v.id.kind.name(),
        "number": v.id.number,
        "target": v.target,
        "outcome": v.outcome.name(),
        "summary": v.summary,
        "detail": v.detail,
    });
    if let Some(exchange) = &v.exchange {
        case["exchange"] = exchange_value(exchange);
    }
    case
}

fn exchange_value(e: &Exchange) -> Value {
    json!({
        "sent": e.sent_text(),
        "expected": e.expected_text(),
        "actual": e.actual_text(),
        "sent_bytes": e.sent.len(),
        "expected_bytes": e.expected.as_ref().map(Vec::len),
        "actual_bytes": e.actual.as_ref().map(Vec::len),
        "first_difference": e.first_difference(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::sample;
    use super::*;

    #[test]
    fn report() {
        insta::assert_snapshot!(render(&sample::verdicts()));
    }

    #[test]
    fn every_case_has_the_required_fields() {
        let verdicts = sample::verdicts();
        let report = value(&verdicts);
        let cases = report["cases"].as_array().unwrap();
        assert_eq!(cases.len(), verdicts.len());
        for (case, v) in cases.iter().zip(&verdicts) {
            for field in [
                "id", "capture", "kind", "outcome", "target", "summary", "detail",
            ] {
                assert!(case[field].is_string(), "{field} in {case}");
            }
            assert_eq!(case["id"], v.name());
            assert_eq!(case["outcome"], v.outcome.name());
        }
        assert_eq!(report["summary"]["total"], 8);
        assert_eq!(report["summary"]["fail"], 2);
        assert_eq!(report["summary"]["pass"], 3);
    }
}

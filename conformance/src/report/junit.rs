//! The JUnit XML report, for CI systems: one `testsuite` per capture, one `testcase` per
//! verdict, a `failure` for each Fail and `skipped` for each Unsupported.
//!
//! A testcase is named by the case id, with the target in brackets when the run had more than
//! one; its class name is `CAPTURE.KIND`. Non-strict and Info cases pass, their detail in
//! `system-out`.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use thiserror::Error;

use super::targets;
use crate::case::{Outcome, Verdict};

/// Why the XML could not be written.
#[derive(Debug, Error)]
#[error("writing the JUnit report: {0}")]
pub struct JunitError(#[from] quick_junit::SerializeError);

/// The report as XML text.
pub fn render(verdicts: &[Verdict]) -> Result<String, JunitError> {
    let several_targets = targets(verdicts).len() > 1;
    let mut report = Report::new("erlboot conformance");
    let mut suites: Vec<TestSuite> = Vec::new();
    for v in verdicts {
        let suite = match suites
            .iter_mut()
            .position(|s| s.name.as_str() == v.id.capture)
        {
            Some(i) => &mut suites[i],
            None => {
                suites.push(TestSuite::new(v.id.capture.as_str()));
                suites.last_mut().expect("just pushed")
            }
        };
        suite.add_test_case(test_case(v, several_targets));
    }
    report.add_test_suites(suites);
    Ok(report.to_string()?)
}

fn test_case(v: &Verdict, several_targets: bool) -> TestCase {
    let name = if several_targets {
        format!("{} [{}]", v.id, v.target)
    } else {
        v.name()
    };
    let status = match v.outcome {
        Outcome::Fail => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status.set_message(if v.detail.is_empty() {
                "fail"
            } else {
                v.detail.as_str()
            });
            status.set_type("fail");
            if let Some(e) = &v.exchange {
                let at = e
                    .first_difference()
                    .map_or_else(String::new, |at| format!("\nfirst difference at byte {at}"));
                status.set_description(format!(
                    "sent:     {}\nexpected: {}\nactual:   {}{at}",
                    e.sent_text(),
                    e.expected_text(),
                    e.actual_text()
                ));
            }
            status
        }
        Outcome::Unsupported => {
            let mut status = TestCaseStatus::skipped();
            status.set_message(v.detail.as_str());
            status.set_type("unsupported");
            status
        }
        Outcome::Pass | Outcome::NonStrict | Outcome::Info => TestCaseStatus::success(),
    };
    let mut case = TestCase::new(name, status);
    case.set_classname(format!("{}.{}", v.id.capture, v.id.kind));
    if matches!(v.outcome, Outcome::NonStrict | Outcome::Info) {
        case.set_system_out(format!("{} ({}): {}", v.outcome, v.summary, v.detail));
    }
    case
}

#[cfg(test)]
mod tests {
    use super::super::sample;
    use super::*;

    #[test]
    fn report() {
        insta::assert_snapshot!(render(&sample::verdicts()).unwrap());
    }

    #[test]
    fn xml_reads_back_with_the_verdicts_counts() {
        let xml = render(&sample::verdicts()).unwrap();
        assert!(xml.starts_with("<?xml"));
        // Well-formed: an XML reader takes it back whole.
        let report = Report::deserialize_from_str(&xml).unwrap();
        assert_eq!((report.tests, report.failures, report.skipped), (8, 2, 1));
        let suites: Vec<(&str, usize, usize, usize)> = report
            .test_suites
            .iter()
            .map(|s| (s.name.as_str(), s.tests, s.failures, s.skipped))
            .collect();
        assert_eq!(
            suites,
            [("otp25-boot", 5, 1, 0), ("otp27-requests", 3, 1, 1)]
        );
        let names: Vec<&str> = report.test_suites[0]
            .test_cases
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names[0], "otp25-boot/server/0001 [in-process]");
    }

    #[test]
    fn one_target_leaves_it_out_of_the_names() {
        let verdicts: Vec<Verdict> = sample::verdicts()
            .into_iter()
            .filter(|v| v.target == "in-process")
            .collect();
        let report = Report::deserialize_from_str(&render(&verdicts).unwrap()).unwrap();
        assert_eq!(
            report.test_suites[0].test_cases[0].name.as_str(),
            "otp25-boot/server/0001"
        );
    }
}

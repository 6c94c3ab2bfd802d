//! The report's three forms: lines for people, JUnit XML for CI systems,
//! JSON for programs.

use std::fmt::Write as _;

use crate::suite::{CheckResult, Outcome, Report};

/// One check as a line: `pass  identity.loads  reason`.
pub fn line(result: &CheckResult) -> String {
    let reason = result.outcome.reason();
    if reason.is_empty() {
        format!("{:<4}  {}", result.outcome.label(), result.name)
    } else {
        format!("{:<4}  {}: {reason}", result.outcome.label(), result.name)
    }
}

/// Escapes text for XML attributes and content. Five characters, and the
/// control characters XML 1.0 cannot carry at all (dropped): a writer crate
/// would save nothing here.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

/// The report as JUnit XML: one `testsuite` per driver file, one `testcase`
/// per check (`classname` is its category), failures and skips with their
/// reasons.
pub fn junit(report: &Report) -> String {
    let suite_name = report
        .driver
        .clone()
        .unwrap_or_else(|| report.driver_file.display().to_string());
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"southbound-conformance\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\">",
        report.checks.len(),
        report.count("fail"),
        report.count("skip"),
        report.duration.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\">",
        xml(&suite_name),
        report.checks.len(),
        report.count("fail"),
        report.count("skip"),
        report.duration.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "    <properties><property name=\"driver-file\" value=\"{}\"/></properties>",
        xml(&report.driver_file.display().to_string())
    );
    for check in &report.checks {
        let category = check.name.split('.').next().unwrap_or(check.name);
        let _ = write!(
            out,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
            xml(category),
            xml(check.name),
            check.duration.as_secs_f64()
        );
        match &check.outcome {
            Outcome::Passed(detail) if detail.is_empty() => out.push_str("/>\n"),
            Outcome::Passed(detail) => {
                let _ = writeln!(out, "><system-out>{}</system-out></testcase>", xml(detail));
            }
            Outcome::Failed(reason) => {
                let _ = writeln!(
                    out,
                    "><failure message=\"{}\" type=\"conformance\">{}: {}</failure></testcase>",
                    xml(reason),
                    xml(check.description),
                    xml(reason)
                );
            }
            Outcome::Skipped(reason) => {
                let _ = writeln!(out, "><skipped message=\"{}\"/></testcase>", xml(reason));
            }
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// The report as JSON: every check with its outcome and reason.
pub fn json(report: &Report) -> String {
    serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn xml_escapes_markup_and_drops_what_xml_cannot_carry() {
        assert_eq!(
            super::xml("a<b & \"c\" 'd'>\u{1}\n"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;\n"
        );
    }
}

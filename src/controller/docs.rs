//! The README's error-to-condition table, generated from the code that decides it
//! (`alicloud-bgp-operator docs errors`); a unit test keeps the README in sync.

use std::fmt::Write as _;

use crate::cloud::{CLASSIFICATION, ErrorClass};

use super::error::{ACTION_RULES, reason_for, retry_rule, stalls};

/// Marker lines around the generated section in README.md.
pub const BEGIN: &str = "<!-- BEGIN generated: alicloud-bgp-operator docs errors -->";
/// See [`BEGIN`].
pub const END: &str = "<!-- END generated -->";

fn condition_of(class: ErrorClass) -> &'static str {
    if stalls(class) {
        "`Stalled=True`, `Ready=False`"
    } else {
        "`Reconciling=True`, `Ready=False`"
    }
}

fn retry_of(class: ErrorClass) -> String {
    let note = match class {
        ErrorClass::Throttled => {
            "; the client-side budget of that operation (per account, all regions by default) halves and recovers gradually"
        }
        ErrorClass::Credentials => {
            "; and every credentials recheck (`--credentials-recheck`, 30 s: Secrets are re-read, not watched), at once when the CloudIdentity used changes"
        }
        ErrorClass::Transient | ErrorClass::Unknown => {
            "; calls carrying a ClientToken are first retried in the client (same token)"
        }
        _ => "",
    };
    match retry_rule(class) {
        None => "none until the spec changes".to_owned(),
        Some(rule) => format!(
            "exponential per object, {}s → {}s, +0–20 % jitter, reset on success{note}",
            rule.base.as_secs(),
            rule.cap.as_secs()
        ),
    }
}

/// The markdown of the generated section (without the markers).
pub fn error_tables() -> String {
    let mut out = String::new();
    out.push_str("| class | condition | reason | requeue |\n|---|---|---|---|\n");
    for class in ErrorClass::ALL {
        let _ = writeln!(
            out,
            "| {} | {} | `{}` | {} |",
            class.as_str(),
            condition_of(class),
            reason_for(class),
            retry_of(class)
        );
    }
    out.push_str("\n| API error code | HTTP | class | reason |\n|---|---|---|---|\n");
    for (code, status, class) in CLASSIFICATION {
        let _ = writeln!(
            out,
            "| `{code}` | {status} | {} | `{}` |",
            class.as_str(),
            reason_for(*class)
        );
    }
    out.push_str(
        "\nRules that depend on the action:\n\n| action | class | what happens |\n|---|---|---|\n",
    );
    for (action, class, rule) in ACTION_RULES {
        let _ = writeln!(out, "| {action} | {} | {rule} |", class.as_str());
    }
    out.push_str(
        "\nAny other code is kept verbatim in the message and treated as `Unknown` (retried like a transient error); \
         an unknown code with HTTP 429 is `Throttled`, with HTTP 5xx `Transient`.\n",
    );
    out
}

/// README.md with its generated section replaced by the current tables.
pub fn render_into(readme: &str) -> Option<String> {
    let start = readme.find(BEGIN)? + BEGIN.len();
    let end = readme[start..].find(END)? + start;
    Some(format!(
        "{}\n{}{}",
        &readme[..start],
        error_tables(),
        &readme[end..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_error_tables_are_current() {
        let readme = std::fs::read_to_string("README.md").expect("README.md");
        let rendered = render_into(&readme).expect("README has the generated-section markers");
        assert!(
            rendered == readme,
            "README.md's error tables are stale: run `make docs`"
        );
    }

    #[test]
    fn every_class_and_code_has_a_row() {
        let tables = error_tables();
        for class in ErrorClass::ALL {
            assert!(tables.contains(&format!("| {} |", class.as_str())));
        }
        for (code, ..) in CLASSIFICATION {
            assert!(tables.contains(&format!("`{code}`")), "{code}");
        }
    }
}

//! Diagnostics and the lint report: compiler-style text for people, one JSON
//! document (shape documented in `docs/lint.md`) for machines.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::inventory::{Host, Jail, Location, Role, Vip};

/// How bad a finding is: errors fail `haelk lint` and stop `haelk deploy`;
/// warnings are reported and do not change the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// What kind of inventory entry a diagnostic is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SubjectKind {
    Host,
    Jail,
    /// A key of `cluster.vips`; the name is the fronted role.
    Vip,
}

/// The inventory entry a diagnostic points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subject {
    pub kind: SubjectKind,
    pub name: String,
}

/// One finding of one rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Stable code, `HA001`...: scripts and suppressions key on it.
    pub code: &'static str,
    /// Stable slug name of the rule, e.g. `host-loss-loses-quorum`.
    pub name: &'static str,
    /// One line: what is wrong.
    pub message: String,
    /// The reasoning behind the message (the arithmetic, the nodes involved).
    pub notes: Vec<String>,
    /// What to change.
    pub hint: Option<String>,
    /// The host, jail or VIP concerned; `None` for cluster-wide findings.
    pub subject: Option<Subject>,
    /// Where `subject` is written in the inventory.
    pub location: Option<Location>,
}

impl Diagnostic {
    pub(crate) fn new(
        severity: Severity,
        code: &'static str,
        name: &'static str,
        message: String,
    ) -> Self {
        Self {
            severity,
            code,
            name,
            message,
            notes: Vec::new(),
            hint: None,
            subject: None,
            location: None,
        }
    }

    pub(crate) fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    fn about(mut self, kind: SubjectKind, name: &str, location: Location) -> Self {
        self.subject = Some(Subject {
            kind,
            name: name.to_owned(),
        });
        self.location = Some(location);
        self
    }

    pub(crate) fn at_host(self, host: &Host) -> Self {
        self.about(SubjectKind::Host, host.name.as_str(), host.location)
    }

    pub(crate) fn at_jail(self, jail: &Jail) -> Self {
        self.about(SubjectKind::Jail, jail.name.as_str(), jail.location)
    }

    pub(crate) fn at_vip(self, role: Role, vip: &Vip) -> Self {
        self.about(SubjectKind::Vip, role.as_str(), vip.location)
    }
}

/// Everything lint found, in rule order.
#[derive(Debug, Clone)]
pub struct Report {
    source: PathBuf,
    diagnostics: Vec<Diagnostic>,
}

/// The JSON document `haelk lint --format json` prints (see `docs/lint.md`).
#[derive(Serialize)]
struct JsonReport<'a> {
    version: u32,
    file: String,
    errors: usize,
    warnings: usize,
    diagnostics: &'a [Diagnostic],
}

impl Report {
    pub fn new(source: PathBuf, diagnostics: Vec<Diagnostic>) -> Self {
        Self {
            source,
            diagnostics,
        }
    }

    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    pub fn errors(&self) -> usize {
        self.count(Severity::Error)
    }

    pub fn warnings(&self) -> usize {
        self.count(Severity::Warning)
    }

    fn count(&self, severity: Severity) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == severity)
            .count()
    }

    pub fn has_errors(&self) -> bool {
        self.errors() > 0
    }

    /// Compiler-style text: one block per diagnostic, then a summary line.
    /// `source` is the inventory path as the user should see it.
    pub fn human(&self, source: &Path) -> String {
        let mut out = String::new();
        for d in &self.diagnostics {
            // Writing to a String cannot fail.
            let _ = writeln!(out, "{}[{}]: {}", d.severity.as_str(), d.code, d.message);
            match d.location {
                Some(at) => {
                    let _ = writeln!(out, "  --> {}:{}:{}", source.display(), at.line, at.column);
                }
                None => {
                    let _ = writeln!(out, "  --> {}", source.display());
                }
            }
            for note in &d.notes {
                let _ = writeln!(out, "   = {note}");
            }
            if let Some(hint) = &d.hint {
                let _ = writeln!(out, "   = hint: {hint}");
            }
            let _ = writeln!(out, "   = rule: {} ({})", d.name, d.code);
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "{}: {}, {}",
            source.display(),
            plural(self.errors(), "error"),
            plural(self.warnings(), "warning")
        );
        out
    }

    /// One JSON document; its shape is versioned and documented in `docs/lint.md`.
    pub fn json(&self) -> Result<String> {
        let document = JsonReport {
            version: 1,
            file: self.source.display().to_string(),
            errors: self.errors(),
            warnings: self.warnings(),
            diagnostics: &self.diagnostics,
        };
        serde_json::to_string_pretty(&document).context("serialising the lint report")
    }
}

fn plural(count: usize, noun: &str) -> String {
    match count {
        0 => format!("no {noun}s"),
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let located = Diagnostic {
            location: Some(Location {
                line: 44,
                column: 7,
            }),
            subject: Some(Subject {
                kind: SubjectKind::Host,
                name: "8f14-jmm".into(),
            }),
            ..Diagnostic::new(
                Severity::Error,
                "HA003",
                "host-loss-loses-quorum",
                "losing host 8f14-jmm loses the master quorum".into(),
            )
        }
        .note("the arithmetic")
        .hint("add a node");
        let cluster_wide = Diagnostic::new(
            Severity::Warning,
            "HA026",
            "security-disabled",
            "security is off".into(),
        );
        Report::new("x.yaml".into(), vec![located, cluster_wide])
    }

    #[test]
    fn human_output_is_compiler_style_with_a_summary() {
        let text = sample().human(Path::new("inventories/x.yaml"));
        let expected = "\
error[HA003]: losing host 8f14-jmm loses the master quorum
  --> inventories/x.yaml:44:7
   = the arithmetic
   = hint: add a node
   = rule: host-loss-loses-quorum (HA003)

warning[HA026]: security is off
  --> inventories/x.yaml
   = rule: security-disabled (HA026)

inventories/x.yaml: 1 error, 1 warning
";
        assert_eq!(text, expected);
    }

    #[test]
    fn an_empty_report_says_so() {
        let report = Report::new("x.yaml".into(), Vec::new());
        assert!(!report.has_errors());
        assert_eq!(
            report.human(Path::new("x.yaml")),
            "x.yaml: no errors, no warnings\n"
        );
    }

    #[test]
    fn json_has_the_documented_shape() {
        let json: serde_json::Value = serde_json::from_str(&sample().json().unwrap()).unwrap();
        assert_eq!(json["version"], 1);
        assert_eq!(json["file"], "x.yaml");
        assert_eq!(json["errors"], 1);
        assert_eq!(json["warnings"], 1);
        let first = &json["diagnostics"][0];
        assert_eq!(first["severity"], "error");
        assert_eq!(first["code"], "HA003");
        assert_eq!(first["name"], "host-loss-loses-quorum");
        assert_eq!(first["notes"][0], "the arithmetic");
        assert_eq!(first["hint"], "add a node");
        assert_eq!(first["subject"]["kind"], "host");
        assert_eq!(first["subject"]["name"], "8f14-jmm");
        assert_eq!(first["location"]["line"], 44);
        assert_eq!(first["location"]["column"], 7);
        let second = &json["diagnostics"][1];
        assert_eq!(second["severity"], "warning");
        assert!(second["location"].is_null());
        assert!(second["subject"].is_null());
        assert!(second["hint"].is_null());
    }
}

//! The YAML files haelk reads (the inventory, playbooks): one strict parser and
//! one error type that points at `path:line:column`, the way compilers do.
//!
//! Both files go through [`parse`], so both reject unknown fields, duplicate keys
//! and `<<` merge keys with the same messages, and both report every problem
//! validation finds as one [`FileError`], one problem a line.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_saphyr::{DuplicateKeyPolicy, MergeKeyPolicy, MessageFormatter, Spanned};

use crate::inventory::Location;

/// A YAML file that cannot be used, with the place in it to look at.
///
/// When validation finds several problems, `location` and the first line of
/// `message` are the first of them; each further one follows on its own line,
/// as `path:line:column: message`.
#[derive(Debug, thiserror::Error)]
pub struct FileError {
    pub path: PathBuf,
    /// Line 0 means the problem is the file as a whole (it cannot be read, or
    /// something it lacks has no place to point at).
    pub location: Location,
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", place(&self.path, self.location), self.message)
    }
}

/// `path:line:column`, or just `path` for line 0.
fn place(path: &Path, location: Location) -> String {
    match location {
        Location { line: 0, .. } => path.display().to_string(),
        Location { line, column } => format!("{}:{line}:{column}", path.display()),
    }
}

/// One problem found by validation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    pub location: Location,
    pub message: String,
}

impl FileError {
    /// All of `problems` as one error, in the order given; `None` if there are none.
    pub fn from_problems(path: &Path, problems: impl IntoIterator<Item = Problem>) -> Option<Self> {
        let mut problems = problems.into_iter();
        let first = problems.next()?;
        let mut message = first.message;
        for more in problems {
            message.push_str(&format!(
                "\n{}: {}",
                place(path, more.location),
                more.message
            ));
        }
        Some(Self {
            path: path.to_owned(),
            location: first.location,
            message,
        })
    }
}

/// The text of the file at `path`; `what` names it in the error ("the inventory").
pub fn read(path: &Path, what: &str) -> Result<String, FileError> {
    std::fs::read_to_string(path).map_err(|e| FileError {
        path: path.to_owned(),
        location: Location::default(),
        message: format!("cannot read {what}: {e}"),
    })
}

/// Parses `text`, read from `path`: unknown fields (where the target type denies
/// them), duplicate keys and merge keys are errors.
pub fn parse<T: DeserializeOwned>(text: &str, path: &Path) -> Result<T, FileError> {
    let options = serde_saphyr::options! {
        duplicate_keys: DuplicateKeyPolicy::Error,
        // A `<<` merge lets a later key silently override a merged one: the
        // silent merge of two hosts, jails or plays that duplicate keys are
        // rejected for.
        merge_keys: MergeKeyPolicy::Error,
    };
    serde_saphyr::from_str_with_options(text, options).map_err(|e| parse_error(path, &e))
}

/// A YAML or shape error from the parser, in haelk's words where they help.
fn parse_error(path: &Path, error: &serde_saphyr::Error) -> FileError {
    let error = error.without_snippet();
    let location = error
        .location()
        .map(|l| location_of(&l))
        .unwrap_or_default();
    let message = match error {
        serde_saphyr::Error::SerdeUnknownField {
            field, expected, ..
        } => unknown("field", field, expected),
        serde_saphyr::Error::DuplicateMappingKey { key, .. } => format!(
            "duplicate key{}: every key may appear only once in a mapping \
             (two hosts, jails, plays or settings with one name would silently merge)",
            key.as_deref()
                .map(|k| format!(" `{}`", shown(k)))
                .unwrap_or_default()
        ),
        serde_saphyr::Error::MergeKeyNotAllowed { .. } => {
            "YAML merge keys (`<<`) are not allowed: a merged key could silently override \
             another; write the values out, or use an alias (`*name`) for a whole value"
                .to_owned()
        }
        serde_saphyr::Error::InvalidScalar { ty, .. } if ty.starts_with(['i', 'u']) => {
            "expected a whole number here".to_owned()
        }
        serde_saphyr::Error::Unexpected {
            expected: "string scalar",
            ..
        } => "expected a single value (text) here, not a list or a mapping".to_owned(),
        other => {
            // The parser's own message, without the location it would append.
            let message: Cow<'_, str> = serde_saphyr::DefaultMessageFormatter.format_message(other);
            shown(&message)
        }
    };
    FileError {
        path: path.to_owned(),
        location,
        message,
    }
}

/// haelk's location of a parser location.
pub fn location_of(location: &serde_saphyr::Location) -> Location {
    let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    Location {
        line: clamp(location.line()),
        column: clamp(location.column()),
    }
}

/// Where a parsed value was written.
pub fn at<T>(value: &Spanned<T>) -> Location {
    location_of(&value.referenced)
}

/// A value from the file, safe to print: control characters are escaped, so one
/// problem stays on one line.
pub fn shown(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// "unknown WHAT `VALUE`, expected one of ..." with a suggestion when one of the
/// expected values is close.
pub fn unknown(what: &str, value: &str, expected: &[&str]) -> String {
    let list = expected
        .iter()
        .map(|e| format!("`{e}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let suggestion = closest(value, expected)
        .map(|close| format!(" (did you mean `{close}`?)"))
        .unwrap_or_default();
    format!(
        "unknown {what} `{}`{suggestion}, expected one of {list}",
        shown(value)
    )
}

/// The expected value `value` is most likely a typo of, if any is close enough.
fn closest<'a>(value: &str, expected: &[&'a str]) -> Option<&'a str> {
    let value = value.to_ascii_lowercase();
    expected
        .iter()
        .map(|candidate| (edit_distance(&value, candidate), *candidate))
        .filter(|(distance, candidate)| {
            *distance <= (candidate.len() / 3).max(1)
                || (value.len() >= 3 && candidate.starts_with(&value))
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_come_only_for_close_values() {
        let fields = ["address", "ssh", "zfs", "jail_defaults", "jails"];
        assert_eq!(closest("adress", &fields), Some("address"));
        assert_eq!(closest("jail", &fields), Some("jails"));
        assert_eq!(closest("colour", &fields), None);
        assert_eq!(
            closest("elastic", &["elasticsearch", "kibana"]),
            Some("elasticsearch")
        );
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn unknown_values_list_what_is_expected() {
        assert_eq!(
            unknown("role", "kibanna", &["kibana", "haproxy"]),
            "unknown role `kibanna` (did you mean `kibana`?), expected one of `kibana`, `haproxy`"
        );
        assert_eq!(
            unknown("role", "x\ny", &["kibana"]),
            "unknown role `x\\ny`, expected one of `kibana`"
        );
    }

    #[test]
    fn several_problems_are_one_error_a_line() {
        let problem = |line, message: &str| Problem {
            location: Location { line, column: 3 },
            message: message.to_owned(),
        };
        let path = Path::new("f.yaml");
        assert!(FileError::from_problems(path, []).is_none());
        let error = FileError::from_problems(path, [problem(4, "first"), problem(0, "whole file")])
            .unwrap();
        assert_eq!(error.location, Location { line: 4, column: 3 });
        assert_eq!(error.to_string(), "f.yaml:4:3: first\nf.yaml: whole file");
    }
}

//! Templates: built into the binary, overridable from a directory.
//!
//! Every template haelk renders is compiled in with `include_str!`, so the binary
//! works on its own. An operator can replace any of them by putting a file with the
//! same name in a directory (`--templates DIR` or `templates:` in the inventory);
//! templates missing there fall back to the built-in ones, and a file there that
//! matches no template is an error (a misspelt override would otherwise be ignored
//! without a word).
//!
//! Autoescaping is off: these are configuration files, not HTML. Values that need
//! quoting go through filters that quote for the target syntax: `yaml` (JSON, which
//! is valid YAML), `jail_quote` (jail.conf(5) strings) and `sh_quote` (rc.conf,
//! which sh(1) reads); the last two are [`crate::shell`]'s quoting.

use std::fmt;
use std::path::Path;

use anyhow::{Context as _, Result};
use tera::{Kwargs, State, Tera, Value};

use crate::shell;

/// A template haelk renders, by the file name it has in `templates/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TemplateName {
    ElasticsearchYml,
    HeapOptions,
    KibanaYml,
    HaproxyConf,
    JailConf,
    JailRcConf,
    ResolvConf,
    SysctlConf,
    CarpWatch,
    RcLocal,
}

impl TemplateName {
    pub const ALL: [TemplateName; 10] = [
        TemplateName::ElasticsearchYml,
        TemplateName::HeapOptions,
        TemplateName::KibanaYml,
        TemplateName::HaproxyConf,
        TemplateName::JailConf,
        TemplateName::JailRcConf,
        TemplateName::ResolvConf,
        TemplateName::SysctlConf,
        TemplateName::CarpWatch,
        TemplateName::RcLocal,
    ];

    /// The file name, in `templates/` and in an override directory.
    pub fn file_name(self) -> &'static str {
        match self {
            TemplateName::ElasticsearchYml => "elasticsearch.yml.tera",
            TemplateName::HeapOptions => "heap.options.tera",
            TemplateName::KibanaYml => "kibana.yml.tera",
            TemplateName::HaproxyConf => "haproxy.conf.tera",
            TemplateName::JailConf => "jail.conf.tera",
            TemplateName::JailRcConf => "rc.conf.tera",
            TemplateName::ResolvConf => "resolv.conf.tera",
            TemplateName::SysctlConf => "sysctl.conf.tera",
            TemplateName::CarpWatch => "carp-watch.sh.tera",
            TemplateName::RcLocal => "rc.local.tera",
        }
    }

    fn builtin_source(self) -> &'static str {
        match self {
            TemplateName::ElasticsearchYml => {
                include_str!("../templates/elasticsearch.yml.tera")
            }
            TemplateName::HeapOptions => include_str!("../templates/heap.options.tera"),
            TemplateName::KibanaYml => include_str!("../templates/kibana.yml.tera"),
            TemplateName::HaproxyConf => include_str!("../templates/haproxy.conf.tera"),
            TemplateName::JailConf => include_str!("../templates/jail.conf.tera"),
            TemplateName::JailRcConf => include_str!("../templates/rc.conf.tera"),
            TemplateName::ResolvConf => include_str!("../templates/resolv.conf.tera"),
            TemplateName::SysctlConf => include_str!("../templates/sysctl.conf.tera"),
            TemplateName::CarpWatch => include_str!("../templates/carp-watch.sh.tera"),
            TemplateName::RcLocal => include_str!("../templates/rc.local.tera"),
        }
    }
}

impl fmt::Display for TemplateName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.file_name())
    }
}

/// The compiled set of templates, each either built in or from the override
/// directory.
pub struct Templates {
    tera: Tera,
    /// Per template, the name it was registered under in `tera`: the file it came
    /// from, so that Tera's error reports (`--> FILE:LINE:COLUMN`) name that file.
    origins: Vec<(TemplateName, String)>,
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates")
            .field("origins", &self.origins)
            .finish_non_exhaustive()
    }
}

impl Templates {
    /// Only the templates built into the binary.
    pub fn builtin() -> Result<Self> {
        Self::compile(TemplateName::ALL.map(|name| {
            (
                name,
                format!("templates/{}", name.file_name()),
                name.builtin_source().to_owned(),
            )
        }))
    }

    /// The built-in templates, with those present in `dir` (when given) replacing
    /// them. Reads only the files it uses.
    pub fn load(dir: Option<&Path>) -> Result<Self> {
        let Some(dir) = dir else {
            return Self::builtin();
        };
        reject_unknown_overrides(dir)?;
        let mut sources = Vec::with_capacity(TemplateName::ALL.len());
        for name in TemplateName::ALL {
            let path = dir.join(name.file_name());
            let source = if path.is_file() {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read template {}", path.display()))?;
                (name, path.display().to_string(), text)
            } else {
                (
                    name,
                    format!("templates/{}", name.file_name()),
                    name.builtin_source().to_owned(),
                )
            };
            sources.push(source);
        }
        Self::compile(sources)
    }

    fn compile(sources: impl IntoIterator<Item = (TemplateName, String, String)>) -> Result<Self> {
        let mut tera = Tera::new();
        // Configuration files, not HTML: nothing is ever HTML-escaped.
        tera.autoescape_on(Vec::<&str>::new());
        tera.register_filter("yaml", yaml_filter);
        tera.register_filter("jail_quote", |value: &str, _: Kwargs, _: &State| {
            shell::jail_conf_quote(value)
        });
        tera.register_filter("sh_quote", |value: &str, _: Kwargs, _: &State| {
            shell::double_quote(value)
        });
        let mut origins = Vec::new();
        for (name, origin, text) in sources {
            tera.add_raw_template(&origin, &text)
                .map_err(|e| anyhow::anyhow!("{e}"))
                .with_context(|| format!("template {origin} does not compile"))?;
            origins.push((name, origin));
        }
        Ok(Self { tera, origins })
    }

    /// Where `name` came from: `templates/NAME` (built in) or the override's path.
    pub fn origin(&self, name: TemplateName) -> &str {
        self.origins
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, origin)| origin.as_str())
            // Every constructor registers every name in TemplateName::ALL.
            .unwrap_or_else(|| name.file_name())
    }

    /// Renders `name` with `context` (anything serializable to a map).
    pub fn render(&self, name: TemplateName, context: &impl serde::Serialize) -> Result<String> {
        let origin = self.origin(name);
        let context = tera::Context::from_serialize(context)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("cannot build the context of template {origin}"))?;
        self.tera
            .render(origin, &context)
            // Tera's message is a report naming the file, line and column.
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("cannot render template {origin}"))
    }
}

fn reject_unknown_overrides(dir: &Path) -> Result<()> {
    let names = std::fs::read_dir(dir)
        .and_then(|entries| {
            entries
                .map(|entry| Ok(entry?.file_name().to_string_lossy().into_owned()))
                .collect::<std::io::Result<Vec<_>>>()
        })
        .with_context(|| format!("cannot read the template directory {}", dir.display()))?;
    check_override_names(dir, &names).map_err(anyhow::Error::msg)
}

/// Checks the names in a template override directory: each must be a template
/// haelk renders (hidden files aside). A folder that is not a templates folder
/// (say `/etc`) gets a short message with a few of its names, not all of them.
pub fn check_override_names(dir: &Path, names: &[String]) -> Result<(), String> {
    const SHOWN: usize = 3;
    let known: Vec<&str> = TemplateName::ALL.iter().map(|n| n.file_name()).collect();
    let mut unknown: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|name| !name.starts_with('.') && !known.contains(name))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    unknown.sort_unstable();
    let mut listed = unknown
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if unknown.len() > SHOWN {
        listed.push_str(&format!(" and {} more", unknown.len() - SHOWN));
    }
    let what = if unknown.len() == 1 {
        "a file that is not a haelk template"
    } else {
        "files that are not haelk templates"
    };
    Err(format!(
        "{} holds {what} ({listed}); a template directory holds only {}",
        dir.display(),
        known.join(", ")
    ))
}

/// Any value as JSON, which YAML reads as the same value: strings come out quoted
/// and escaped, so no value can inject YAML structure.
fn yaml_filter(value: &Value, _: Kwargs, _: &State) -> tera::TeraResult<String> {
    serde_json::to_string(value).map_err(|e| tera::Error::message(format!("not YAML-able: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_template_compiles() {
        let templates = Templates::builtin().unwrap();
        for name in TemplateName::ALL {
            assert_eq!(
                templates.origin(name),
                format!("templates/{}", name.file_name())
            );
        }
    }

    #[test]
    fn a_file_in_the_override_directory_replaces_only_its_template() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("heap.options.tera"), "-Xmx{{ heap }}\n").unwrap();
        let templates = Templates::load(Some(dir.path())).unwrap();
        let override_path = dir.path().join("heap.options.tera");
        assert_eq!(
            templates.origin(TemplateName::HeapOptions),
            override_path.display().to_string()
        );
        let context = serde_json::json!({ "heap": "2g" });
        assert_eq!(
            templates
                .render(TemplateName::HeapOptions, &context)
                .unwrap(),
            "-Xmx2g\n"
        );
        assert_eq!(
            templates.origin(TemplateName::KibanaYml),
            "templates/kibana.yml.tera"
        );
    }

    #[test]
    fn an_unknown_file_in_the_override_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("haproxy.cfg.tera"), "x").unwrap();
        let err = format!("{:#}", Templates::load(Some(dir.path())).unwrap_err());
        assert!(
            err.contains("holds a file that is not a haelk template (haproxy.cfg.tera)"),
            "{err}"
        );
    }

    #[test]
    fn template_errors_name_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("heap.options.tera");
        std::fs::write(&path, "# ok\n-Xmx{{ heap }\n").unwrap();
        let err = format!("{:#}", Templates::load(Some(dir.path())).unwrap_err());
        assert!(err.contains(&format!("{}:2:", path.display())), "{err}");

        std::fs::write(&path, "# ok\n\n-Xmx{{ no_such_value }}\n").unwrap();
        let templates = Templates::load(Some(dir.path())).unwrap();
        let err = format!(
            "{:#}",
            templates
                .render(TemplateName::HeapOptions, &serde_json::json!({}))
                .unwrap_err()
        );
        assert!(err.contains(&format!("{}:3:", path.display())), "{err}");
    }

    #[test]
    fn nothing_is_html_escaped_and_yaml_values_are_quoted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("kibana.yml.tera"),
            "a: {{ text }}\nb: {{ text | yaml }}\nc: {{ list | yaml }}\n",
        )
        .unwrap();
        let templates = Templates::load(Some(dir.path())).unwrap();
        let context = serde_json::json!({ "text": "<a & \"b\">\n- x", "list": ["m", 1, true] });
        let rendered = templates.render(TemplateName::KibanaYml, &context).unwrap();
        assert_eq!(
            rendered,
            "a: <a & \"b\">\n- x\nb: \"<a & \\\"b\\\">\\n- x\"\nc: [\"m\",1,true]\n"
        );
    }
}

//! Secrets read from the files the inventory names, and masking them in output.
//!
//! A [`Secret`] never prints its value (`Debug` and `Display` show a mask), and
//! [`Secrets::mask`] replaces every known secret in text meant for humans: logs,
//! diffs, `--dry-run` output and `render` trees.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::inventory::Inventory;

/// What a secret looks like wherever it would otherwise be shown.
pub const MASK: &str = "********";

/// A secret value with the file it came from.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    value: String,
    source: PathBuf,
}

impl Secret {
    /// Reads a secret file: its content with the trailing newline removed.
    pub fn read(path: &Path) -> Result<Self> {
        let raw = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read secret file {}", path.display()))?;
        let value = raw.trim_end_matches(['\n', '\r']).to_owned();
        if value.is_empty() {
            bail!("secret file {} is empty", path.display());
        }
        Ok(Self {
            value,
            source: path.to_owned(),
        })
    }

    /// The secret itself, for the one place that must write it to a host.
    pub fn expose(&self) -> &str {
        &self.value
    }

    pub fn source(&self) -> &Path {
        &self.source
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({MASK} from {})", self.source.display())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

/// The longest CARP password FreeBSD takes: `CARP_KEY_LEN` in
/// sys/netinet/ip_carp.h is 20 bytes; ifconfig(8) truncates a longer `pass`.
pub const CARP_KEY_LEN: usize = 20;

/// Checks a CARP password for use in an rc.conf `ifconfig_*` value.
/// network.subr expands those values unquoted, so whitespace would split the
/// ifconfig command and glob or shell characters could expand; only printable
/// ASCII without them is accepted. The message never contains the password.
pub fn check_carp_password(password: &str) -> std::result::Result<(), String> {
    let len = password.len();
    if len > CARP_KEY_LEN {
        return Err(format!(
            "has {len} bytes; FreeBSD takes at most {CARP_KEY_LEN} (CARP_KEY_LEN)"
        ));
    }
    let allowed = |c: char| {
        c.is_ascii_alphanumeric()
            || matches!(c, '-' | '_' | '.' | ',' | ':' | '@' | '%' | '+' | '=' | '/')
    };
    if let Some(position) = password.chars().position(|c| !allowed(c)) {
        return Err(format!(
            "has a character that is not allowed at position {}: use only letters, digits and \
             - _ . , : @ % + = / (rc.conf expands the value unquoted, so whitespace, glob and \
             shell characters would split or change the ifconfig command)",
            position + 1
        ));
    }
    Ok(())
}

/// The secrets of one inventory, read at run time.
#[derive(Debug, Clone)]
pub struct Secrets {
    /// The CARP password shared by every member of a VIP.
    pub carp_password: Secret,
    /// The key shared by every Kibana instance (>= 32 characters).
    pub kibana_encryption_key: Secret,
}

impl Secrets {
    /// Reads every secret file the inventory names.
    pub fn load(inventory: &Inventory) -> Result<Self> {
        let carp_password = Secret::read(&inventory.cluster.carp.password_file)?;
        if let Err(problem) = check_carp_password(carp_password.expose()) {
            bail!(
                "the CARP password in {} (cluster.carp.password_file) {problem}",
                carp_password.source().display()
            );
        }
        let kibana_encryption_key = Secret::read(&inventory.cluster.kibana.encryption_key_file)?;
        let key_len = kibana_encryption_key.expose().chars().count();
        if key_len < 32 {
            bail!(
                "the Kibana encryption key in {} has {key_len} characters; Kibana needs at least 32",
                kibana_encryption_key.source().display()
            );
        }
        Ok(Self {
            carp_password,
            kibana_encryption_key,
        })
    }

    fn all(&self) -> [&Secret; 2] {
        [&self.carp_password, &self.kibana_encryption_key]
    }

    /// `text` with every secret replaced by [`MASK`].
    pub fn mask(&self, text: &str) -> String {
        self.all()
            .into_iter()
            .fold(text.to_owned(), |text, secret| {
                text.replace(secret.expose(), MASK)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carp_passwords_fit_freebsd_and_rc_conf() {
        assert_eq!(check_carp_password("s3cret-carp_pass.20x"), Ok(()));
        let too_long = "a".repeat(CARP_KEY_LEN + 1);
        let message = check_carp_password(&too_long).unwrap_err();
        assert!(message.contains("21 bytes"), "{message}");
        assert!(!message.contains(&too_long), "{message}");
        for bad in [
            "two words",
            "glob*",
            "q?",
            "[ab]",
            "tab\tx",
            "semi;colon",
            "$HOME",
            "quo'te",
            "é",
        ] {
            let message = check_carp_password(bad).unwrap_err();
            assert!(message.contains("not allowed"), "{bad:?}: {message}");
            assert!(!message.contains(bad), "{bad:?} printed in {message}");
        }
    }

    #[test]
    fn a_secret_never_prints_its_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("carp.pass");
        std::fs::write(&path, "hunter2-hunter2\n").unwrap();
        let secret = Secret::read(&path).unwrap();
        assert_eq!(secret.expose(), "hunter2-hunter2");
        assert!(!format!("{secret:?} {secret}").contains("hunter2"));
    }

    #[test]
    fn a_missing_or_empty_secret_file_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.key");
        let err = Secret::read(&missing).unwrap_err();
        assert!(format!("{err:#}").contains("nope.key"));
        let empty = dir.path().join("empty.key");
        std::fs::write(&empty, "\n").unwrap();
        assert!(format!("{:#}", Secret::read(&empty).unwrap_err()).contains("empty.key is empty"));
    }
}

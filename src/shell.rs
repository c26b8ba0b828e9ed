//! POSIX shell quoting for every value haelk puts on a remote command line.
//!
//! Inventory names are validated to be shell-safe, but safety must not depend on
//! that: every argument goes through [`quote`].

/// Quotes `value` as one POSIX shell word. Plain words stay readable.
pub fn quote(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&b));
    if plain {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

/// Joins `words` into one command line, quoting each.
pub fn join<I, S>(words: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    words
        .into_iter()
        .map(|w| quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_are_left_alone() {
        assert_eq!(quote("zroot/jails"), "zroot/jails");
        assert_eq!(
            quote("mountpoint=/usr/local/jails"),
            "mountpoint=/usr/local/jails"
        );
    }

    #[test]
    fn everything_else_is_single_quoted() {
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("$(reboot)"), "'$(reboot)'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(join(["echo", "a;b"]), "echo 'a;b'");
    }
}

//! Quoting: POSIX shell words for every value haelk puts on a remote command line
//! ([`quote`]), and the double-quoted strings of the files the shell or jail(8)
//! reads ([`double_quote`] for rc.conf, [`jail_conf_quote`] for jail.conf).
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

/// A double-quoted sh(1) word, as rc.conf is sourced by sh: inside double quotes
/// only `"`, `\`, `$` and `` ` `` are special, and each is escaped with `\`.
pub fn double_quote(value: &str) -> String {
    double_quote_escaping(value, &['"', '\\', '$', '`'])
}

/// A double-quoted jail.conf(5) string: backslash escapes the next character and
/// `$` starts a variable expansion, so those and `"` are escaped.
pub fn jail_conf_quote(value: &str) -> String {
    double_quote_escaping(value, &['"', '\\', '$'])
}

fn double_quote_escaping(value: &str, specials: &[char]) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        if specials.contains(&c) {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
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

    #[test]
    fn double_quoting_escapes_what_the_target_syntax_interprets() {
        assert_eq!(jail_conf_quote(r#"/a b/$name"x\"#), r#""/a b/\$name\"x\\""#);
        assert_eq!(double_quote("p$w`d`\"\\"), r#""p\$w\`d\`\"\\""#);
        assert_eq!(double_quote("plain"), "\"plain\"");
    }
}

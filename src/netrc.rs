//! A small `~/.netrc` reader: the login and password for one host, as curl and ftp read them.
//!
//! Written here (about sixty lines) rather than taken from a crate: the published netrc crates
//! are unmaintained or pull in a parser framework, and relgate needs only the lookup. Tokens are
//! separated by whitespace; `machine NAME` starts an entry, `default` is the fallback entry (it
//! must come last, as in curl), `login`, `password` and `account` take one value each, and
//! `macdef NAME` skips its macro up to the next empty line. Quoted values are not supported,
//! as in most readers.

/// The credentials `.netrc` gives for a host.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    pub login: Option<String>,
    pub password: Option<String>,
}

/// Never shows the password.
impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("login", &self.login)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The entry for `host` in the text of a `.netrc` file: its `machine` entry, else `default`.
pub fn lookup(text: &str, host: &str) -> Option<Entry> {
    let mut found: Option<Entry> = None;
    let mut default: Option<Entry> = None;
    // Which entry the current tokens belong to: Some(true) the host's, Some(false) another
    // machine's, None the default.
    let mut current: Option<Option<bool>> = None;
    let mut entry = Entry {
        login: None,
        password: None,
    };
    let mut lines = text.lines();
    let mut tokens: Vec<&str> = Vec::new();
    let finish = |current: Option<Option<bool>>,
                  entry: Entry,
                  found: &mut Option<Entry>,
                  default: &mut Option<Entry>| match current {
        Some(Some(true)) if found.is_none() => *found = Some(entry),
        Some(None) if default.is_none() => *default = Some(entry),
        _ => {}
    };
    loop {
        if tokens.is_empty() {
            match lines.next() {
                Some(line) => tokens = line.split_whitespace().rev().collect(),
                None => break,
            }
            continue;
        }
        let Some(tok) = tokens.pop() else { continue };
        match tok {
            "machine" | "default" => {
                let entry_done = std::mem::replace(
                    &mut entry,
                    Entry {
                        login: None,
                        password: None,
                    },
                );
                finish(current, entry_done, &mut found, &mut default);
                current = Some(if tok == "default" {
                    None
                } else {
                    Some(next(&mut tokens, &mut lines).is_some_and(|m| m == host))
                });
            }
            "login" => entry.login = next(&mut tokens, &mut lines).map(str::to_string),
            "password" => entry.password = next(&mut tokens, &mut lines).map(str::to_string),
            "account" => {
                next(&mut tokens, &mut lines);
            }
            "macdef" => {
                // The macro's body runs to the next empty line.
                tokens.clear();
                for line in lines.by_ref() {
                    if line.trim().is_empty() {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    finish(current, entry, &mut found, &mut default);
    found.or(default)
}

/// The next token, on this line or a later one.
fn next<'a>(tokens: &mut Vec<&'a str>, lines: &mut std::str::Lines<'a>) -> Option<&'a str> {
    while tokens.is_empty() {
        tokens.extend(lines.next()?.split_whitespace().rev());
    }
    tokens.pop()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(login: &str, password: &str) -> Option<Entry> {
        Some(Entry {
            login: Some(login.into()),
            password: Some(password.into()),
        })
    }

    #[test]
    fn the_host_entry_wins_over_default() {
        let text = "machine other.example login o password op\n\
                    machine repo.example\n  login alice\n  password s3cret\n\
                    default login anon password guest\n";
        assert_eq!(lookup(text, "repo.example"), e("alice", "s3cret"));
        assert_eq!(lookup(text, "elsewhere"), e("anon", "guest"));
    }

    #[test]
    fn one_line_entries_macros_and_accounts() {
        let text = "macdef init\ncd /pub\nmachine fake login x password y\n\n\
                    machine repo.example account acct login bob password pw\n";
        // The macro body (including its "machine fake" line) is skipped.
        assert_eq!(lookup(text, "fake"), None);
        assert_eq!(lookup(text, "repo.example"), e("bob", "pw"));
    }

    #[test]
    fn a_missing_host_without_default_is_none() {
        assert_eq!(lookup("machine a login b password c\n", "z"), None);
        assert_eq!(lookup("", "z"), None);
    }

    #[test]
    fn debug_hides_the_password() {
        let shown = format!("{:?}", e("alice", "s3cret"));
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}

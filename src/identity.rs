//! Identities in commits and trailers, parsed and compared as principals.
//!
//! Segregation of duties asks one question in several places — is this reviewer the author, is
//! the operator a co-author, is this sign-off's signer a committer — and every place answers it
//! with the rule here, so that a spelling cannot turn one person into two:
//!
//! - a trailer identity (`Reviewed-by:`, `Co-authored-by:`) is exactly `Name <local@domain>`,
//!   as git writes identities; anything else (`yes`, `Bob`, a bare address, a missing `>`,
//!   `<mailto:…>`, text after the `>`) does not parse;
//! - an address is `local@domain`: `local` is dot-separated RFC 5322 atoms (ASCII), `domain` is
//!   dot-separated labels of ASCII letters, digits and `-`, with at most one trailing dot;
//! - two addresses name the same principal when they are equal after lowercasing, dropping a
//!   `+suffix` from the local part and dropping the domain's trailing dot (`Bob+x@Acme.test.`
//!   is `bob@acme.test`).
//!
//! The comparison errs towards "same person": a false match makes a review or a sign-off not
//! count (red or pending), never the other way round.

/// Characters of an RFC 5322 atom besides ASCII letters and digits.
const ATEXT: &[u8] = b"!#$%&'*+-/=?^_`{|}~";

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("{value:?} is not `Name <local@domain>`")]
    NotNameAddress { value: String },
    #[error("{value:?} has no name before `<`")]
    NoName { value: String },
    #[error("{value:?} is not an email address `local@domain`: {why}")]
    BadAddress { value: String, why: &'static str },
}

/// A well-formed address: as written, and the principal it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    pub text: String,
    /// Lowercase, `+suffix` and trailing dot removed; compare these.
    pub principal: String,
}

/// `Name <address>` from a trailer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub address: Address,
}

/// Parse a bare address (`bob@acme.test`), as git prints an author's or committer's email.
pub fn parse_address(value: &str) -> Result<Address, IdentityError> {
    let bad = |why| IdentityError::BadAddress {
        value: value.to_string(),
        why,
    };
    let (local, domain) = value.split_once('@').ok_or_else(|| bad("no `@`"))?;
    if domain.contains('@') {
        return Err(bad("more than one `@`"));
    }
    if local.is_empty()
        || local.split('.').any(|atom| {
            atom.is_empty()
                || !atom
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || ATEXT.contains(&b))
        })
    {
        return Err(bad("the part before `@` is not dot-separated atoms"));
    }
    let base = local.split('+').next().unwrap_or_default();
    if base.is_empty() {
        return Err(bad("the part before `@` is empty without its `+suffix`"));
    }
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    if domain.is_empty()
        || domain.split('.').any(|label| {
            label.is_empty()
                || label.starts_with('-')
                || label.ends_with('-')
                || !label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
    {
        return Err(bad("the domain is not dot-separated labels"));
    }
    Ok(Address {
        text: value.to_string(),
        principal: format!(
            "{}@{}",
            base.to_ascii_lowercase(),
            domain.to_ascii_lowercase()
        ),
    })
}

/// Parse a trailer value `Name <local@domain>` (surrounding whitespace ignored).
pub fn parse_identity(value: &str) -> Result<Identity, IdentityError> {
    let v = value.trim();
    let shape = || IdentityError::NotNameAddress {
        value: value.to_string(),
    };
    let inner = v.strip_suffix('>').ok_or_else(shape)?;
    let (name, address) = inner.split_once('<').ok_or_else(shape)?;
    if address.contains(['<', '>']) || name.contains('>') || v.chars().any(char::is_control) {
        return Err(shape());
    }
    let name = name.trim();
    if name.is_empty() {
        return Err(IdentityError::NoName {
            value: value.to_string(),
        });
    }
    Ok(Identity {
        name: name.to_string(),
        address: parse_address(address)?,
    })
}

/// The principal a configured name stands for (the operator, the sign gate's signer, a
/// sign-off's signer): an address's principal, else the text trimmed and lowercased, which
/// then matches no well-formed address.
pub fn principal(configured: &str) -> String {
    let t = configured.trim();
    match parse_address(t) {
        Ok(a) => a.principal,
        Err(_) => t.to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_address_are_one_principal() {
        for s in [
            "bob@acme.test",
            "Bob@ACME.test",
            "bob+x@acme.test",
            "bob+release+2@acme.test",
            "bob@acme.test.",
        ] {
            assert_eq!(parse_address(s).unwrap().principal, "bob@acme.test", "{s}");
        }
        assert_eq!(principal(" BOB+ops@acme.test "), "bob@acme.test");
        assert_eq!(principal("Release Bot"), "release bot");
    }

    #[test]
    fn malformed_addresses_do_not_parse() {
        for s in [
            "",
            "bob",
            "@acme.test",
            "bob@",
            "bob@@acme.test",
            "bob@acme..test",
            "bob@acme.test..",
            "bob@-acme.test",
            "+x@acme.test",
            "mailto:bob@acme.test",
            "bob smith@acme.test",
            ".bob@acme.test",
            "bob.@acme.test",
            "jörg@acme.test",
            "bob@acme.test>",
        ] {
            assert!(parse_address(s).is_err(), "{s:?} parsed");
        }
    }

    #[test]
    fn trailer_identities_need_a_name_and_angle_brackets() {
        let id = parse_identity("  Bob B. <Bob+x@acme.test.> ").unwrap();
        assert_eq!(id.name, "Bob B.");
        assert_eq!(id.address.principal, "bob@acme.test");
        for s in [
            "yes",
            "Bob",
            "bob@acme.test",
            "<bob@acme.test>",
            "Bob <bob@acme.test",
            "Bob bob@acme.test>",
            "Bob <mailto:bob@acme.test>",
            "Bob <bob@acme.test> <carol@acme.test>",
            "Bob <bob@acme.test> (maintainer)",
            "Bob <<bob@acme.test>>",
            "",
        ] {
            assert!(parse_identity(s).is_err(), "{s:?} parsed");
        }
    }
}

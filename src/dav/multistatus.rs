//! Reading a PROPFIND answer (RFC 4918 `207 Multi-Status`): for each member, its path, whether
//! it is a collection, its size, and a SHA-256 where the server offers one.
//!
//! Elements are matched by local name (`href`, `propstat`, `getcontentlength`, …) whatever
//! prefix a server binds `DAV:` to. Only properties under a `200` status count: a server lists
//! the ones it does not have under `404`. A DOCTYPE is refused (no entity tricks), as in every
//! XML relgate reads.

use quick_xml::escape::resolve_xml_entity;
use quick_xml::events::Event;

/// One member of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The member's URL path, percent-decoded, without a trailing `/`.
    pub path: String,
    pub collection: bool,
    /// `getcontentlength`.
    pub length: Option<u64>,
    /// A SHA-256 the server reports (ownCloud/Nextcloud `oc:checksums` and the like), lowercase.
    pub sha256: Option<String>,
}

/// The PROPFIND body relgate sends: just what it checks.
pub const PROPFIND_BODY: &str = concat!(
    r#"<?xml version="1.0" encoding="utf-8"?>"#,
    r#"<D:propfind xmlns:D="DAV:" xmlns:oc="http://owncloud.org/ns"><D:prop>"#,
    r#"<D:resourcetype/><D:getcontentlength/><oc:checksums/>"#,
    r#"</D:prop></D:propfind>"#
);

#[derive(Default)]
struct Props {
    collection: bool,
    length: Option<u64>,
    sha256: Option<String>,
}

/// Where the reader is: the open elements (local names), the text of the innermost one, and
/// what the current `<response>` and `<propstat>` said so far.
#[derive(Default)]
struct State {
    stack: Vec<String>,
    text: String,
    href: Option<String>,
    member: Props,
    pending: Props,
    status_ok: bool,
    out: Vec<Member>,
}

impl State {
    fn open(&mut self, name: String) -> Result<(), String> {
        if self.stack.is_empty() && name != "multistatus" {
            return Err(format!("expected <multistatus>, found <{name}>"));
        }
        match name.as_str() {
            "response" => {
                self.href = None;
                self.member = Props::default();
            }
            "propstat" => {
                self.pending = Props::default();
                self.status_ok = false;
            }
            "collection" if self.stack.iter().any(|s| s == "resourcetype") => {
                self.pending.collection = true;
            }
            _ => {}
        }
        self.text.clear();
        self.stack.push(name);
        Ok(())
    }

    fn close(&mut self) -> Result<(), String> {
        let Some(name) = self.stack.pop() else {
            return Err("an end tag without its start".into());
        };
        let value = std::mem::take(&mut self.text);
        let parent = self.stack.last().map(String::as_str);
        match name.as_str() {
            "href" if parent == Some("response") => self.href = Some(value.trim().to_string()),
            "status" if parent == Some("propstat") => {
                self.status_ok = value.split_whitespace().nth(1) == Some("200");
            }
            "getcontentlength" if !value.trim().is_empty() => {
                self.pending.length =
                    Some(value.trim().parse().map_err(|_| {
                        format!("getcontentlength {:?} is not a size", value.trim())
                    })?);
            }
            "checksums" | "checksum" => {
                if let Some(s) = sha256_in(&value) {
                    self.pending.sha256 = Some(s);
                }
            }
            "propstat" if self.status_ok => {
                let p = std::mem::take(&mut self.pending);
                self.member.collection |= p.collection;
                self.member.length = self.member.length.or(p.length);
                self.member.sha256 = self.member.sha256.take().or(p.sha256);
            }
            "response" => {
                let Some(h) = self.href.take() else {
                    return Err("a <response> without <href>".into());
                };
                let path = decode_href(&h)?;
                let m = std::mem::take(&mut self.member);
                self.out.push(Member {
                    path: path.trim_end_matches('/').to_string(),
                    collection: m.collection,
                    length: m.length,
                    sha256: m.sha256,
                });
            }
            _ => {}
        }
        Ok(())
    }
}

/// Parse a multistatus document.
pub fn parse(xml: &[u8]) -> Result<Vec<Member>, String> {
    let mut reader = quick_xml::Reader::from_reader(xml);
    reader.config_mut().check_end_names = true;
    let mut st = State::default();
    let mut seen_root = false;
    let name_of = |e: &quick_xml::events::BytesStart<'_>| e.local_name().as_ref().to_string();
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("not well-formed XML: {e}"))?;
        match event {
            Event::Start(e) => {
                seen_root = true;
                st.open(name_of(&e))?;
            }
            Event::Empty(e) => {
                seen_root = true;
                st.open(name_of(&e))?;
                st.close()?;
            }
            Event::End(_) => st.close()?,
            Event::Text(t) => st.text.push_str(&t.xml10_content()),
            Event::CData(t) => st.text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => {
                if r.is_char_ref() {
                    match r.resolve_char_ref() {
                        Ok(Some(c)) => st.text.push(c),
                        _ => return Err("an invalid character reference".into()),
                    }
                } else {
                    let name: &str = &r;
                    let Some(v) = resolve_xml_entity(name) else {
                        return Err(format!("an unknown entity &{name};"));
                    };
                    st.text.push_str(v);
                }
            }
            Event::DocType(_) => return Err("a DOCTYPE is not allowed".into()),
            Event::Eof => break,
            _ => {}
        }
    }
    if !seen_root {
        return Err("no <multistatus>".into());
    }
    if !st.stack.is_empty() {
        return Err("the document ends inside an element".into());
    }
    Ok(st.out)
}

/// The SHA-256 in a checksum property: `SHA256:<hex>` among others (`SHA1:… MD5:…`).
fn sha256_in(text: &str) -> Option<String> {
    text.split_whitespace().find_map(|t| {
        let (algo, hex) = t.split_once(':')?;
        (algo.eq_ignore_ascii_case("sha256") || algo.eq_ignore_ascii_case("sha-256"))
            .then(|| hex.to_ascii_lowercase())
            .filter(|h| crate::digest::is_hex_digest(h))
    })
}

/// An `href` (an absolute URL or an absolute path) as a decoded path.
fn decode_href(href: &str) -> Result<String, String> {
    let path = if href.starts_with("http://") || href.starts_with("https://") {
        url::Url::parse(href)
            .map_err(|e| format!("href {href:?}: {e}"))?
            .path()
            .to_string()
    } else {
        href.to_string()
    };
    if !path.starts_with('/') {
        return Err(format!("href {href:?} is not an absolute path"));
    }
    decode_path(&path).ok_or_else(|| format!("href {href:?} does not decode to UTF-8"))
}

/// Percent-decode a URL path; `None` if the bytes are not UTF-8.
pub fn decode_path(path: &str) -> Option<String> {
    percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const APACHE: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<D:multistatus xmlns:D="DAV:" xmlns:ns0="DAV:">
<D:response xmlns:lp1="DAV:" xmlns:lp2="http://apache.org/dav/props/">
<D:href>/rel/acme/1.0.0/</D:href>
<D:propstat><D:prop><lp1:resourcetype><D:collection/></lp1:resourcetype></D:prop>
<D:status>HTTP/1.1 200 OK</D:status></D:propstat>
<D:propstat><D:prop><lp1:getcontentlength/><ns1:checksums xmlns:ns1="http://owncloud.org/ns"/></D:prop>
<D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>
</D:response>
<D:response xmlns:lp1="DAV:">
<D:href>/rel/acme/1.0.0/a%20b&amp;c.txt</D:href>
<D:propstat><D:prop><lp1:resourcetype/><lp1:getcontentlength>2</lp1:getcontentlength></D:prop>
<D:status>HTTP/1.1 200 OK</D:status></D:propstat>
</D:response>
</D:multistatus>"#;

    #[test]
    fn apache_listing() {
        let m = parse(APACHE.as_bytes()).unwrap();
        assert_eq!(
            m,
            vec![
                Member {
                    path: "/rel/acme/1.0.0".into(),
                    collection: true,
                    length: None,
                    sha256: None,
                },
                Member {
                    path: "/rel/acme/1.0.0/a b&c.txt".into(),
                    collection: false,
                    length: Some(2),
                    sha256: None,
                },
            ]
        );
    }

    #[test]
    fn checksums_absolute_hrefs_and_404_props() {
        let h = "ab".repeat(32);
        let xml = format!(
            r#"<d:multistatus xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:response>
<d:href>https://repo.example/x/f.bin</d:href>
<d:propstat><d:prop><d:getcontentlength>5</d:getcontentlength>
<oc:checksums><oc:checksum>SHA1:00 MD5:11 SHA256:{}</oc:checksum></oc:checksums></d:prop>
<d:status>HTTP/1.1 200 OK</d:status></d:propstat>
<d:propstat><d:prop><d:getcontentlength>99</d:getcontentlength></d:prop>
<d:status>HTTP/1.1 404 Not Found</d:status></d:propstat></d:response></d:multistatus>"#,
            h.to_uppercase()
        );
        let m = parse(xml.as_bytes()).unwrap();
        assert_eq!(m[0].path, "/x/f.bin");
        assert_eq!(m[0].length, Some(5));
        assert_eq!(m[0].sha256.as_deref(), Some(h.as_str()));
    }

    #[test]
    fn refused() {
        for bad in [
            "<html>not dav</html>",
            "<!DOCTYPE x [<!ENTITY e 'x'>]><D:multistatus xmlns:D='DAV:'/>",
            "<D:multistatus xmlns:D='DAV:'><D:response></D:response></D:multistatus>",
            "<D:multistatus xmlns:D='DAV:'><D:response><D:href>/a</D:href><D:propstat><D:prop>\
             <D:getcontentlength>x</D:getcontentlength></D:prop></D:propstat></D:response></D:multistatus>",
            "",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}

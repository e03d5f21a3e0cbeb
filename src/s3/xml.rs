//! The little S3 XML relgate reads: error codes and messages, an upload id, a listing. Read
//! flat, as (element path, text) pairs; a document that is not well-formed is an error, never
//! read as empty.

use quick_xml::escape::resolve_xml_entity;
use quick_xml::events::Event;

/// Every element's text, with its path from the root (`ListBucketResult/Contents/Key`), in
/// document order. Elements without text are listed with an empty string, so a repeated
/// element (`Contents`) can be told apart.
pub fn flatten(bytes: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut reader = quick_xml::Reader::from_reader(bytes);
    reader.config_mut().check_end_names = true;
    let mut path: Vec<String> = Vec::new();
    let mut out: Vec<(String, String)> = Vec::new();
    let mut text = String::new();
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("not well-formed XML: {e}"))?;
        match event {
            Event::Start(e) => {
                path.push(e.local_name().as_ref().to_string());
                text.clear();
            }
            Event::Empty(e) => {
                path.push(e.local_name().as_ref().to_string());
                out.push((path.join("/"), String::new()));
                path.pop();
            }
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::CData(t) => text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => {
                let name: &str = &r;
                if r.is_char_ref() {
                    match r.resolve_char_ref() {
                        Ok(Some(c)) => text.push(c),
                        _ => return Err(format!("invalid character reference &{name};")),
                    }
                } else {
                    match resolve_xml_entity(name) {
                        Some(s) => text.push_str(s),
                        None => return Err(format!("unknown entity &{name};")),
                    }
                }
            }
            Event::End(_) => {
                out.push((path.join("/"), std::mem::take(&mut text)));
                path.pop();
            }
            Event::DocType(_) => return Err("a DOCTYPE is not expected here".into()),
            Event::Eof if path.is_empty() => break,
            Event::Eof => return Err(format!("the document ends inside <{}>", path.join("/"))),
            _ => {}
        }
    }
    Ok(out)
}

/// The first text at `path`.
pub fn first<'a>(flat: &'a [(String, String)], path: &str) -> Option<&'a str> {
    flat.iter()
        .find(|(p, _)| p == path)
        .map(|(_, t)| t.as_str())
}

/// An S3 error document's `Code` and `Message` (nothing else of it is ever shown: some errors
/// echo the canonical request, credentials included).
pub fn error_code(bytes: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(flat) = flatten(bytes) else {
        return (None, None);
    };
    (
        first(&flat, "Error/Code").map(str::to_string),
        first(&flat, "Error/Message").map(str::to_string),
    )
}

/// One object in a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub size: u64,
}

/// A `ListObjectsV2` page: the objects and, when truncated, the continuation token.
pub fn list_page(bytes: &[u8]) -> Result<(Vec<Listed>, Option<String>), String> {
    let flat = flatten(bytes)?;
    let mut objects = Vec::new();
    let mut key: Option<String> = None;
    let mut size: Option<u64> = None;
    for (p, t) in &flat {
        match p.as_str() {
            "ListBucketResult/Contents/Key" => key = Some(t.clone()),
            "ListBucketResult/Contents/Size" => {
                size = Some(
                    t.trim()
                        .parse()
                        .map_err(|_| format!("bad object size {t:?}"))?,
                )
            }
            "ListBucketResult/Contents" => match (key.take(), size.take()) {
                (Some(k), Some(s)) => objects.push(Listed { key: k, size: s }),
                _ => return Err("a listed object lacks its key or size".into()),
            },
            _ => {}
        }
    }
    let truncated = first(&flat, "ListBucketResult/IsTruncated") == Some("true");
    let next = first(&flat, "ListBucketResult/NextContinuationToken").map(str::to_string);
    match (truncated, next) {
        (true, None) => Err("a truncated listing without a continuation token".into()),
        (true, next) => Ok((objects, next)),
        (false, _) => Ok((objects, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_with_entities_and_continuation() {
        let doc = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name>
<Contents><Key>a/x&amp;y.txt</Key><Size>6</Size><ETag>"e"</ETag></Contents>
<Contents><Key>a/&#233;</Key><Size>0</Size></Contents>
<IsTruncated>true</IsTruncated><NextContinuationToken>tok</NextContinuationToken>
</ListBucketResult>"#;
        let (objects, next) = list_page(doc).unwrap();
        assert_eq!(
            objects,
            vec![
                Listed {
                    key: "a/x&y.txt".into(),
                    size: 6
                },
                Listed {
                    key: "a/\u{e9}".into(),
                    size: 0
                }
            ]
        );
        assert_eq!(next.as_deref(), Some("tok"));
        assert!(
            list_page(b"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>")
                .is_err()
        );
        assert!(list_page(b"<ListBucketResult><Contents>").is_err());
    }

    #[test]
    fn error_code_and_message_only() {
        let (code, msg) = error_code(
            b"<Error><Code>SignatureDoesNotMatch</Code><Message>no</Message>\
              <CanonicalRequest>x-amz-security-token:SECRET</CanonicalRequest></Error>",
        );
        assert_eq!(code.as_deref(), Some("SignatureDoesNotMatch"));
        assert_eq!(msg.as_deref(), Some("no"));
    }
}

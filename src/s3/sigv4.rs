//! AWS Signature Version 4 for request headers, as S3 and S3-compatible stores check it: a
//! canonical request, the string to sign, a key derived from the secret by four HMACs, and the
//! `Authorization` header. Checked against AWS's published SigV4 test suite (see the tests).
//!
//! S3 flavour: the path is URI-encoded once and never normalised (a key may hold `//` or `.`),
//! and the payload hash is also sent as `x-amz-content-sha256` by the caller.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::creds::Credentials;

/// The SHA-256 of an empty payload, in hex.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// What is signed, besides the headers the signer adds itself (`x-amz-date` and, with a session
/// token, `x-amz-security-token`).
pub struct Request<'a> {
    pub method: &'a str,
    /// The path as sent on the wire: already URI-encoded ([`encode_path`]).
    pub path: &'a str,
    /// Query parameters, not yet encoded.
    pub query: &'a [(String, String)],
    /// Headers (name, value); `host` must be among them.
    pub headers: &'a [(String, String)],
    /// Hex SHA-256 of the payload, or `UNSIGNED-PAYLOAD`.
    pub payload_hash: &'a str,
}

/// Where and when a request is signed.
pub struct Scope<'a> {
    pub region: &'a str,
    pub service: &'a str,
    /// `YYYYMMDDTHHMMSSZ`.
    pub datetime: &'a str,
}

/// Sign `req`: returns the headers to add to it, `x-amz-date`, `x-amz-security-token` when the
/// credentials have one, and `authorization`.
pub fn sign(req: &Request<'_>, scope: &Scope<'_>, creds: &Credentials) -> Vec<(String, String)> {
    let mut added = vec![("x-amz-date".to_string(), scope.datetime.to_string())];
    if let Some(token) = creds.session_token() {
        added.push(("x-amz-security-token".to_string(), token.to_string()));
    }
    let mut headers: Vec<(String, String)> = req.headers.to_vec();
    headers.extend(added.iter().cloned());
    let (canonical, signed_headers) = canonical_request(req, &headers);
    let date = scope.datetime.get(..8).unwrap_or(scope.datetime);
    let credential_scope = format!("{date}/{}/{}/aws4_request", scope.region, scope.service);
    let to_sign = string_to_sign(scope.datetime, &credential_scope, &canonical);
    let key = signing_key(creds.secret(), date, scope.region, scope.service);
    let signature = hex::encode(hmac(&key, to_sign.as_bytes()));
    added.push((
        "authorization".to_string(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{credential_scope}, SignedHeaders={signed_headers}, \
             Signature={signature}",
            creds.access_key_id()
        ),
    ));
    added
}

/// The canonical request and its signed-header list, for `headers` (all of them are signed).
pub fn canonical_request(req: &Request<'_>, headers: &[(String, String)]) -> (String, String) {
    // Header names lowercased and sorted; values trimmed with inner runs of spaces collapsed;
    // a name given twice has its values joined by commas, in the order given.
    let mut merged: Vec<(String, String)> = Vec::new();
    let mut sorted: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), collapse_spaces(v)))
        .collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, value) in sorted {
        match merged.last_mut() {
            Some((last, joined)) if *last == name => {
                joined.push(',');
                joined.push_str(&value);
            }
            _ => merged.push((name, value)),
        }
    }
    let canonical_headers: String = merged.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let signed: Vec<&str> = merged.iter().map(|(n, _)| n.as_str()).collect();
    let signed = signed.join(";");
    let canonical = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        req.path,
        canonical_query(req.query),
        canonical_headers,
        signed,
        req.payload_hash
    );
    (canonical, signed)
}

/// The query string as signed and as sent: each name and value encoded, sorted by name then
/// value.
pub fn canonical_query(query: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (encode(k, true), encode(v, true)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn string_to_sign(datetime: &str, credential_scope: &str, canonical: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256\n{datetime}\n{credential_scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    )
}

fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return [0; 32];
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn collapse_spaces(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// RFC 3986 encoding as SigV4 wants it: unreserved characters kept, every other byte `%XX`
/// (uppercase); `/` kept too unless `slash` is set.
pub fn encode(s: &str, slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b'/' if !slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A path for the wire and for signing: each segment encoded, `/` kept.
pub fn encode_path(path: &str) -> String {
    encode(path, false)
}

/// `YYYYMMDDTHHMMSSZ` for a time.
pub fn amz_datetime(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    //! Vectors from AWS's SigV4 test suite (`aws-sig-v4-test-suite`, as shipped with the AWS
    //! SDKs' signing tests): credentials AKIDEXAMPLE, 2015-08-30T12:36:00Z, us-east-1, service
    //! `service`; and the S3 GET example of the S3 API reference (examplebucket, 2013-05-24).
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn creds(token: Option<&str>) -> Credentials {
        Credentials::new("AKIDEXAMPLE", SECRET, token.map(str::to_string))
    }

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    struct Case<'a> {
        name: &'a str,
        method: &'a str,
        raw_path: &'a str,
        query: &'a [(&'a str, &'a str)],
        headers: &'a [(&'a str, &'a str)],
        payload_hash: &'a str,
        token: Option<&'a str>,
        canonical: &'a str,
        signature: &'a str,
    }

    fn check(c: &Case<'_>) {
        let path = encode_path(c.raw_path);
        let query = h(c.query);
        let headers = h(c.headers);
        let req = Request {
            method: c.method,
            path: &path,
            query: &query,
            headers: &headers,
            payload_hash: c.payload_hash,
        };
        let scope = Scope {
            region: "us-east-1",
            service: "service",
            datetime: "20150830T123600Z",
        };
        let creds = creds(c.token);
        let mut all = headers.clone();
        all.push(("x-amz-date".into(), scope.datetime.into()));
        if let Some(t) = c.token {
            all.push(("x-amz-security-token".into(), t.into()));
        }
        let (canonical, _) = canonical_request(&req, &all);
        assert_eq!(canonical, c.canonical, "{}: canonical request", c.name);
        let added = sign(&req, &scope, &creds);
        let auth = &added.last().expect("authorization").1;
        assert!(
            auth.ends_with(&format!("Signature={}", c.signature)),
            "{}: {auth}",
            c.name
        );
    }

    #[test]
    #[expect(
        clippy::too_many_lines,
        reason = "the AWS test suite's vectors, one table of data"
    )]
    fn aws_test_suite_vectors() {
        let e = EMPTY_SHA256;
        let host = ("Host", "example.amazonaws.com");
        let cases = [
            Case {
                name: "get-vanilla",
                method: "GET",
                raw_path: "/",
                query: &[],
                headers: &[host],
                payload_hash: e,
                token: None,
                canonical: "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            },
            Case {
                name: "get-vanilla-query-order-key-case",
                method: "GET",
                raw_path: "/",
                query: &[("Param2", "value2"), ("Param1", "value1")],
                headers: &[host],
                payload_hash: e,
                token: None,
                canonical: "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
            },
            Case {
                name: "get-vanilla-query-unreserved",
                method: "GET",
                raw_path: "/",
                query: &[(
                    "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                    "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                )],
                headers: &[host],
                payload_hash: e,
                token: None,
                canonical: "GET\n/\n-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                signature: "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
            },
            Case {
                name: "get-vanilla-utf8-query",
                method: "GET",
                raw_path: "/",
                query: &[("\u{1234}", "bar")],
                headers: &[host],
                payload_hash: e,
                token: None,
                canonical: "GET\n/\n%E1%88%B4=bar\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                signature: "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
            },
            Case {
                name: "get-header-value-trim",
                method: "GET",
                raw_path: "/",
                query: &[],
                headers: &[
                    host,
                    ("My-Header1", " value1"),
                    ("My-Header2", " \"a   b   c\""),
                ],
                payload_hash: e,
                token: None,
                canonical: "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\nx-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                signature: "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
            },
            Case {
                name: "get-unreserved",
                method: "GET",
                raw_path: "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                query: &[],
                headers: &[host],
                payload_hash: e,
                token: None,
                canonical: "GET\n/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                signature: "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
            },
            Case {
                name: "get-utf8",
                method: "GET",
                raw_path: "/\u{1234}",
                query: &[],
                headers: &[host],
                payload_hash: e,
                token: None,
                canonical: "GET\n/%E1%88%B4\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                signature: "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
            },
            Case {
                name: "get-space-unnormalized",
                method: "GET",
                raw_path: "/example space/",
                query: &[],
                headers: &[host],
                payload_hash: e,
                token: None,
                canonical: "GET\n/example%20space/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                signature: "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741",
            },
            Case {
                name: "get-vanilla-with-session-token",
                method: "GET",
                raw_path: "/",
                query: &[],
                headers: &[host],
                payload_hash: e,
                token: Some("6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"),
                canonical: "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\nx-amz-security-token:6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267\n\nhost;x-amz-date;x-amz-security-token\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                signature: "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8",
            },
            Case {
                name: "post-header-key-sort",
                method: "POST",
                raw_path: "/",
                query: &[],
                headers: &[host, ("My-Header1", "value1")],
                payload_hash: e,
                token: None,
                canonical: "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                signature: "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c",
            },
            Case {
                name: "post-header-value-case",
                method: "POST",
                raw_path: "/",
                query: &[],
                headers: &[host, ("My-Header1", "VALUE1")],
                payload_hash: e,
                token: None,
                canonical: "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:VALUE1\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                signature: "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d",
            },
            Case {
                name: "post-vanilla-query",
                method: "POST",
                raw_path: "/",
                query: &[("Param1", "value1")],
                headers: &[host],
                payload_hash: e,
                token: None,
                canonical: "POST\n/\nParam1=value1\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                signature: "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
            },
            Case {
                name: "post-x-www-form-urlencoded (signed body)",
                method: "POST",
                raw_path: "/",
                query: &[],
                headers: &[
                    ("Content-Type", "application/x-www-form-urlencoded"),
                    host,
                    ("Content-Length", "13"),
                    (
                        "x-amz-content-sha256",
                        "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
                    ),
                ],
                payload_hash: "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
                token: None,
                canonical: "POST\n/\n\ncontent-length:13\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\nx-amz-content-sha256:9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e\nx-amz-date:20150830T123600Z\n\ncontent-length;content-type;host;x-amz-content-sha256;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
                signature: "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b",
            },
        ];
        for c in &cases {
            check(c);
        }
        // The body hash of that last case is SHA-256("Param1=value1").
        assert_eq!(
            hex::encode(Sha256::digest(b"Param1=value1")),
            "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"
        );
    }

    #[test]
    fn s3_reference_get_object_example() {
        // S3 API reference, "Signature Calculations for the Authorization Header", GET Object.
        let creds = Credentials::new("AKIAIOSFODNN7EXAMPLE", SECRET_S3, None);
        let headers = h(&[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY_SHA256),
        ]);
        let req = Request {
            method: "GET",
            path: "/test.txt",
            query: &[],
            headers: &headers,
            payload_hash: EMPTY_SHA256,
        };
        let scope = Scope {
            region: "us-east-1",
            service: "s3",
            datetime: "20130524T000000Z",
        };
        let added = sign(&req, &scope, &creds);
        assert_eq!(
            added.last().expect("authorization").1,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    const SECRET_S3: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    #[test]
    fn keys_are_encoded_once_and_never_normalised() {
        assert_eq!(encode_path("/b/a b/../c+d//e"), "/b/a%20b/../c%2Bd//e");
        assert_eq!(encode("a/b", true), "a%2Fb");
        assert_eq!(
            amz_datetime(time::macros::datetime!(2015-08-30 12:36:00 UTC)),
            "20150830T123600Z"
        );
    }
}

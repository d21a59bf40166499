//! AWS Signature Version 4, verified: how the Kinesis-compatible endpoint knows which
//! token signed a request. A producer signs with its weir token's *name* as the access
//! key id and the token itself as the secret key, as it would sign for AWS; the host
//! recomputes the signature over the request it received and compares in constant time.
//! See <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html>.

use axum::http::{HeaderMap, Method, Uri};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The most headers a signature may cover (real clients sign a handful).
const MAX_SIGNED_HEADERS: usize = 32;

/// How far a request's `X-Amz-Date` may be from the host's clock, as AWS allows.
const MAX_SKEW_SECS: i64 = 15 * 60;

/// The parts of an `Authorization: AWS4-HMAC-SHA256 …` header.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Authorization<'a> {
    pub(crate) access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

/// Why a request's signature is not accepted; the texts follow AWS's.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SignatureError {
    /// No `Authorization` header, or not SigV4.
    Missing,
    /// The header cannot be read.
    Malformed(String),
    /// `X-Amz-Date` missing, unreadable or too far from now.
    Expired(String),
    /// The signature does not match.
    Mismatch,
}

/// The parts of `value`, an `Authorization` header.
pub(crate) fn parse_authorization(value: &str) -> Result<Authorization<'_>, SignatureError> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256").ok_or(SignatureError::Missing)?;
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let (name, value) = part.trim().split_once('=').ok_or_else(|| malformed("a part without `=`"))?;
        match name {
            "Credential" => credential = Some(value),
            "SignedHeaders" => signed_headers = Some(value),
            "Signature" => signature = Some(value),
            _ => {}
        }
    }
    let credential = credential.ok_or_else(|| malformed("no Credential"))?;
    let mut scope = credential.split('/');
    let (Some(access_key), Some(date), Some(region), Some(service), Some("aws4_request"), None) =
        (scope.next(), scope.next(), scope.next(), scope.next(), scope.next(), scope.next())
    else {
        return Err(malformed("Credential is not KEY/DATE/REGION/SERVICE/aws4_request"));
    };
    let signed_headers: Vec<&str> = signed_headers.ok_or_else(|| malformed("no SignedHeaders"))?.split(';').collect();
    // As AWS requires: lowercase names, each once, in order — and a bounded list, so the
    // canonical request built from it stays small.
    if signed_headers.len() > MAX_SIGNED_HEADERS
        || !signed_headers.windows(2).all(|pair| pair[0] < pair[1])
        || signed_headers.iter().any(|name| name.is_empty() || name.bytes().any(|b| b.is_ascii_uppercase()))
    {
        return Err(malformed(&format!(
            "SignedHeaders must be at most {MAX_SIGNED_HEADERS} distinct lowercase names in order"
        )));
    }
    let signature = signature.ok_or_else(|| malformed("no Signature"))?;
    Ok(Authorization { access_key, date, region, service, signed_headers, signature })
}

fn malformed(what: &str) -> SignatureError {
    SignatureError::Malformed(format!("the Authorization header is not AWS SigV4: {what}"))
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The key a secret signs with on `date` (`YYYYMMDD`) for `region` and `service`.
pub(crate) fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// A URI path as SigV4 canonicalises it: each segment percent-encoded (unreserved
/// characters kept), for services other than S3.
fn canonical_path(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    path.split('/').map(|segment| encode(&percent_decode(segment))).collect::<Vec<_>>().join("/")
}

fn canonical_query(query: Option<&str>) -> String {
    let mut pairs: Vec<(String, String)> = query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (encode(&percent_decode(k)), encode(&percent_decode(v)))
        })
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(byte) =
                std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// The canonical request SigV4 signs.
fn canonical_request(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    signed_headers: &[&str],
    body: &[u8],
) -> Result<String, SignatureError> {
    let mut canonical_headers = String::new();
    for name in signed_headers {
        let values: Vec<String> = headers
            .get_all(*name)
            .iter()
            .map(|v| {
                let text = String::from_utf8_lossy(v.as_bytes());
                text.split_whitespace().collect::<Vec<_>>().join(" ")
            })
            .collect();
        if values.is_empty() {
            return Err(malformed(&format!("signed header {name} is not in the request")));
        }
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    Ok(format!(
        "{method}\n{}\n{}\n{canonical_headers}\n{}\n{}",
        canonical_path(uri.path()),
        canonical_query(uri.query()),
        signed_headers.join(";"),
        hex::encode(Sha256::digest(body))
    ))
}

/// Checks that `auth` signs this request with `secret` at a time within 15 minutes of
/// `now_secs` (Unix seconds).
pub(crate) fn verify(
    auth: &Authorization<'_>,
    secret: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    now_secs: i64,
) -> Result<(), SignatureError> {
    let amz_date = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| SignatureError::Expired("the request has no X-Amz-Date header".into()))?;
    let signed_at = parse_amz_date(amz_date)
        .ok_or_else(|| SignatureError::Expired(format!("X-Amz-Date {amz_date:?} is not YYYYMMDDTHHMMSSZ")))?;
    if (now_secs - signed_at).abs() > MAX_SKEW_SECS || !amz_date.starts_with(auth.date) {
        return Err(SignatureError::Expired(format!(
            "Signature expired or not yet valid: {amz_date} is more than 15 minutes from the host's time"
        )));
    }
    if !auth.signed_headers.contains(&"host") {
        return Err(malformed("SignedHeaders must include host"));
    }
    let request = canonical_request(method, uri, headers, &auth.signed_headers, body)?;
    let scope = format!("{}/{}/{}/aws4_request", auth.date, auth.region, auth.service);
    let to_sign = format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex::encode(Sha256::digest(request.as_bytes())));
    let key = signing_key(secret, auth.date, auth.region, auth.service);
    let expected = hex::encode(hmac(&key, to_sign.as_bytes()));
    let presented = auth.signature.as_bytes();
    // Constant time over the expected length: which bytes matched is not told.
    let same = expected.len() == presented.len()
        && expected.as_bytes().iter().zip(presented).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if same { Ok(()) } else { Err(SignatureError::Mismatch) }
}

/// `YYYYMMDDTHHMMSSZ` as Unix seconds.
fn parse_amz_date(text: &str) -> Option<i64> {
    if text.len() != 16 || !text.is_ascii() || &text[8..9] != "T" || !text.ends_with('Z') {
        return None;
    }
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &text[0..4],
        &text[4..6],
        &text[6..8],
        &text[9..11],
        &text[11..13],
        &text[13..15]
    );
    weir_events::time::parse_rfc3339(&rfc3339).ok().map(|micros| micros.div_euclid(1_000_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signing_key_is_the_one_in_awss_documentation() {
        // From the AWS SigV4 documentation's worked example.
        let key = signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830", "us-east-1", "iam");
        assert_eq!(hex::encode(key), "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9");
    }

    #[test]
    fn a_request_signed_with_the_secret_verifies_and_any_change_does_not() {
        // The AWS SigV4 test suite's get-vanilla case.
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        let header = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                      SignedHeaders=host;x-amz-date, \
                      Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        let auth = parse_authorization(header).unwrap();
        assert_eq!(auth.access_key, "AKIDEXAMPLE");
        let mut headers = HeaderMap::new();
        headers.insert("host", "example.amazonaws.com".parse().unwrap());
        headers.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
        let uri: Uri = "/".parse().unwrap();
        let now = parse_amz_date("20150830T123600Z").unwrap();
        assert_eq!(verify(&auth, secret, &Method::GET, &uri, &headers, b"", now), Ok(()));
        assert_eq!(
            verify(&auth, "another secret", &Method::GET, &uri, &headers, b"", now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(verify(&auth, secret, &Method::GET, &uri, &headers, b"x", now), Err(SignatureError::Mismatch));
        assert!(matches!(
            verify(&auth, secret, &Method::GET, &uri, &headers, b"", now + 3600),
            Err(SignatureError::Expired(_))
        ));
    }

    #[test]
    fn an_authorization_header_that_is_not_sigv4_is_named() {
        assert_eq!(parse_authorization("Bearer abc"), Err(SignatureError::Missing));
        let repeated = format!(
            "AWS4-HMAC-SHA256 Credential=k/d/r/s/aws4_request, SignedHeaders={}host, Signature=0",
            "a;".repeat(1000)
        );
        assert!(matches!(parse_authorization(&repeated), Err(SignatureError::Malformed(_))), "a name signed twice");
        let unordered = "AWS4-HMAC-SHA256 Credential=k/d/r/s/aws4_request, SignedHeaders=x-amz-date;host, Signature=0";
        assert!(matches!(parse_authorization(unordered), Err(SignatureError::Malformed(_))));
        assert!(matches!(parse_authorization("AWS4-HMAC-SHA256 Credential=a/b"), Err(SignatureError::Malformed(_))));
    }
}

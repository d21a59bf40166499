//! Where an object-store sink (the lake, the dead letters, the warehouse) keeps its
//! objects: a local directory, or an S3 bucket and prefix ([`StoreLocation`]).

use std::fmt;
use std::path::PathBuf;

/// The keys a sink table with a [`StoreLocation`] may hold besides `path`: they apply to
/// an `s3://` path only.
pub const S3_KEYS: &[&str] = &["region", "endpoint", "path_style"];

/// Where an object-store sink writes: `path = "lake"` (a directory, resolved against
/// `server.data_dir`) or `path = "s3://bucket/prefix"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A local directory.
    Directory(PathBuf),
    /// An S3 bucket, under a prefix.
    S3(S3Location),
}

impl StoreLocation {
    /// The directory, for a local location.
    pub fn directory(&self) -> Option<&std::path::Path> {
        match self {
            Self::Directory(path) => Some(path),
            Self::S3(_) => None,
        }
    }
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Directory(path) => write!(f, "{}", path.display()),
            Self::S3(s3) => write!(f, "{s3}"),
        }
    }
}

/// `s3://bucket/prefix` with the section's `region`, `endpoint` and `path_style`.
/// Credentials are never configured here: they come from the standard AWS chain
/// (environment, profile, web identity, container or instance role).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct S3Location {
    /// The bucket.
    pub bucket: String,
    /// The key prefix every object of the sink is written under, without a leading or
    /// trailing `/`; empty for the bucket's root.
    pub prefix: String,
    /// `region`: by default `AWS_REGION`, else `AWS_DEFAULT_REGION`, else `us-east-1`.
    pub region: Option<String>,
    /// `endpoint`: an S3-compatible endpoint URL (a local server, MinIO, a VPC
    /// endpoint); by default AWS's for the region.
    pub endpoint: Option<String>,
    /// `path_style`: address the bucket in the path (`endpoint/bucket/key`) instead of
    /// the host name (`bucket.endpoint/key`), as most S3-compatible servers need. By
    /// default `false`, as AWS prefers.
    pub path_style: bool,
}

impl fmt::Display for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// Parses `s3://bucket/prefix`: `None` when `text` is not an `s3://` URL, else the
/// location or why the URL is wrong.
pub(crate) fn parse_s3_url(text: &str) -> Option<Result<S3Location, String>> {
    let rest = text.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if let Some(problem) = bucket_problem(bucket) {
        return Some(Err(format!("{text:?}: {problem}")));
    }
    let prefix = prefix.trim_matches('/');
    if prefix.split('/').any(|part| part.is_empty() || part == "." || part == "..") && !prefix.is_empty() {
        return Some(Err(format!("{text:?}: the prefix has an empty, '.' or '..' part; write it as a/b/c")));
    }
    Some(Ok(S3Location { bucket: bucket.to_owned(), prefix: prefix.to_owned(), ..S3Location::default() }))
}

/// What is wrong with an S3 bucket name, by S3's naming rules.
fn bucket_problem(bucket: &str) -> Option<&'static str> {
    if bucket.is_empty() {
        return Some("no bucket; expected s3://bucket/prefix");
    }
    if !(3..=63).contains(&bucket.len()) {
        return Some("a bucket name has 3 to 63 characters");
    }
    if !bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.') {
        return Some("a bucket name has only lowercase letters, digits, '-' and '.'");
    }
    let ends = [bucket.as_bytes()[0], bucket.as_bytes()[bucket.len() - 1]];
    if ends.iter().any(|b| !(b.is_ascii_lowercase() || b.is_ascii_digit())) {
        return Some("a bucket name starts and ends with a letter or a digit");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_name_a_bucket_and_a_prefix() {
        let lake = parse_s3_url("s3://weir-lake/prod/orders/").unwrap().unwrap();
        assert_eq!((lake.bucket.as_str(), lake.prefix.as_str()), ("weir-lake", "prod/orders"));
        assert_eq!(lake.to_string(), "s3://weir-lake/prod/orders");
        let root = parse_s3_url("s3://weir-lake").unwrap().unwrap();
        assert_eq!((root.bucket.as_str(), root.prefix.as_str()), ("weir-lake", ""));
        assert!(parse_s3_url("lake").is_none());
        assert!(parse_s3_url("/var/lib/weir/lake").is_none());
    }

    #[test]
    fn bad_buckets_and_prefixes_are_explained() {
        for (url, why) in [
            ("s3://", "no bucket"),
            ("s3://ab", "3 to 63"),
            ("s3://Weir_Lake/x", "lowercase"),
            ("s3://-weir/x", "starts and ends"),
            ("s3://weir-lake/a//b", "empty, '.' or '..'"),
            ("s3://weir-lake/a/../b", "empty, '.' or '..'"),
        ] {
            let error = parse_s3_url(url).unwrap().unwrap_err();
            assert!(error.contains(why), "{url}: {error}");
        }
    }
}

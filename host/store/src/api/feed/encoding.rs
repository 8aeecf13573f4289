//! Content coding of feed pages: whether a reader accepts gzip, and the tag of the compressed
//! form. The feed serves the page's one shared compression instead of letting the server's
//! compression layer compress it again for every reader.

use http::{HeaderMap, header};

/// What a compressed page's tag ends with inside its quotes: the compressed bytes differ from
/// the plain ones, so a strong tag must differ too.
const GZIP_SUFFIX: &str = "-gzip";

/// True when the request's `Accept-Encoding` accepts gzip: named (or `x-gzip`) with a
/// non-zero quality, or not named and `*` accepted.
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut wildcard = false;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else {
            continue;
        };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let accepted = parts.all(|param| !is_zero_quality(param));
            if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                return accepted;
            }
            if coding == "*" {
                wildcard = accepted;
            }
        }
    }
    wildcard
}

fn is_zero_quality(param: &str) -> bool {
    let Some((name, value)) = param.split_once('=') else {
        return false;
    };
    name.trim().eq_ignore_ascii_case("q") && value.trim().parse::<f32>().is_ok_and(|q| q <= 0.0)
}

/// The tag of the compressed form of a page tagged `etag` (`"x"` → `"x-gzip"`, weak or not).
pub fn gzip_tag(etag: &str) -> String {
    match etag.strip_suffix('"') {
        Some(open) => format!("{open}{GZIP_SUFFIX}\""),
        None => format!("{etag}{GZIP_SUFFIX}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn asking(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(value).unwrap(),
        );
        headers
    }

    #[test]
    fn gzip_is_accepted_when_named_or_wildcarded_with_a_quality_above_zero() {
        assert!(accepts_gzip(&asking("gzip, zstd")));
        assert!(accepts_gzip(&asking("zstd;q=1.0, GZIP;q=0.5")));
        assert!(accepts_gzip(&asking("x-gzip")));
        assert!(accepts_gzip(&asking("br, *")));
        assert!(!accepts_gzip(&asking("gzip;q=0, *")));
        assert!(!accepts_gzip(&asking("*, gzip; q=0.0")));
        assert!(!accepts_gzip(&asking("identity")));
        assert!(!accepts_gzip(&asking("*;q=0")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn a_compressed_page_has_its_own_tag() {
        assert_eq!(gzip_tag("\"s-all-3-100\""), "\"s-all-3-100-gzip\"");
        assert_eq!(gzip_tag("W/\"s-all-4-100-7\""), "W/\"s-all-4-100-7-gzip\"");
    }
}

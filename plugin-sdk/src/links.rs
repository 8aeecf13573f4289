//! Resolving feed links against an endpoint's base URL.
//!
//! Feeds publish links relative to a node's base URL
//! (`/ws/fhir2/R4/Patient/p1`), but older OpenMRS publishers include the
//! web application's context path (`/openmrs/ws/rest/v1/patient/p1`) while
//! the endpoint's base URL already ends in it (`https://host/openmrs`).
//! [`resolve`] handles both without doubling the context path.
//!
//! ```
//! use sync_plugin_sdk::links::resolve;
//!
//! let base = "https://district.example/openmrs";
//! assert_eq!(resolve(base, "/ws/rest/v1/patient/p1"), "https://district.example/openmrs/ws/rest/v1/patient/p1");
//! assert_eq!(resolve(base, "/openmrs/ws/rest/v1/patient/p1"), "https://district.example/openmrs/ws/rest/v1/patient/p1");
//! assert_eq!(resolve(base, "http://other/x"), "http://other/x");
//! ```

/// Splits an absolute URL into origin (`scheme://authority`) and path
/// (without a trailing slash; empty for the root).
pub fn split_origin(url: &str) -> (&str, &str) {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url[after_scheme..].find('/') {
        Some(slash) => {
            let (origin, path) = url.split_at(after_scheme + slash);
            (origin, path.trim_end_matches('/'))
        }
        None => (url, ""),
    }
}

/// True for `http://` and `https://` URLs.
pub fn is_absolute(href: &str) -> bool {
    let lower = href.get(..8).unwrap_or(href).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// Resolves `href` (absolute, root-relative, or relative) against `base_url`.
pub fn resolve(base_url: &str, href: &str) -> String {
    if is_absolute(href) {
        return href.to_string();
    }
    let (origin, base_path) = split_origin(base_url);
    if let Some(rooted) = href.strip_prefix('/') {
        let has_context = !base_path.is_empty()
            && (href == base_path || href.starts_with(&format!("{base_path}/")));
        return if has_context {
            format!("{origin}{href}")
        } else {
            format!("{origin}{base_path}/{rooted}")
        };
    }
    format!("{origin}{base_path}/{href}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_base_urls_take_the_link_as_is() {
        assert_eq!(
            resolve("http://127.0.0.1:8080", "/ws/fhir2/R4/Patient/a"),
            "http://127.0.0.1:8080/ws/fhir2/R4/Patient/a"
        );
        assert_eq!(resolve("http://h:1/", "ws/x"), "http://h:1/ws/x");
    }

    #[test]
    fn context_paths_are_not_doubled() {
        assert_eq!(
            resolve("http://h/openmrs/", "/openmrs/ws/rest/v1/patient/a?v=full"),
            "http://h/openmrs/ws/rest/v1/patient/a?v=full"
        );
        // A link that starts with the context path is read as carrying it.
        assert_eq!(resolve("http://h/0", "/0/0"), "http://h/0/0");
        assert_eq!(
            resolve("http://h/openmrs", "/openmrs-other/x"),
            "http://h/openmrs/openmrs-other/x"
        );
    }

    #[test]
    fn origin_and_path_split() {
        assert_eq!(
            split_origin("https://a.b:9/x/y/"),
            ("https://a.b:9", "/x/y")
        );
        assert_eq!(split_origin("https://a.b"), ("https://a.b", ""));
    }

    mod properties {
        use super::super::resolve;
        use proptest::prelude::*;

        fn segment() -> impl Strategy<Value = String> {
            "[a-z0-9][a-z0-9._-]{0,8}"
        }

        proptest! {
            #[test]
            fn a_context_path_in_the_link_is_never_doubled(
                port in 1u16..,
                context in proptest::collection::vec(segment(), 1..3),
                rest in proptest::collection::vec(segment(), 1..5),
            ) {
                let origin = format!("http://127.0.0.1:{port}");
                let context = format!("/{}", context.join("/"));
                let rest = format!("/{}", rest.join("/"));
                // A link that itself starts with the context path is ambiguous
                // (it is read as carrying it); that case is the first assertion.
                prop_assume!(rest != context && !rest.starts_with(&format!("{context}/")));
                let base = format!("{origin}{context}");
                let expected = format!("{origin}{context}{rest}");
                prop_assert_eq!(resolve(&base, &format!("{context}{rest}")), expected.clone());
                prop_assert_eq!(resolve(&base, &rest), expected.clone());
                prop_assert_eq!(resolve(&format!("{base}/"), &rest), expected);
            }

            #[test]
            fn absolute_links_are_kept(base in "http://[a-z]{1,8}(/[a-z]{1,5})?", path in "/[a-z/]{0,20}") {
                let href = format!("https://other.example{path}");
                prop_assert_eq!(resolve(&base, &href), href);
            }
        }
    }
}

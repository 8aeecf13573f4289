//! Unit tests of the URL allow-list.

use super::*;

fn endpoints(bases: &[&str]) -> Vec<AllowedEndpoint> {
    bases
        .iter()
        .map(|base| AllowedEndpoint::open(Url::parse(base).unwrap()))
        .collect()
}

fn allowed(raw: &str, bases: &[&str]) -> bool {
    check_url(raw, &endpoints(bases)).is_ok()
}

const OPENMRS: &str = "http://district.example:8080/openmrs";

#[test]
fn paths_under_the_base_are_allowed() {
    assert!(allowed("http://district.example:8080/openmrs", &[OPENMRS]));
    assert!(allowed(
        "http://district.example:8080/openmrs/ws/fhir2/R4/Patient/abc?_summary=true",
        &[OPENMRS]
    ));
    assert!(allowed("http://district.example:8080/openmrs/", &[OPENMRS]));
}

#[test]
fn a_sibling_path_sharing_the_prefix_is_denied() {
    assert!(!allowed(
        "http://district.example:8080/openmrs-admin/x",
        &[OPENMRS]
    ));
    assert!(!allowed("http://district.example:8080/", &[OPENMRS]));
}

#[test]
fn dot_dot_escapes_are_resolved_before_the_check() {
    assert!(!allowed(
        "http://district.example:8080/openmrs/../secret",
        &[OPENMRS]
    ));
    assert!(!allowed(
        "http://district.example:8080/openmrs/ws/../../secret",
        &[OPENMRS]
    ));
    assert!(!allowed(
        "http://district.example:8080/openmrs/%2e%2e/secret",
        &[OPENMRS]
    ));
    assert!(!allowed(
        "http://district.example:8080/openmrs/%2E%2E/secret",
        &[OPENMRS]
    ));
    assert!(!allowed(
        "http://district.example:8080/openmrs/..%2fsecret",
        &[OPENMRS]
    ));
    assert!(!allowed(
        "http://district.example:8080/openmrs/..%5Csecret",
        &[OPENMRS]
    ));
    // A `..` that stays inside the base is harmless.
    assert!(allowed(
        "http://district.example:8080/openmrs/ws/../ws/x",
        &[OPENMRS]
    ));
}

#[test]
fn another_port_or_scheme_is_denied() {
    assert!(!allowed(
        "http://district.example:8081/openmrs/x",
        &[OPENMRS]
    ));
    assert!(!allowed("http://district.example/openmrs/x", &[OPENMRS]));
    assert!(!allowed(
        "https://district.example:8080/openmrs/x",
        &[OPENMRS]
    ));
    assert!(!allowed(
        "ftp://district.example:8080/openmrs/x",
        &[OPENMRS]
    ));
    assert!(!allowed("file:///openmrs/x", &["file:///openmrs"]));
}

#[test]
fn default_ports_match_explicit_ones() {
    assert!(allowed(
        "https://national.example:443/fhir/Patient",
        &["https://national.example/fhir"]
    ));
    assert!(allowed(
        "http://national.example/fhir/Patient",
        &["http://national.example:80/fhir"]
    ));
}

#[test]
fn userinfo_in_the_url_is_denied() {
    let err = check_url(
        "http://admin:Admin123@district.example:8080/openmrs/x",
        &endpoints(&[OPENMRS]),
    )
    .unwrap_err();
    assert!(matches!(err, UrlRefusal::Denied(ref m) if m.contains("user information")));
    assert!(!allowed(
        "http://admin@district.example:8080/openmrs/x",
        &[OPENMRS]
    ));
}

#[test]
fn host_case_does_not_matter_but_other_hosts_do() {
    assert!(allowed(
        "http://DISTRICT.Example:8080/openmrs/x",
        &[OPENMRS]
    ));
    assert!(!allowed(
        "http://district.example.evil:8080/openmrs/x",
        &[OPENMRS]
    ));
    assert!(!allowed("http://evil.example:8080/openmrs/x", &[OPENMRS]));
}

#[test]
fn ipv6_hosts_compare_as_addresses() {
    let base = "http://[::1]:9000/store";
    assert!(allowed("http://[::1]:9000/store/Patient/1", &[base]));
    assert!(allowed(
        "http://[0:0:0:0:0:0:0:1]:9000/store/Patient/1",
        &[base]
    ));
    assert!(!allowed("http://[::2]:9000/store/Patient/1", &[base]));
    assert!(!allowed("http://127.0.0.1:9000/store/Patient/1", &[base]));
}

#[test]
fn numeric_ipv4_spellings_are_normalised() {
    let base = "http://127.0.0.1:9000";
    assert!(allowed("http://2130706433:9000/x", &[base]));
    assert!(allowed("http://127.1:9000/x", &[base]));
}

#[test]
fn relative_urls_are_invalid_requests() {
    let err = check_url("/ws/fhir2/R4/Patient/1", &endpoints(&[OPENMRS])).unwrap_err();
    assert!(matches!(err, UrlRefusal::Invalid(ref m) if m.contains("/ws/fhir2/R4/Patient/1")));
}

#[test]
fn the_denial_message_names_the_url() {
    let err = check_url("http://other.example/x", &endpoints(&[OPENMRS])).unwrap_err();
    assert_eq!(
        err,
        UrlRefusal::Denied(
            "http://other.example/x is not an endpoint this plugin may reach".into()
        )
    );
}

#[test]
fn the_matching_endpoint_is_returned() {
    let list = endpoints(&["http://a.example/one", "http://a.example/two"]);
    let (url, endpoint) = check_url("http://a.example/two/x", &list).unwrap();
    assert_eq!(url.as_str(), "http://a.example/two/x");
    assert_eq!(endpoint.base_url.as_str(), "http://a.example/two");
}

#[test]
fn a_root_base_allows_the_whole_origin() {
    assert!(allowed(
        "http://127.0.0.1:8080/anything/at/all",
        &["http://127.0.0.1:8080"]
    ));
}

#[test]
fn nothing_is_allowed_without_endpoints() {
    assert!(!allowed("http://127.0.0.1:8080/", &[]));
}

#[test]
fn credentials_are_redacted_in_debug_output() {
    let printed = format!(
        "{:?} {:?}",
        Credentials::Bearer("s3cret-token".into()),
        Credentials::Basic {
            username: "admin".into(),
            password: "Admin123".into()
        }
    );
    assert!(!printed.contains("s3cret-token"));
    assert!(!printed.contains("Admin123"));
    assert!(printed.contains("admin"));
}

/// What a lenient server might make of a path: every escape decoded, then
/// `.` and `..` resolved. Independent of the `url` crate on purpose.
fn as_a_lenient_server_sees_it(path: &str) -> String {
    let mut decoded = Vec::new();
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                i += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    let text = String::from_utf8_lossy(&decoded).replace('\\', "/");
    let mut segments: Vec<&str> = Vec::new();
    for segment in text.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    format!("/{}", segments.join("/"))
}

proptest::proptest! {
    #[test]
    fn an_allowed_url_stays_under_its_base_however_a_server_decodes_it(
        parts in proptest::collection::vec(
            proptest::sample::select(vec![
                "/", ".", "..", "%2e", "%2E", "%2f", "%5c", "\\", "a", "openmrs", "ws", "?", "#", "%", "%25",
            ]),
            0..12,
        )
    ) {
        let raw = format!("http://district.example:8080/openmrs/{}", parts.concat());
        if let Ok((url, _)) = check_url(&raw, &endpoints(&[OPENMRS])) {
            let seen = as_a_lenient_server_sees_it(url.path());
            proptest::prop_assert!(
                seen == "/openmrs" || seen.starts_with("/openmrs/"),
                "{raw} was allowed as {url} but a server may read {seen}"
            );
        }
    }
}

//! Tests of configuration parsing: good files load, bad ones name the key and the file.

use super::*;

const MINIMAL: &str = r#"
[node]
id = "clinic-7"
data_dir = "/tmp/clinic-7"

[server]
listen = "127.0.0.1:0"
"#;

#[test]
fn minimal_config_gets_sandbox_defaults() {
    let config = NodeConfig::parse(MINIMAL, Path::new("node.toml")).unwrap();
    assert_eq!(config.node.id, "clinic-7");
    assert_eq!(config.plugins.memory_limit_mib, 64);
    assert_eq!(config.plugins.call_timeout(), Duration::from_secs(10));
}

#[test]
fn unknown_key_is_rejected_and_named() {
    let text = format!("{MINIMAL}\n[plugins]\nmemory_limit = 3\n");
    let err = NodeConfig::parse(&text, Path::new("node.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("node.toml"), "{err}");
    assert!(err.contains("memory_limit"), "{err}");
}

#[test]
fn feed_page_cap_has_a_default_and_must_be_positive() {
    let config = NodeConfig::parse(MINIMAL, Path::new("node.toml")).unwrap();
    assert_eq!(config.sync.max_feed_page_mib, 16);
    assert_eq!(config.sync.max_feed_page_bytes(), 16 * 1024 * 1024);
    let text = format!(
        "{MINIMAL}
[sync]
max_feed_page_mib = 0
"
    );
    let err = NodeConfig::parse(&text, Path::new("n.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("n.toml") && err.contains("sync.max_feed_page_mib"),
        "{err}"
    );
}

#[test]
fn bad_node_id_names_the_key() {
    let text = MINIMAL.replace("clinic-7\"", "clinic 7!\"");
    let err = NodeConfig::parse(&text, Path::new("n.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("node.id"), "{err}");
}

#[test]
fn grant_needs_an_absolute_url() {
    let text =
        format!("{MINIMAL}\n[[plugins.grants]]\nplugin = \"fhir\"\nbase_url = \"example.org/x\"\n");
    let err = NodeConfig::parse(&text, Path::new("n.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("plugins.grants[0].base_url"), "{err}");
}

#[test]
fn grant_credentials_come_from_env_or_file() {
    let text = format!(
        "{MINIMAL}\n[[plugins.grants]]\nplugin = \"fhir\"\nbase_url = \"https://terminology.example\"\n\
         credentials = {{ kind = \"basic\", username = \"sync\", password = {{ env = \"TS_PASS\" }} }}\n"
    );
    let config = NodeConfig::parse(&text, Path::new("n.toml")).unwrap();
    match &config.plugins.grants[0].credentials {
        Some(CredentialsConfig::Basic { username, password }) => {
            assert_eq!(username, "sync");
            assert_eq!(password, &SecretSource::Env("TS_PASS".into()));
        }
        other => panic!("unexpected credentials {other:?}"),
    }
}

#[test]
fn secret_from_missing_env_names_the_variable() {
    let err = SecretSource::Env("SYNC_HOST_TEST_DEFINITELY_UNSET".into())
        .resolve()
        .unwrap_err()
        .to_string();
    assert!(err.contains("SYNC_HOST_TEST_DEFINITELY_UNSET"), "{err}");
}

#[test]
fn secret_from_file_is_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "s3cret\n").unwrap();
    assert_eq!(SecretSource::File(path).resolve().unwrap(), "s3cret");
}

#[test]
fn full_config_with_parent_routes_and_filters() {
    let text = format!(
        r#"{MINIMAL}
[[server.clients]]
name = "clinic-9"
token = {{ env = "T9" }}
scopes = ["read", "write"]
child_node = true

[parent]
node_id = "district-1"
base_url = "http://127.0.0.1:9000"
credentials = {{ kind = "bearer", token = {{ file = "/run/secrets/parent" }} }}

[sync]
conflict_policy = "parent-wins"
category_policies = {{ patient = "manual" }}

[sync.pull]
follow = true

[[routes]]
match = ["*"]
client = "fhir"

[[filters]]
plugin = "filter-category"
direction = "pull"
config = {{ deny = ["obs"] }}
"#
    );
    let config = NodeConfig::parse(&text, Path::new("n.toml")).unwrap();
    assert_eq!(config.parent.as_ref().unwrap().feeds, ["all"]);
    assert!(config.sync.pull.follow);
    assert_eq!(config.routes[0].client, "fhir");
    assert_eq!(config.server.unwrap().clients[0].name, "clinic-9");
}

#[test]
fn parent_url_must_be_absolute() {
    let text = format!("{MINIMAL}\n[parent]\nnode_id = \"d\"\nbase_url = \"nope\"\n");
    let err = NodeConfig::parse(&text, Path::new("n.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("parent.base_url"), "{err}");
}

#[test]
fn unusable_scopes_and_rules_name_their_key() {
    let refused = |extra: &str| {
        let text = format!("{MINIMAL}\n{extra}");
        NodeConfig::parse(&text, Path::new("n.toml"))
            .unwrap_err()
            .to_string()
    };
    let err = refused(
        "[[server.clients]]\nname = \"c\"\ntoken = { env = \"T\" }\nscopes = [\"read\"]\ndata_scope = []\n",
    );
    assert!(
        err.contains("server.clients[0].data_scope") && err.contains("no keys"),
        "{err}"
    );
    let err = refused("[sync.push]\ndata_scope = [\"*\"]\n");
    assert!(err.contains("sync.push.data_scope"), "{err}");
    let err = refused(
        "[sync.pull]\ndata_scope = [\"Location/a\"]\n[local]\nbase_url = \"http://127.0.0.1:1\"\n",
    );
    assert!(
        err.contains("sync.pull.data_scope") && err.contains("embedded store"),
        "{err}"
    );
    let err = refused("[classify]\nfhir = { Flag = [\"author..reference\"] }\n");
    assert!(
        err.contains("classify.fhir.Flag") && err.contains("n.toml"),
        "{err}"
    );
    let both = "[classify]\nfhir = { Flag = [\"author\"] }\n\n[classifier]\nplugin = \"classifier-paths\"\n";
    let err = refused(both);
    assert!(
        err.contains("classifier.plugin") && err.contains("one or the other"),
        "{err}"
    );
    let err = refused("[classifier]\nplugin = \"x\"\nrules = 1\n");
    assert!(err.contains("rules"), "{err}");
    let err = refused("[sync]\nleave_scope = \"forget\"\n");
    assert!(
        err.contains("leave_scope") || err.contains("forget"),
        "{err}"
    );
}

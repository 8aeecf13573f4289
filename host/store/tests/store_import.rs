//! Import of FHIR JSON files, Bundles, NDJSON and directories into a real store, with errors
//! that name the file and the line.

use std::path::{Path, PathBuf};

use sync_host_store::store::import::{ImportError, ImportProgress, import_path};
use sync_host_store::store::{Kind, ResourceKey, Store, StoreConfig};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/openmrs/fhir2")
}

fn open(dir: &Path) -> Store {
    let config = StoreConfig {
        node_id: "importer".into(),
        history_retention: 0,
        ..StoreConfig::default()
    };
    Store::open(dir, config).expect("store opens")
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("file written");
}

#[tokio::test]
async fn imports_a_single_resource_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("db"));
    let file = fixtures().join("patient-example.json");
    let totals = import_path(&store, &file, |_| {}).await.unwrap();
    assert_eq!(
        (totals.resources, totals.created, totals.files_done),
        (1, 1, 1)
    );
    let patient = store
        .read(&ResourceKey::fhir("Patient", "f001"))
        .unwrap()
        .unwrap();
    assert!(patient.body.unwrap().contains("van de Heuvel"));
    let again = import_path(&store, &file, |_| {}).await.unwrap();
    assert_eq!(
        again.unchanged, 1,
        "re-importing the same file changes nothing"
    );
}

#[tokio::test]
async fn imports_a_directory_of_bundles_ndjson_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("db"));
    let input = dir.path().join("input");
    std::fs::create_dir_all(input.join("nested")).unwrap();
    let observation = std::fs::read_to_string(fixtures().join("observation-example.json")).unwrap();
    let encounter = std::fs::read_to_string(fixtures().join("encounter-example.json")).unwrap();
    let bundle = format!(
        r#"{{"resourceType":"Bundle","type":"collection","entry":[
            {{"fullUrl":"urn:1","resource":{observation}}},
            {{"fullUrl":"urn:2","resource":{encounter}}}
        ]}}"#
    );
    write(&input.join("bundle.json"), &bundle);
    let lines: Vec<String> = (0..5)
        .map(|n| format!(r#"{{"resourceType":"Patient","id":"nd-{n}","active":true}}"#))
        .collect();
    write(
        &input.join("nested/patients.ndjson"),
        &format!("{}\n\n", lines.join("\n")),
    );
    write(&input.join("notes.txt"), "not imported");
    let mut reports = Vec::new();
    let totals = import_path(&store, &input, |progress: ImportProgress| {
        reports.push(progress)
    })
    .await
    .unwrap();
    assert_eq!(
        (totals.files_done, totals.resources, totals.created),
        (2, 7, 7)
    );
    assert_eq!(reports.last(), Some(&totals));
    assert!(
        reports
            .iter()
            .any(|report| report.file.ends_with("patients.ndjson"))
    );
    assert_eq!(
        store.list(Kind::Fhir, "Patient", None, 100).unwrap().len(),
        5
    );
    let stored = store
        .read(&ResourceKey::fhir("Observation", "f001"))
        .unwrap()
        .unwrap();
    assert!(
        stored.body.unwrap().contains(r#""value": 6.3"#),
        "bytes kept as written"
    );
    assert_eq!(
        store.categories().unwrap(),
        ["encounter", "observation", "patient"]
    );
}

#[tokio::test]
async fn errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("db"));
    let ndjson = dir.path().join("broken.ndjson");
    write(
        &ndjson,
        "{\"resourceType\":\"Patient\",\"id\":\"a\"}\n{\"resourceType\":\"Patient\",\"id\":\n",
    );
    let error = import_path(&store, &ndjson, |_| {}).await.unwrap_err();
    assert!(
        matches!(error, ImportError::Invalid { line: 2, .. }),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .starts_with(&format!("{}:2:", ndjson.display())),
        "{error}"
    );

    let no_id = dir.path().join("no-id.json");
    write(
        &no_id,
        "{\"resourceType\":\"Bundle\",\n\"entry\":[\n{\"resource\":{\"resourceType\":\"Patient\"}}]}",
    );
    let error = import_path(&store, &no_id, |_| {}).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("no-id.json:3: the resource has no id"),
        "{error}"
    );

    let syntax = dir.path().join("syntax.json");
    write(
        &syntax,
        "{\n  \"resourceType\": \"Patient\",\n  \"id\": 'x'\n}",
    );
    let error = import_path(&store, &syntax, |_| {}).await.unwrap_err();
    assert!(
        matches!(error, ImportError::Invalid { line: 3, .. }),
        "{error}"
    );

    let missing = dir.path().join("missing.json");
    let error = import_path(&store, &missing, |_| {}).await.unwrap_err();
    assert!(matches!(error, ImportError::Io { .. }) && error.to_string().contains("missing.json"));
}

#[tokio::test]
async fn deeply_nested_files_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("db"));
    let deep = format!("{}{}", "[".repeat(200_000), "]".repeat(200_000));
    let resource = format!(r#"{{"resourceType":"Patient","id":"d","extension":{deep}}}"#);
    let files = [
        ("deep.json", resource.clone()),
        (
            "deep-bundle.json",
            format!(r#"{{"resourceType":"Bundle","entry":[{{"resource":{resource}}}]}}"#),
        ),
        (
            "deep.ndjson",
            format!("{{\"resourceType\":\"Patient\",\"id\":\"ok\"}}\n{resource}\n"),
        ),
    ];
    for (name, text) in files {
        let file = dir.path().join(name);
        write(&file, &text);
        let error = import_path(&store, &file, |_| {}).await.unwrap_err();
        assert!(
            matches!(error, ImportError::Invalid { .. })
                && error.to_string().contains("nested deeper than"),
            "{name}: {error}"
        );
    }
    assert_eq!(store.change_count(None).unwrap(), 0);
}

#[cfg(unix)]
#[tokio::test]
async fn a_symbolic_link_loop_in_a_directory_ends_the_walk_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("db"));
    let input = dir.path().join("input");
    std::fs::create_dir_all(&input).unwrap();
    std::os::unix::fs::symlink(&input, input.join("again")).unwrap();
    let error = import_path(&store, &input, |_| {}).await.unwrap_err();
    assert!(
        matches!(error, ImportError::Io { .. }) && error.to_string().contains("directory levels"),
        "{error}"
    );
}

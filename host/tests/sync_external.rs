//! A node whose local side is an external server (`[local]`), played here by a plain
//! store-only node: pull stores into that server through the plugins, and push reads that
//! server's feed and sends its changes up.

use std::path::Path;

use sync_host::config::NodeConfig;
use sync_host::network::{Network, NodeSpec, sample, toml_string};
use sync_host::node::RunningNode;
use sync_host_store::store::ResourceKey;
use tokio_util::sync::CancellationToken;

fn client_toml(name: &str, token_file: &Path) -> String {
    format!(
        "\n[[server.clients]]\nname = {}\ntoken = {{ file = {} }}\nscopes = [\"read\", \"write\"]\nchild_node = true\n",
        toml_string(name),
        toml_string(&token_file.display().to_string())
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_syncs_an_external_server_both_ways() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let token_file = dir.path().join("bridge.token");
    std::fs::write(&token_file, "bridge-token-0123456789abcdef0123456789")?;
    let mut parent = NodeSpec::new("national", None);
    parent.extra_toml = client_toml("bridge", &token_file);
    let mut external = NodeSpec::new("openmrs-like", None);
    external.extra_toml = client_toml("bridge", &token_file);
    let network = Network::start(dir.path(), vec![parent, external]).await?;
    let parent_store = network.nodes[0]
        .running
        .handle
        .store
        .clone()
        .expect("parent store");
    let external_store = network.nodes[1]
        .running
        .handle
        .store
        .clone()
        .expect("external store");
    let bridge_dir = dir.path().join("bridge");
    let text = format!(
        r#"[node]
id = "bridge"
data_dir = {data}

[server]
listen = "127.0.0.1:0"

[local]
base_url = {local}
credentials = {{ kind = "bearer", token = {{ file = {token} }} }}

[parent]
node_id = "national"
base_url = {parent}
credentials = {{ kind = "bearer", token = {{ file = {token} }} }}

[sync.pull]
interval_secs = 0

[sync.push]
interval_secs = 0
"#,
        data = toml_string(&bridge_dir.display().to_string()),
        local = toml_string(network.nodes[1].running.base_url()),
        parent = toml_string(network.nodes[0].running.base_url()),
        token = toml_string(&token_file.display().to_string()),
    );
    let config = NodeConfig::parse(&text, Path::new("bridge.toml"))?;
    let bridge = RunningNode::start(config).await?;
    assert!(
        bridge.handle.store.is_none(),
        "no embedded store with [local]"
    );
    let services = bridge.handle.services.clone().expect("services");
    let cancel = CancellationToken::new();

    sample::put_fhir(
        &parent_store,
        "Patient",
        "from-parent",
        sample::patient("from-parent", "Amina", "Otieno", "1984-03-02"),
    )
    .await?;
    sample::put_fhir(
        &external_store,
        "Patient",
        "from-local",
        sample::patient("from-local", "Baraka", "Mwangi", "1990-11-20"),
    )
    .await?;
    for _ in 0..2 {
        services
            .push
            .as_ref()
            .expect("push")
            .0
            .run_once(&cancel)
            .await?;
        services
            .pull
            .as_ref()
            .expect("pull")
            .0
            .run_once(&cancel)
            .await?;
    }

    let pulled = external_store
        .read(&ResourceKey::fhir("Patient", "from-parent"))?
        .expect("pulled into the external server");
    assert!(pulled.body.unwrap_or_default().contains("Otieno"));
    assert_eq!(
        pulled.origin, "national",
        "the origin of the change travels with it"
    );
    let pushed = parent_store
        .read(&ResourceKey::fhir("Patient", "from-local"))?
        .expect("pushed to the parent");
    assert!(pushed.body.unwrap_or_default().contains("Mwangi"));
    assert_eq!(pushed.origin, "openmrs-like");
    bridge.shutdown().await;
    network.shutdown().await;
    Ok(())
}

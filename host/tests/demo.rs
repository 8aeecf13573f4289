//! `sync-host demo` as a user runs it: a separate process that starts a four-node tree,
//! syncs it, resolves a conflict, and says every node ends up with the same records.

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn demo_converges_and_says_so() -> anyhow::Result<()> {
    let dir = tempfile::Builder::new().prefix("sync-demo-").tempdir()?;
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_sync-host"))
        .arg("demo")
        .arg("--dir")
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .output()?;
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("sync-host demo took {elapsed:.1?}");
    assert!(
        output.status.success(),
        "demo failed with {}:\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains("Every node holds the same records"),
        "demo did not report convergence:\n{stdout}"
    );
    for node in ["national", "district-a", "district-b", "clinic-1"] {
        assert!(stdout.contains(node), "demo output does not mention {node}");
        assert!(
            dir.path().join(node).join("node.toml").is_file(),
            "demo wrote no config for {node}"
        );
    }
    assert!(
        stdout.contains("conflict"),
        "the demo's conflict is reported"
    );
    assert!(!stdout.contains("FAILED"), "{stdout}");
    assert!(elapsed < Duration::from_secs(120), "demo took {elapsed:?}");
    Ok(())
}

//! The configuration file of one node of a local network, written as TOML text (and parsed
//! back through the normal loader), so a demo or test node is configured exactly like a real
//! one and its files can be reused with `sync-host run --config`.

use std::fmt::Write;
use std::path::Path;

use super::NodeSpec;

/// Names of the token files of a node.
pub fn admin_token_file(dir: &Path) -> std::path::PathBuf {
    dir.join("admin.token")
}

/// The token file a child uses to reach its parent.
pub fn parent_token_file(dir: &Path) -> std::path::PathBuf {
    dir.join("parent.token")
}

/// The TOML of `spec`, with its data under `dir`; `children` get child-node clients and
/// `parent_url` is where the parent listens.
pub fn node_toml(
    spec: &NodeSpec,
    dir: &Path,
    children: &[(&NodeSpec, &Path)],
    parent_url: Option<&str>,
) -> String {
    let mut text = String::new();
    let quote = |p: &Path| toml_string(&p.display().to_string());
    let _ = writeln!(text, "# Node {} of a local sync-host network.", spec.id);
    let _ = writeln!(
        text,
        "[node]\nid = {}\ndata_dir = {}\n",
        toml_string(&spec.id),
        quote(&dir.join("data"))
    );
    let _ = writeln!(
        text,
        "[server]\nlisten = \"127.0.0.1:0\"\nhistory_retention = {}\n",
        spec.history_retention
    );
    if spec.page_size.is_some() || spec.catch_up_page_max.is_some() {
        let _ = writeln!(text, "[server.api]");
        if let Some(page_size) = spec.page_size {
            let _ = writeln!(text, "page_size = {page_size}");
        }
        if let Some(max) = spec.catch_up_page_max {
            let _ = writeln!(text, "catch_up_page_max = {max}");
        }
        let _ = writeln!(text);
    }
    let _ = writeln!(
        text,
        "[[server.clients]]\nname = \"operator\"\ntoken = {{ file = {} }}\nscopes = [\"admin\"]\n",
        quote(&admin_token_file(dir))
    );
    for (child, child_dir) in children {
        let _ = writeln!(
            text,
            "[[server.clients]]\nname = {}\ntoken = {{ file = {} }}\nscopes = [\"read\", \"write\"]\nchild_node = true",
            toml_string(&child.id),
            quote(&parent_token_file(child_dir))
        );
        if let Some(scope) = &child.data_scope {
            let keys: Vec<String> = scope.iter().map(|key| toml_string(key)).collect();
            let _ = writeln!(text, "data_scope = [{}]", keys.join(", "));
        }
        text.push('\n');
    }
    if let (Some(parent), Some(url)) = (&spec.parent, parent_url) {
        let _ = writeln!(
            text,
            "[parent]\nnode_id = {}\nbase_url = {}\ncredentials = {{ kind = \"bearer\", token = {{ file = {} }} }}\n",
            toml_string(parent),
            toml_string(url),
            quote(&parent_token_file(dir))
        );
    }
    match spec.report_interval_secs {
        Some(interval) => {
            let stale = (interval * 10).max(60);
            let _ = writeln!(
                text,
                "[report]\ninterval_secs = {interval}\nstale_after_secs = {stale}\n"
            );
        }
        None => text.push_str("[report]\nenabled = false\n\n"),
    }
    write_sync(&mut text, spec);
    text.push_str(&spec.extra_toml);
    text
}

fn write_sync(text: &mut String, spec: &NodeSpec) {
    let policy = serde_json::to_value(spec.policy)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "manual".into());
    let _ = writeln!(text, "[sync]\nconflict_policy = {}", toml_string(&policy));
    if let Some(leave) = &spec.leave_scope {
        let _ = writeln!(text, "leave_scope = {}", toml_string(leave));
    }
    text.push('\n');
    let interval = spec.interval_secs;
    let _ = writeln!(
        text,
        "[sync.pull]\nenabled = {}\ninterval_secs = {interval}\njitter_secs = 0\nfollow = {}",
        spec.pull, spec.follow
    );
    write_scope(text, spec.pull_scope.as_deref());
    let _ = writeln!(
        text,
        "[sync.push]\nenabled = {}\ninterval_secs = {interval}\njitter_secs = 0",
        spec.push
    );
    write_scope(text, spec.push_scope.as_deref());
    let _ = writeln!(
        text,
        "[sync.retry]\nbase_secs = 1\nmax_delay_secs = 5\nmax_attempts = 5\n"
    );
}

/// A direction's `data_scope` line, if it has one, and the blank line ending its table.
fn write_scope(text: &mut String, scope: Option<&[String]>) {
    if let Some(keys) = scope {
        let keys: Vec<String> = keys.iter().map(|key| toml_string(key)).collect();
        let _ = writeln!(text, "data_scope = [{}]", keys.join(", "));
    }
    text.push('\n');
}

/// A TOML basic string.
pub fn toml_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

//! The commented configurations `sync-host init` writes: a child node by default, a root node
//! (no parent) with `--root`. Both are parsed by the normal loader before they are written.

/// The variable the example's operator token is read from.
pub const OPERATOR_TOKEN_ENV: &str = "SYNC_HOST_OPERATOR_TOKEN";

/// The variable the example's parent token is read from.
pub const PARENT_TOKEN_ENV: &str = "SYNC_HOST_PARENT_TOKEN";

/// The example for a root node (`root`) or a child node.
pub fn config(root: bool) -> String {
    let mut text = String::from(HEAD);
    if root {
        text.push_str(ROOT_NOTE);
    } else {
        text.push_str(CHILD);
    }
    text.push_str(TAIL);
    text
}

const HEAD: &str = r#"# sync-host node configuration. Unknown keys are rejected; secrets are never written
# here, only the environment variable or file that holds them.
#
# Which sections a node needs:
#   root node (no parent):    [node], [server], [[server.clients]], [audit].
#                             Delete [parent], [sync...], [[routes]] and [[filters]].
#   child node:               everything below; [parent] says where it syncs.
#   leaf clinic (no children): delete the commented child-node client under [server].
#   pull-only child:          keep [parent], set [sync.push] enabled = false.

[node]
# A stable, unique name. It is recorded as the origin of every change made here.
id = "clinic-7"
# Store, sync state and audit log live here.
data_dir = "/var/lib/sync-host"

[server]
# An IP address and a port; "0.0.0.0:8080" listens on every interface.
listen = "127.0.0.1:8080"
# Old versions kept per resource besides the current one (0 keeps all).
history_retention = 10
# listen_backlog = 4096   # connections queued for accept (the kernel caps it at somaxconn)

# [server.api]
# page_size = 100            # feed entries per page
# catch_up_page_max = 1000   # most entries one answer gives a catching-up child
# max_body_bytes = 4194304
# long_poll_max_waiters = 4096    # long-polls held at once; more are answered at once
# long_poll_max_per_client = 8
# long_poll_pace_from = 100       # long-polls held from which the next two apply:
# long_poll_coalesce_ms = 5       #   quiet time before woken long-polls are answered
# long_poll_least_interval_ms = 250   # least time between two answers to one child

# Every caller has its own token and scopes (read, write, admin). No defaults exist.
# Tokens must be at least 32 bytes without surrounding white space: `sync-host token`
# prints a fresh one.
[[server.clients]]
name = "operator"
token = { env = "SYNC_HOST_OPERATOR_TOKEN" }
scopes = ["admin"]

# A child node of this one (delete on a node without children):
# [[server.clients]]
# name = "clinic-9"
# token = { file = "/etc/sync-host/clinic-9.token" }
# scopes = ["read", "write"]
# child_node = true
# # The child sees and writes only resources placed under these keys (`*` matches any run
# # of characters); everything else reads as missing. Leave it out to share everything.
# data_scope = ["Organization/clinic-9", "Location/clinic-9-*"]
#
# Which fields place a resource under which keys (these are the defaults; setting a key
# replaces its default list). Types no rule names are shared with every child.
# [classify]
# fhir = { Patient = ["managingOrganization"], Encounter = ["location.location", "serviceProvider"] }
# rest = { patient = ["identifiers.location"], encounter = ["location"], visit = ["location"], obs = ["location"] }
"#;

const ROOT_NOTE: &str = r#"
# This is a root node: it has no [parent], so it only stores and publishes; its children
# pull from it and push to it. To make it a child later, add [parent] and [sync] as
# `sync-host init` (without --root) writes them.
"#;

const CHILD: &str = r#"
# The node above this one (delete on the root node, with [sync...], [[routes]], [[filters]]).
[parent]
node_id = "district-1"
base_url = "https://district-1.example.org"
credentials = { kind = "bearer", token = { env = "SYNC_HOST_PARENT_TOKEN" } }
# An OpenMRS parent: Basic auth and one feed per category.
# credentials = { kind = "basic", username = "sync", password = { env = "OPENMRS_PASSWORD" } }
# feeds = ["patient", "encounter", "observation"]
feeds = ["all"]

[sync]
# parent-wins, child-wins, newest-wins or manual. manual parks a conflict for an operator:
# silently overwriting a clinical record is the worst outcome.
conflict_policy = "manual"
# category_policies = { location = "parent-wins" }
# A resource that leaves this node's data scope at the parent: "keep" its copy as it is,
# or "remove" it here (never at the parent).
# leave_scope = "keep"
# Feed pages larger than this (MiB) are refused.
# max_feed_page_mib = 16

[sync.pull]
# 0 runs only on `sync-host sync-now`; follow needs an interval above 0.
interval_secs = 60
follow = true            # long-poll the parent between runs for near-real-time sync

[sync.push]
# enabled = false        # a pull-only child
interval_secs = 60

[sync.retry]
base_secs = 30
max_delay_secs = 3600
max_attempts = 10

# Which resource client handles what; `fhir` is the fallback and `rest` takes events that
# carry only a REST link.
# [[routes]]
# match = ["location", "provider"]
# client = "rest"

# Event filters run in order. filter-catchment keeps a catchment by OpenMRS location tags
# (`patterns`), and by scope keys on a sync-host feed's tags and on content (`keys`).
# [[filters]]
# plugin = "filter-catchment"
# direction = "pull"
# config = { patterns = ["Kenya%Nairobi%*%*%*"], keys = ["Organization/kibera-hc"] }
"#;

const TAIL: &str = r#"
[audit]
retention_days = 365
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use sync_host::config::NodeConfig;

    #[test]
    fn both_examples_parse_and_only_the_child_has_a_parent() {
        let child = NodeConfig::parse(&config(false), Path::new("node.toml"));
        let root = NodeConfig::parse(&config(true), Path::new("node.toml"));
        assert!(child.is_ok_and(|c| c.parent.is_some()));
        assert!(root.is_ok_and(|c| c.parent.is_none() && c.server.is_some()));
    }
}

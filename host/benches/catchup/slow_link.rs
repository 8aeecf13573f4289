//! Catch-up over an emulated clinic link: the child process runs in a network namespace of its
//! own, joined to this one by a veth pair whose both ends `tc netem` slows to the link's
//! bandwidth, delay and loss. The parent stays in this process, reached through a small TCP
//! relay on the veth address. A kernel without netem gets the bandwidth from `tc tbf` and the
//! delay from the relay, which holds every chunk for the one-way delay in each direction; loss
//! is then not emulated, and the bench says so. The figure is set against the link's own
//! limit: the bytes that crossed it from the parent, divided by its bandwidth.

use std::ffi::OsString;
use std::process::Stdio;
use std::time::{Duration, Instant};

use sync_host::network::{Network, NodeSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::child;

/// The emulated link: 2 Mbit/s each way, 150 ms round trip, 1 % loss towards the child.
const RATE: &str = "2mbit";
const RATE_BYTES_PER_SECOND: f64 = 2_000_000.0 / 8.0;
const ONE_WAY_DELAY: &str = "75ms";
const ONE_WAY: Duration = Duration::from_millis(75);
const LOSS_TOWARDS_CHILD: &str = "1%";

/// A namespace with a veth pair into it; removed (with the pair) when dropped.
struct Link {
    namespace: String,
    host_if: String,
    host_ip: String,
    child_ip: String,
    /// How the link is shaped: `None` when netem does it all, else the delay the relay adds.
    relay_delay: Option<Duration>,
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let status = std::process::Command::new("ip")
        .args(args)
        .stderr(Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "`ip {}` failed", args.join(" "));
    Ok(())
}

/// Shapes `dev` (in `namespace`) with `qdisc`: netem's delay, rate and `loss`, or tbf's rate.
fn tc(namespace: Option<&str>, dev: &str, netem: bool, loss: Option<&str>) -> anyhow::Result<()> {
    let mut args: Vec<&str> = Vec::new();
    if let Some(ns) = namespace {
        args.extend(["ip", "netns", "exec", ns]);
    }
    args.extend(["tc", "qdisc", "add", "dev", dev, "root"]);
    if netem {
        args.extend(["netem", "delay", ONE_WAY_DELAY, "rate", RATE]);
        if let Some(loss) = loss {
            args.extend(["loss", loss]);
        }
    } else {
        args.extend(["tbf", "rate", RATE, "burst", "32kbit", "latency", "400ms"]);
    }
    let status = std::process::Command::new(args[0])
        .args(&args[1..])
        .stderr(Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "`{}` failed", args.join(" "));
    Ok(())
}

impl Link {
    fn create() -> anyhow::Result<Self> {
        let tag = std::process::id() % 100_000;
        let octet = tag % 250;
        let mut link = Link {
            namespace: format!("sh-slow-{tag}"),
            host_if: format!("shs{tag}h"),
            host_ip: format!("10.251.{octet}.1"),
            child_ip: format!("10.251.{octet}.2"),
            relay_delay: None,
        };
        ip(&["netns", "add", &link.namespace])?;
        let child_if = format!("shs{tag}c");
        ip(&[
            "link",
            "add",
            &link.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &child_if,
        ])?;
        ip(&["link", "set", &child_if, "netns", &link.namespace])?;
        ip(&[
            "addr",
            "add",
            &format!("{}/30", link.host_ip),
            "dev",
            &link.host_if,
        ])?;
        ip(&["link", "set", &link.host_if, "up"])?;
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &link.namespace, "ip"];
            all.extend(args);
            ip(&all)
        };
        inside(&[
            "addr",
            "add",
            &format!("{}/30", link.child_ip),
            "dev",
            &child_if,
        ])?;
        inside(&["link", "set", &child_if, "up"])?;
        inside(&["link", "set", "lo", "up"])?;
        let ns = Some(link.namespace.as_str());
        if tc(None, &link.host_if, true, Some(LOSS_TOWARDS_CHILD)).is_ok() {
            tc(ns, &child_if, true, None)?;
        } else {
            tc(None, &link.host_if, false, None)?;
            tc(ns, &child_if, false, None)?;
            link.relay_delay = Some(ONE_WAY);
        }
        Ok(link)
    }

    /// Bytes sent from this side into the namespace so far.
    fn bytes_towards_child(&self) -> anyhow::Result<u64> {
        let path = format!("/sys/class/net/{}/statistics/tx_bytes", self.host_if);
        Ok(std::fs::read_to_string(path)?.trim().parse()?)
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.namespace]);
    }
}

/// Relays every connection made to `listener` to `upstream`, holding each chunk for `delay`
/// in each direction when given, until the task is dropped.
async fn relay(listener: TcpListener, upstream: String, delay: Option<Duration>) {
    while let Ok((mut inbound, _)) = listener.accept().await {
        let upstream = upstream.clone();
        tokio::spawn(async move {
            let Ok(mut outbound) = TcpStream::connect(&upstream).await else {
                return;
            };
            let Some(delay) = delay else {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                return;
            };
            let (from_child, to_child) = inbound.into_split();
            let (from_parent, to_parent) = outbound.into_split();
            tokio::join!(
                delayed(from_child, to_parent, delay),
                delayed(from_parent, to_child, delay)
            );
        });
    }
}

/// Copies `from` to `to`, each chunk written `delay` after it was read, in order.
async fn delayed(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    let (chunks, mut due) = tokio::sync::mpsc::channel::<(tokio::time::Instant, Vec<u8>)>(256);
    let reading = async move {
        let mut buffer = vec![0; 16 * 1024];
        while let Ok(read @ 1..) = from.read(&mut buffer).await {
            let at = tokio::time::Instant::now() + delay;
            if chunks.send((at, buffer[..read].to_vec())).await.is_err() {
                break;
            }
        }
    };
    let writing = async move {
        while let Some((at, chunk)) = due.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reading, writing);
}

/// Runs the slow-link catch-up of `n` resources, or says why it cannot run here.
pub async fn run(n: usize, program: OsString) -> anyhow::Result<()> {
    println!("catch-up of {n} FHIR resources over an emulated clinic link:");
    let link = match Link::create() {
        Ok(link) => link,
        Err(why) => {
            println!("  skipped: no network namespace could be made here ({why})");
            return Ok(());
        }
    };
    let dir = tempfile::tempdir()?;
    let mut child_spec = NodeSpec::new("clinic", Some("national"));
    child_spec.push = false;
    let network = Network::start(
        dir.path(),
        vec![NodeSpec::new("national", None), child_spec],
    )
    .await?;
    let parent = &network.nodes[0];
    let store = parent.running.handle.store.clone();
    let store = store.ok_or_else(|| anyhow::anyhow!("no parent store"))?;
    // The PouchDB harness's documents when it is there (as the main catch-up uses), else the
    // bench's own.
    let ndjson = dir.path().join("resources.ndjson");
    let generated = match crate::peer::harness() {
        Ok(harness) => {
            Some(crate::peer::generate(&harness, n, &ndjson).map_err(anyhow::Error::msg)?)
        }
        Err(_) => None,
    };
    crate::fill_parent(&store, n, generated.map(|bytes| (bytes, ndjson.as_path()))).await?;

    let parent_base = parent.running.base_url().to_string();
    let listener = TcpListener::bind((link.host_ip.as_str(), 0)).await?;
    let relayed = format!("http://{}", listener.local_addr()?);
    let upstream = parent_base.trim_start_matches("http://").to_string();
    let relay_task = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(relay(
        listener,
        upstream,
        link.relay_delay,
    )));

    let child = &network.nodes[1];
    let config = slow_config(child, &parent_base, &relayed, &link.child_ip)?;
    let before = link.bytes_towards_child()?;
    let started = Instant::now();
    let mut command = tokio::process::Command::new("ip");
    command
        .args(["netns", "exec", &link.namespace])
        .arg(program);
    let (mut process, url) = child::start_command(command, "info", &config, Stdio::null()).await?;
    let http = reqwest::Client::new();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let status = child::status(&http, &url, &child.admin_token).await?;
        let done = status.and_then(|s| s["counts"]["audit_records"].as_u64());
        if done.unwrap_or(0) as usize >= n {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(1800),
            "the slow-link catch-up did not finish within 30 minutes"
        );
    }
    let elapsed = started.elapsed().as_secs_f64();
    let bytes = link.bytes_towards_child()? - before;
    // The child's own rate leaves out its start-up (plugin compile on a cold cache) and the
    // half-second granularity of this loop's polls, which the end-to-end figure includes.
    let status = child::status(&http, &url, &child.admin_token).await?;
    let steady = status.and_then(|s| s["pull"]["progress"]["per_second"].as_f64());
    process.kill().await.ok();
    let _ = process.wait().await;
    drop(relay_task);
    network.shutdown().await;

    let rate = n as f64 / elapsed;
    let limit = n as f64 * RATE_BYTES_PER_SECOND / bytes as f64;
    match link.relay_delay {
        None => println!(
            "  link: {RATE} each way, {ONE_WAY_DELAY} each way (150 ms round trip), {LOSS_TOWARDS_CHILD} loss towards the child (netem)"
        ),
        Some(_) => println!(
            "  link: {RATE} each way (tbf), {ONE_WAY_DELAY} each way added by the relay (150 ms round trip); this kernel has no netem, so no loss"
        ),
    }
    println!(
        "  bytes towards the child    {:>10.0} per resource (compressed as the child asks, headers and status polls included)",
        bytes as f64 / n as f64
    );
    println!(
        "  sync-host pull             {rate:>10.1} resources/s   (process start included, {elapsed:.1} s)"
    );
    println!(
        "  the link's own limit       {limit:>10.1} resources/s   (those bytes / the bandwidth)"
    );
    println!(
        "  ratio                      {:>10.2}x           (target >= 0.7x)",
        rate / limit
    );
    if let Some(steady) = steady {
        println!(
            "  sync-host pull, catch-up   {steady:>10.1} resources/s   (the child's own progress figure: {:.2}x the limit)",
            steady / limit
        );
    }
    Ok(())
}

/// The child's config for the namespace: its parent at the relay, its own API on its veth
/// address (so this side can poll its status), and a data directory of its own.
fn slow_config(
    child: &sync_host::network::NetNode,
    parent_base: &str,
    relayed: &str,
    child_ip: &str,
) -> anyhow::Result<std::path::PathBuf> {
    let data = child.dir.join("data");
    let text = std::fs::read_to_string(&child.config_path)?
        .replace(parent_base, relayed)
        .replace("127.0.0.1:0", &format!("{child_ip}:0"))
        .replace(
            &data.display().to_string(),
            &child.dir.join("data-slow").display().to_string(),
        )
        .replace("interval_secs = 0", "interval_secs = 1");
    let path = child.dir.join("slow.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

//! The `sync-host` command line: run a node, run the demo network, and operate a node.

mod cli;

use std::process::ExitCode;

use clap::Parser;

// A node's hot path allocates and frees many short-lived buffers (bodies, JSON values, sled
// nodes) on several threads at once; mimalloc serves that pattern with far less CPU than the
// system allocator (see the catch-up bench). Heap profilers need the system allocator: build
// with `--no-default-features` for them.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_tracing(&args.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(args.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

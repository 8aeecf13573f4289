//! Build-script helper that compiles sync-host plugins to `wasm32-wasip2` components.
//!
//! Each plugin is built in its own `cargo build` so that cargo features do not
//! unify across plugins: a resource client must embed only the
//! `resource-client` world, a filter only the `event-filter` world. The
//! nested builds use their own target directory under the outer one, so they
//! neither wait on the outer build's lock nor invalidate its artifacts.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

mod target;

pub use target::ensure_wasm_target;

/// The target every plugin is compiled for.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// Environment variables of the outer build that must not leak into the
/// nested one: they describe the host target, its flags and its directory.
const SCRUBBED_ENV: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
];

/// Compiles each package in `packages` (cargo package names) to a release
/// `wasm32-wasip2` component, one cargo invocation per package, and returns
/// the directory holding `<crate_name>.wasm` for each (`-` replaced by `_`).
///
/// Call it from a build script; it prints the `cargo:rerun-if-changed` lines
/// for the WIT, the SDK and every package directory.
pub fn build_plugins(workspace_root: &Path, packages: &[&str]) -> Result<PathBuf, String> {
    let target_dir = nested_target_dir()?;
    print_rerun_lines(workspace_root, packages);
    ensure_wasm_target(&target_dir)?;
    for package in packages {
        build_one(workspace_root, &target_dir, package)?;
    }
    let out = target_dir.join(WASM_TARGET).join("release");
    for package in packages {
        let wasm = out.join(wasm_file_name(package));
        if !wasm.is_file() {
            return Err(format!(
                "building {package} finished but {} does not exist; is its crate-type \"cdylib\"?",
                wasm.display()
            ));
        }
    }
    Ok(out)
}

/// The file name cargo gives the component of `package`.
pub fn wasm_file_name(package: &str) -> String {
    format!("{}.wasm", package.replace('-', "_"))
}

/// `<outer target dir>/wasm-plugins`, from `CARGO_TARGET_DIR` when set,
/// otherwise from `OUT_DIR` (`<target>/<profile>/build/<pkg>-<hash>/out`).
fn nested_target_dir() -> Result<PathBuf, String> {
    if let Some(dir) = env::var_os("CARGO_TARGET_DIR") {
        return Ok(PathBuf::from(dir).join("wasm-plugins"));
    }
    let out_dir = env::var_os("OUT_DIR").ok_or(
        "neither OUT_DIR nor CARGO_TARGET_DIR is set; call build_plugins from a build script",
    )?;
    outer_target_dir(Path::new(&out_dir))
        .map(|dir| dir.join("wasm-plugins"))
        .ok_or_else(|| {
            format!(
                "cannot find the target directory above OUT_DIR {}",
                Path::new(&out_dir).display()
            )
        })
}

/// Walks up from `OUT_DIR` to the directory that contains `build/`'s
/// profile directory: the parent of the `build` component's parent.
fn outer_target_dir(out_dir: &Path) -> Option<PathBuf> {
    let build = out_dir
        .ancestors()
        .find(|dir| dir.file_name().is_some_and(|n| n == "build"))?;
    let profile_dir = build.parent()?;
    let parent = profile_dir.parent()?;
    // With `--target <triple>` the layout is `<target>/<triple>/<profile>/build`.
    if parent.join("CACHEDIR.TAG").is_file() || parent.parent().is_none() {
        return Some(parent.to_path_buf());
    }
    match parent.parent() {
        Some(grand) if grand.join("CACHEDIR.TAG").is_file() => Some(grand.to_path_buf()),
        _ => Some(parent.to_path_buf()),
    }
}

fn print_rerun_lines(workspace_root: &Path, packages: &[&str]) {
    println!(
        "cargo:rerun-if-changed={}",
        workspace_root.join("wit").display()
    );
    // Plugins share the SDK, and filters the scope rules of the store.
    for shared in ["plugin-sdk", "host/scope"] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace_root.join(shared).display()
        );
    }
    for package in packages {
        if let Some(dir) = package_dir(workspace_root, package) {
            println!("cargo:rerun-if-changed={}", dir.display());
        }
    }
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");
}

/// Where a package lives, by the repository's layout (`plugins/<name>`,
/// `tests/plugins/<name>`), so that its sources are watched.
fn package_dir(workspace_root: &Path, package: &str) -> Option<PathBuf> {
    let short = package
        .strip_prefix("sync-plugin-")
        .map(|name| ("plugins", name))
        .or_else(|| {
            package
                .strip_prefix("sync-test-plugin-")
                .map(|name| ("tests/plugins", name))
        })?;
    let dir = workspace_root.join(short.0).join(short.1);
    dir.is_dir().then_some(dir)
}

fn build_one(workspace_root: &Path, target_dir: &Path, package: &str) -> Result<(), String> {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace_root)
        .args(["build", "--release", "--target", WASM_TARGET, "-p", package])
        .arg("--target-dir")
        .arg(target_dir);
    for name in SCRUBBED_ENV {
        command.env_remove(name);
    }
    // The workspace keeps line tables in release builds for host backtraces;
    // in a plugin they only make the component ten times larger (wasmtime
    // names frames from the name section, which stays).
    command
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo");
    let output = command
        .output()
        .map_err(|e| format!("cannot run cargo to build plugin {package}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(explain_failure(package, &stderr))
}

/// Turns cargo's stderr into an error that says what to do when the wasm
/// target is simply not installed.
fn explain_failure(package: &str, stderr: &str) -> String {
    let mut message = format!("building plugin {package} for {WASM_TARGET} failed:\n{stderr}");
    let missing_target = stderr.contains("may not be installed")
        || stderr.contains("can't find crate for `core`")
        || stderr.contains("can't find crate for `std`");
    if missing_target {
        message.push_str(&format!(
            "\nthe {WASM_TARGET} target is missing; install it with `rustup target add {WASM_TARGET}`"
        ));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crate_names_replace_dashes() {
        assert_eq!(wasm_file_name("sync-plugin-fhir"), "sync_plugin_fhir.wasm");
    }

    #[test]
    fn outer_target_dir_is_above_the_profile() {
        let tmp = env::temp_dir().join(format!("plugin-build-test-{}", std::process::id()));
        let out = tmp.join("target/debug/build/sync-host-1234/out");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(tmp.join("target/CACHEDIR.TAG"), "").unwrap();
        assert_eq!(outer_target_dir(&out), Some(tmp.join("target")));
        let cross = tmp.join("target/x86_64-unknown-linux-gnu/debug/build/x-1/out");
        std::fs::create_dir_all(&cross).unwrap();
        assert_eq!(outer_target_dir(&cross), Some(tmp.join("target")));
        std::fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn a_missing_target_says_how_to_install_it() {
        let message = explain_failure(
            "p",
            "error[E0463]: can't find crate for `core`\n  = note: the `wasm32-wasip2` target may not be installed",
        );
        assert!(
            message.contains("rustup target add wasm32-wasip2"),
            "{message}"
        );
        assert!(message.contains("can't find crate"), "{message}");
    }
}

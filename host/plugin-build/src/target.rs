//! Makes sure the active toolchain can compile for `wasm32-wasip2`, installing the target with
//! rustup when it is missing.
//!
//! rustup installs the `targets` of `rust-toolchain.toml` only when it installs the toolchain
//! itself; a machine that already had the pinned toolchain lacks the target, and a fresh clone
//! must still build with no manual step.

use std::env;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::WASM_TARGET;

/// Where the toolchain keeps the standard library for `target`, as rustc reports it.
fn target_libdir(rustc: &Path, target: &str) -> Result<PathBuf, String> {
    let output = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", target])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", rustc.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} --print target-libdir failed: {}",
            rustc.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(PathBuf::from(
        String::from_utf8_lossy(&output.stdout).trim(),
    ))
}

/// Whether the standard library for `target` is installed: its libdir holds a `libcore` rlib.
fn is_installed(libdir: &Path) -> bool {
    std::fs::read_dir(libdir).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().starts_with("libcore-"))
    })
}

/// Checks that `wasm32-wasip2` is installed for the toolchain running this build and installs it
/// with `rustup target add` when it is not, saying so in one line. `lock_dir` holds a lock file so
/// that concurrent build scripts do not run rustup at the same time.
pub fn ensure_wasm_target(lock_dir: &Path) -> Result<(), String> {
    let rustc = env::var_os("RUSTC").map_or_else(|| PathBuf::from("rustc"), PathBuf::from);
    let libdir = target_libdir(&rustc, WASM_TARGET)?;
    if is_installed(&libdir) {
        return Ok(());
    }
    std::fs::create_dir_all(lock_dir)
        .map_err(|e| format!("cannot create {}: {e}", lock_dir.display()))?;
    let lock_path = lock_dir.join("rustup-target.lock");
    let lock = File::create(&lock_path)
        .map_err(|e| format!("cannot create {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
    // Another build script may have installed it while this one waited for the lock.
    if is_installed(&libdir) {
        return Ok(());
    }
    let toolchain = env::var("RUSTUP_TOOLCHAIN").ok();
    println!(
        "cargo:warning=the {WASM_TARGET} target is missing for toolchain {}; installing it with `rustup target add {WASM_TARGET}`",
        toolchain.as_deref().unwrap_or("(default)")
    );
    install_with_rustup(toolchain.as_deref())?;
    if is_installed(&libdir) {
        Ok(())
    } else {
        Err(format!(
            "rustup reported success but {} still holds no standard library for {WASM_TARGET}; \
             install it with `{}`",
            libdir.display(),
            manual_command(toolchain.as_deref())
        ))
    }
}

/// Runs `rustup target add`, for the named toolchain when rustup told us which one is active.
fn install_with_rustup(toolchain: Option<&str>) -> Result<(), String> {
    let rustup = env::var_os("RUSTUP").unwrap_or_else(|| "rustup".into());
    let mut command = Command::new(&rustup);
    command.args(["target", "add", WASM_TARGET]);
    if let Some(toolchain) = toolchain {
        command.args(["--toolchain", toolchain]);
    }
    let output = command.output().map_err(|e| {
        format!(
            "the {WASM_TARGET} target is missing and rustup cannot be run ({e}); \
             install the target with `{}`",
            manual_command(toolchain)
        )
    })?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "the {WASM_TARGET} target is missing and `rustup target add` refused: {}\n\
         install the target with `{}`",
        String::from_utf8_lossy(&output.stderr).trim(),
        manual_command(toolchain)
    ))
}

fn manual_command(toolchain: Option<&str>) -> String {
    match toolchain {
        Some(toolchain) => format!("rustup target add {WASM_TARGET} --toolchain {toolchain}"),
        None => format!("rustup target add {WASM_TARGET}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_libdir_is_not_an_installed_target() {
        let dir = env::temp_dir().join(format!("plugin-build-libdir-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(!is_installed(&dir));
        assert!(!is_installed(&dir.join("absent")));
        std::fs::write(dir.join("libcore-0123abcd.rlib"), b"").unwrap();
        assert!(is_installed(&dir));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_host_target_is_installed() {
        let host = env::var("TARGET").unwrap_or_else(|_| "x86_64-unknown-linux-gnu".into());
        let libdir = target_libdir(Path::new("rustc"), &host).unwrap();
        assert!(is_installed(&libdir), "{}", libdir.display());
    }

    #[test]
    fn the_manual_command_names_the_toolchain() {
        assert_eq!(
            manual_command(Some("1.95.0")),
            "rustup target add wasm32-wasip2 --toolchain 1.95.0"
        );
    }
}

//! Builds the web client (`web/`) so `cargo run` serves it with no manual step.
//!
//! The bundle in `web/dist` is embedded by `rust-embed` (see `src/web.rs`). It is
//! rebuilt with npm only when `web/dist/index.html` is missing or older than the web
//! sources; otherwise this script just compares a few modification times. Without npm
//! (or when `SOCKET_HUB_SKIP_WEB_BUILD` is set; `SOCKET_HUB_NPM` names another npm
//! binary) the Rust build still succeeds: whatever
//! `web/dist` holds is embedded, and `/` explains that the web client was not built.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

const WATCHED: &[&str] = &[
    "src",
    "public",
    "index.html",
    "package.json",
    "package-lock.json",
    "vite.config.ts",
    "tsconfig.json",
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SOCKET_HUB_SKIP_WEB_BUILD");
    println!("cargo:rerun-if-env-changed=SOCKET_HUB_NPM");

    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let web = manifest_dir.join("../../web");
    let dist = web.join("dist");
    for name in WATCHED {
        let path = web.join(name);
        // Only existing paths: a missing one would make cargo rerun this script every time.
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }

    if web.join("package.json").is_file() && std::env::var_os("SOCKET_HUB_SKIP_WEB_BUILD").is_none()
    {
        let built = modified(&dist.join("index.html"));
        let sources = WATCHED
            .iter()
            .filter_map(|name| newest(&web.join(name)))
            .max();
        let stale = match (built, sources) {
            (None, _) => true,
            (Some(built), Some(sources)) => sources > built,
            (Some(_), None) => false,
        };
        if stale {
            match build_web(&web) {
                // Date the bundle like its newest source: it is then up to date for
                // this script, and older than this run for cargo's rerun-if-changed
                // on web/dist (no second rebuild of the crate next time).
                Ok(()) => {
                    if let Some(time) = sources {
                        set_mtime_recursive(&dist, time);
                    }
                }
                Err(why) => println!(
                    "cargo:warning=web client not rebuilt ({why}); embedding what web/dist holds"
                ),
            }
        }
    }

    // rust-embed needs the folder (allow_missing covers it too, but an empty folder
    // keeps behaviour identical in every build mode).
    if !dist.is_dir() {
        let _ = std::fs::create_dir_all(&dist);
    }
    // A deleted or hand-rebuilt bundle is picked up too.
    println!("cargo:rerun-if-changed={}", dist.display());
}

fn set_mtime_recursive(path: &Path, time: SystemTime) {
    if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.filter_map(Result::ok) {
            set_mtime_recursive(&entry.path(), time);
        }
    }
    if let Ok(file) = std::fs::File::open(path) {
        let _ = file.set_modified(time);
    }
}

fn build_web(web: &Path) -> Result<(), String> {
    let default = if cfg!(windows) { "npm.cmd" } else { "npm" };
    let npm = std::env::var("SOCKET_HUB_NPM").unwrap_or_else(|_| default.to_string());
    let npm = npm.as_str();
    match Command::new(npm).arg("--version").output() {
        Ok(out) if out.status.success() => {}
        _ => return Err("npm is not available".into()),
    }
    if !web.join("node_modules").is_dir() {
        run(Command::new(npm)
            .arg("ci")
            .arg("--no-audit")
            .arg("--no-fund")
            .current_dir(web))?;
    }
    run(Command::new(npm).arg("run").arg("build").current_dir(web))
}

fn run(command: &mut Command) -> Result<(), String> {
    let shown = format!("{command:?}");
    // Output goes to cargo's build log (shown with -vv or on failure of the script).
    let out = command.output().map_err(|e| format!("{shown}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().rev().take(5).collect::<Vec<_>>();
        let tail = last.into_iter().rev().collect::<Vec<_>>().join(" | ");
        Err(format!("{shown} failed with {}: {tail}", out.status))
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The newest modification time of a file, or of anything under a directory.
fn newest(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    let own = meta.modified().ok();
    if !meta.is_dir() {
        return own;
    }
    let entries = std::fs::read_dir(path).ok()?;
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| newest(&entry.path()))
        .chain(own)
        .max()
}

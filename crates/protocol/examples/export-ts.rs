//! Writes the web client's protocol types (`web/src/api/protocol/`, or the directory given
//! as the first argument) from this crate: `./scripts/gen-ts` runs it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use socket_hub_protocol::ts::{WEB_CLIENT_DIR, render};

fn main() -> ExitCode {
    let dir = std::env::args_os().nth(1).map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join(WEB_CLIENT_DIR),
        PathBuf::from,
    );
    match write(&dir) {
        Ok(count) => {
            println!("wrote {count} files to {}", dir.display());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("export-ts: {}: {err}", dir.display());
            ExitCode::FAILURE
        }
    }
}

/// Replaces the `*.ts` files in `dir` with freshly rendered ones, so a type that was
/// removed from the protocol does not linger.
fn write(dir: &Path) -> Result<usize, Box<dyn std::error::Error>> {
    let files = render()?;
    std::fs::create_dir_all(dir)?;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "ts") {
            std::fs::remove_file(&path)?;
        }
    }
    for (name, text) in &files {
        std::fs::write(dir.join(name), text)?;
    }
    Ok(files.len())
}

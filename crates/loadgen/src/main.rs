//! `socket-hub-load`: see the library docs, or `socket-hub-load --help`.

use std::process::ExitCode;

use clap::Parser;
use socket_hub_load::{Options, run, worker_main};

#[tokio::main]
async fn main() -> ExitCode {
    let options = Options::parse();
    if options.worker {
        return match worker_main().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("socket-hub-load worker: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let json = options.json;
    match run(options).await {
        Ok(report) => {
            print!("{report}");
            if json {
                println!("{}", report.to_json());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("socket-hub-load: {e}");
            ExitCode::FAILURE
        }
    }
}

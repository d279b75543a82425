// SPDX-License-Identifier: MIT OR Apache-2.0
//! rxen: start Xen guests that boot with rxen (see the library, and docs/toolstack.md).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match rxen_toolstack::run(rxen_toolstack::Cli::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rxen: {e}");
            ExitCode::from(1)
        }
    }
}

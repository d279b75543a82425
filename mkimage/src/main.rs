// SPDX-License-Identifier: MIT OR Apache-2.0
//! rxen-mkimage: build, inspect and verify rxen boot images.
fn main() -> std::process::ExitCode {
    rxen_mkimage::cli::main_with_args(std::env::args_os())
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! Write the man pages (clap_mangen) and shell completions (clap_complete) of
//! rxen-mkimage and rxen from their clap definitions, for the Debian package
//! (debian/rules), so the pages never drift from the options. Not installed.
//!
//! Usage: rxen-gen-docs OUTDIR   → OUTDIR/man/*.1, OUTDIR/completions/{bash,zsh,fish}/...

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

/// The page of `cmd` and, for each subcommand, `NAME-SUB.1`.
fn man_pages(cmd: &clap::Command, name: &'static str, dir: &Path) -> std::io::Result<()> {
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone().name(name)).render(&mut page)?;
    fs::write(dir.join(format!("{name}.1")), page)?;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        // A short-lived tool: leaking a handful of names is simpler than clap's "string".
        let sub_name: &'static str = format!("{name}-{}", sub.get_name()).leak();
        man_pages(sub, sub_name, dir)?;
    }
    Ok(())
}

fn run(out: &Path) -> std::io::Result<()> {
    let man = out.join("man");
    fs::create_dir_all(&man)?;
    let tools: [(clap::Command, &'static str); 2] =
        [(rxen_mkimage::cli::Cli::command(), "rxen-mkimage"), (rxen_toolstack::Cli::command(), "rxen")];
    for (mut cmd, name) in tools {
        cmd.build();
        man_pages(&cmd, name, &man)?;
        for (shell, dir, file) in [
            (Shell::Bash, "bash", name.to_string()),
            (Shell::Zsh, "zsh", format!("_{name}")),
            (Shell::Fish, "fish", format!("{name}.fish")),
        ] {
            let d = out.join("completions").join(dir);
            fs::create_dir_all(&d)?;
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut cmd, name, &mut text);
            fs::write(d.join(file), text)?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let Some(out) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: rxen-gen-docs OUTDIR");
        return ExitCode::from(2);
    };
    match run(&out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rxen-gen-docs: {}: {e}", out.display());
            ExitCode::from(1)
        }
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! `rxen-mkimage batch`: every image is what `build` makes from the same inputs, two runs
//! give the same SHA256SUMS, and a bad manifest line leaves the previous set in place,
//! named by its line.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use rxen_mkimage::testelf;

const BIN: &str = env!("CARGO_BIN_EXE_rxen-mkimage");

fn mkimage(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN).args(args).current_dir(dir).output().unwrap();
    (out.status.code().unwrap(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn fixture() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("pvh-boot"), testelf::loader_elf()).unwrap();
    fs::write(d.path().join("vmlinuz"), testelf::bzimage(8192, 1)).unwrap();
    fs::write(d.path().join("initrd"), b"an initrd\n").unwrap();
    fs::write(d.path().join("motd"), b"hello\n").unwrap();
    fs::write(
        d.path().join("own.toml"),
        "version = 1\n[[step]]\ntype = \"kernel\"\nkernel = \"(memdisk)/vmlinuz\"\ncmdline = \"own\"\n",
    )
    .unwrap();
    d
}

fn manifest(n: usize, bad_at: Option<usize>) -> String {
    let mut m = String::from(
        "[defaults]\nloader = \"pvh-boot\"\nkernel = \"vmlinuz\"\ninitrd = [\"initrd\"]\ncmdline = \"console=hvc0\"\n\n",
    );
    for i in 0..n {
        m.push_str(&format!("[[image]]\nname = \"vm{i:03}\"\n"));
        match i {
            _ if Some(i) == bad_at => m.push_str("kernel = \"no-such-kernel\"\n"),
            1 => m.push_str("config = \"own.toml\"\nadd = { \"vmlinuz\" = \"vmlinuz\" }\n"),
            2 => m.push_str("add = { \"etc/motd\" = \"motd\" }\n"),
            _ => m.push_str(&format!("cmdline = \"console=hvc0 fleet.host=vm{i:03}\"\n")),
        }
        m.push('\n');
    }
    m
}

fn sums(dir: &Path) -> String {
    fs::read_to_string(dir.join("SHA256SUMS")).unwrap()
}

#[test]
fn batch_images_are_build_images_and_reproducible() {
    let d = fixture();
    let p = d.path();
    fs::write(p.join("fleet.toml"), manifest(12, None)).unwrap();
    let (code, err) = mkimage(p, &["batch", "fleet.toml", "-o", "set", "-j", "3"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("12 images"), "{err}");
    // Byte for byte what `build` makes.
    let (code, err) = mkimage(
        p,
        &[
            "build",
            "--loader",
            "pvh-boot",
            "--kernel",
            "vmlinuz",
            "--initrd",
            "initrd",
            "--cmdline",
            "console=hvc0 fleet.host=vm005",
            "-o",
            "ref5.img",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(fs::read(p.join("ref5.img")).unwrap(), fs::read(p.join("set/vm005.img")).unwrap());
    let (code, err) = mkimage(
        p,
        &["build", "--loader", "pvh-boot", "--config", "own.toml", "--add", "vmlinuz=vmlinuz", "-o", "ref1.img"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(fs::read(p.join("ref1.img")).unwrap(), fs::read(p.join("set/vm001.img")).unwrap());
    let (code, err) = mkimage(
        p,
        &[
            "build",
            "--loader",
            "pvh-boot",
            "--kernel",
            "vmlinuz",
            "--initrd",
            "initrd",
            "--cmdline",
            "console=hvc0",
            "--add",
            "etc/motd=motd",
            "-o",
            "ref2.img",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(fs::read(p.join("ref2.img")).unwrap(), fs::read(p.join("set/vm002.img")).unwrap());
    // SHA256SUMS lists every image in manifest order, with the right sums; a second run
    // (other thread count) gives the same set.
    let first = sums(&p.join("set"));
    assert_eq!(first.lines().count(), 12);
    assert!(first.lines().next().unwrap().ends_with("  vm000.img"));
    let check = Command::new("sha256sum").arg("-c").arg("SHA256SUMS").current_dir(p.join("set")).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    let (code, err) = mkimage(p, &["batch", "fleet.toml", "-o", "set", "-j", "1"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(sums(&p.join("set")), first);
    // Nothing left beside the set.
    let names: Vec<PathBuf> = fs::read_dir(p)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|e| e.file_name().unwrap().to_string_lossy().starts_with(".set"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn a_bad_image_names_its_line_and_keeps_the_previous_set() {
    let d = fixture();
    let p = d.path();
    fs::write(p.join("fleet.toml"), manifest(6, None)).unwrap();
    assert_eq!(mkimage(p, &["batch", "fleet.toml", "-o", "set"]).0, 0);
    let before = sums(&p.join("set"));
    // Image 4's kernel does not exist: its [[image]] header is on line 6 + 4 * 4 + ... :
    // find it in the text.
    let text = manifest(6, Some(4));
    let line = text.lines().position(|l| l == "name = \"vm004\"").unwrap(); // 0-based: the header is the line before
    fs::write(p.join("fleet.toml"), &text).unwrap();
    let (code, err) = mkimage(p, &["batch", "fleet.toml", "-o", "set"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&format!("fleet.toml:{line}: image \"vm004\": ")), "{err}");
    assert!(err.contains("no-such-kernel"), "{err}");
    assert_eq!(sums(&p.join("set")), before, "the previous set must stay");
    assert_eq!(fs::read_dir(p.join("set")).unwrap().count(), 7);
    let leftovers: Vec<_> = fs::read_dir(p)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with(".set"))
        .collect();
    assert!(leftovers.is_empty());
    // Manifest errors name their line too: a duplicate name, an unknown key.
    fs::write(
        p.join("dup.toml"),
        "[defaults]\nkernel = \"vmlinuz\"\nloader = \"pvh-boot\"\n[[image]]\nname = \"a\"\n[[image]]\nname = \"a\"\n",
    )
    .unwrap();
    let (code, err) = mkimage(p, &["batch", "dup.toml", "-o", "set"]);
    assert_eq!(code, 1);
    assert!(err.contains("dup.toml:6: image \"a\" is also at line 4"), "{err}");
    fs::write(p.join("key.toml"), "[[image]]\nname = \"a\"\nkernal = \"vmlinuz\"\n").unwrap();
    let (code, err) = mkimage(p, &["batch", "key.toml", "-o", "set"]);
    assert_eq!(code, 1);
    assert!(err.contains("key.toml:") && err.contains("kernal"), "{err}");
    assert_eq!(sums(&p.join("set")), before);
}

/// Verified-boot fleets: `trust_key` puts the keys in each image as `build --trust-key`
/// does (same bytes), and a policy that asks for signatures without keys names its line.
#[test]
fn batch_trust_keys_match_build() {
    let d = fixture();
    let p = d.path();
    assert_eq!(mkimage(p, &["keygen", "fleet"]).0, 0);
    fs::write(
        p.join("signed.toml"),
        "version = 1\n[trust]\nsignatures = true\n[[step]]\ntype = \"search\"\nfile = \"/vmlinuz\"\n\
         [[step]]\ntype = \"kernel\"\nkernel = \"/vmlinuz\"\n",
    )
    .unwrap();
    fs::write(
        p.join("fleet.toml"),
        "[defaults]\nloader = \"pvh-boot\"\ntrust_key = [\"fleet.pub\"]\n\n[[image]]\nname = \"a\"\nconfig = \"signed.toml\"\n",
    )
    .unwrap();
    let (code, err) = mkimage(p, &["batch", "fleet.toml", "-o", "set"]);
    assert_eq!(code, 0, "{err}");
    let (code, err) = mkimage(
        p,
        &["build", "-o", "a.img", "--loader", "pvh-boot", "--config", "signed.toml", "--trust-key", "fleet.pub"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(fs::read(p.join("set/a.img")).unwrap() == fs::read(p.join("a.img")).unwrap(), "batch != build");
    fs::write(
        p.join("fleet.toml"),
        "[defaults]\nloader = \"pvh-boot\"\n\n[[image]]\nname = \"a\"\nconfig = \"signed.toml\"\n",
    )
    .unwrap();
    let (code, err) = mkimage(p, &["batch", "fleet.toml", "-o", "set2"]);
    assert_ne!(code, 0);
    assert!(err.contains("fleet.toml:4") && err.contains("give the keys with --trust-key"), "{err}");
}

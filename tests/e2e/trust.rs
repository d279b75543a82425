// SPDX-License-Identifier: MIT OR Apache-2.0
//! Verified boot end to end: `rxen-mkimage keygen`, `sign` and `build --trust-key` make
//! an image whose policy requires signatures; the loader boots a guest disk whose kernel
//! and initrd carry `FILE.sig` by that key, refuses the same disk with one byte of the
//! kernel flipped (naming the file, the key and the cause), and with `lock_cmdline` the
//! domain's words (`rxen.cmdline=replace init=/bin/sh`) never reach the kernel. explain
//! on dom0 says the same, and `require = true` stops at the first refusal even when a
//! later step would boot.

use rxen_e2e::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn sbin(tool: &str) -> Command {
    let mut c = Command::new(tool);
    c.env("PATH", format!("{}:/usr/sbin:/sbin", std::env::var("PATH").unwrap_or_default()));
    c
}

/// An ext4 disk image (whole disk, no partition table) of directory `dir`.
fn ext4_of(dir: &Path, img: &Path) {
    let out = sbin("mkfs.ext4").args(["-q", "-F", "-d"]).arg(dir).arg(img).arg("64M").output().unwrap();
    assert!(out.status.success(), "mkfs.ext4: {}", String::from_utf8_lossy(&out.stderr));
}

struct Fixture {
    dir: Scratch,
    key_id: String,
    signed: PathBuf,
    tampered: PathBuf,
    unsigned: PathBuf,
}

/// A key, a signed tree (kernel, initrd, their .sig), and three disks: signed, the
/// kernel with one byte flipped after signing, the initrd's .sig removed.
fn fixture() -> Fixture {
    let dir = Scratch::new("trust");
    let key = dir.path("fleet");
    let out = Command::new(mkimage()).arg("keygen").arg(&key).output().unwrap();
    assert!(out.status.success(), "keygen: {}", String::from_utf8_lossy(&out.stderr));
    let pubkey = std::fs::read_to_string(dir.path("fleet.pub")).unwrap();
    let key_id = pubkey.split_whitespace().nth(3).unwrap().to_string();
    let tree = dir.path("tree");
    std::fs::create_dir(&tree).unwrap();
    std::fs::copy(kernel(), tree.join("vmlinuz")).unwrap();
    std::fs::copy(initramfs(), tree.join("initrd.img")).unwrap();
    mkimage_ok(&[
        "sign",
        "--key",
        dir.path("fleet.key").to_str().unwrap(),
        tree.join("vmlinuz").to_str().unwrap(),
        tree.join("initrd.img").to_str().unwrap(),
    ]);
    let signed = dir.path("signed.img");
    ext4_of(&tree, &signed);
    // One bit of the kernel's compressed payload, after it was signed.
    let mut k = std::fs::read(tree.join("vmlinuz")).unwrap();
    let at = k.len() / 2;
    k[at] ^= 0x10;
    std::fs::write(tree.join("vmlinuz"), &k).unwrap();
    let tampered = dir.path("tampered.img");
    ext4_of(&tree, &tampered);
    std::fs::copy(kernel(), tree.join("vmlinuz")).unwrap();
    std::fs::remove_file(tree.join("initrd.img.sig")).unwrap();
    let unsigned = dir.path("unsigned.img");
    ext4_of(&tree, &unsigned);
    Fixture { dir, key_id, signed, tampered, unsigned }
}

/// An image with `policy`, trusting the fixture's key.
fn image(f: &Fixture, name: &str, policy: &str) -> PathBuf {
    let p = f.dir.path(&format!("{name}.toml"));
    std::fs::write(&p, policy).unwrap();
    let img = f.dir.path(&format!("{name}.rxen"));
    mkimage_ok(&[
        "build",
        "-o",
        img.to_str().unwrap(),
        "--loader",
        loader().to_str().unwrap(),
        "--config",
        p.to_str().unwrap(),
        "--trust-key",
        f.dir.path("fleet.pub").to_str().unwrap(),
        "--add",
        &format!("vmlinuz={}", kernel().display()),
    ]);
    img
}

fn signed_policy(extra: &str) -> String {
    format!(
        "version = 1\n[trust]\nsignatures = true\nlock_cmdline = true\n{extra}\n\
         [[step]]\ntype = \"search\"\nfile = \"/vmlinuz\"\n\n\
         [[step]]\ntype = \"kernel\"\nname = \"disk\"\nkernel = \"/vmlinuz\"\ninitrd = \"/initrd.img\"\ncmdline = \"{}\"\n",
        sample_cmdline()
    )
}

fn boot(img: &Path, disk: &Path, append: &str) -> Run {
    let mut q = Qemu::new("microvm", img);
    q.append = Some(append.to_string());
    q.timeout = std::time::Duration::from_secs(90);
    q.extra_args.extend(virtio_disk("microvm", 0, disk));
    q.run()
}

fn explain(img: &Path, disk: &Path) -> String {
    let out = Command::new(mkimage()).args(["explain", "--image"]).arg(img).arg("--disk").arg(disk).output().unwrap();
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn signed_guest_boots_and_a_flipped_byte_is_refused() {
    let f = fixture();
    let img = image(&f, "signed", &signed_policy(""));

    // The signed disk boots; the domain's words are dropped by lock_cmdline.
    let run = boot(&img, &f.signed, "rxen.cmdline=replace init=/bin/sh");
    assert!(run.serial.contains(MARKER), "signed guest did not boot:\n{}", run.dump());
    assert!(
        run.serial.contains(&format!("rxen: (vda)/vmlinuz: verified: signed by key {} (fleet)", f.key_id)),
        "{}",
        run.dump()
    );
    assert!(run.serial.contains("rxen: (vda)/initrd.img: verified: signed by key"), "{}", run.dump());
    assert!(run.serial.contains("the policy locks the command line (lock_cmdline)"), "{}", run.dump());
    assert_eq!(run.guest_cmdline(), Some(sample_cmdline().as_str()), "{}", run.dump());

    // One flipped bit: refused by name, nothing boots, the domain powers off.
    let run = boot(&img, &f.tampered, "");
    let want =
        format!("rxen: step disk failed: (vda)/vmlinuz: refused: the file changed since key {} signed it", f.key_id);
    assert!(run.serial.contains(&want), "{}", run.dump());
    assert!(!run.serial.contains(MARKER), "a tampered kernel booted:\n{}", run.dump());
    assert!(run.serial.contains("rxen: nothing to boot"), "{}", run.dump());
    assert!(!run.serial.contains("PANIC") && !run.serial.contains("EXCEPTION"), "{}", run.dump());

    // explain on dom0 says the same for each disk.
    assert!(explain(&img, &f.signed).contains("step disk: boots"), "{}", explain(&img, &f.signed));
    let ex = explain(&img, &f.tampered);
    assert!(ex.contains("(xvda)/vmlinuz: refused: the file changed since key"), "{ex}");
    let ex = explain(&img, &f.unsigned);
    assert!(
        ex.contains("(xvda)/initrd.img: refused: unsigned ((xvda)/initrd.img.sig: ext4: no such file or directory)"),
        "{ex}"
    );
}

/// Without `require`, a refusal falls through to the next step (here the memdisk's own
/// kernel, trusted as dom0's); with `require = true` the boot stops there.
#[test]
fn require_stops_at_the_first_refusal() {
    let f = fixture();
    let fallback = "\n[[step]]\ntype = \"kernel\"\nname = \"memdisk\"\nkernel = \"(memdisk)/vmlinuz\"\n";
    let soft = image(&f, "soft", &(signed_policy("") + fallback));
    let ex = explain(&soft, &f.tampered);
    assert!(ex.contains("(xvda)/vmlinuz: refused:"), "{ex}");
    assert!(ex.contains("boots: step memdisk"), "{ex}");
    let hard = image(&f, "hard", &(signed_policy("require = true") + fallback));
    let ex = explain(&hard, &f.tampered);
    assert!(ex.contains("trust: require = true stopped the boot at the first refusal"), "{ex}");
    assert!(ex.contains("boots: nothing"), "{ex}");
    assert!(!ex.contains("step memdisk"), "{ex}");
    // A pin instead of a signature: the memdisk kernel pinned to another file's digest.
    let pin = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let pinned = image(&f, "pinned", &(signed_policy("") + fallback + &format!("kernel_sha256 = \"{pin}\"\n")));
    let ex = explain(&pinned, &f.tampered);
    assert!(ex.contains("(memdisk)/vmlinuz: refused: its sha256 "), "{ex}");
    assert!(ex.contains(&format!("is not the pinned {pin}")), "{ex}");
}

/// The tools refuse what would make an image that can never verify anything.
#[test]
fn build_refuses_inconsistent_trust() {
    let f = fixture();
    let p = f.dir.path("p.toml");
    std::fs::write(&p, signed_policy("")).unwrap();
    // `rxen-mkimage build -o x.img` of policy `p` with `extra` arguments.
    let build = |extra: &[&std::path::Path]| {
        Command::new(mkimage())
            .args(["build", "-o"])
            .arg(f.dir.path("x.img"))
            .arg("--loader")
            .arg(loader())
            .arg("--config")
            .arg(&p)
            .args(extra)
            .output()
            .unwrap()
    };
    let out = build(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("give the keys with --trust-key"), "{err}");
    assert!(!f.dir.path("x.img").exists());
    // A secret key given as a trusted key.
    let out = build(&["--trust-key".as_ref(), f.dir.path("fleet.key").as_path()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("this is a secret key"), "{err}");
    // keygen never overwrites a key.
    let out = Command::new(mkimage()).arg("keygen").arg(f.dir.path("fleet")).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("already exists"));
    let meta = std::fs::metadata(f.dir.path("fleet.key")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    // inspect shows the rules and the key.
    let img = image(&f, "i", &signed_policy(""));
    let out = Command::new(mkimage()).arg("inspect").arg(&img).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("trust: signatures on, configs off, require off, lock_cmdline on"), "{text}");
    assert!(text.contains(&format!("  key {} ed25519 ", f.key_id)), "{text}");
}

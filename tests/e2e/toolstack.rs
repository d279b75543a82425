// SPDX-License-Identifier: MIT OR Apache-2.0
//! `rxen`, the toolstack module: `rxen run` boots an image under QEMU, `rxen create
//! --backend qemu` starts an xl config's guest there (its disks as virtio), `rxen
//! libvirt-xml` gives XML that libvirt's own schema accepts, and off a dom0 the xl
//! commands say so plainly. The guest is the multiboot test kernel (tests/multiboot):
//! fast, and it says what it got.

use std::path::Path;
use std::process::{Command, Output};

use rxen_e2e::*;

fn rxen(args: &[&str]) -> Output {
    Command::new(rxen_tool()).args(args).output().expect("rxen")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn rxen_run_boots_an_image_under_qemu() {
    let dir = Scratch::new("rxen-run");
    let (elf, _) = multiboot_kernels();
    let img = dir.path("mb.img");
    let l = loader();
    mkimage_ok(&[
        "build",
        "-o",
        img.to_str().unwrap(),
        "--loader",
        l.to_str().unwrap(),
        "--kernel",
        elf.to_str().unwrap(),
    ]);
    let out = rxen(&["run", "--image", img.to_str().unwrap(), "--cmdline", "hello=run"]);
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert!(so.contains("MBTEST: cmdline=hello=run"), "{so}\n{se}");
    assert!(so.contains("MBTEST: done"), "{so}\n{se}");
    // mbtest's isa-debug-exit value 0x31: QEMU's status 99, reported and passed on.
    assert_eq!(out.status.code(), Some(99), "{so}\n{se}");
    assert!(se.contains("rxen: mb: the guest exited with code 0x31"), "{se}");
    // A missing image is named.
    let out = rxen(&["run", "--image", "/nonexistent.img"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("/nonexistent.img: no such image"));
}

/// The guest's own second stage on a disk, found by the plain loader that the xl config
/// names: the same config a dom0 would use, started under QEMU.
#[test]
fn rxen_create_runs_an_xl_config_under_qemu() {
    let dir = Scratch::new("rxen-create");
    let (elf, _) = multiboot_kernels();
    let tree = dir.path("tree");
    std::fs::create_dir_all(tree.join("boot/xen")).unwrap();
    std::fs::copy(&elf, tree.join("boot/xen/pvhboot-x86_64.elf")).unwrap();
    let disk = dir.path("disk.img");
    let st = Command::new("mkfs.ext4").args(["-q", "-F", "-d"]).arg(&tree).arg(&disk).arg("8M").status().unwrap();
    assert!(st.success());
    let cfg = dir.path("guest.cfg");
    std::fs::write(
        &cfg,
        format!(
            "name = \"stage2\"\ntype = \"pvh\"\nkernel = \"{}\"\nextra = \"via=create\"\nmemory = 256\n\
             disk = [ 'format=raw,vdev=xvda,access=ro,target={}' ]\nvif = [ 'bridge=xenbr0' ]\n",
            loader().display(),
            disk.display()
        ),
    )
    .unwrap();
    let out = rxen(&["create", "--backend", "qemu", cfg.to_str().unwrap()]);
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert!(so.contains("rxen: step second-stage"), "{so}\n{se}");
    assert!(so.contains("MBTEST: cmdline=via=create"), "{so}\n{se}");
    assert_eq!(out.status.code(), Some(99), "{so}\n{se}");
    assert!(se.contains(&format!("rxen: {}:7: vif: ignored under QEMU", cfg.display())), "{se}");
    // A config error names file and line.
    std::fs::write(&cfg, "name = \"x\"\nmemory = \"much\"\n").unwrap();
    let out = rxen(&["create", "--backend", "qemu", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(&format!("{}:2: memory: expected a number", cfg.display())),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn libvirt_xml_validates_against_libvirts_schema() {
    let dir = Scratch::new("libvirt-xml");
    for (kind, loader) in [("pvh", "/usr/lib/rxen/pvh-boot.bin"), ("pv", "/usr/lib/rxen/pv-boot.bin")] {
        let cfg = dir.path(&format!("{kind}.cfg"));
        std::fs::write(
            &cfg,
            format!(
                "name = \"web-{kind}\"\ntype = \"{kind}\"\nkernel = \"{loader}\"\nextra = \"console=hvc0 root=/dev/xvda1 a<b\"\n\
                 memory = 1024\nvcpus = 2\non_crash = \"preserve\"\n\
                 disk = [ 'format=raw,vdev=xvda,access=rw,target=/dev/vg0/web', 'file:/srv/data.img,xvdb,r' ]\n"
            ),
        )
        .unwrap();
        let out = rxen(&["libvirt-xml", cfg.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let xml = dir.path(&format!("{kind}.xml"));
        std::fs::write(&xml, &out.stdout).unwrap();
        let v = Command::new("virt-xml-validate")
            .arg(&xml)
            .arg("domain")
            .output()
            .expect("virt-xml-validate (apt-get install libvirt-clients libxml2-utils)");
        assert!(v.status.success(), "{}{}\n{}", text(&v.stdout), text(&v.stderr), text(&out.stdout));
        let x = text(&out.stdout);
        assert!(x.contains(&format!("<kernel>{loader}</kernel>")), "{x}");
        assert!(x.contains("<cmdline>console=hvc0 root=/dev/xvda1 a&lt;b</cmdline>"), "{x}");
    }
    // The validator does reject a broken domain (so the check above can fail).
    let bad = dir.path("bad.xml");
    std::fs::write(&bad, "<domain type='xen'><name>x</name><os><type>nonsense</type></os><vcpu>two</vcpu></domain>")
        .unwrap();
    assert!(!Command::new("virt-xml-validate").arg(&bad).arg("domain").output().unwrap().status.success());
}

#[test]
fn xl_commands_off_a_dom0_say_so() {
    if Path::new("/proc/xen/capabilities").exists() {
        return; // on a real dom0 these commands work; nothing to check here
    }
    for args in [&["list"][..], &["console", "web1"], &["destroy", "web1"]] {
        let out = rxen(args);
        assert_eq!(out.status.code(), Some(1));
        assert!(text(&out.stderr).contains("rxen: not on a Xen dom0"), "{args:?}: {}", text(&out.stderr));
    }
}

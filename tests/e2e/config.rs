// SPDX-License-Identifier: MIT OR Apache-2.0
//! End to end through the guest's own boot configuration: the plain loader (generic
//! policy, whose `config` step reads grub.cfg, BLS and extlinux) boots disks made from the
//! config corpus (`scripts/build-config-disks`), picks the entry GRUB would pick, and hands
//! the kernel that entry's command line followed by the domain's. The menu is driven with
//! keystrokes on the serial console.

use rxen_e2e::*;
use std::process::Command;

fn boot(disk: &str, keys: Option<&[u8]>) -> Run {
    let mut q = guest(&loader(), virtio_disk("microvm", 0, &config_disks().join(format!("{disk}.img"))));
    q.serial_input = keys.map(<[u8]>::to_vec);
    q.run()
}

/// `kernel` on microvm with the sample command line and the QEMU arguments `disk`.
fn guest(kernel: &std::path::Path, disk: Vec<String>) -> Qemu {
    let mut q = Qemu::new("microvm", kernel);
    q.append = Some(sample_cmdline());
    q.timeout = std::time::Duration::from_secs(90);
    q.extra_args.extend(disk);
    q
}

/// An rxen image whose memdisk config is `text` (`rxen-mkimage build --config NAME`).
fn image_with_config(dir: &Scratch, name: &str, text: &str) -> std::path::PathBuf {
    std::fs::write(dir.path(name), text).unwrap();
    let img = dir.path("rxen.img");
    mkimage_ok(&["build", "-o", img.to_str().unwrap(), "--config", dir.path(name).to_str().unwrap()]);
    img
}

/// A grub.cfg for Debian 12's disk with two entries, `one` and `two` (`which=` on their
/// command lines), and `timeout`.
fn two_entries(timeout: u32) -> String {
    format!(
        "set timeout={timeout}\nsearch --no-floppy --set=root -f /boot/grub/grub.cfg\n\
         menuentry 'one' {{ linux /boot/vmlinuz-6.1.0-13-amd64 which=one\n initrd /boot/initrd.img-6.1.0-13-amd64\n}}\n\
         menuentry 'two' {{ linux /boot/vmlinuz-6.1.0-13-amd64 which=two\n initrd /boot/initrd.img-6.1.0-13-amd64\n}}\n"
    )
}

fn assert_boots(run: &Run, entry: &str, grub_cmdline: &str) {
    assert!(run.serial.contains(MARKER), "no marker:\n{}", run.dump());
    assert!(run.serial.contains(&format!("rxen: entry {entry:?}")), "want entry {entry:?}:\n{}", run.dump());
    let want = format!("{grub_cmdline} {}", sample_cmdline());
    assert_eq!(run.guest_cmdline(), Some(want.as_str()), "{}", run.dump());
}

/// Debian 12's grub-mkconfig output: search --fs-uuid sets $root, the first entry is the
/// default, GRUB's timeout (5 s) counts down and nobody presses a key.
#[test]
fn debian_grub_cfg_default_entry() {
    let run = boot("debian12", None);
    assert_boots(
        &run,
        "Debian GNU/Linux",
        "BOOT_IMAGE=/boot/vmlinuz-6.1.0-13-amd64 root=UUID=4d2a1b5c-8e3f-4a6b-9c7d-1e2f3a4b5c6d ro quiet",
    );
    assert!(run.serial.contains("rxen: booting the default in 5 s"), "{}", run.dump());
    // The default's kernel was read, checked and decompressed while the menu counted down,
    // once: the boot after the countdown uses it.
    let s = &run.serial;
    let ready = s
        .find("rxen: entry \"Debian GNU/Linux\" made ready during the countdown:")
        .unwrap_or_else(|| panic!("{}", run.dump()));
    let entry =
        ready + 1 + s[ready + 1..].find("rxen: entry \"Debian GNU/Linux\"").unwrap_or_else(|| panic!("{}", run.dump()));
    assert!(ready < entry, "{}", run.dump());
    assert_eq!(s.matches(" decompressed in ").count(), 1, "{}", run.dump());
    assert!(s[ready..entry].contains(" decompressed in "), "{}", run.dump());
}

/// A key while the default's kernel is being made ready during the countdown stops that
/// work at once (the decoder polls the console): the menu comes up and `2` boots the
/// second entry, whose kernel is then read and decompressed the ordinary way.
#[test]
fn a_key_during_the_countdowns_work_stops_it() {
    let dir = Scratch::new("countdown-key");
    let img = image_with_config(&dir, "grub.cfg", &two_entries(8));
    let mut q = guest(&img, virtio_disk("microvm", 0, &config_disks().join("debian12.img")));
    q.serial_input = Some(b" 2".to_vec());
    // QEMU starts, the loader reaches the countdown within about a second; the xz payload
    // takes it seconds more under TCG: the keys land in the middle.
    q.serial_input_delay = Some(std::time::Duration::from_millis(2500));
    let run = q.run();
    assert_boots(&run, "two", "BOOT_IMAGE=/boot/vmlinuz-6.1.0-13-amd64 which=two");
    let s = &run.serial;
    assert!(s.contains("rxen: a key: the menu (the default's kernel was being made ready; dropped)"), "{}", run.dump());
    assert!(!s.contains("made ready during the countdown"), "{}", run.dump());
    assert_eq!(s.matches(" decompressed in ").count(), 1, "{}", run.dump());
}

/// Fedora 40: blscfg expands /loader/entries on a separate /boot; grubenv's saved_entry
/// picks the older kernel, not the newest.
#[test]
fn fedora_bls_saved_entry() {
    let run = boot("fedora40", None);
    assert_boots(
        &run,
        "Fedora Linux (6.9.12-200.fc40.x86_64) 40 (Server Edition)",
        "BOOT_IMAGE=(vda,msdos1)/vmlinuz-6.9.12-200.fc40.x86_64 root=UUID=3c1d2e4f-6a7b-4c8d-9e0f-1a2b3c4d5e6f ro rootflags=subvol=root rhgb quiet",
    );
}

/// Alpine's extlinux.conf: MENU DEFAULT picks the label, paths relative to the file.
#[test]
fn alpine_extlinux() {
    let run = boot("alpine", None);
    assert_boots(
        &run,
        "Linux virt",
        "BOOT_IMAGE=vmlinuz-virt root=UUID=c4d5e6f7-a8b9-4c0d-9e1f-2a3b4c5d6e7f modules=sd-mod,usb-storage,ext4 console=hvc0 quiet rootfstype=ext4",
    );
}

/// A key stops the countdown (the leading space: a key typed before the UART is set up
/// may be lost, so the first one only stops the countdown); j moves down (twice: into the submenu's recovery entry),
/// Enter boots it.
#[test]
fn menu_keys_pick_another_entry() {
    let run = boot("debian12", Some(b" jj\r"));
    assert_boots(
        &run,
        "Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 6.1.0-13-amd64 (recovery mode)",
        "BOOT_IMAGE=/boot/vmlinuz-6.1.0-13-amd64 root=UUID=4d2a1b5c-8e3f-4a6b-9c7d-1e2f3a4b5c6d ro single",
    );
}

/// `e` edits the highlighted entry's command line; Enter boots it.
#[test]
fn menu_edit_command_line() {
    let run = boot("debian12", Some(b" e rxen_edited=1\r"));
    assert_boots(
        &run,
        "Debian GNU/Linux",
        "BOOT_IMAGE=/boot/vmlinuz-6.1.0-13-amd64 root=UUID=4d2a1b5c-8e3f-4a6b-9c7d-1e2f3a4b5c6d ro quiet rxen_edited=1",
    );
}

/// A pvgrub2-style memdisk config (`rxen-mkimage --config grub.cfg`): it searches for the
/// guest's grub.cfg and `configfile`s it, unchanged from what GRUB's Xen images carry.
#[test]
fn memdisk_grub_cfg_like_pvgrub2() {
    let dir = Scratch::new("pvgrub-cfg");
    let img = image_with_config(
        &dir,
        "grub.cfg",
        "search --no-floppy --set=root -f /boot/grub/grub.cfg\nset prefix=($root)/boot/grub\nconfigfile /boot/grub/grub.cfg\n",
    );
    let run = guest(&img, virtio_disk("microvm", 0, &config_disks().join("debian12.img"))).run();
    assert_boots(
        &run,
        "Debian GNU/Linux",
        "BOOT_IMAGE=/boot/vmlinuz-6.1.0-13-amd64 root=UUID=4d2a1b5c-8e3f-4a6b-9c7d-1e2f3a4b5c6d ro quiet",
    );
    assert!(run.serial.contains("rxen: step grub-cfg"), "{}", run.dump());
}

/// `c` opens a prompt: `ls` and `cat` read the guest's volumes, `set root=` picks the
/// device they use (and refuses one without a filesystem), `boot` boots the entry.
#[test]
fn menu_command_prompt() {
    let run = boot(
        "debian12",
        Some(b" cls (hd0,gpt2)/boot\rset root=(vda,gpt1)\rset root=(vda,gpt2)\rset\rcat /boot/grub/grubenv\rboot\r"),
    );
    assert_boots(
        &run,
        "Debian GNU/Linux",
        "BOOT_IMAGE=/boot/vmlinuz-6.1.0-13-amd64 root=UUID=4d2a1b5c-8e3f-4a6b-9c7d-1e2f3a4b5c6d ro quiet",
    );
    assert!(run.serial.contains("vmlinuz-6.1.0-13-amd64"), "{}", run.dump());
    assert!(run.serial.contains("# GRUB Environment Block"), "{}", run.dump());
    assert!(run.serial.contains("rxen: root unchanged: "), "{}", run.dump());
    assert!(run.serial.contains("\nroot=(vda,gpt2)"), "{}", run.dump());
}

/// `rxen.menu` on the domain command line shows the menu of a configuration whose timeout is
/// 0 (counting down from the policy's cap): a key stops it and `2` boots the second entry.
/// The same keys without `rxen.menu` change nothing: timeout 0 boots the default at once.
#[test]
fn rxen_menu_word_shows_a_timeout_zero_menu() {
    let dir = Scratch::new("menu-word");
    let img = image_with_config(&dir, "grub.cfg", &two_entries(0));
    let run_with = |append: String| {
        let mut q = guest(&img, virtio_disk("microvm", 0, &config_disks().join("debian12.img")));
        q.append = Some(append);
        q.serial_input = Some(b" 2".to_vec());
        q.run()
    };
    let run = run_with(format!("rxen.menu {}", sample_cmdline()));
    assert_boots(&run, "two", "BOOT_IMAGE=/boot/vmlinuz-6.1.0-13-amd64 which=two");
    assert!(run.serial.contains("rxen: booting the default in 10 s"), "{}", run.dump());
    let run = run_with(sample_cmdline());
    assert_boots(&run, "one", "BOOT_IMAGE=/boot/vmlinuz-6.1.0-13-amd64 which=one");
    assert!(!run.serial.contains("rxen: booting the default in"), "{}", run.dump());
}

/// The fleet image (configs/fleet.toml, `max_timeout = 0`) on Debian 12's disk, whose
/// grub.cfg says `timeout=5`: the default boots with no countdown at all; the same image
/// booted with `rxen.menu` waits for a key (no countdown either) and the keys pick the
/// recovery entry in the submenu, 20 s after boot.
#[test]
fn fleet_image_boots_at_once_and_rxen_menu_waits() {
    let dir = Scratch::new("fleet");
    let img = dir.path("fleet.img");
    let cfg = root().join("configs/fleet.toml");
    mkimage_ok(&["build", "-o", img.to_str().unwrap(), "--config", cfg.to_str().unwrap()]);
    let run_with = |append: String, keys: Option<&[u8]>| {
        let mut q = guest(&img, virtio_disk("microvm", 0, &config_disks().join("debian12.img")));
        q.append = Some(append);
        q.serial_input = keys.map(<[u8]>::to_vec);
        q.serial_input_delay = Some(std::time::Duration::from_secs(20));
        q.run()
    };
    let run = run_with(sample_cmdline(), None);
    assert_boots(
        &run,
        "Debian GNU/Linux",
        "BOOT_IMAGE=/boot/vmlinuz-6.1.0-13-amd64 root=UUID=4d2a1b5c-8e3f-4a6b-9c7d-1e2f3a4b5c6d ro quiet",
    );
    assert!(!run.serial.contains("rxen: booting the default in"), "{}", run.dump());
    let run = run_with(format!("rxen.menu {}", sample_cmdline()), Some(b" jj\r"));
    assert_boots(
        &run,
        "Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 6.1.0-13-amd64 (recovery mode)",
        "BOOT_IMAGE=/boot/vmlinuz-6.1.0-13-amd64 root=UUID=4d2a1b5c-8e3f-4a6b-9c7d-1e2f3a4b5c6d ro single",
    );
    assert!(run.serial.contains("rxen: rxen.menu: waiting for a key"), "{}", run.dump());
    assert!(!run.serial.contains("rxen: booting the default in"), "{}", run.dump());
}

/// Boot-once, as GRUB does it: Ubuntu 24.04's grub.cfg after `grub-reboot` (grubenv
/// `next_entry` names a submenu entry). With `write_grubenv = true` in the policy the first
/// boot runs that entry and clears `next_entry` in place (the config's own `save_env`);
/// the second boot of the same disk runs the saved default. The filesystem stays clean
/// (`e2fsck -fn`), and the grubenv file keeps its 1024 bytes. Without `write_grubenv` (the
/// plain loader's generic policy) the disk is not touched, even attached writable.
#[test]
fn grubenv_next_entry_boots_once() {
    let dir = Scratch::new("boot-once");
    let disk = dir.path("ubuntu2404.img");
    std::fs::copy(config_disks().join("ubuntu2404.img"), &disk).unwrap();
    let img = image_with_config(
        &dir,
        "rxen.toml",
        "version = 1\n[[step]]\ntype = \"config\"\nname = \"guest-config\"\nwrite_grubenv = true\n",
    );
    let boot_with = |kernel: &std::path::Path| {
        // Writable: no snapshot.
        let drive = vec![
            "-drive".to_string(),
            format!("file={},format=raw,if=none,id=d0", disk.display()),
            "-device".to_string(),
            "virtio-blk-device,drive=d0".to_string(),
        ];
        guest(kernel, drive).run()
    };
    let boot = || boot_with(&img);
    let once = "BOOT_IMAGE=/boot/vmlinuz-6.8.0-40-generic root=UUID=4d2a1b5c-8e3f-4a6b-9c7d-1e2f3a4b5c6d ro quiet splash vt.handoff=7";
    // explain (on dom0) says what the boot would save, and that this policy does not.
    let ex = Command::new(mkimage()).args(["explain", "--disk"]).arg(&disk).output().unwrap();
    let ex = String::from_utf8_lossy(&ex.stdout).into_owned();
    assert!(ex.contains("the config saves next_entry= to (xvda,gpt2)/boot/grub/grubenv: not written"), "{ex}");
    let pristine = std::fs::read(&disk).unwrap();
    let run = boot_with(&loader());
    assert_boots(&run, "Advanced options for Ubuntu>Ubuntu, with Linux 6.8.0-40-generic", once);
    assert!(run.serial.contains("not saving next_entry to"), "{}", run.dump());
    assert!(std::fs::read(&disk).unwrap() == pristine, "the read-only default wrote to the disk");
    let run = boot();
    assert_boots(&run, "Advanced options for Ubuntu>Ubuntu, with Linux 6.8.0-40-generic", once);
    assert!(run.serial.contains("rxen: grubenv: (vda,gpt2)/boot/grub/grubenv: saved next_entry="), "{}", run.dump());
    let run = boot();
    assert!(
        run.serial.contains("rxen: entry \"Ubuntu\""),
        "the second boot must take the saved default:\n{}",
        run.dump()
    );
    // Ubuntu's entries run `recordfail`, which GRUB saves when grubenv is writable.
    assert!(run.serial.contains("rxen: grubenv: (vda,gpt2)/boot/grub/grubenv: saved recordfail=1"), "{}", run.dump());
    assert!(run.serial.contains(MARKER), "{}", run.dump());
    // The partition's filesystem is consistent and grubenv kept its size.
    let part = dir.path("p2.img");
    let sbin = |tool: &str| {
        let mut c = Command::new(tool);
        c.env("PATH", format!("{}:/usr/sbin:/sbin", std::env::var("PATH").unwrap_or_default()));
        c
    };
    let table = String::from_utf8(sbin("sfdisk").arg("-d").arg(&disk).output().unwrap().stdout).unwrap();
    let line = table.lines().find(|l| l.contains("ubuntu2404.img2")).expect("partition 2");
    let field = |k: &str| -> u64 {
        let v = line.split(k).nth(1).unwrap().trim_start_matches([' ', '=']);
        v.split(',').next().unwrap().trim().parse().unwrap()
    };
    let (start, size) = (field("start"), field("size"));
    let bytes = std::fs::read(&disk).unwrap();
    std::fs::write(&part, &bytes[(start * 512) as usize..((start + size) * 512) as usize]).unwrap();
    let fsck = sbin("e2fsck").args(["-fn"]).arg(&part).output().unwrap();
    assert!(fsck.status.success(), "e2fsck: {}", String::from_utf8_lossy(&fsck.stdout));
    let cat = sbin("debugfs").args(["-R", "cat /boot/grub/grubenv"]).arg(&part).output().unwrap();
    let env = String::from_utf8_lossy(&cat.stdout).into_owned();
    assert_eq!(env.len(), 1024, "{env}");
    assert!(env.contains("\nnext_entry=\n"), "{env}");
    assert!(env.contains("\nrecordfail=1\n"), "{env}");
    assert!(env.contains("\nsaved_entry=gnulinux-simple-4d2a1b5c-8e3f-4a6b-9c7d-1e2f3a4b5c6d\n"), "{env}");
}

/// RHEL 9: `/boot` on XFS (mkfs.xfs v5 defaults), grub.cfg's blscfg, grubenv's
/// saved_entry picking the 9.3 kernel.
#[test]
fn rhel9_bls_on_xfs_boot() {
    let run = boot("rhel9", None);
    assert_boots(
        &run,
        "Red Hat Enterprise Linux (5.14.0-362.8.1.el9_3.x86_64) 9.3 (Plow)",
        "BOOT_IMAGE=(vda,msdos1)/vmlinuz-5.14.0-362.8.1.el9_3.x86_64 root=/dev/mapper/rhel-root ro crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M resume=/dev/mapper/rhel-swap rd.lvm.lv=rhel/root rd.lvm.lv=rhel/swap rhgb quiet",
    );
    assert!(run.serial.contains("xfs"), "the volume is not named as XFS:\n{}", run.dump());
}

/// CentOS Stream 8 on XFS: BLS `options $kernelopts $tuned_params` expanded from the
/// grubenv that lives on the XFS `/boot`.
#[test]
fn centos8_kernelopts_from_grubenv_on_xfs() {
    let run = boot("centos8", None);
    assert_boots(
        &run,
        "CentOS Stream (4.18.0-553.el8.x86_64) 8",
        "BOOT_IMAGE=(vda,msdos1)/vmlinuz-4.18.0-553.el8.x86_64 root=/dev/mapper/cs-root ro crashkernel=auto resume=/dev/mapper/cs-swap rd.lvm.lv=cs/root rd.lvm.lv=cs/swap rhgb quiet skew_tick=1",
    );
}

/// Arch with systemd-boot: the FAT32 ESP is `/boot`; loader.conf's `default` picks the
/// entry, its `timeout` (3 s) counts down. No grub.cfg anywhere.
#[test]
fn arch_systemd_boot_esp_on_fat() {
    let run = boot("arch-esp", None);
    assert_boots(
        &run,
        "Arch Linux",
        "BOOT_IMAGE=/vmlinuz-linux root=UUID=7e6d5c4b-3a29-4817-a6b5-c4d3e2f1a0b9 rw console=hvc0",
    );
    assert!(run.serial.contains("rxen: booting the default in 3 s"), "{}", run.dump());
}

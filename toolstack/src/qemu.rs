// SPDX-License-Identifier: MIT OR Apache-2.0
//! The same guest under QEMU, for local runs: microvm (or q35), KVM when /dev/kvm can be
//! opened, else TCG; the kernel (the rxen loader or image), `ramdisk` as `-initrd`, the
//! command line as `-append`, each disk as virtio-blk (read-only ones as snapshots, so the
//! image is never written), the serial console on stdio, and QEMU's isa-debug-exit so the
//! loader's own exit codes reach the caller.

use std::path::Path;

use crate::xlcfg::XlConfig;

/// What to run: the QEMU binary and its arguments.
pub fn command(c: &XlConfig, machine: &str, kvm: bool) -> Result<Vec<String>, String> {
    if c.kind == "pv" {
        return Err("type \"pv\": a PV guest needs Xen; QEMU boots the PVH image (pvh-boot.bin)".into());
    }
    let kernel = c.kernel.as_deref().ok_or("no kernel = \"...\" (the rxen loader or image)")?;
    let mut a: Vec<String> = vec!["qemu-system-x86_64".into(), "-M".into(), machine.into()];
    a.extend(["-accel".into(), if kvm { "kvm" } else { "tcg" }.into()]);
    a.extend(["-m".into(), format!("{}M", c.memory_mib), "-smp".into(), c.vcpus.to_string()]);
    a.extend(["-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot"].map(String::from));
    a.extend(["-device".into(), "isa-debug-exit,iobase=0xf4,iosize=4".into()]);
    a.extend(["-kernel".into(), kernel.into()]);
    if let Some(r) = &c.ramdisk {
        a.extend(["-initrd".into(), r.clone()]);
    }
    if !c.cmdline.is_empty() {
        a.extend(["-append".into(), c.cmdline.clone()]);
    }
    let dev = if machine == "microvm" { "virtio-blk-device" } else { "virtio-blk-pci" };
    for (i, d) in c.disks.iter().enumerate() {
        let snap = if d.readonly { ",snapshot=on" } else { "" };
        a.extend(["-drive".into(), format!("file={},format={},if=none,id=d{i}{snap}", d.target, d.format)]);
        a.extend(["-device".into(), format!("{dev},drive=d{i}")]);
    }
    Ok(a)
}

/// Whether KVM can be used (the device opens read-write).
pub fn kvm_usable() -> bool {
    Path::new("/dev/kvm").exists() && std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_ok()
}

/// What QEMU's exit status says about the guest: isa-debug-exit's `(code << 1) | 1`
/// decoded (rxen's loader: 1 fatal error, 5 nothing to boot, 0x7f panic), else QEMU's own.
pub fn describe_exit(status: i32) -> String {
    match status {
        0 => "the guest powered off".into(),
        s if s & 1 == 1 => {
            let code = s >> 1;
            let what = match code {
                1 => " (rxen: fatal error)",
                2 | 5 => " (rxen: nothing to boot)",
                0x7f => " (rxen: panic or CPU exception)",
                _ => "",
            };
            format!("the guest exited with code {code:#x}{what}")
        }
        s => format!("QEMU exited with status {s}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xlcfg::parse;

    #[test]
    fn a_pvh_guest_on_microvm() {
        let c = parse(
            "name = \"t\"\nkernel = \"img\"\nextra = \"console=ttyS0\"\nmemory = 256\ndisk = [ 'd.img,raw,xvda,r' ]\n",
        )
        .unwrap();
        let a = command(&c, "microvm", false).unwrap().join(" ");
        assert!(a.contains("-M microvm -accel tcg -m 256M -smp 1"), "{a}");
        assert!(a.contains("-kernel img -append console=ttyS0"), "{a}");
        assert!(
            a.contains("-drive file=d.img,format=raw,if=none,id=d0,snapshot=on -device virtio-blk-device,drive=d0"),
            "{a}"
        );
        let mut pv = c.clone();
        pv.kind = "pv".into();
        assert!(command(&pv, "microvm", false).unwrap_err().contains("needs Xen"));
        assert_eq!(describe_exit(11), "the guest exited with code 0x5 (rxen: nothing to boot)");
    }
}

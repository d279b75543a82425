// SPDX-License-Identifier: MIT OR Apache-2.0
//! libvirt domain XML for the libxl (Xen) driver from an xl config: the same guest started
//! through libvirt (whose remote URIs reach every host of a fleet). PVH guests are
//! `<type arch='x86_64' machine='xenpvh'>xenpvh</type>`, PV ones `machine='xenpv'` `linux`;
//! disks are `xvd*` targets on the `xen` bus, block devices as `<driver name='phy'/>`,
//! raw files as `<driver name='phy' type='raw'/>` (blkback over a loop device, what xl
//! picks for them: no device model needed in dom0), other formats as
//! `<driver name='qemu' type='FORMAT'/>`.

use std::fmt::Write;

use crate::xlcfg::XlConfig;

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '\'' => o.push_str("&apos;"),
            '"' => o.push_str("&quot;"),
            c => o.push(c),
        }
    }
    o
}

/// libvirt's name for an xl `on_*` action.
fn action(a: &str) -> &str {
    match a {
        "coredump-destroy" => "coredump-destroy",
        "coredump-restart" => "coredump-restart",
        "rename-restart" => "rename-restart",
        "preserve" => "preserve",
        "restart" => "restart",
        _ => "destroy",
    }
}

/// The domain XML. `is_block(path)` says whether a disk target is a block device.
pub fn domain_xml(c: &XlConfig, is_block: &dyn Fn(&str) -> bool) -> Result<String, String> {
    let (machine, os_type) = match c.kind.as_str() {
        "pvh" => ("xenpvh", "xenpvh"),
        "pv" => ("xenpv", "linux"),
        k => return Err(format!("type {k:?}: rxen boots pvh and pv guests")),
    };
    let kernel = c.kernel.as_deref().ok_or("no kernel = \"...\" (the rxen loader or image)")?;
    let mut x = String::new();
    let _ = writeln!(x, "<domain type='xen'>");
    let _ = writeln!(x, "  <name>{}</name>", esc(&c.name));
    let _ = writeln!(x, "  <memory unit='MiB'>{}</memory>", c.memory_mib);
    let _ = writeln!(x, "  <vcpu>{}</vcpu>", c.vcpus);
    let _ = writeln!(x, "  <os>");
    let _ = writeln!(x, "    <type arch='x86_64' machine='{machine}'>{os_type}</type>");
    let _ = writeln!(x, "    <kernel>{}</kernel>", esc(kernel));
    if let Some(r) = &c.ramdisk {
        let _ = writeln!(x, "    <initrd>{}</initrd>", esc(r));
    }
    if !c.cmdline.is_empty() {
        let _ = writeln!(x, "    <cmdline>{}</cmdline>", esc(&c.cmdline));
    }
    let _ = writeln!(x, "  </os>");
    let _ = writeln!(x, "  <on_poweroff>{}</on_poweroff>", action(&c.on_poweroff));
    let _ = writeln!(x, "  <on_reboot>{}</on_reboot>", action(&c.on_reboot));
    let _ = writeln!(x, "  <on_crash>{}</on_crash>", action(&c.on_crash));
    let _ = writeln!(x, "  <devices>");
    for d in &c.disks {
        let device = if d.cdrom { "cdrom" } else { "disk" };
        if is_block(&d.target) {
            let _ = writeln!(x, "    <disk type='block' device='{device}'>");
            let _ = writeln!(x, "      <driver name='phy'/>");
            let _ = writeln!(x, "      <source dev='{}'/>", esc(&d.target));
        } else {
            let _ = writeln!(x, "    <disk type='file' device='{device}'>");
            let name = if d.format == "raw" { "phy" } else { "qemu" };
            let _ = writeln!(x, "      <driver name='{name}' type='{}'/>", esc(&d.format));
            let _ = writeln!(x, "      <source file='{}'/>", esc(&d.target));
        }
        let _ = writeln!(x, "      <target dev='{}' bus='xen'/>", esc(&d.vdev));
        if d.readonly {
            let _ = writeln!(x, "      <readonly/>");
        }
        let _ = writeln!(x, "    </disk>");
    }
    let _ = writeln!(x, "    <console type='pty'>");
    let _ = writeln!(x, "      <target type='xen' port='0'/>");
    let _ = writeln!(x, "    </console>");
    let _ = writeln!(x, "  </devices>");
    let _ = writeln!(x, "</domain>");
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xlcfg::parse;

    #[test]
    fn pvh_guest_with_two_disks() {
        let c = parse(
            "name = \"web<1>\"\ntype = \"pvh\"\nkernel = \"/usr/lib/rxen/pvh-boot.bin\"\nextra = \"console=hvc0 a&b\"\n\
             memory = 1024\ndisk = [ '/dev/vg0/web,raw,xvda,rw', 'file:/srv/iso.img,xvdb,r' ]\n",
        )
        .unwrap();
        let x = domain_xml(&c, &|p| p.starts_with("/dev/")).unwrap();
        for want in [
            "<name>web&lt;1&gt;</name>",
            "<type arch='x86_64' machine='xenpvh'>xenpvh</type>",
            "<kernel>/usr/lib/rxen/pvh-boot.bin</kernel>",
            "<cmdline>console=hvc0 a&amp;b</cmdline>",
            "<memory unit='MiB'>1024</memory>",
            "<disk type='block' device='disk'>\n      <driver name='phy'/>\n      <source dev='/dev/vg0/web'/>\n      <target dev='xvda' bus='xen'/>",
            "<driver name='phy' type='raw'/>\n      <source file='/srv/iso.img'/>\n      <target dev='xvdb' bus='xen'/>\n      <readonly/>",
        ] {
            assert!(x.contains(want), "{want}\n{x}");
        }
        let mut pv = c.clone();
        pv.kind = "pv".into();
        assert!(domain_xml(&pv, &|_| false).unwrap().contains("machine='xenpv'>linux</type>"));
        pv.kind = "hvm".into();
        assert!(domain_xml(&pv, &|_| false).unwrap_err().contains("pvh and pv"));
    }
}

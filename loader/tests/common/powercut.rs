// SPDX-License-Identifier: MIT OR Apache-2.0
//! A disk that loses power: it takes the first N sector writes and then fails every write
//! or "succeeds" while nothing more reaches the medium; and the loader's grubenv update
//! run over it, as the session runs it. Shared by the grubenv write tests of every
//! filesystem that writes one.

use std::cell::RefCell;
use std::path::Path;
use std::process::Command;
use std::rc::Rc;

use rxen_loader::block::{BlockDevice, BlockError, SliceDisk};
use rxen_loader::boot::Root;
use rxen_loader::bootcfg::VolumeFs;
use rxen_loader::config::menu::EnvWrite;
use rxen_loader::trust::Trust;
use rxen_loader::volume::{self, Disk};

/// A 1024-byte GRUB environment block holding `vars` (as `grub-editenv` makes it).
pub fn env_block(vars: &[(&str, &str)]) -> Vec<u8> {
    let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    rxen_loader::config::grubenv::create(rxen_loader::config::grubenv::BLOCK_SIZE, &vars).unwrap()
}

/// Variables to set (`Some`) or unset (`None`), as the update takes them.
pub fn changes(v: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
    v.iter().map(|(k, v)| (k.to_string(), v.map(String::from))).collect()
}

/// `got` is `want`, byte for byte; the message shows both as text.
pub fn same(got: &[u8], want: &[u8], what: &str) {
    assert!(
        got == want,
        "{what}:\n got: {:?}\nwant: {:?}",
        String::from_utf8_lossy(got).trim_end_matches('#'),
        String::from_utf8_lossy(want).trim_end_matches('#')
    );
}

/// `tool` from the system directories (a user's PATH may lack /usr/sbin).
pub fn sbin(tool: &str) -> Command {
    for dir in ["/usr/sbin", "/sbin", "/usr/bin"] {
        let p = Path::new(dir).join(tool);
        if p.exists() {
            return Command::new(p);
        }
    }
    Command::new(tool)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// After the budget every write fails.
    Error,
    /// After the budget writes "succeed" and nothing reaches the medium.
    LosePower,
}

pub struct Medium {
    pub data: Vec<u8>,
    /// Sector writes that reach the medium, at most.
    pub budget: usize,
    pub cut: Cut,
    /// Every sector a write request asked for, in order (taken or not).
    pub issued: Vec<u64>,
    pub taken: usize,
}

/// A disk whose sectors are `bs` bytes, over a shared [`Medium`].
pub struct PowerCutDisk {
    pub m: Rc<RefCell<Medium>>,
    pub bs: u32,
}

impl BlockDevice for PowerCutDisk {
    fn block_size(&self) -> u32 {
        self.bs
    }
    fn num_blocks(&self) -> u64 {
        self.m.borrow().data.len() as u64 / u64::from(self.bs)
    }
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        SliceDisk::new(&self.m.borrow().data, self.bs).read_blocks(lba, buf)
    }
    fn write_blocks(&mut self, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
        let bs = self.bs as usize;
        rxen_loader::block::check_request(self.bs, self.num_blocks(), lba, buf.len())?;
        let mut m = self.m.borrow_mut();
        for (i, sector) in buf.chunks(bs).enumerate() {
            let s = lba + i as u64;
            m.issued.push(s);
            if m.taken < m.budget {
                m.taken += 1;
                let at = s as usize * bs;
                m.data[at..at + bs].copy_from_slice(sector);
            } else if m.cut == Cut::Error {
                return Err(BlockError::Device { status: 1 });
            }
        }
        Ok(())
    }
}

/// Run the loader's grubenv update (`VolumeFs::write_grubenv`, as the session does) of
/// `vars` to file `env` on the one volume of `disk` (`bs`-byte sectors), over a medium
/// taking at most `budget` sector writes. Returns the medium, the sectors issued and the
/// loader's line.
pub fn update(
    disk: &[u8],
    bs: u32,
    env: &str,
    vars: &[(String, Option<String>)],
    budget: usize,
    cut: Cut,
) -> (Vec<u8>, Vec<u64>, Result<String, String>) {
    let m = Rc::new(RefCell::new(Medium { data: disk.to_vec(), budget, cut, issued: Vec::new(), taken: 0 }));
    let disks = vec![Disk::new("vda".into(), "test".into(), Box::new(PowerCutDisk { m: m.clone(), bs }))];
    let mut log = Vec::new();
    let mut vols = volume::scan(&disks, &mut |l| log.push(l));
    assert_eq!(vols.len(), 1, "{log:?}");
    let mut vfs = VolumeFs {
        disks: &disks,
        volumes: &mut vols,
        memdisk: None,
        current: Root::Volume(0),
        trust: Rc::new(Trust::default()),
        refusals: Vec::new(),
    };
    let w = EnvWrite { file: env.into(), device: None, path: env.into(), vars: vars.to_vec(), at: "test:1".into() };
    let mut r = vfs.write_grubenv(&[&w]);
    assert_eq!(r.len(), 1);
    let r = r.remove(0);
    drop(vols);
    drop(disks);
    let m = Rc::try_unwrap(m).ok().expect("the disk is still in use").into_inner();
    (m.data, m.issued, r)
}

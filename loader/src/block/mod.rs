// SPDX-License-Identifier: MIT OR Apache-2.0
//! Block devices: the seam between drivers (virtio-blk, later Xen blkfront) and the
//! partition and filesystem readers, which only ever see [`BlockDevice`].
//!
//! [`SliceDisk`] is the host fake (and what the fuzzers drive); [`read_bytes`] gives
//! byte-granular reads on top of block reads.

use alloc::vec;
use core::fmt;

pub mod cache;

/// Why a block read failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockError {
    /// The request reaches past the end of the device.
    OutOfRange { lba: u64, blocks: u64, device_blocks: u64 },
    /// The buffer is not a whole number of blocks.
    BadBuffer { len: usize, block_size: u32 },
    /// The device reported an error (virtio-blk status, blkif status, ...).
    Device { status: u8 },
    /// The device did not answer in time.
    Timeout,
    /// The device is in a state the driver cannot use.
    Broken(&'static str),
    /// A write to a device that is read-only (or a driver without writes).
    ReadOnly,
}

impl fmt::Display for BlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockError::OutOfRange { lba, blocks, device_blocks } => {
                write!(f, "read of {blocks} block(s) at {lba} is past the end of the disk ({device_blocks} blocks)")
            }
            BlockError::BadBuffer { len, block_size } => {
                write!(f, "buffer of {len} bytes is not a multiple of the {block_size}-byte block")
            }
            BlockError::Device { status } => write!(f, "the device reported I/O error (status {status})"),
            BlockError::Timeout => f.write_str("the device did not answer in time"),
            BlockError::Broken(why) => write!(f, "the device is unusable: {why}"),
            BlockError::ReadOnly => f.write_str("the device is read-only"),
        }
    }
}

impl core::error::Error for BlockError {}

/// A disk (or a partition of one): fixed-size blocks, read by number.
pub trait BlockDevice {
    /// Bytes per block: a power of two, 512..=4096.
    fn block_size(&self) -> u32;
    /// Number of blocks.
    fn num_blocks(&self) -> u64;
    /// Fill `buf` (a whole number of blocks) from block `lba` on.
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError>;

    /// Write `buf` (a whole number of blocks) from block `lba` on. Only the grubenv update
    /// writes, and only when the policy allows it; devices without writes say
    /// [`BlockError::ReadOnly`].
    fn write_blocks(&mut self, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
        let _ = (lba, buf);
        Err(BlockError::ReadOnly)
    }

    /// Size in bytes.
    fn size_bytes(&self) -> u64 {
        self.num_blocks().saturating_mul(u64::from(self.block_size()))
    }

    /// Give the device back before the kernel starts (Xen blkfront: close the ring, revoke
    /// grants, leave the frontend Initialising so the kernel's driver reconnects). Reads
    /// fail afterwards. The error says what could not be undone.
    fn release(&mut self) -> Result<(), alloc::string::String> {
        Ok(())
    }

    /// Why the device can serve no more requests (a Xen ring or virtio queue given up
    /// after a timeout), or `None`. Caches above it may still answer from memory: a
    /// search or configuration lookup asks this first, so that it does not choose a
    /// volume whose files can no longer be read.
    fn unusable(&self) -> Option<&'static str> {
        None
    }
}

impl<T: BlockDevice + ?Sized> BlockDevice for &mut T {
    fn block_size(&self) -> u32 {
        (**self).block_size()
    }
    fn num_blocks(&self) -> u64 {
        (**self).num_blocks()
    }
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        (**self).read_blocks(lba, buf)
    }
    fn write_blocks(&mut self, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
        (**self).write_blocks(lba, buf)
    }
    fn release(&mut self) -> Result<(), alloc::string::String> {
        (**self).release()
    }
    fn unusable(&self) -> Option<&'static str> {
        (**self).unusable()
    }
}

impl<T: BlockDevice + ?Sized> BlockDevice for alloc::boxed::Box<T> {
    fn block_size(&self) -> u32 {
        (**self).block_size()
    }
    fn num_blocks(&self) -> u64 {
        (**self).num_blocks()
    }
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        (**self).read_blocks(lba, buf)
    }
    fn write_blocks(&mut self, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
        (**self).write_blocks(lba, buf)
    }
    fn release(&mut self) -> Result<(), alloc::string::String> {
        (**self).release()
    }
    fn unusable(&self) -> Option<&'static str> {
        (**self).unusable()
    }
}

/// One disk that several readers share: the partition table scan, and each volume on
/// it (a partition view, later an LVM logical volume or an md mirror leg). Clones are
/// handles to the same device. Calls never nest, so the borrow always succeeds; a nested
/// call would get [`BlockError::Broken`], not a panic.
#[derive(Clone)]
pub struct SharedDisk(alloc::rc::Rc<core::cell::RefCell<alloc::boxed::Box<dyn BlockDevice>>>);

impl SharedDisk {
    pub fn new(dev: alloc::boxed::Box<dyn BlockDevice>) -> Self {
        SharedDisk(alloc::rc::Rc::new(core::cell::RefCell::new(dev)))
    }
}

impl fmt::Debug for SharedDisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedDisk")
    }
}

const NESTED: BlockError = BlockError::Broken("nested use of a shared disk");

impl BlockDevice for SharedDisk {
    fn block_size(&self) -> u32 {
        self.0.try_borrow().map_or(512, |d| d.block_size())
    }
    fn num_blocks(&self) -> u64 {
        self.0.try_borrow().map_or(0, |d| d.num_blocks())
    }
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.0.try_borrow_mut().map_err(|_| NESTED)?.read_blocks(lba, buf)
    }
    fn write_blocks(&mut self, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
        self.0.try_borrow_mut().map_err(|_| NESTED)?.write_blocks(lba, buf)
    }
    fn release(&mut self) -> Result<(), alloc::string::String> {
        self.0.try_borrow_mut().map_err(|_| alloc::string::String::from("disk in use"))?.release()
    }
    fn unusable(&self) -> Option<&'static str> {
        self.0.try_borrow().ok()?.unusable()
    }
}

/// Check a request against a device: whole blocks, inside the device.
pub fn check_request(block_size: u32, num_blocks: u64, lba: u64, len: usize) -> Result<u64, BlockError> {
    let bs = block_size as usize;
    if !len.is_multiple_of(bs) {
        return Err(BlockError::BadBuffer { len, block_size });
    }
    let blocks = (len / bs) as u64;
    if lba.checked_add(blocks).is_none_or(|end| end > num_blocks) {
        return Err(BlockError::OutOfRange { lba, blocks, device_blocks: num_blocks });
    }
    Ok(blocks)
}

/// A writable disk image in memory (host tests of the grubenv update).
#[derive(Debug)]
pub struct VecDisk {
    pub data: alloc::vec::Vec<u8>,
    block_size: u32,
}

impl VecDisk {
    /// `data` as a disk of `block_size`-byte blocks; a partial last block is ignored.
    pub fn new(data: alloc::vec::Vec<u8>, block_size: u32) -> VecDisk {
        assert!(block_size.is_power_of_two() && (512..=4096).contains(&block_size));
        VecDisk { data, block_size }
    }
}

impl BlockDevice for VecDisk {
    fn block_size(&self) -> u32 {
        self.block_size
    }
    fn num_blocks(&self) -> u64 {
        self.data.len() as u64 / u64::from(self.block_size)
    }
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        SliceDisk::new(&self.data, self.block_size).read_blocks(lba, buf)
    }
    fn write_blocks(&mut self, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
        check_request(self.block_size, self.num_blocks(), lba, buf.len())?;
        let start = lba as usize * self.block_size as usize;
        self.data[start..start + buf.len()].copy_from_slice(buf);
        Ok(())
    }
}

/// A large disk that is mostly zeros, from a few 4 KiB chunks: how the fuzzers drive
/// filesystems whose structures sit megabytes apart (XFS allocation groups, btrfs chunks)
/// without megabyte inputs. The input is records of a little-endian `u32` chunk index and
/// 4096 bytes (a short last record is zero-padded); the disk is 64 MiB of 512-byte blocks
/// (or up to the highest chunk), everything not in a record reads as zeros. Writes go to
/// the chunks in memory.
#[derive(Debug)]
pub struct SparseDisk {
    chunks: alloc::collections::BTreeMap<u64, alloc::vec::Vec<u8>>,
    num_blocks: u64,
}

/// Bytes per [`SparseDisk`] chunk.
pub const SPARSE_CHUNK: usize = 4096;

impl SparseDisk {
    /// Decode `records` (see the type): at most 1024 chunks, indices below 2^20 (4 GiB).
    pub fn from_records(records: &[u8]) -> SparseDisk {
        let mut chunks = alloc::collections::BTreeMap::new();
        let mut size = 64u64 << 20;
        for r in records.chunks(4 + SPARSE_CHUNK).take(1024) {
            let Some(idx) = r.get(..4) else { break };
            let idx = u64::from(u32::from_le_bytes([idx[0], idx[1], idx[2], idx[3]]) % (1 << 20));
            let mut data = vec![0u8; SPARSE_CHUNK];
            data[..r.len() - 4].copy_from_slice(&r[4..]);
            size = size.max((idx + 1) * SPARSE_CHUNK as u64);
            chunks.insert(idx, data);
        }
        SparseDisk { chunks, num_blocks: size / 512 }
    }

    /// The records for `image` (its non-zero chunks), the inverse of [`Self::from_records`].
    pub fn records_of(image: &[u8]) -> alloc::vec::Vec<u8> {
        let mut out = alloc::vec::Vec::new();
        for (i, c) in image.chunks(SPARSE_CHUNK).enumerate() {
            if c.iter().any(|&b| b != 0) {
                out.extend_from_slice(&(i as u32).to_le_bytes());
                out.extend_from_slice(c);
                out.resize(out.len() + SPARSE_CHUNK - c.len(), 0);
            }
        }
        out
    }
}

impl BlockDevice for SparseDisk {
    fn block_size(&self) -> u32 {
        512
    }
    fn num_blocks(&self) -> u64 {
        self.num_blocks
    }
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        check_request(512, self.num_blocks, lba, buf.len())?;
        let mut pos = lba * 512;
        for b in buf.chunks_mut(512) {
            let (idx, within) = (pos / SPARSE_CHUNK as u64, (pos % SPARSE_CHUNK as u64) as usize);
            match self.chunks.get(&idx) {
                Some(c) => b.copy_from_slice(&c[within..within + 512]),
                None => b.fill(0),
            }
            pos += 512;
        }
        Ok(())
    }
    fn write_blocks(&mut self, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
        check_request(512, self.num_blocks, lba, buf.len())?;
        let mut pos = lba * 512;
        for b in buf.chunks(512) {
            let (idx, within) = (pos / SPARSE_CHUNK as u64, (pos % SPARSE_CHUNK as u64) as usize);
            let c = self.chunks.entry(idx).or_insert_with(|| vec![0u8; SPARSE_CHUNK]);
            c[within..within + 512].copy_from_slice(b);
            pos += 512;
        }
        Ok(())
    }
}

#[cfg(test)]
mod sparse_tests {
    use super::*;

    #[test]
    fn sparse_records_round_trip() {
        let mut image = vec![0u8; 3 * SPARSE_CHUNK + 100];
        image[5] = 1;
        image[2 * SPARSE_CHUNK + 7] = 2;
        image[3 * SPARSE_CHUNK + 99] = 3;
        let rec = SparseDisk::records_of(&image);
        assert_eq!(rec.len(), 3 * (4 + SPARSE_CHUNK));
        let mut d = SparseDisk::from_records(&rec);
        assert_eq!(d.size_bytes(), 64 << 20);
        let mut back = vec![0u8; image.len()];
        read_bytes(&mut d, 0, &mut back).unwrap();
        assert_eq!(back, image);
        write_bytes(&mut d, SPARSE_CHUNK as u64 + 3, b"xyz").unwrap();
        let mut b = [0u8; 3];
        read_bytes(&mut d, SPARSE_CHUNK as u64 + 3, &mut b).unwrap();
        assert_eq!(&b, b"xyz");
        // Short and absurd records never panic.
        let _ = SparseDisk::from_records(&[1, 2, 3]);
        let d = SparseDisk::from_records(&[0xff, 0xff, 0xff, 0xff, 9]);
        assert_eq!(d.size_bytes(), (1 << 20) * SPARSE_CHUNK as u64);
    }
}

/// A disk image in memory: the host fake for tests and fuzzers.
#[derive(Debug)]
pub struct SliceDisk<'a> {
    data: &'a [u8],
    block_size: u32,
}

impl<'a> SliceDisk<'a> {
    /// `data` as a disk of `block_size`-byte blocks; a partial last block is ignored.
    pub fn new(data: &'a [u8], block_size: u32) -> SliceDisk<'a> {
        assert!(block_size.is_power_of_two() && (512..=4096).contains(&block_size));
        SliceDisk { data, block_size }
    }
}

impl BlockDevice for SliceDisk<'_> {
    fn block_size(&self) -> u32 {
        self.block_size
    }
    fn num_blocks(&self) -> u64 {
        self.data.len() as u64 / u64::from(self.block_size)
    }
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        check_request(self.block_size, self.num_blocks(), lba, buf.len())?;
        let start = lba as usize * self.block_size as usize;
        buf.copy_from_slice(&self.data[start..start + buf.len()]);
        Ok(())
    }
}

/// Read `buf.len()` bytes at byte `offset`: the aligned middle straight into `buf`, the
/// unaligned head and tail through one block-sized bounce buffer.
pub fn read_bytes<D: BlockDevice + ?Sized>(dev: &mut D, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
    if buf.is_empty() {
        return Ok(());
    }
    let bs = u64::from(dev.block_size());
    let end =
        offset.checked_add(buf.len() as u64).filter(|&e| e <= dev.size_bytes()).ok_or(BlockError::OutOfRange {
            lba: offset / bs,
            blocks: (buf.len() as u64).div_ceil(bs),
            device_blocks: dev.num_blocks(),
        })?;
    let mut bounce = vec![0u8; bs as usize];
    let mut pos = offset;
    let mut done = 0usize;
    while pos < end {
        let lba = pos / bs;
        let within = (pos % bs) as usize;
        let left = (end - pos) as usize;
        if within == 0 && left >= bs as usize {
            let whole = left - left % bs as usize;
            dev.read_blocks(lba, &mut buf[done..done + whole])?;
            done += whole;
            pos += whole as u64;
        } else {
            dev.read_blocks(lba, &mut bounce)?;
            let n = (bs as usize - within).min(left);
            buf[done..done + n].copy_from_slice(&bounce[within..within + n]);
            done += n;
            pos += n as u64;
        }
    }
    Ok(())
}

/// Write `data` at byte `offset`: the device blocks it covers are read, patched and
/// written back in one request (a few KiB at most here: the grubenv update).
pub fn write_bytes<D: BlockDevice + ?Sized>(dev: &mut D, offset: u64, data: &[u8]) -> Result<(), BlockError> {
    if data.is_empty() {
        return Ok(());
    }
    let bs = u64::from(dev.block_size());
    let first = offset / bs;
    let end = offset.checked_add(data.len() as u64).ok_or(BlockError::OutOfRange {
        lba: first,
        blocks: 0,
        device_blocks: dev.num_blocks(),
    })?;
    let blocks = end.div_ceil(bs) - first;
    let mut buf = vec![0u8; (blocks * bs) as usize];
    dev.read_blocks(first, &mut buf)?;
    let within = (offset - first * bs) as usize;
    buf[within..within + data.len()].copy_from_slice(data);
    dev.write_blocks(first, &buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_disk_and_read_bytes() {
        let data: alloc::vec::Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
        let mut d = SliceDisk::new(&data, 512);
        assert_eq!(d.num_blocks(), 8);
        let mut b = [0u8; 1000];
        read_bytes(&mut d, 300, &mut b).unwrap();
        assert_eq!(&b[..], &data[300..1300]);
        let mut blk = [0u8; 512];
        assert_eq!(d.read_blocks(8, &mut blk), Err(BlockError::OutOfRange { lba: 8, blocks: 1, device_blocks: 8 }));
        assert_eq!(d.read_blocks(0, &mut b[..100]), Err(BlockError::BadBuffer { len: 100, block_size: 512 }));
        assert!(read_bytes(&mut d, 4000, &mut b[..200]).is_err());
        let mut all = [0u8; 4096];
        read_bytes(&mut d, 0, &mut all).unwrap();
        assert_eq!(&all[..], &data[..]);
    }
}

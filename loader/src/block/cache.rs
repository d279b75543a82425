// SPDX-License-Identifier: MIT OR Apache-2.0
//! A small LRU read cache in front of a [`BlockDevice`].
//!
//! Why: partition and filesystem readers re-read the same few metadata blocks many times
//! (LBA 0 and 1, superblocks, group descriptors, inode tables, directory blocks, extent
//! index blocks), each a round trip to the backend, and under Xen a round trip is a
//! grant, an event channel kick and a wait. File data, on the other hand, is read once in
//! large requests; caching it would only evict the metadata. So requests up to
//! [`CacheConfig::bypass_blocks`] blocks go through the cache, larger ones go straight to
//! the device into the caller's buffer.
//!
//! The cache holds aligned chunks of [`CacheConfig::chunk_bytes`] (4 KiB by default): a
//! 512-byte read loads its whole 4 KiB neighbourhood, which is where the next metadata read
//! usually is (the GPT header after the MBR, the rest of an ext4 block). Writes (grubenv,
//! in place) go through to the device and drop the chunks they touch.

use alloc::vec;
use alloc::vec::Vec;

use super::{BlockDevice, BlockError, check_request};

/// Sizes of a [`CachedDevice`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// Chunks kept; 0 turns the cache off.
    pub entries: usize,
    /// Bytes per chunk: a power of two; a chunk is never smaller than one device block.
    pub chunk_bytes: u32,
    /// Requests of more blocks than this bypass the cache.
    pub bypass_blocks: u64,
}

impl Default for CacheConfig {
    /// 64 chunks of 4 KiB (256 KiB), requests above 8 blocks bypass.
    fn default() -> Self {
        CacheConfig { entries: 64, chunk_bytes: 4096, bypass_blocks: 8 }
    }
}

/// Counters, for `rxen.debug` and the tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Requests served entirely from the cache.
    pub hits: u64,
    /// Chunks loaded from the device.
    pub misses: u64,
    /// Requests sent straight to the device (too large, or a chunk could not be loaded).
    pub bypassed: u64,
}

#[derive(Debug)]
struct Chunk {
    /// First block of the chunk (a multiple of the chunk's blocks).
    lba: u64,
    /// The chunk's blocks; shorter than a full chunk at the end of the device.
    data: Vec<u8>,
    /// Last use, for LRU eviction.
    used: u64,
}

/// A [`BlockDevice`] with an LRU read cache for small (metadata) reads.
#[derive(Debug)]
pub struct CachedDevice<D> {
    dev: D,
    cfg: CacheConfig,
    /// Blocks per chunk (at least 1).
    chunk_blocks: u64,
    chunks: Vec<Chunk>,
    clock: u64,
    stats: CacheStats,
}

impl<D: BlockDevice> CachedDevice<D> {
    /// `dev` behind a cache of the default size.
    pub fn new(dev: D) -> Self {
        Self::with_config(dev, CacheConfig::default())
    }

    /// `dev` behind a cache of `cfg`'s size.
    pub fn with_config(dev: D, cfg: CacheConfig) -> Self {
        let bs = u64::from(dev.block_size().max(1));
        let chunk_blocks = (u64::from(cfg.chunk_bytes) / bs).max(1);
        CachedDevice { dev, cfg, chunk_blocks, chunks: Vec::new(), clock: 0, stats: CacheStats::default() }
    }

    /// Hit/miss counters so far.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// Drop everything cached (e.g. after the backend reconnected).
    pub fn invalidate(&mut self) {
        self.chunks.clear();
    }

    /// The device underneath.
    pub fn get_mut(&mut self) -> &mut D {
        &mut self.dev
    }

    /// The device underneath, dropping the cache.
    pub fn into_inner(self) -> D {
        self.dev
    }

    /// Index of the cached chunk starting at `lba`, loading it (and evicting the least
    /// recently used chunk when full) if needed.
    fn chunk(&mut self, lba: u64) -> Result<usize, BlockError> {
        self.clock = self.clock.wrapping_add(1);
        if let Some(i) = self.chunks.iter().position(|c| c.lba == lba) {
            self.chunks[i].used = self.clock;
            return Ok(i);
        }
        let bs = u64::from(self.dev.block_size());
        let blocks = self.chunk_blocks.min(self.dev.num_blocks().saturating_sub(lba));
        // blocks * bs <= max(chunk_bytes, bs): small.
        let mut data = vec![0u8; (blocks * bs) as usize];
        self.dev.read_blocks(lba, &mut data)?;
        self.stats.misses += 1;
        let chunk = Chunk { lba, data, used: self.clock };
        if self.chunks.len() < self.cfg.entries {
            self.chunks.push(chunk);
            return Ok(self.chunks.len() - 1);
        }
        let (i, _) =
            self.chunks.iter().enumerate().min_by_key(|(_, c)| c.used).ok_or(BlockError::Broken("empty cache"))?;
        self.chunks[i] = chunk;
        Ok(i)
    }

    /// Serve a checked small request chunk by chunk.
    fn read_cached(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        let bs = self.dev.block_size() as usize;
        let misses = self.stats.misses;
        let mut done = 0usize;
        let mut pos = lba;
        while done < buf.len() {
            let start = pos - pos % self.chunk_blocks;
            let i = self.chunk(start)?;
            let data = &self.chunks[i].data;
            let from = ((pos - start) as usize) * bs;
            let n = (data.len() - from).min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&data[from..from + n]);
            done += n;
            pos += (n / bs) as u64;
        }
        if self.stats.misses == misses {
            self.stats.hits += 1;
        }
        Ok(())
    }
}

impl<D: BlockDevice> BlockDevice for CachedDevice<D> {
    fn block_size(&self) -> u32 {
        self.dev.block_size()
    }
    fn num_blocks(&self) -> u64 {
        self.dev.num_blocks()
    }
    fn release(&mut self) -> Result<(), alloc::string::String> {
        self.dev.release()
    }
    fn unusable(&self) -> Option<&'static str> {
        self.dev.unusable()
    }
    /// Write through; the cached chunks the write touches are dropped (the next read
    /// loads them from the device again).
    fn write_blocks(&mut self, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
        let blocks = check_request(self.dev.block_size(), self.dev.num_blocks(), lba, buf.len())?;
        let cb = self.chunk_blocks;
        self.chunks.retain(|c| c.lba + cb <= lba || c.lba >= lba + blocks);
        self.dev.write_blocks(lba, buf)
    }
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        let blocks = check_request(self.dev.block_size(), self.dev.num_blocks(), lba, buf.len())?;
        if blocks == 0 {
            return Ok(());
        }
        if self.cfg.entries == 0 || blocks > self.cfg.bypass_blocks {
            self.stats.bypassed += 1;
            return self.dev.read_blocks(lba, buf);
        }
        match self.read_cached(lba, buf) {
            Ok(()) => Ok(()),
            // A chunk may cover a bad block the caller did not ask for: retry exactly.
            Err(_) => {
                self.stats.bypassed += 1;
                self.dev.read_blocks(lba, buf)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::SliceDisk;

    /// Counts device reads and can fail one block.
    struct Counting<'a> {
        disk: SliceDisk<'a>,
        reads: usize,
        bad: Option<u64>,
    }

    impl BlockDevice for Counting<'_> {
        fn block_size(&self) -> u32 {
            self.disk.block_size()
        }
        fn num_blocks(&self) -> u64 {
            self.disk.num_blocks()
        }
        fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
            self.reads += 1;
            let n = (buf.len() / self.block_size() as usize) as u64;
            if self.bad.is_some_and(|b| (lba..lba + n).contains(&b)) {
                return Err(BlockError::Device { status: 1 });
            }
            self.disk.read_blocks(lba, buf)
        }
    }

    fn image(blocks: usize) -> Vec<u8> {
        (0..blocks * 512).map(|i| (i / 512 * 7 + i % 512) as u8).collect()
    }

    #[test]
    fn small_reads_hit_the_cache() {
        let data = image(100);
        let mut c = CachedDevice::new(Counting { disk: SliceDisk::new(&data, 512), reads: 0, bad: None });
        let mut b = [0u8; 512];
        c.read_blocks(0, &mut b).unwrap();
        assert_eq!(&b[..], &data[..512]);
        // LBA 1 is in the same 4 KiB chunk: no new device read.
        c.read_blocks(1, &mut b).unwrap();
        assert_eq!(&b[..], &data[512..1024]);
        assert_eq!(c.get_mut().reads, 1);
        // Spanning two chunks: one more load.
        let mut two = [0u8; 1024];
        c.read_blocks(7, &mut two).unwrap();
        assert_eq!(&two[..], &data[7 * 512..9 * 512]);
        assert_eq!(c.get_mut().reads, 2);
        assert_eq!(c.stats(), CacheStats { hits: 1, misses: 2, bypassed: 0 });
        // The short last chunk (blocks 96..100).
        c.read_blocks(99, &mut b).unwrap();
        assert_eq!(&b[..], &data[99 * 512..]);
        assert!(c.read_blocks(100, &mut b).is_err());
        assert!(c.read_blocks(0, &mut b[..100]).is_err());
    }

    #[test]
    fn large_reads_bypass() {
        let data = image(100);
        let mut c = CachedDevice::new(Counting { disk: SliceDisk::new(&data, 512), reads: 0, bad: None });
        let mut big = vec![0u8; 9 * 512];
        c.read_blocks(3, &mut big).unwrap();
        c.read_blocks(3, &mut big).unwrap();
        assert_eq!(&big[..], &data[3 * 512..12 * 512]);
        assert_eq!(c.get_mut().reads, 2);
        assert_eq!(c.stats().bypassed, 2);
        assert!(c.chunks.is_empty());
    }

    #[test]
    fn lru_eviction() {
        let data = image(64);
        let cfg = CacheConfig { entries: 2, chunk_bytes: 512, bypass_blocks: 8 };
        let mut c = CachedDevice::with_config(Counting { disk: SliceDisk::new(&data, 512), reads: 0, bad: None }, cfg);
        let mut b = [0u8; 512];
        for lba in [1, 2, 1, 3, 1, 2] {
            c.read_blocks(lba, &mut b).unwrap();
            assert_eq!(&b[..], &data[lba as usize * 512..][..512]);
        }
        // 1 miss, 2 miss, 1 hit, 3 miss (evicts 2), 1 hit, 2 miss (evicts 3).
        assert_eq!(c.get_mut().reads, 4);
        c.invalidate();
        c.read_blocks(1, &mut b).unwrap();
        assert_eq!(c.get_mut().reads, 5);
    }

    #[test]
    fn bad_block_outside_the_request_is_not_fatal() {
        let data = image(16);
        let mut c = CachedDevice::new(Counting { disk: SliceDisk::new(&data, 512), reads: 0, bad: Some(5) });
        let mut b = [0u8; 512];
        c.read_blocks(2, &mut b).unwrap();
        assert_eq!(&b[..], &data[1024..1536]);
        assert_eq!(c.read_blocks(5, &mut b), Err(BlockError::Device { status: 1 }));
    }

    #[test]
    fn big_blocks_and_disabled_cache() {
        let data = image(64);
        let mut c = CachedDevice::new(Counting { disk: SliceDisk::new(&data, 4096), reads: 0, bad: None });
        let mut b = vec![0u8; 4096];
        c.read_blocks(3, &mut b).unwrap();
        c.read_blocks(3, &mut b).unwrap();
        assert_eq!(&b[..], &data[3 * 4096..4 * 4096]);
        assert_eq!(c.get_mut().reads, 1);
        let cfg = CacheConfig { entries: 0, ..CacheConfig::default() };
        let mut c = CachedDevice::with_config(Counting { disk: SliceDisk::new(&data, 4096), reads: 0, bad: None }, cfg);
        c.read_blocks(3, &mut b).unwrap();
        c.read_blocks(3, &mut b).unwrap();
        assert_eq!(c.get_mut().reads, 2);
    }
}

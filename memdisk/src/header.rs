// SPDX-License-Identifier: MIT OR Apache-2.0
//! The image header: the contract between `rxen-mkimage` (which fills it) and the loader
//! (which reads it at boot). It sits at the very start of the loader's first PT_LOAD, at
//! physical address [`HEADER_PADDR`] (`linker/pvh-boot.ld` places `.rxen.header` there and
//! asserts it).

/// `b"RXENMDSK"`.
pub const HEADER_MAGIC: [u8; 8] = *b"RXENMDSK";
/// Version of this header layout.
pub const HEADER_VERSION: u32 = 1;
/// Physical (= virtual, identity-mapped) address of the header. Must agree with
/// `linker/pvh-boot.ld`.
pub const HEADER_PADDR: u64 = 0x10_0000;
/// Alignment of the memdisk segment in memory and in the file.
pub const MEMDISK_ALIGN: u64 = 0x1000;

/// On-image header, little-endian, 96 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageHeader {
    /// [`HEADER_MAGIC`].
    pub magic: [u8; 8],
    /// [`HEADER_VERSION`].
    pub version: u32,
    /// `size_of::<ImageHeader>()`, so a later loader can tell layouts apart.
    pub header_size: u32,
    /// Physical address where the memdisk (a ustar archive) is loaded; 0 = no memdisk.
    pub memdisk_paddr: u64,
    /// Length of the memdisk in bytes.
    pub memdisk_len: u64,
    /// SHA-256 of the `memdisk_len` bytes at `memdisk_paddr`.
    pub sha256: [u8; 32],
    /// Zero; room for later fields.
    pub reserved: [u8; 32],
}
const _: () = assert!(core::mem::size_of::<ImageHeader>() == 96);

impl ImageHeader {
    /// The header as the loader is linked: magic and version set, no memdisk.
    pub const EMPTY: ImageHeader = ImageHeader {
        magic: HEADER_MAGIC,
        version: HEADER_VERSION,
        header_size: core::mem::size_of::<ImageHeader>() as u32,
        memdisk_paddr: 0,
        memdisk_len: 0,
        sha256: [0; 32],
        reserved: [0; 32],
    };

    /// Serialise (little-endian).
    pub fn to_bytes(&self) -> [u8; 96] {
        let mut b = [0u8; 96];
        b[0..8].copy_from_slice(&self.magic);
        b[8..12].copy_from_slice(&self.version.to_le_bytes());
        b[12..16].copy_from_slice(&self.header_size.to_le_bytes());
        b[16..24].copy_from_slice(&self.memdisk_paddr.to_le_bytes());
        b[24..32].copy_from_slice(&self.memdisk_len.to_le_bytes());
        b[32..64].copy_from_slice(&self.sha256);
        b[64..96].copy_from_slice(&self.reserved);
        b
    }

    /// Parse and check magic, version and size.
    pub fn from_bytes(b: &[u8]) -> Result<ImageHeader, HeaderError> {
        if b.len() < 96 {
            return Err(HeaderError::Truncated);
        }
        let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let u64_at = |o: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[o..o + 8]);
            u64::from_le_bytes(a)
        };
        let mut h = ImageHeader::EMPTY;
        h.magic.copy_from_slice(&b[0..8]);
        if h.magic != HEADER_MAGIC {
            return Err(HeaderError::BadMagic);
        }
        h.version = u32_at(8);
        if h.version != HEADER_VERSION {
            return Err(HeaderError::Version(h.version));
        }
        h.header_size = u32_at(12);
        if h.header_size != 96 {
            return Err(HeaderError::Size(h.header_size));
        }
        h.memdisk_paddr = u64_at(16);
        h.memdisk_len = u64_at(24);
        h.sha256.copy_from_slice(&b[32..64]);
        h.reserved.copy_from_slice(&b[64..96]);
        Ok(h)
    }

    /// Does `data` match the recorded checksum?
    pub fn check(&self, data: &[u8]) -> Result<(), HeaderError> {
        if data.len() as u64 != self.memdisk_len {
            return Err(HeaderError::Length { expected: self.memdisk_len, found: data.len() as u64 });
        }
        if crate::sha256(data) != self.sha256 {
            return Err(HeaderError::Checksum);
        }
        Ok(())
    }
}

/// What is wrong with a header or the memdisk it describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// Fewer than 96 bytes.
    Truncated,
    /// Magic is not `RXENMDSK`.
    BadMagic,
    /// Unknown header version.
    Version(u32),
    /// Unexpected header size.
    Size(u32),
    /// Memdisk length differs from the header's.
    Length { expected: u64, found: u64 },
    /// SHA-256 mismatch.
    Checksum,
}

impl core::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            HeaderError::Truncated => write!(f, "image header truncated"),
            HeaderError::BadMagic => write!(f, "image header magic is not RXENMDSK"),
            HeaderError::Version(v) => write!(f, "image header version {v} is not supported (want {HEADER_VERSION})"),
            HeaderError::Size(s) => write!(f, "image header size {s} is not 96"),
            HeaderError::Length { expected, found } => {
                write!(f, "memdisk length {found} does not match the header's {expected}")
            }
            HeaderError::Checksum => write!(f, "memdisk sha256 does not match the image header: the image is corrupt"),
        }
    }
}

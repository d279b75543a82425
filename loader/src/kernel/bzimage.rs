// SPDX-License-Identifier: MIT OR Apache-2.0
//! Linux bzImage: the x86 boot protocol's setup header (Documentation/arch/x86/boot.rst).
//!
//! A bzImage is `(setup_sects + 1) * 512` bytes of real-mode setup (boot sector, setup
//! header at 0x1f1, real-mode code) followed by the protected-mode kernel. rxen never runs
//! the real-mode part: it copies the setup header into a fresh `boot_params`, places the
//! protected-mode part at a load address, and enters it (see `handoff::boot_params`).

use core::fmt;

use super::KernelError;
use super::le::{slice, u8_at, u16_at, u32_at, u64_at};
use crate::abi::boot_params::*;

/// The boot protocol allows at most 32 KiB of real-mode setup (the setup linker script
/// asserts it): boot sector + 63 setup sectors.
pub const MAX_SETUP_SECTS: u8 = 63;

/// A parsed bzImage, borrowing the image bytes.
#[derive(Clone, Copy)]
pub struct BzImage<'a> {
    image: &'a [u8],
    version: u16,
    header_end: usize,
    setup_sects: u8,
    syssize: u32,
    loadflags: u8,
    code32_start: u32,
    initrd_addr_max: u32,
    kernel_alignment: u32,
    relocatable: bool,
    min_alignment: u8,
    xloadflags: u16,
    cmdline_size: u32,
    payload_offset: u32,
    payload_length: u32,
    pref_address: u64,
    init_size: u32,
    handover_offset: u32,
    kernel_info_offset: u32,
}

/// Does `image` carry the boot protocol's "HdrS" magic at 0x202?
pub fn has_hdrs(image: &[u8]) -> bool {
    image.get(HDR_HEADER..HDR_HEADER + 4) == Some(&HDRS_MAGIC[..])
}

/// End offset of the last setup-header field that protocol `version` defines.
fn required_header_end(version: u16) -> usize {
    match version {
        v if v >= proto::V2_15 => HDR_KERNEL_INFO_OFFSET + 4,
        v if v >= proto::V2_11 => HDR_HANDOVER_OFFSET + 4,
        v if v >= proto::V2_10 => HDR_INIT_SIZE + 4,
        v if v >= proto::V2_09 => HDR_SETUP_DATA + 8,
        v if v >= proto::V2_08 => HDR_PAYLOAD_LENGTH + 4,
        v if v >= 0x0207 => HDR_HARDWARE_SUBARCH_DATA + 8,
        _ => HDR_CMDLINE_SIZE + 4,
    }
}

/// Parse and validate a bzImage's setup header (boot protocol 2.06 or later, `LOADED_HIGH`).
pub fn parse(image: &[u8]) -> Result<BzImage<'_>, KernelError> {
    let have = image.len() as u64;
    let too_short = |need: usize| KernelError::BzTooShort { need: need as u64, have };
    if !has_hdrs(image) {
        return Err(if image.len() < HDR_HEADER + 4 { too_short(HDR_HEADER + 4) } else { KernelError::BzNoHdrS });
    }
    let boot_flag = u16_at(image, HDR_BOOT_FLAG).ok_or(too_short(HDR_BOOT_FLAG + 2))?;
    if boot_flag != BOOT_FLAG_MAGIC {
        return Err(KernelError::BzBadBootFlag(boot_flag));
    }
    let version = u16_at(image, HDR_VERSION).ok_or(too_short(HDR_VERSION + 2))?;
    if version < proto::V2_06 {
        return Err(KernelError::BzProtocolTooOld(version));
    }
    // The header's length is given by the short jump over it at 0x200.
    let jump = u8_at(image, HDR_JUMP).unwrap_or(0);
    if jump != JMP_SHORT_OPCODE {
        return Err(KernelError::BzNoShortJump(jump));
    }
    let header_end = HDR_HEADER + usize::from(u8_at(image, HDR_JUMP + 1).unwrap_or(0));
    if header_end > BP_EDD_MBR_SIG_BUFFER {
        return Err(KernelError::BzHeaderTooLong { end: header_end as u16 });
    }
    let need = required_header_end(version);
    if header_end < need {
        return Err(KernelError::BzHeaderTooShort { end: header_end as u16, need: need as u16, version });
    }

    let setup_sects = match u8_at(image, HDR_SETUP_SECTS).unwrap_or(0) {
        0 => 4,
        n => n,
    };
    if setup_sects > MAX_SETUP_SECTS {
        return Err(KernelError::BzSetupSectsAbsurd(setup_sects));
    }
    let setup_len = (usize::from(setup_sects) + 1) * 512;
    // Also guarantees the whole header (< 0x290 < setup_len) is inside the image.
    if image.len() < setup_len {
        return Err(KernelError::BzSetupTruncated { setup: setup_len as u64, have });
    }
    // From here every header read is in bounds; `unwrap_or(0)` is never taken.
    let h32 = |off| u32_at(image, off).unwrap_or(0);

    let loadflags = u8_at(image, HDR_LOADFLAGS).unwrap_or(0);
    if loadflags & LOADED_HIGH == 0 {
        return Err(KernelError::BzZImage);
    }
    let syssize = h32(HDR_SYSSIZE);
    let pm_len = have - setup_len as u64;
    let sys_bytes = u64::from(syssize) * 16;
    if sys_bytes > pm_len {
        return Err(KernelError::BzSyssizeTruncated { need: sys_bytes, have: pm_len });
    }
    let relocatable = u8_at(image, HDR_RELOCATABLE_KERNEL).unwrap_or(0) != 0;
    let kernel_alignment = h32(HDR_KERNEL_ALIGNMENT);
    if relocatable && !kernel_alignment.is_power_of_two() {
        return Err(KernelError::BzBadAlignment(kernel_alignment));
    }
    let since = |v: u16, val: u32| if version >= v { val } else { 0 };
    let (payload_offset, payload_length) =
        (since(proto::V2_08, h32(HDR_PAYLOAD_OFFSET)), since(proto::V2_08, h32(HDR_PAYLOAD_LENGTH)));
    if payload_length != 0 {
        check_payload(&image[setup_len..], payload_offset, payload_length)?;
    }
    Ok(BzImage {
        image,
        version,
        header_end,
        setup_sects,
        syssize,
        loadflags,
        code32_start: h32(HDR_CODE32_START),
        initrd_addr_max: h32(HDR_INITRD_ADDR_MAX),
        kernel_alignment,
        relocatable,
        min_alignment: if version >= proto::V2_10 { u8_at(image, HDR_MIN_ALIGNMENT).unwrap_or(0) } else { 0 },
        xloadflags: if version >= proto::V2_12 { u16_at(image, HDR_XLOADFLAGS).unwrap_or(0) } else { 0 },
        cmdline_size: h32(HDR_CMDLINE_SIZE),
        payload_offset,
        payload_length,
        pref_address: if version >= proto::V2_10 {
            u64_at(image, HDR_PREF_ADDRESS).unwrap_or(0)
        } else {
            DEFAULT_LOAD_ADDR
        },
        init_size: since(proto::V2_10, h32(HDR_INIT_SIZE)),
        handover_offset: since(proto::V2_11, h32(HDR_HANDOVER_OFFSET)),
        kernel_info_offset: since(proto::V2_15, h32(HDR_KERNEL_INFO_OFFSET)),
    })
}

/// The compressed payload (`payload_offset`/`payload_length`, protocol 2.08) must lie
/// inside the protected-mode kernel `pm` and be in a format Linux's decompressor reads
/// (told by its magic, [`super::decompress::detect`]; an uncompressed ELF is let through
/// too), and an xz stream header must pass its CRC: a kernel whose payload is damaged this
/// way would stop in its own decompressor ("-- System halted") after the handoff, with the
/// guest hung, where refusing it lets the next boot step run. Only the payload's first
/// bytes are read.
fn check_payload(pm: &[u8], offset: u32, length: u32) -> Result<(), KernelError> {
    use super::PayloadProblem;
    let fault = |problem| KernelError::BzPayload { offset, length, problem };
    let Some(p) = super::le::slice(pm, offset.into(), length.into()) else {
        return Err(fault(PayloadProblem::Outside { pm_len: pm.len() as u64 }));
    };
    if p.starts_with(super::elf::ELF_MAGIC) {
        return Ok(());
    }
    match super::decompress::detect(p) {
        None => {
            let mut head = [0u8; 4];
            let n = p.len().min(4);
            head[..n].copy_from_slice(&p[..n]);
            Err(fault(PayloadProblem::UnknownFormat { head, len: n as u8 }))
        }
        // The stream header: magic (6), stream flags (2), CRC32 of the flags (4).
        Some(super::decompress::Format::Xz) => match (p.get(6..8), super::le::u32_at(p, 8)) {
            (Some(flags), Some(stored)) if crate::crc::crc32(flags) == stored => Ok(()),
            _ => Err(fault(PayloadProblem::XzHeader)),
        },
        Some(_) => Ok(()),
    }
}

impl<'a> BzImage<'a> {
    /// The whole image.
    pub fn image(&self) -> &'a [u8] {
        self.image
    }
    /// Boot protocol version, major in the high byte (0x020f = 2.15).
    pub fn version(&self) -> u16 {
        self.version
    }
    /// Real-mode setup sectors after the boot sector (a header value of 0 reads as 4).
    pub fn setup_sects(&self) -> u8 {
        self.setup_sects
    }
    /// `syssize`: protected-mode code size in 16-byte paragraphs.
    pub fn syssize(&self) -> u32 {
        self.syssize
    }
    /// `loadflags` as the image has them.
    pub fn loadflags(&self) -> u8 {
        self.loadflags
    }
    /// `code32_start` as the image has it (the loader overwrites it with the load address).
    pub fn code32_start(&self) -> u32 {
        self.code32_start
    }
    /// `initrd_addr_max`: the highest address the initrd's last byte may occupy.
    pub fn initrd_addr_max(&self) -> u64 {
        u64::from(self.initrd_addr_max)
    }
    /// `kernel_alignment` (a power of two when [`Self::relocatable`]).
    pub fn kernel_alignment(&self) -> u32 {
        self.kernel_alignment
    }
    /// `relocatable_kernel != 0`.
    pub fn relocatable(&self) -> bool {
        self.relocatable
    }
    /// `min_alignment`: log2 of the least alignment (0 before protocol 2.10).
    pub fn min_alignment(&self) -> u8 {
        self.min_alignment
    }
    /// `xloadflags` (0 before protocol 2.12).
    pub fn xloadflags(&self) -> u16 {
        self.xloadflags
    }
    /// `cmdline_size`: longest command line the kernel takes, without the NUL.
    pub fn cmdline_size(&self) -> u32 {
        self.cmdline_size
    }
    /// `payload_offset` (from the protected-mode start; 0 before 2.08).
    pub fn payload_offset(&self) -> u32 {
        self.payload_offset
    }
    /// `payload_length` (0 before 2.08).
    pub fn payload_length(&self) -> u32 {
        self.payload_length
    }
    /// The compressed payload, if the header describes one inside the image.
    pub fn payload(&self) -> Option<&'a [u8]> {
        if self.payload_length == 0 {
            return None;
        }
        slice(self.protected_mode(), self.payload_offset.into(), self.payload_length.into())
    }
    /// The payload's compression, told by its magic ([`super::decompress::detect`]).
    pub fn payload_format(&self) -> Option<super::decompress::Format> {
        super::decompress::detect(self.payload()?)
    }
    /// The payload's uncompressed size as Linux appends it (the last 4 bytes), a hint for
    /// sizing the buffer of [`Self::decompress_payload`].
    pub fn payload_uncompressed_size(&self) -> Option<u32> {
        super::decompress::size_trailer(self.payload()?)
    }
    /// Decompress the payload (the kernel's ELF vmlinux) into `out`, the cap; returns the
    /// bytes written. `None` when there is no payload or its format is unknown.
    pub fn decompress_payload(&self, out: &mut [u8]) -> Option<Result<usize, super::decompress::DecompressError>> {
        let p = self.payload()?;
        let f = super::decompress::detect(p)?;
        Some(super::decompress::decompress_into(f, p, out))
    }
    /// `pref_address` (0x100000 before protocol 2.10).
    pub fn pref_address(&self) -> u64 {
        self.pref_address
    }
    /// `init_size` (0 before protocol 2.10).
    pub fn init_size(&self) -> u32 {
        self.init_size
    }
    /// `handover_offset` (EFI handover; 0 before 2.11).
    pub fn handover_offset(&self) -> u32 {
        self.handover_offset
    }
    /// `kernel_info_offset` (0 before 2.15).
    pub fn kernel_info_offset(&self) -> u32 {
        self.kernel_info_offset
    }
    /// Size in bytes of the real-mode part: `(setup_sects + 1) * 512`.
    pub fn setup_len(&self) -> usize {
        (usize::from(self.setup_sects) + 1) * 512
    }
    /// The real-mode part (boot sector + setup).
    pub fn setup_bytes(&self) -> &'a [u8] {
        self.image.get(..self.setup_len()).unwrap_or(&[])
    }
    /// The protected-mode kernel: everything after the setup, placed at the load address.
    pub fn protected_mode(&self) -> &'a [u8] {
        self.image.get(self.setup_len()..).unwrap_or(&[])
    }
    /// The setup header as the protocol says to copy it into `boot_params`: from 0x1f1 to
    /// 0x202 + the byte at 0x201.
    pub fn header_bytes(&self) -> &'a [u8] {
        self.image.get(HDR_SETUP_SECTS..self.header_end).unwrap_or(&[])
    }
    /// Offset just past the setup header.
    pub fn header_end(&self) -> usize {
        self.header_end
    }
    /// `XLF_KERNEL_64`: enter at load address + 0x200 in long mode.
    pub fn supports_64bit_entry(&self) -> bool {
        self.xloadflags & XLF_KERNEL_64 != 0
    }
    /// `XLF_CAN_BE_LOADED_ABOVE_4G`.
    pub fn can_be_loaded_above_4g(&self) -> bool {
        self.xloadflags & XLF_CAN_BE_LOADED_ABOVE_4G != 0
    }
}

impl fmt::Debug for BzImage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the image bytes: megabytes of them.
        f.debug_struct("BzImage")
            .field("image_len", &self.image.len())
            .field("version", &format_args!("{:#06x}", self.version))
            .field("setup_sects", &self.setup_sects)
            .field("header_end", &format_args!("{:#x}", self.header_end))
            .field("syssize", &format_args!("{:#x}", self.syssize))
            .field("loadflags", &format_args!("{:#x}", self.loadflags))
            .field("code32_start", &format_args!("{:#x}", self.code32_start))
            .field("initrd_addr_max", &format_args!("{:#x}", self.initrd_addr_max))
            .field("kernel_alignment", &format_args!("{:#x}", self.kernel_alignment))
            .field("relocatable", &self.relocatable)
            .field("min_alignment", &self.min_alignment)
            .field("xloadflags", &format_args!("{:#x}", self.xloadflags))
            .field("cmdline_size", &format_args!("{:#x}", self.cmdline_size))
            .field("payload_offset", &format_args!("{:#x}", self.payload_offset))
            .field("payload_length", &format_args!("{:#x}", self.payload_length))
            .field("pref_address", &format_args!("{:#x}", self.pref_address))
            .field("init_size", &format_args!("{:#x}", self.init_size))
            .field("handover_offset", &format_args!("{:#x}", self.handover_offset))
            .field("kernel_info_offset", &format_args!("{:#x}", self.kernel_info_offset))
            .finish()
    }
}

impl fmt::Display for BzImage<'_> {
    /// One line for `inspect`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bzImage protocol {}.{:02}, {}, {}, pref_address {:#x}, init_size {:#x}, kernel_alignment {:#x}, \
             xloadflags {:#x}{}, setup {} bytes, protected-mode kernel {} bytes",
            self.version >> 8,
            self.version & 0xff,
            if self.supports_64bit_entry() { "64-bit entry" } else { "32-bit entry only" },
            if self.relocatable { "relocatable" } else { "not relocatable" },
            self.pref_address,
            self.init_size,
            self.kernel_alignment,
            self.xloadflags,
            if self.can_be_loaded_above_4g() { " (can be loaded above 4 GiB)" } else { "" },
            self.setup_len(),
            self.protected_mode().len(),
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    pub const SYN_SETUP_SECTS: u8 = 4;
    pub const SYN_PM_LEN: usize = 4096;

    fn put(b: &mut [u8], off: usize, v: &[u8]) {
        b[off..off + v.len()].copy_from_slice(v);
    }

    /// A minimal protocol-2.15 bzImage: 4 setup sectors, 4 KiB "kernel".
    pub fn synthetic() -> Vec<u8> {
        let setup = (usize::from(SYN_SETUP_SECTS) + 1) * 512;
        let mut b = vec![0u8; setup + SYN_PM_LEN];
        for (i, x) in b[setup..].iter_mut().enumerate() {
            *x = (i % 251) as u8;
        }
        b[HDR_SETUP_SECTS] = SYN_SETUP_SECTS;
        put(&mut b, HDR_SYSSIZE, &((SYN_PM_LEN / 16) as u32).to_le_bytes());
        put(&mut b, HDR_VID_MODE, &0xfffdu16.to_le_bytes());
        put(&mut b, HDR_BOOT_FLAG, &BOOT_FLAG_MAGIC.to_le_bytes());
        put(&mut b, HDR_JUMP, &[JMP_SHORT_OPCODE, (HDR_END_2_15 - HDR_HEADER) as u8]);
        put(&mut b, HDR_HEADER, &HDRS_MAGIC);
        put(&mut b, HDR_VERSION, &0x020fu16.to_le_bytes());
        b[HDR_LOADFLAGS] = LOADED_HIGH;
        put(&mut b, HDR_CODE32_START, &0x10_0000u32.to_le_bytes());
        put(&mut b, HDR_INITRD_ADDR_MAX, &0x7fff_ffffu32.to_le_bytes());
        put(&mut b, HDR_KERNEL_ALIGNMENT, &0x20_0000u32.to_le_bytes());
        b[HDR_RELOCATABLE_KERNEL] = 1;
        b[HDR_MIN_ALIGNMENT] = 21;
        put(&mut b, HDR_XLOADFLAGS, &(XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G).to_le_bytes());
        put(&mut b, HDR_CMDLINE_SIZE, &0x7ffu32.to_le_bytes());
        put(&mut b, HDR_PAYLOAD_OFFSET, &0x100u32.to_le_bytes());
        put(&mut b, HDR_PAYLOAD_LENGTH, &0x200u32.to_le_bytes());
        put(&mut b, HDR_PREF_ADDRESS, &0x100_0000u64.to_le_bytes());
        put(&mut b, HDR_INIT_SIZE, &0x2_0000u32.to_le_bytes());
        put(&mut b, HDR_HANDOVER_OFFSET, &0x190u32.to_le_bytes());
        put(&mut b, HDR_KERNEL_INFO_OFFSET, &0x300u32.to_le_bytes());
        // The payload starts like gzip (ID1 ID2 CM=8 FLG=0), as parse checks.
        put(&mut b, setup + 0x100, &[0x1f, 0x8b, 0x08, 0x00]);
        b
    }

    #[test]
    fn parses_synthetic() {
        let img = synthetic();
        let k = parse(&img).unwrap();
        assert_eq!(k.version(), 0x020f);
        assert_eq!(k.setup_sects(), 4);
        assert_eq!(k.setup_len(), 2560);
        assert_eq!(k.setup_bytes(), &img[..2560]);
        assert_eq!(k.protected_mode(), &img[2560..]);
        assert_eq!(k.header_bytes(), &img[0x1f1..0x26c]);
        assert_eq!(k.syssize(), 256);
        assert_eq!(k.loadflags(), LOADED_HIGH);
        assert_eq!(k.code32_start(), 0x10_0000);
        assert_eq!(k.initrd_addr_max(), 0x7fff_ffff);
        assert_eq!(k.kernel_alignment(), 0x20_0000);
        assert!(k.relocatable());
        assert_eq!(k.min_alignment(), 21);
        assert_eq!(k.xloadflags(), 3);
        assert!(k.supports_64bit_entry());
        assert!(k.can_be_loaded_above_4g());
        assert_eq!(k.cmdline_size(), 0x7ff);
        assert_eq!(k.payload_offset(), 0x100);
        assert_eq!(k.payload_length(), 0x200);
        assert_eq!(k.payload(), Some(&img[2560 + 0x100..2560 + 0x300]));
        assert_eq!(k.pref_address(), 0x100_0000);
        assert_eq!(k.init_size(), 0x2_0000);
        assert_eq!(k.handover_offset(), 0x190);
        assert_eq!(k.kernel_info_offset(), 0x300);
        assert!(alloc::format!("{k:?}").len() < 1000);
    }

    #[test]
    fn setup_sects_zero_means_four() {
        let mut img = synthetic();
        img[HDR_SETUP_SECTS] = 0;
        assert_eq!(parse(&img).unwrap().setup_len(), 2560);
    }

    #[test]
    fn old_fields_read_as_defaults() {
        // Protocol 2.06: header ends after cmdline_size; later fields are not read.
        let mut img = synthetic();
        put(&mut img, HDR_VERSION, &0x0206u16.to_le_bytes());
        img[HDR_JUMP + 1] = (HDR_CMDLINE_SIZE + 4 - HDR_HEADER) as u8;
        let k = parse(&img).unwrap();
        assert_eq!(k.header_bytes().len(), HDR_CMDLINE_SIZE + 4 - HDR_SETUP_SECTS);
        assert_eq!(k.xloadflags(), 0);
        assert!(!k.supports_64bit_entry());
        assert_eq!(k.pref_address(), DEFAULT_LOAD_ADDR);
        assert_eq!(k.init_size(), 0);
        assert_eq!(k.min_alignment(), 0);
        assert_eq!(k.payload(), None);
        assert!(k.to_string().contains("32-bit entry only"));
    }

    #[test]
    fn errors() {
        let good = synthetic();
        let e = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut img = good.clone();
            f(&mut img);
            parse(&img).unwrap_err()
        };
        assert_eq!(parse(&[]).unwrap_err(), KernelError::BzTooShort { need: 0x206, have: 0 });
        assert_eq!(parse(&good[..0x205]).unwrap_err(), KernelError::BzTooShort { need: 0x206, have: 0x205 });
        assert_eq!(e(&|b| b[0x202] = b'h'), KernelError::BzNoHdrS);
        assert_eq!(parse(&good[..0x206]).unwrap_err(), KernelError::BzTooShort { need: 0x208, have: 0x206 });
        assert_eq!(e(&|b| b[HDR_BOOT_FLAG] = 0), KernelError::BzBadBootFlag(0xaa00));
        assert_eq!(e(&|b| put(b, HDR_VERSION, &0x0204u16.to_le_bytes())), KernelError::BzProtocolTooOld(0x0204));
        assert_eq!(
            KernelError::BzProtocolTooOld(0x0204).to_string(),
            "bzImage: boot protocol 2.04 is too old (need 2.06)"
        );
        assert_eq!(e(&|b| b[HDR_JUMP] = 0xe9), KernelError::BzNoShortJump(0xe9));
        assert_eq!(e(&|b| b[HDR_JUMP + 1] = 0xff), KernelError::BzHeaderTooLong { end: 0x301 });
        assert_eq!(
            e(&|b| b[HDR_JUMP + 1] = 0x60),
            KernelError::BzHeaderTooShort { end: 0x262, need: 0x26c, version: 0x020f }
        );
        assert_eq!(e(&|b| b[HDR_SETUP_SECTS] = 64), KernelError::BzSetupSectsAbsurd(64));
        assert_eq!(e(&|b| b[HDR_SETUP_SECTS] = 0xff), KernelError::BzSetupSectsAbsurd(0xff));
        assert_eq!(
            e(&|b| b[HDR_SETUP_SECTS] = 20),
            KernelError::BzSetupTruncated { setup: 21 * 512, have: good.len() as u64 }
        );
        assert_eq!(parse(&good[..0x300]).unwrap_err(), KernelError::BzSetupTruncated { setup: 2560, have: 0x300 });
        assert_eq!(e(&|b| b[HDR_LOADFLAGS] = 0), KernelError::BzZImage);
        assert_eq!(
            e(&|b| put(b, HDR_SYSSIZE, &257u32.to_le_bytes())),
            KernelError::BzSyssizeTruncated { need: 257 * 16, have: 4096 }
        );
        assert_eq!(
            parse(&good[..good.len() - 1]).unwrap_err(),
            KernelError::BzSyssizeTruncated { need: 4096, have: 4095 }
        );
        assert_eq!(
            e(&|b| put(b, HDR_KERNEL_ALIGNMENT, &0x30_0000u32.to_le_bytes())),
            KernelError::BzBadAlignment(0x30_0000)
        );
        assert_eq!(e(&|b| put(b, HDR_KERNEL_ALIGNMENT, &0u32.to_le_bytes())), KernelError::BzBadAlignment(0));
        // Every error has a message naming its stage.
        for err in [
            KernelError::BzNoHdrS,
            KernelError::BzZImage,
            KernelError::BzSetupSectsAbsurd(64),
            KernelError::BzHeaderTooLong { end: 0x301 },
        ] {
            assert!(err.to_string().starts_with("bzImage: "), "{err}");
        }
    }

    #[test]
    fn non_relocatable_alignment_unchecked() {
        let mut img = synthetic();
        img[HDR_RELOCATABLE_KERNEL] = 0;
        put(&mut img, HDR_KERNEL_ALIGNMENT, &0u32.to_le_bytes());
        let k = parse(&img).unwrap();
        assert!(!k.relocatable());
    }
}

#[cfg(test)]
mod payload_tests {
    use super::tests::synthetic;
    use super::*;
    use crate::kernel::PayloadProblem;
    use alloc::string::ToString;

    const SETUP: usize = 2560;
    const AT: usize = SETUP + 0x100;

    fn put(b: &mut [u8], off: usize, v: &[u8]) {
        b[off..off + v.len()].copy_from_slice(v);
    }

    fn with_payload(head: &[u8]) -> Result<(), KernelError> {
        let mut img = synthetic();
        img[AT..AT + head.len()].copy_from_slice(head);
        parse(&img).map(|_| ())
    }

    #[test]
    fn payload_formats_linux_reads_pass() {
        let mut xz = vec![0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00, 0x01];
        xz.extend_from_slice(&crate::crc::crc32(&[0x00, 0x01]).to_le_bytes());
        for head in [
            &xz[..],
            b"BZh9",
            &[0x02, 0x21, 0x4c, 0x18],
            &[0x28, 0xb5, 0x2f, 0xfd],
            &[0x89, 0x4c, 0x5a, 0x4f, 0x00, 0x0d, 0x0a, 0x1a, 0x0a],
            b"\x7fELF",
        ] {
            assert_eq!(with_payload(head), Ok(()), "{head:02x?}");
        }
        // No payload described (protocol < 2.08, or a length of 0): nothing to check.
        let mut img = synthetic();
        put(&mut img, HDR_PAYLOAD_LENGTH, &0u32.to_le_bytes());
        img[AT..AT + 4].fill(0);
        assert!(parse(&img).is_ok());
    }

    #[test]
    fn garbage_payload_is_refused() {
        let e = with_payload(&[0xde, 0xad, 0xbe, 0xef]).unwrap_err();
        assert_eq!(
            e,
            KernelError::BzPayload {
                offset: 0x100,
                length: 0x200,
                problem: PayloadProblem::UnknownFormat { head: [0xde, 0xad, 0xbe, 0xef], len: 4 }
            }
        );
        assert_eq!(
            e.to_string(),
            "bzImage: compressed payload at offset 0x100 (512 bytes) starts de ad be ef, no format Linux's \
             decompressor reads (gzip, bzip2, xz, lzma, lzop, lz4, zstd): a damaged kernel"
        );
        // The xz magic kept, the stream flags and their CRC damaged.
        let e = with_payload(&[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00, 0x01, 1, 2, 3, 4]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "bzImage: compressed payload at offset 0x100 (512 bytes) has a damaged xz stream header (its CRC32 does \
             not match)"
        );
    }

    #[test]
    fn payload_outside_the_kernel_is_refused() {
        for (off, len) in [(0x100u32, 0x1_0000u32), (0xffff_fff0, 0x20), (4096, 1)] {
            let mut img = synthetic();
            put(&mut img, HDR_PAYLOAD_OFFSET, &off.to_le_bytes());
            put(&mut img, HDR_PAYLOAD_LENGTH, &len.to_le_bytes());
            let e = parse(&img).unwrap_err();
            assert_eq!(
                e,
                KernelError::BzPayload { offset: off, length: len, problem: PayloadProblem::Outside { pm_len: 4096 } }
            );
            assert!(
                e.to_string().ends_with("reaches past the 4096-byte protected-mode kernel: truncated or damaged image")
            );
        }
        // A payload of 1..3 bytes names what it has.
        let mut img = synthetic();
        put(&mut img, HDR_PAYLOAD_LENGTH, &2u32.to_le_bytes());
        img[AT] = 0x1f;
        img[AT + 1] = 0x8b;
        assert!(parse(&img).unwrap_err().to_string().contains("starts 1f 8b, no format"));
    }
}

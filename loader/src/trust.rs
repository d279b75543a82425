// SPDX-License-Identifier: MIT OR Apache-2.0
//! Verified boot: the keys an image trusts, detached signatures and sha256 pins.
//!
//! The formats (documented in `docs/security.md`) are one line of text each, so that a
//! person can read them and `rxen-mkimage` and the loader agree byte for byte:
//!
//! * public key (`rxen-mkimage keygen` writes `NAME.pub`; `build --trust-key` puts the
//!   lines of every key given into the memdisk file [`KEYS_FILE`]):
//!   `rxen-public-key v1 ed25519 KEYID PUBLIC [COMMENT]`
//! * secret key (`NAME.key`, mode 0600, never read by the loader):
//!   `rxen-secret-key v1 ed25519 KEYID SEED`
//! * signature (`rxen-mkimage sign FILE` writes `FILE.sig` beside it):
//!   `rxen-signature v1 ed25519 sha256 KEYID DIGEST SIGNATURE`
//!
//! `KEYID` is the first 8 bytes of the sha256 of the 32-byte public key, in hex; `DIGEST`
//! is the sha256 of the file; `SIGNATURE` is the ed25519 signature (64 bytes, hex) of
//! [`SIGNED_PREFIX`] followed by the 32 digest bytes. The digest in the line lets a refusal
//! say whether the file changed since it was signed or the signature itself is bad.
//!
//! Verification uses `ed25519-compact` (no_std, no dependencies without its default
//! features) and the memdisk crate's sha256.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

/// The memdisk file holding the trusted public keys, one line each.
pub const KEYS_FILE: &str = "rxen-keys";
/// What an ed25519 signature covers, before the file's sha256.
pub const SIGNED_PREFIX: &[u8] = b"rxen-signature v1\0";
/// The suffix of a detached signature file.
pub const SIG_SUFFIX: &str = ".sig";
/// A signature file is one short line; anything longer is refused unread.
pub const MAX_SIG_FILE: usize = 1024;
/// At most this many keys (a keys file is operator input, but budgets are cheap).
pub const MAX_KEYS: usize = 64;

/// A key id: the first 8 bytes of sha256(public key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 8]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl KeyId {
    /// The id of a public key.
    pub fn of(public: &[u8; 32]) -> KeyId {
        let h = rxen_memdisk::sha256(public);
        let mut id = [0u8; 8];
        id.copy_from_slice(&h[..8]);
        KeyId(id)
    }
}

/// A trusted public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedKey {
    pub id: KeyId,
    pub public: [u8; 32],
    /// The key file's comment (its name, by default).
    pub comment: String,
}

/// A parsed detached signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureFile {
    pub key: KeyId,
    pub digest: [u8; 32],
    pub signature: [u8; 64],
}

/// Lower-case hex of `b`.
pub fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

/// Parse exactly `N` bytes of hex.
pub fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Parse a sha256 pin (64 hex digits).
pub fn parse_digest(s: &str) -> Option<[u8; 32]> {
    unhex::<32>(s)
}

/// The public-key line of `public` with `comment`.
pub fn public_key_line(public: &[u8; 32], comment: &str) -> String {
    let c = comment.trim();
    let mut s = format!("rxen-public-key v1 ed25519 {} {}", KeyId::of(public), hex(public));
    if !c.is_empty() {
        s.push(' ');
        s.push_str(c);
    }
    s
}

/// The secret-key line of `seed` (its public key is derived from it).
pub fn secret_key_line(public: &[u8; 32], seed: &[u8; 32]) -> String {
    format!("rxen-secret-key v1 ed25519 {} {}", KeyId::of(public), hex(seed))
}

/// Parse one public-key line.
pub fn parse_public_key(line: &str) -> Result<TrustedKey, String> {
    let mut w = line.split_ascii_whitespace();
    let head: Vec<&str> = w.by_ref().take(5).collect();
    if head.len() < 5 || head[0] != "rxen-public-key" {
        return Err("not an rxen public key (`rxen-public-key v1 ed25519 KEYID KEY`)".to_string());
    }
    if head[1] != "v1" {
        return Err(format!("public key format {} is not supported (this loader reads v1)", head[1]));
    }
    if head[2] != "ed25519" {
        return Err(format!("key algorithm {} is not supported (ed25519 only)", head[2]));
    }
    let id = unhex::<8>(head[3]).ok_or("the key id is not 16 hex digits")?;
    let public = unhex::<32>(head[4]).ok_or("the key is not 64 hex digits")?;
    if KeyId::of(&public).0 != id {
        return Err(format!("key id {} does not match the key (its id is {})", head[3], KeyId::of(&public)));
    }
    ed25519_compact::PublicKey::from_slice(&public).map_err(|_| "not a valid ed25519 public key".to_string())?;
    let comment: Vec<&str> = w.collect();
    Ok(TrustedKey { id: KeyId(id), public, comment: comment.join(" ") })
}

/// Parse a keys file: one public key per line, `#` comments and blank lines allowed.
/// Errors name the line.
pub fn parse_keys(text: &str) -> Result<Vec<TrustedKey>, String> {
    let mut keys: Vec<TrustedKey> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let k = parse_public_key(l).map_err(|e| format!("line {}: {e}", n + 1))?;
        if keys.len() >= MAX_KEYS {
            return Err(format!("line {}: more than {MAX_KEYS} keys", n + 1));
        }
        if !keys.iter().any(|o| o.id == k.id) {
            keys.push(k);
        }
    }
    Ok(keys)
}

/// The signature line for a file with sha256 `digest`, signed by `key` (seed).
pub fn signature_line(public: &[u8; 32], digest: &[u8; 32], signature: &[u8; 64]) -> String {
    format!("rxen-signature v1 ed25519 sha256 {} {} {}", KeyId::of(public), hex(digest), hex(signature))
}

/// The message an ed25519 signature covers for a file with sha256 `digest`.
pub fn signed_message(digest: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::from(SIGNED_PREFIX);
    m.extend_from_slice(digest);
    m
}

/// Parse a detached signature file.
pub fn parse_signature(bytes: &[u8]) -> Result<SignatureFile, String> {
    if bytes.len() > MAX_SIG_FILE {
        return Err(format!("{} bytes: not a signature file (at most {MAX_SIG_FILE})", bytes.len()));
    }
    let text = core::str::from_utf8(bytes).map_err(|_| "not text".to_string())?;
    let w: Vec<&str> = text.split_ascii_whitespace().collect();
    if w.len() != 7 || w[0] != "rxen-signature" {
        return Err("not an rxen signature (`rxen-signature v1 ed25519 sha256 KEYID DIGEST SIG`)".to_string());
    }
    if w[1] != "v1" {
        return Err(format!("signature format {} is not supported (this loader reads v1)", w[1]));
    }
    if w[2] != "ed25519" || w[3] != "sha256" {
        return Err(format!("algorithm {} over {} is not supported (ed25519 over sha256)", w[2], w[3]));
    }
    let key = unhex::<8>(w[4]).ok_or("the key id is not 16 hex digits")?;
    let digest = unhex::<32>(w[5]).ok_or("the digest is not 64 hex digits")?;
    let signature = unhex::<64>(w[6]).ok_or("the signature is not 128 hex digits")?;
    Ok(SignatureFile { key: KeyId(key), digest, signature })
}

/// The policy's `[trust]` table: verified boot. Files from the memdisk and the domain's
/// modules come from dom0 and are trusted; these rules are about the guest's disks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustPolicy {
    /// `signatures = true`: a kernel or initrd read from a guest disk boots only with a
    /// valid `FILE.sig` by a key the image carries (`rxen-mkimage build --trust-key`), or
    /// when it matches its step's sha256 pin.
    pub signatures: bool,
    /// `configs = true`: so must every file the configuration readers read from a guest
    /// disk (grub.cfg and what it sources, BLS entries, extlinux.conf, menu.lst), except
    /// grubenv.
    pub configs: bool,
    /// `require = true`: a refused file stops the boot (the domain powers off) instead
    /// of the next entry or step being tried.
    pub require: bool,
    /// `lock_cmdline = true`: the kernel gets the step's (or the verified configuration's)
    /// command line, nothing else: the menu cannot edit it, and the domain's words and
    /// `rxen.cmdline=replace` do not reach it.
    pub lock_cmdline: bool,
}

impl fmt::Display for TrustPolicy {
    /// `signatures on, configs off, require off, lock_cmdline on` (console, inspect).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on = |b: bool| if b { "on" } else { "off" };
        write!(
            f,
            "signatures {}, configs {}, require {}, lock_cmdline {}",
            on(self.signatures),
            on(self.configs),
            on(self.require),
            on(self.lock_cmdline)
        )
    }
}

impl TrustPolicy {
    /// Whether any rule is on.
    pub fn any(&self) -> bool {
        self.signatures || self.configs || self.require || self.lock_cmdline
    }
}

/// What one boot enforces: the policy's `[trust]` rules and the image's keys.
#[derive(Clone, Debug, Default)]
pub struct Trust {
    pub rules: TrustPolicy,
    pub keys: Vec<TrustedKey>,
}

impl Trust {
    /// Whether a file from a guest disk must be checked: it has a pin, or signatures are on.
    pub fn wants(&self, pin: Option<&[u8; 32]>) -> bool {
        pin.is_some() || self.rules.signatures
    }
}

/// Why a file was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A sha256 pin that does not match.
    PinMismatch { want: [u8; 32], got: [u8; 32] },
    /// No `FILE.sig` (or it could not be read) and no pin.
    Unsigned { why: String },
    /// `FILE.sig` is not a signature.
    BadSignatureFile { why: String },
    /// Signed by a key the image does not carry.
    UnknownKey { key: KeyId },
    /// The file changed since it was signed.
    DigestMismatch { key: KeyId, signed: [u8; 32], got: [u8; 32] },
    /// The signature does not verify with the key.
    BadSignature { key: KeyId },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::PinMismatch { want, got } => {
                write!(f, "its sha256 {} is not the pinned {}", hex(got), hex(want))
            }
            Refusal::Unsigned { why } => write!(f, "unsigned ({why}), and the policy requires a signature"),
            Refusal::BadSignatureFile { why } => write!(f, "its signature file is unusable: {why}"),
            Refusal::UnknownKey { key } => write!(f, "signed by key {key}, which this image does not trust"),
            Refusal::DigestMismatch { key, signed, got } => write!(
                f,
                "the file changed since key {key} signed it (signed sha256 {}, the file's is {})",
                hex(signed),
                hex(got)
            ),
            Refusal::BadSignature { key } => write!(f, "the signature by key {key} does not verify"),
        }
    }
}

/// How a file was accepted, for the console and explain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Accepted {
    Pinned,
    Signed { key: KeyId, comment: String },
}

impl fmt::Display for Accepted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Accepted::Pinned => f.write_str("sha256 matches its pin"),
            Accepted::Signed { key, comment } if comment.is_empty() => write!(f, "signed by key {key}"),
            Accepted::Signed { key, comment } => write!(f, "signed by key {key} ({comment})"),
        }
    }
}

/// Check `data` against a pin; with no pin, against its signature file `sig` (`Err`: why
/// it could not be read) and `keys`.
pub fn check(
    data: &[u8],
    pin: Option<&[u8; 32]>,
    sig: Result<&[u8], String>,
    keys: &[TrustedKey],
) -> Result<Accepted, Refusal> {
    let got = rxen_memdisk::sha256(data);
    if let Some(want) = pin {
        return if &got == want { Ok(Accepted::Pinned) } else { Err(Refusal::PinMismatch { want: *want, got }) };
    }
    check_digest(&got, sig, keys)
}

/// [`check`] for a file whose sha256 is already known, with no pin.
pub fn check_digest(got: &[u8; 32], sig: Result<&[u8], String>, keys: &[TrustedKey]) -> Result<Accepted, Refusal> {
    let sig = sig.map_err(|why| Refusal::Unsigned { why })?;
    let s = parse_signature(sig).map_err(|why| Refusal::BadSignatureFile { why })?;
    let Some(k) = keys.iter().find(|k| k.id == s.key) else { return Err(Refusal::UnknownKey { key: s.key }) };
    if &s.digest != got {
        return Err(Refusal::DigestMismatch { key: s.key, signed: s.digest, got: *got });
    }
    let pk = ed25519_compact::PublicKey::new(k.public);
    let sg = ed25519_compact::Signature::new(s.signature);
    pk.verify(signed_message(got), &sg).map_err(|_| Refusal::BadSignature { key: s.key })?;
    Ok(Accepted::Signed { key: s.key, comment: k.comment.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keypair(seed: u8) -> ed25519_compact::KeyPair {
        ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([seed; 32]))
    }

    fn sign(kp: &ed25519_compact::KeyPair, data: &[u8]) -> String {
        let d = rxen_memdisk::sha256(data);
        let sig = kp.sk.sign(signed_message(&d), None);
        signature_line(&kp.pk, &d, &sig)
    }

    #[test]
    fn key_lines_round_trip() {
        let kp = keypair(7);
        let line = public_key_line(&kp.pk, "fleet 2026");
        let k = parse_public_key(&line).unwrap();
        assert_eq!(k.public, *kp.pk);
        assert_eq!(k.comment, "fleet 2026");
        assert_eq!(k.id, KeyId::of(&kp.pk));
        // A key id that does not belong to the key.
        let bad = line.replacen(&k.id.to_string(), "0000000000000000", 1);
        assert!(parse_public_key(&bad).unwrap_err().contains("does not match the key"));
        let e = parse_keys(&format!("# keys\n\n{line}\nrxen-public-key v2 ed25519 aa bb\n")).unwrap_err();
        assert!(e.starts_with("line 4: public key format v2"), "{e}");
    }

    #[test]
    fn signed_file_accepted_and_tampering_named() {
        let kp = keypair(1);
        let keys = parse_keys(&public_key_line(&kp.pk, "k")).unwrap();
        let data = b"a kernel".to_vec();
        let sig = sign(&kp, &data);
        assert_eq!(
            check(&data, None, Ok(sig.as_bytes()), &keys),
            Ok(Accepted::Signed { key: keys[0].id, comment: "k".into() })
        );
        // One flipped byte in the file.
        let mut t = data.clone();
        t[0] ^= 1;
        assert!(matches!(check(&t, None, Ok(sig.as_bytes()), &keys), Err(Refusal::DigestMismatch { .. })));
        // The digest edited to match, the signature left: it must not verify.
        let forged = sig.replacen(&hex(&rxen_memdisk::sha256(&data)), &hex(&rxen_memdisk::sha256(&t)), 1);
        assert_eq!(check(&t, None, Ok(forged.as_bytes()), &keys), Err(Refusal::BadSignature { key: keys[0].id }));
        // Another key's signature.
        let other = sign(&keypair(2), &data);
        assert!(matches!(check(&data, None, Ok(other.as_bytes()), &keys), Err(Refusal::UnknownKey { .. })));
        // No signature at all.
        let e = check(&data, None, Err("/vmlinuz.sig: not found".into()), &keys).unwrap_err();
        assert_eq!(e.to_string(), "unsigned (/vmlinuz.sig: not found), and the policy requires a signature");
        assert!(matches!(check(&data, None, Ok(&[0xff; 2000]), &keys), Err(Refusal::BadSignatureFile { .. })));
    }

    #[test]
    fn pins() {
        let d = rxen_memdisk::sha256(b"x");
        assert_eq!(check(b"x", Some(&d), Err(String::new()), &[]), Ok(Accepted::Pinned));
        let e = check(b"y", Some(&d), Err(String::new()), &[]).unwrap_err();
        assert!(e.to_string().starts_with("its sha256 "), "{e}");
        assert_eq!(parse_digest(&hex(&d)), Some(d));
        assert_eq!(parse_digest("zz"), None);
    }

    #[test]
    fn signature_parser_rejects_garbage() {
        for s in ["", "rxen-signature", "rxen-signature v1 ed25519 sha256 00 00 00", "x y z w v u t"] {
            assert!(parse_signature(s.as_bytes()).is_err(), "{s}");
        }
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! Verified boot on the host: `rxen-mkimage keygen` and `sign`, and the keys file `build
//! --trust-key` puts in the memdisk. The formats are the loader's (`rxen_loader::trust`,
//! docs/security.md); ed25519 through `ed25519-compact`, the seed from the kernel's
//! random source (getrandom(2)).

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use rxen_loader::trust::{self, KeyId, TrustedKey};

/// 32 bytes from the kernel's random source.
fn random_seed() -> Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    let mut got = 0;
    while got < seed.len() {
        // SAFETY: the pointer and length describe the unfilled tail of `seed`, which lives
        // across the call; getrandom writes at most that many bytes.
        let n = unsafe { libc::getrandom(seed[got..].as_mut_ptr().cast(), seed.len() - got, 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e).context("getrandom");
        }
        got += n as usize;
    }
    Ok(seed)
}

/// Write `text` to a new file `path` with `mode`, refusing to replace an existing one
/// (a key is never overwritten by accident); temp file and rename, so a crash leaves
/// no half-written key.
fn write_new(path: &Path, text: &str, mode: u32) -> Result<()> {
    let name = path.display().to_string();
    if path.symlink_metadata().is_ok() {
        bail!("{name}: already exists (remove it first to make a new key)");
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp =
        dir.join(format!(".{}.tmp.{}", path.file_name().and_then(|n| n.to_str()).unwrap_or("key"), std::process::id()));
    let _ = fs::remove_file(&tmp);
    let r = (|| -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        // Not rename(2): it would replace a file created meanwhile. link + unlink fails instead.
        fs::hard_link(&tmp, path)?;
        fs::remove_file(&tmp)
    })();
    if let Err(e) = r {
        let _ = fs::remove_file(&tmp);
        return Err(e).context(name);
    }
    Ok(())
}

/// `rxen-mkimage keygen NAME`: NAME.key (secret, 0600) and NAME.pub. Returns the key id.
pub fn keygen(base: &Path, comment: Option<&str>) -> Result<(KeyId, PathBuf, PathBuf)> {
    let seed = random_seed()?;
    let kp = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new(seed));
    let public: [u8; 32] = *kp.pk;
    let default_comment = base.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
    let comment = comment.unwrap_or(&default_comment);
    if comment.contains(['\n', '\r']) {
        bail!("--comment: one line");
    }
    let with_ext = |ext: &str| {
        let mut p = base.as_os_str().to_owned();
        p.push(ext);
        PathBuf::from(p)
    };
    let (sec, publ) = (with_ext(".key"), with_ext(".pub"));
    if publ.symlink_metadata().is_ok() {
        bail!("{}: already exists (remove it first to make a new key)", publ.display());
    }
    write_new(&sec, &format!("{}\n", trust::secret_key_line(&public, &seed)), 0o600)?;
    write_new(&publ, &format!("{}\n", trust::public_key_line(&public, comment)), 0o644)?;
    Ok((KeyId::of(&public), sec, publ))
}

/// Read a secret key file: the key pair.
pub fn read_secret_key(path: &Path) -> Result<ed25519_compact::KeyPair> {
    let name = path.display().to_string();
    let text = fs::read_to_string(path).with_context(|| name.clone())?;
    let w: Vec<&str> = text.split_ascii_whitespace().collect();
    if w.len() != 5 || w[0] != "rxen-secret-key" || w[1] != "v1" || w[2] != "ed25519" {
        bail!(
            "{name}: not an rxen secret key (`rxen-secret-key v1 ed25519 KEYID SEED`; the .pub file is the public one)"
        );
    }
    let seed = trust::unhex::<32>(w[4]).ok_or_else(|| anyhow!("{name}: the seed is not 64 hex digits"))?;
    let kp = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new(seed));
    if KeyId::of(&kp.pk).to_string() != w[3] {
        bail!("{name}: key id {} does not match the key (its id is {})", w[3], KeyId::of(&kp.pk));
    }
    Ok(kp)
}

/// `rxen-mkimage sign --key K FILE...`: FILE.sig beside each FILE. Returns the .sig paths.
pub fn sign(key: &Path, files: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let kp = read_secret_key(key)?;
    let public: [u8; 32] = *kp.pk;
    let mut out = Vec::new();
    for f in files {
        let name = f.display().to_string();
        let data = fs::read(f).with_context(|| name.clone())?;
        let digest = rxen_memdisk::sha256(&data);
        let sig: [u8; 64] = *kp.sk.sign(trust::signed_message(&digest), None);
        let line = trust::signature_line(&public, &digest, &sig);
        let mut p = f.as_os_str().to_owned();
        p.push(trust::SIG_SUFFIX);
        let p = PathBuf::from(p);
        // A signature may be replaced (a re-signed kernel): atomically.
        crate::cli::write_atomic_mode(&p, format!("{line}\n").as_bytes(), 0o644)?;
        out.push(p);
    }
    Ok(out)
}

/// The policy's `[trust]` rules against whether the memdisk carries keys: rules that need
/// keys without any, or keys no rule uses, would make an image that cannot do what was
/// meant.
pub fn check_trust(policy: &rxen_loader::config::policy::Policy, has_keys: bool) -> Result<()> {
    let t = &policy.trust;
    if (t.signatures || t.configs) && !has_keys {
        bail!(
            "rxen.toml: [trust] asks for signatures (signatures/configs = true): give the keys with --trust-key NAME.pub"
        );
    }
    if has_keys && !(t.signatures || t.configs) {
        bail!(
            "--trust-key: the policy does not use keys: set signatures = true (or configs = true) in its [trust] table"
        );
    }
    Ok(())
}

/// The keys of `--trust-key` files, sorted by key id, each once: the memdisk's keys file.
pub fn keys_file(paths: &[PathBuf]) -> Result<(Vec<TrustedKey>, String)> {
    let mut keys: Vec<TrustedKey> = Vec::new();
    for p in paths {
        let name = p.display().to_string();
        let text = fs::read_to_string(p).with_context(|| name.clone())?;
        if text.contains("rxen-secret-key") {
            bail!("{name}: this is a secret key; --trust-key takes the public one (.pub)");
        }
        let got = trust::parse_keys(&text).map_err(|e| anyhow!("{name}: {e}"))?;
        if got.is_empty() {
            bail!("{name}: no public key in it");
        }
        for k in got {
            if !keys.iter().any(|o| o.id == k.id) {
                keys.push(k);
            }
        }
    }
    keys.sort_by_key(|k| k.id);
    let text: String = keys.iter().map(|k| format!("{}\n", trust::public_key_line(&k.public, &k.comment))).collect();
    Ok((keys, text))
}

# SPDX-License-Identifier: MIT OR Apache-2.0
#
# Helpers shared by tests/xen/guests and scripts/bench-xen (sourced, not run): guest
# initrds, ext4 and GPT disk images built without root (mkfs.ext4 -d on a file, sgdisk on a
# file, dd at the partition's offset), guest directories. Every output is written to a
# temporary name and renamed, so an interrupted build leaves no half-written file.
# Needs: root (the repo), cache (tests/xen/fetch's directory), tmp (a scratch directory).
# shellcheck shell=bash disable=SC2154

PATH="$PATH:/usr/sbin:/sbin"
# Reproducible filesystems: fixed timestamps (UUIDs and hash seeds are passed explicitly).
export E2FSPROGS_FAKE_TIME=1700000000 SOURCE_DATE_EPOCH=1700000000

xen_kver() { cat "$cache/KVER"; }

# ensure_loader: sets LOADER_DIR, where pvh-boot, pv-boot and rxen-mkimage are: RXEN_XEN_LOADER_DIR
# (another build, e.g. an older commit's, to compare) or target/release, which is built
# with `cargo build --release` when a binary is missing (RXEN_XEN_BUILD=1: always).
ensure_loader() {
    LOADER_DIR="${RXEN_XEN_LOADER_DIR:-$root/target/release}"
    if [[ -z "${RXEN_XEN_LOADER_DIR:-}" ]] &&
        [[ -n "${RXEN_XEN_BUILD:-}" || ! -x "$LOADER_DIR/pvh-boot" || ! -x "$LOADER_DIR/pv-boot" || ! -x "$LOADER_DIR/rxen-mkimage" || ! -x "$LOADER_DIR/rxen" ]]; then
        (cd "$root" && cargo build --release --locked >&2)
    fi
    [[ -x "$LOADER_DIR/pvh-boot" && -x "$LOADER_DIR/pv-boot" && -x "$LOADER_DIR/rxen-mkimage" ]] || {
        echo "no pvh-boot and rxen-mkimage in $LOADER_DIR" >&2
        return 1
    }
}

# mod_deps FILE.ko: the module's "depends" (comma-separated names, maybe empty).
mod_deps() {
    if command -v modinfo >/dev/null; then
        modinfo -F depends "$1"
    else
        # Without kmod: the .modinfo section holds NUL-separated key=value strings.
        tr '\0' '\n' <"$1" | sed -n 's/^depends=//p' | head -n 1
    fi
}

# mod_file NAME: the .ko of the Debian kernel for NAME ('-' and '_' are the same to Linux).
mod_file() {
    local a="${1//_/-}" b="${1//-/_}" f
    f="$(find "$cache/root/lib/modules/$(xen_kver)/kernel" \( -name "$a.ko" -o -name "$b.ko" \) | LC_ALL=C sort | head -n 1)"
    [[ -n "$f" ]] || {
        echo "no module $1 in $cache/root/lib/modules" >&2
        return 1
    }
    echo "$f"
}

# mod_order NAME...: the .ko files of NAME... and their dependencies, dependencies first.
mod_order() {
    local -A done_=()
    local -a order_=()
    _visit() {
        local f d
        f="$(mod_file "$1")" || return 1
        [[ -z "${done_[$f]:-}" ]] || return 0
        done_[$f]=1
        for d in $(mod_deps "$f" | tr ',' ' '); do _visit "$d" || return 1; done
        order_+=("$f")
    }
    local n
    for n in "$@"; do _visit "$n" || return 1; done
    printf '%s\n' "${order_[@]}"
}

# mk_initrd OUT KIND: a busybox initramfs (newc, gzip) whose /init prints, to /dev/hvc0 and
# /dev/console,
#   RXEN-UPTIME: <contents of /proc/uptime>
#   RXEN-GUEST-MARKER: booted
#   RXEN-CMDLINE: <contents of /proc/cmdline>     (as scripts/build-initramfs)
#   RXEN-ARG: <word>                              (one line per word of /proc/cmdline)
# then powers the guest off. KIND "rootcheck" first loads xen-blkfront and ext4 (with their
# dependencies and crc32c, which ext4 asks the crypto API for at mount time), mounts
# /dev/xvda1 read-only and prints "ROOT-MOUNTED: <contents of /rxen-root-check>".
mk_initrd() {
    local out="$1" kind="$2" d f
    d="$(mktemp -d "$tmp/initrd.XXXXXX")"
    mkdir -p "$d"/{bin,dev,proc,sys,mnt,lib/modules}
    cp "$cache/root/bin/busybox" "$d/bin/busybox"
    ln -s busybox "$d/bin/sh"
    cat >"$d/init" <<'INIT'
#!/bin/sh
B=/bin/busybox
$B mount -t proc proc /proc
$B mount -t sysfs sys /sys
$B mount -t devtmpfs dev /dev 2>/dev/null
say() {
    for c in /dev/hvc0 /dev/console; do
        [ -e "$c" ] && echo "$*" >"$c" 2>/dev/null
    done
}
if [ -s /lib/modules/order ]; then
    while read -r m; do
        $B insmod "/lib/modules/$m" || say "RXEN-INSMOD-FAILED: $m"
    done </lib/modules/order
    i=0
    while [ ! -b /dev/xvda1 ] && [ $i -lt 200 ]; do $B sleep 0.1; i=$((i + 1)); done
    if $B mount -t ext4 -o ro /dev/xvda1 /mnt; then
        say "ROOT-MOUNTED: $($B cat /mnt/rxen-root-check)"
        $B umount /mnt
    else
        say "ROOT-MOUNT-FAILED"
        $B dmesg | $B tail -n 20 >/dev/console
    fi
fi
cmdline="$($B cat /proc/cmdline)"
# The kernel's clock at the marker: the benches subtract it from create -> marker to
# find when the kernel started.
say "RXEN-UPTIME: $($B cat /proc/uptime)"
say "RXEN-GUEST-MARKER: booted"
say "RXEN-CMDLINE: $cmdline"
for w in $cmdline; do say "RXEN-ARG: $w"; done
# Let xenconsoled drain the console ring before the domain disappears.
$B sleep 1
$B poweroff -f
INIT
    chmod 755 "$d/init"
    if [[ "$kind" == rootcheck ]]; then
        local mods
        mods="$(mod_order xen-blkfront crc32c_generic ext4)"
        for f in $mods; do
            cp "$f" "$d/lib/modules/"
            basename "$f" >>"$d/lib/modules/order"
        done
    fi
    find "$d" -mindepth 1 -exec touch -h -d @"$SOURCE_DATE_EPOCH" {} +
    (cd "$d" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible) |
        gzip -n -9 >"$out.tmp"
    mv "$out.tmp" "$out"
    rm -rf "$d"
}

# ext4_img OUT SIZE_MIB TREE LABEL N [MKFS-ARGS...]: a whole-disk ext4 made from TREE (no
# root, no mount); N (a small number) makes its UUID and hash seed fixed and distinct.
ext4_img() {
    local out="$1" size="$2" tree="$3" label="$4" u
    u="$(printf '00000000-0000-4000-8000-%012x' "$5")"
    shift 5
    rm -f "$out.tmp"
    truncate -s "${size}M" "$out.tmp"
    mkfs.ext4 -q -F "$@" -L "$label" -U "$u" -E "root_owner=0:0,hash_seed=$u" -d "$tree" "$out.tmp" >/dev/null
    mv "$out.tmp" "$out"
}

# gpt4k_img OUT SIZE_MIB TREE LABEL N: like gpt_img, for a disk of 4 KiB logical sectors
# (scripts/mkgpt; ext4 with 4 KiB blocks, as Linux mounts nothing smaller there). Name it
# *.4k.img: dom0's block script attaches such files with 4 KiB loop sectors.
gpt4k_img() {
    local out="$1" label="$4"
    ext4_img "$out.part" "$2" "$3" "$label" "$5" -b 4096
    "$root/scripts/mkgpt" --sector-size 4096 "$out" "$out.part:$label"
    rm -f "$out.part"
}

# gpt_img OUT SIZE_MIB TREE LABEL N: a GPT disk whose partition 1 (1 MiB in, SIZE_MIB long)
# is an ext4 made from TREE, dd'd into place at its offset.
gpt_img() {
    local out="$1" size="$2" tree="$3" label="$4" n="$5"
    ext4_img "$out.part" "$size" "$tree" "$label" "$n"
    rm -f "$out.tmp"
    # 1 MiB before the partition, 1 MiB after it for the backup GPT.
    truncate -s "$((size + 2))M" "$out.tmp"
    sgdisk -U "$(printf '11111111-2222-4333-8444-%012x' "$n")" -n "1:2048:+${size}M" -t 1:8300 \
        -c "1:$label" -u "1:$(printf 'aaaaaaaa-0000-4000-8000-%012x' "$n")" "$out.tmp" >/dev/null
    dd if="$out.part" of="$out.tmp" bs=1M seek=1 conv=notrunc status=none
    rm -f "$out.part"
    mv "$out.tmp" "$out"
}

# boot_tree DIR KERNEL [INITRD]: /boot/vmlinuz (+ /boot/initrd.img) in DIR.
boot_tree() {
    mkdir -p "$1/boot"
    cp "$2" "$1/boot/vmlinuz"
    [[ -z "${3:-}" ]] || cp "$3" "$1/boot/initrd.img"
}

# guest_dir NAME: a fresh staging directory for guest NAME (put_guest moves it in place).
guest_dir() {
    rm -rf "$tmp/g-$1"
    mkdir -p "$tmp/g-$1"
    echo "$tmp/g-$1"
}

# put_guest GUESTS NAME: replace GUESTS/NAME by the staged directory (only that one: other
# guest directories a person put there are left alone).
put_guest() {
    rm -rf "$1/$2.old"
    [[ ! -e "$1/$2" ]] || mv "$1/$2" "$1/$2.old"
    mv "$tmp/g-$2" "$1/$2"
    rm -rf "$1/$2.old"
}

# xl_cfg NAME TYPE KERNEL MEMORY [key = value lines...] : a guest.cfg on stdout. The
# domain is destroyed on power-off, reboot and crash: a crash shows up at once as a FAIL
# (reason=crashed) instead of a guest that lingers until its timeout.
xl_cfg() {
    local name="$1" type="$2" kernel="$3" mem="$4"
    shift 4
    printf 'name = "%s"\ntype = "%s"\nkernel = "%s"\nmemory = %s\nvcpus = 1\n' "$name" "$type" "$kernel" "$mem"
    (($# == 0)) || printf '%s\n' "$@"
    printf 'on_poweroff = "destroy"\non_reboot = "destroy"\non_crash = "destroy"\n'
}

# grub_started DIR: GRUB's image prints no Linux line before its menu, and its menu is
# where its flakes strike (README.md): for the harness, GRUB's own first line stands in for
# "the kernel started" (the started file; the default is Linux's "Linux version"). The
# reference file marks the guest as the baseline's, not the loader under test's: one that
# dies before that line died in GRUB's own code, and is retried like a platform flake
# (init-dom0, reason=reference-before-start; README.md, "Which deaths are retried").
grub_started() {
    echo "Welcome to GRUB!" >"$1/started"
    : >"$1/reference"
}

# xl_disks NAME FILE...: the disk = [...] line, xvda, xvdb, ... in order; inside dom0 the
# files are /guests/NAME/FILE. target= must come last (xl takes the rest of the string).
xl_disks() {
    local name="$1" v=(a b c d e f g h) i=0 f s=""
    shift
    for f in "$@"; do
        s="$s${s:+, }'format=raw,vdev=xvd${v[$i]},access=rw,target=/guests/$name/$f'"
        i=$((i + 1))
    done
    echo "disk = [ $s ]"
}

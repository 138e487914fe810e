#!/bin/bash
# Builds image/out/conclave.iso: a hybrid (BIOS and UEFI) ISO of Debian bookworm with Conclave,
# booted read-only from a squashfs under a tmpfs overlay. See docs/image.md.
#   image/build.sh            (`make image`; needs root: mmdebstrap chroots)
# Environment: SOURCE_DATE_EPOCH (default: the last git commit's time), CONCLAVE_BIN (a conclave
# built with `cargo build --release --locked`; default: build it here, in CARGO_TARGET_DIR),
# CONCLAVE_IMAGE_MIRROR (default http://deb.debian.org).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
out=$here/out
work=$out/work
mirror=${CONCLAVE_IMAGE_MIRROR:-http://deb.debian.org}
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$top" log -1 --format=%ct)}
export SOURCE_DATE_EPOCH
export LC_ALL=C.UTF-8 TZ=UTC
started=$(date +%s)
step() { printf '== %s (%ds)\n' "$*" $(($(date +%s) - started)); }

for tool in mmdebstrap mksquashfs grub-mkrescue xorriso mformat; do
    command -v "$tool" >/dev/null || { echo "build.sh: $tool not found; run \`make image-deps\`" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "build.sh: needs root (mmdebstrap builds the root filesystem in a chroot)" >&2; exit 2; }

if [ -n "${CONCLAVE_BIN:-}" ]; then
    bin=$CONCLAVE_BIN   # built by `make build` (cargo build --release --locked)
else
    step "conclave: cargo build --release --locked"
    (cd "$top" && cargo build --release --locked)
    bin=${CARGO_TARGET_DIR:-$top/target}/release/conclave
fi
[ -x "$bin" ] || { echo "build.sh: $bin missing after the build" >&2; exit 1; }

rm -rf "$work"
mkdir -p "$work/iso/live" "$work/iso/boot/grub"
# The root filesystem, its downloaded packages, the squashfs and the ISO take about 1.5 GiB at
# their peak; a full disk would otherwise surface as a failed kernel or initramfs script in the
# chroot, far from its cause.
need_mib=2048
free_mib=$(df -Pm "$out" | awk 'NR == 2 { print $4 }')
if [ "${free_mib:-0}" -lt "$need_mib" ]; then
    echo "build.sh: only ${free_mib} MiB free on the file system of $out; the image build needs ${need_mib} MiB" >&2
    exit 2
fi
trap 'status=$?; if [ $status -ne 0 ]; then echo "build.sh: failed (exit $status); free space on the file system of $out:" >&2; df -h "$out" >&2; fi' EXIT
packages=$(sed 's/#.*//' "$here/packages.txt" | tr -s ' \t\n' '\n' | grep . | paste -sd,)

step "root filesystem: mmdebstrap bookworm (minbase + image/packages.txt)"
# Documentation, manual pages and translations are not installed (copyright files are).
mmdebstrap --variant=minbase --mode=root --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --include="$packages" \
    --customize-hook="\"$here/customize.sh\" \"\$1\" \"$bin\" \"$here/rootfs\"" \
    bookworm "$work/rootfs" \
    "deb $mirror/debian bookworm main" \
    "deb $mirror/debian bookworm-updates main" \
    "deb $mirror/debian-security bookworm-security main"

root=$work/rootfs
kver=$(ls "$root/lib/modules")
cp "$root/boot/vmlinuz-$kver" "$work/iso/live/vmlinuz"
cp "$root/boot/initrd.img-$kver" "$work/iso/live/initrd.img"
cp "$root/usr/share/conclave/manifest.txt" "$out/manifest.txt"

step "squashfs"
mksquashfs "$root" "$work/iso/live/filesystem.squashfs" -noappend -comp zstd -no-xattrs \
    -e boot -processors 2 -quiet
cp "$here/grub.cfg" "$work/iso/boot/grub/grub.cfg"
cp "$out/manifest.txt" "$work/iso/live/manifest.txt"
find "$work/iso" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

step "ISO: grub-mkrescue (BIOS and UEFI)"
rm -f "$out/conclave.iso"
# grub-mkrescue formats the EFI system partition with mformat, which picks a random volume serial
# number: a wrapper gives mformat one derived from SOURCE_DATE_EPOCH. xorriso would date the files
# grub-mkrescue adds (GRUB's modules, efi.img) with the build time (the arguments after `--` are
# xorriso commands).
mkdir -p "$work/bin"
printf '#!/bin/sh\nexec /usr/bin/mformat -N %08x "$@"\n' $((SOURCE_DATE_EPOCH & 0xffffffff)) >"$work/bin/mformat"
chmod 755 "$work/bin/mformat"
PATH="$work/bin:$PATH" grub-mkrescue -o "$out/conclave.iso" "$work/iso" -- -volid CONCLAVE \
    -volume_date all_file_dates "=$SOURCE_DATE_EPOCH" -volume_date c "=$SOURCE_DATE_EPOCH" \
    -volume_date m "=$SOURCE_DATE_EPOCH" -volume_date uuid "$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y%m%d%H%M%S00)" \
    -iso_nowtime "=$SOURCE_DATE_EPOCH" -boot_image any gpt_disk_guid=volume_date_uuid \
    2>"$work/grub-mkrescue.log" || { cat "$work/grub-mkrescue.log" >&2; exit 1; }
(cd "$out" && sha256sum conclave.iso >conclave.iso.sha256)
step "done"
echo "image: $out/conclave.iso ($(du -m "$out/conclave.iso" | cut -f1) MiB), packages: $out/manifest.txt"
echo "SHA-256 $(cut -d' ' -f1 "$out/conclave.iso.sha256")  conclave.iso"

#!/bin/bash
# Builds image/out/conclave.iso: a hybrid (BIOS and UEFI) ISO of Debian bookworm with Conclave,
# booted read-only from a squashfs under a tmpfs overlay. UEFI boots through Debian's signed chain
# (shim, GRUB, kernel), so the image boots with Secure Boot on. See docs/image.md.
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

for tool in mmdebstrap mksquashfs grub-mkrescue xorriso mformat mcopy; do
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
mkdir -p "$work/iso/live" "$work/iso/boot/grub" "$work/bootchain"
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
# bookworm-backports is there for the YubiHSM 2 module only: apt takes nothing from it unless
# asked (its Release file says NotAutomatic), and image/packages.txt asks by exact version.
mmdebstrap --variant=minbase --mode=root --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --include="$packages" \
    --customize-hook="\"$here/customize.sh\" \"\$1\" \"$bin\" \"$here/rootfs\" \"$work/bootchain\"" \
    bookworm "$work/rootfs" \
    "deb $mirror/debian bookworm main" \
    "deb $mirror/debian bookworm-updates main" \
    "deb $mirror/debian-security bookworm-security main" \
    "deb $mirror/debian bookworm-backports main"

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

step "EFI system partition: Debian's signed shim and GRUB"
# UEFI firmware starts \EFI\boot\bootx64.efi of a removable medium: Debian's shim, signed by
# Microsoft (the key a stock laptop trusts). Shim starts grubx64.efi beside it only if Debian
# signed it (shim carries Debian's certificate): Debian's GRUB for CDs and USB sticks
# (gcdx64.efi), one signed file with its modules built in (Secure Boot forbids loading others),
# which reads $prefix/grub.cfg, $prefix being /boot/grub on this partition. That file finds the
# ISO by its file system UUID (xorriso's -volume_date uuid below, from SOURCE_DATE_EPOCH: an image
# of another commit has another one) and reads the menu every boot shares. GRUB has the kernel
# checked by shim before starting it (Debian's signed kernel). mmx64.efi is shim's MOK manager,
# which shim starts when a key enrolment is pending; fbx64.efi (shim's fallback, which writes boot
# entries into the firmware) is left out on purpose.
chain=$work/bootchain
esp=$work/esp
uuid=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d-%H-%M-%S-00)
mkdir -p "$esp/EFI/boot" "$esp/boot/grub"
cp "$chain/usr/lib/shim/shimx64.efi.signed" "$esp/EFI/boot/bootx64.efi"
cp "$chain/usr/lib/shim/mmx64.efi.signed" "$esp/EFI/boot/mmx64.efi"
cp "$chain/usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed" "$esp/EFI/boot/grubx64.efi"
cat >"$esp/boot/grub/grub.cfg" <<EOF
# Written by image/build.sh: Debian's signed GRUB reads this file on the EFI system partition;
# it reads the menu from the ISO, found by its file system UUID.
search --no-floppy --fs-uuid --set=root $uuid
set prefix=(\$root)/boot/grub
source \$prefix/grub.cfg
EOF
find "$esp" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
# FAT12 holding the files plus 1 MiB, in whole MiB (64 heads, 32 sectors: 2048 sectors a
# cylinder); the volume serial number from SOURCE_DATE_EPOCH (mformat would pick a random one);
# mtools dates what it writes with SOURCE_DATE_EPOCH.
mib=$(( ($(du -sk --apparent-size "$esp" | cut -f1) + 1023) / 1024 + 1 ))
mformat -i "$work/iso/boot/grub/efi.img" -C -T $((mib * 2048)) -h 64 -s 32 \
    -N "$(printf %08x $((SOURCE_DATE_EPOCH & 0xffffffff)))" -v EFIBOOT ::
mcopy -s -m -i "$work/iso/boot/grub/efi.img" "$esp/EFI" "$esp/boot" ::/
touch -d "@$SOURCE_DATE_EPOCH" "$work/iso/boot/grub/efi.img"

step "ISO: grub-mkrescue (BIOS) and xorriso (UEFI)"
rm -f "$out/conclave.iso"
# grub-mkrescue makes the BIOS boot (El Torito, and the MBR of a USB stick) with GRUB for BIOS
# (grub-pc-bin; BIOS has no Secure Boot). The arguments after `--` are xorriso commands: the
# second El Torito image, efi.img above, also the EFI system partition of the stick's GPT; and
# dates: xorriso would date the files grub-mkrescue adds (GRUB's modules) and the volume, and
# derive the GPT GUIDs, from the build time.
grub-mkrescue -d /usr/lib/grub/i386-pc -o "$out/conclave.iso" "$work/iso" -- -volid CONCLAVE \
    -volume_date all_file_dates "=$SOURCE_DATE_EPOCH" -volume_date c "=$SOURCE_DATE_EPOCH" \
    -volume_date m "=$SOURCE_DATE_EPOCH" -volume_date uuid "$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y%m%d%H%M%S00)" \
    -iso_nowtime "=$SOURCE_DATE_EPOCH" -boot_image any gpt_disk_guid=volume_date_uuid \
    -boot_image any next -boot_image any efi_path=/boot/grub/efi.img \
    -boot_image any efi_boot_part=--efi-boot-image \
    2>"$work/grub-mkrescue.log" || { cat "$work/grub-mkrescue.log" >&2; exit 1; }
(cd "$out" && sha256sum conclave.iso >conclave.iso.sha256)
step "done"
echo "image: $out/conclave.iso ($(du -m "$out/conclave.iso" | cut -f1) MiB), packages: $out/manifest.txt"
echo "SHA-256 $(cut -d' ' -f1 "$out/conclave.iso.sha256")  conclave.iso"

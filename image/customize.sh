#!/bin/bash
# mmdebstrap customize hook of image/build.sh:
#   customize.sh ROOTFS CONCLAVE_BINARY OVERLAY_DIR BOOT_CHAIN_DIR
# Installs Conclave and the appliance's files, deletes the network, wireless, Bluetooth and sound
# kernel modules and the initramfs DHCP client, rebuilds the initramfs, unpacks Debian's signed
# UEFI boot chain into BOOT_CHAIN_DIR (for the EFI system partition), writes the manifest.
set -euo pipefail
root=$1
bin=$2
overlay=$3
chain=$4
kver=$(ls "$root/lib/modules")

install -m 0755 "$bin" "$root/usr/local/bin/conclave"
cp -a --no-preserve=ownership "$overlay/." "$root/"
chown -R root:root "$root/usr/local" "$root/etc/inittab" "$root/etc/hostname" "$root/etc/udev/rules.d" \
    "$root/etc/conclave" "$root/etc/yubihsm_pkcs11.conf"

# Kernel modules that drive a network of any kind (Ethernet, Wi-Fi, Bluetooth, NFC, InfiniBand,
# ISDN, ATM, CAN, FireWire and Thunderbolt networking, virtual NICs, the protocol modules under
# net/) and sound (microphones and speakers are a channel too). AF_UNIX, IPv4 and IPv6 are built
# into Debian's kernel and stay (loopback only); ipv6.disable=1 is on the kernel command line.
mods=$root/lib/modules/$kver/kernel
rm -rf "$mods/drivers/net" "$mods/net" "$mods/drivers/bluetooth" "$mods/drivers/nfc" \
    "$mods/drivers/infiniband" "$mods/drivers/isdn" "$mods/drivers/atm" "$mods/drivers/staging" \
    "$mods/drivers/net/can" "$mods/drivers/firewire/firewire-net.ko" "$mods/sound" \
    "$mods/drivers/thunderbolt" "$mods/drivers/vhost" "$mods/drivers/hv" "$mods/drivers/ptp" \
    "$mods/drivers/usb/class/cdc-acm.ko" "$mods/drivers/vdpa"
# klibc's ipconfig (a DHCP/BOOTP client used for NFS roots) would be copied into the initramfs.
rm -f "$root/usr/lib/klibc/bin/ipconfig" "$root/usr/lib/klibc/bin/nfsmount"
chroot "$root" depmod -a "$kver"

# The appliance's settings.
sed -i 's/^root:[^:]*:/root:!:/' "$root/etc/shadow"   # no password can unlock root
echo "127.0.0.1 localhost conclave" >"$root/etc/hosts"
: >"$root/etc/motd"
ln -sf /proc/mounts "$root/etc/mtab"
chroot "$root" update-initramfs -u -k "$kver"

# Debian's signed UEFI boot chain (Secure Boot): shim signed by Microsoft; shim's MOK manager and
# GRUB signed by Debian. Downloaded by the root filesystem's apt (the same mirror, at the same
# moment) and unpacked for build.sh's EFI system partition; not installed: the appliance needs
# the files on the medium, not grub-install or mokutil in its root filesystem.
rm -rf "$root/tmp/boot-chain"
mkdir -p "$root/tmp/boot-chain" "$chain"
chroot "$root" sh -c 'cd /tmp/boot-chain && apt-get -q -o APT::Sandbox::User=root download shim-signed shim-helpers-amd64-signed grub-efi-amd64-signed'
for deb in "$root"/tmp/boot-chain/*.deb; do
    dpkg-deb -x "$deb" "$chain"
done

# The exact package list, in the image and beside it: the root filesystem's packages and the boot
# chain's (on the EFI system partition only).
mkdir -p "$root/usr/share/conclave"
{
    dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Package}\t${Version}\t${Architecture}\n'
    for deb in "$root"/tmp/boot-chain/*.deb; do
        dpkg-deb --show --showformat='${Package}\t${Version}\t${Architecture}\n' "$deb"
    done
} | LC_ALL=C sort >"$root/usr/share/conclave/manifest.txt"
rm -rf "$root/tmp/boot-chain"
{
    echo "conclave	$("$bin" --version | awk '{print $2}')	sha256:$(sha256sum "$bin" | cut -d' ' -f1)"
} >"$root/usr/share/conclave/conclave.txt"
# Files that differ on every build for no reason.
rm -f "$root/etc/machine-id" "$root/var/lib/dbus/machine-id" "$root/var/cache/ldconfig/aux-cache" \
    "$root/var/log/"*.log "$root/var/log/apt/"* "$root/var/cache/debconf/"*-old "$root/var/lib/dpkg/"*-old
: >"$root/etc/machine-id"

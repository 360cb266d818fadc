#!/usr/bin/env bash
# Builds the test VM's image: a minimal Debian bookworm with its stock kernel
# and systemd (cgroup v2 only, as every Debian 12 host), no network, and a
# oneshot unit that runs /payload/guest-run.sh at boot and powers off.
#   scripts/vm/build-image.sh OUT_DIR
# OUT_DIR gets root.img (ext4, booted with snapshot=on so runs never change
# it), vmlinuz and initrd.img. scripts/test-vm.sh caches OUT_DIR under
# .build/vm/ keyed by a hash of this file: change the recipe here only.
# Needs root (debootstrap), debootstrap and e2fsprogs (mkfs.ext4 -d: no loop
# device or mount is needed).
set -euo pipefail
out=${1:?usage: build-image.sh OUT_DIR}
[ "$(id -u)" -eq 0 ] || { echo "build-image: needs root (debootstrap)" >&2; exit 1; }

suite=bookworm
# Packages beyond minbase: the kernel and udev; systemd with logind, the
# system and user dbus (lingering users get their own systemd --user manager
# and session bus, as on a real server: the rootless phase); libseccomp2
# (conductor links it); e2fsprogs/xfsprogs (the workspace quota tests format
# loop images); python3 (execute_code's Python: the engine tests run it, and
# the sandbox tests' root holds it); git and curl (MCP_CONDUCTOR_TOOLS: the
# sandbox tests' root holds them, TestSecretsReachTools runs curl).
include=systemd-sysv,linux-image-amd64,udev,kmod,dbus,dbus-user-session,libpam-systemd,libseccomp2,ca-certificates,iproute2,e2fsprogs,xfsprogs,python3,git,curl
size=4G

# The mirror this machine's apt uses for the suite (VM_MIRROR overrides).
mirror=${VM_MIRROR:-}
if [ -z "$mirror" ] && command -v apt-get >/dev/null; then
  # shellcheck disable=SC2016 # apt's own $(FIELD) syntax
  mirror=$(apt-get indextargets --format '$(RELEASE) $(REPO_URI) $(IDENTIFIER)' 2>/dev/null |
    awk -v s="$suite" '$1 == s && $3 == "Packages" { print $2; exit }')
fi
mirror=${mirror:-http://deb.debian.org/debian/}

mkdir -p "$out"
root=$(mktemp -d "$out/root.XXXXXX")
chmod 0755 "$root"
# debootstrap mounts /proc and /sys in the root while it works: an
# interrupted build must unmount them, never delete through them.
cleanup() {
  awk -v r="$root/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r | xargs -r umount -l
  rm -rf --one-file-system "$root"
}
trap cleanup EXIT
echo "build-image: debootstrap $suite from $mirror"
debootstrap --variant=minbase --include="$include" "$suite" "$root" "$mirror" > "$out/debootstrap.log" 2>&1 || {
  tail -30 "$out/debootstrap.log" >&2
  exit 1
}

echo conductor-vm > "$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 conductor-vm\n::1 localhost\n' > "$root/etc/hosts"
cat > "$root/etc/fstab" <<'EOF'
/dev/vda  /          ext4  rw,errors=remount-ro  0 1
/dev/vdb  /payload   ext4  ro,nofail             0 0
results   /results   9p    trans=virtio,version=9p2000.L,msize=262144,nofail  0 0
EOF
mkdir -p "$root/payload" "$root/results"

# Nothing but the test runs: no timers, no login prompt on the console.
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
  fstrim.timer serial-getty@ttyS0.service getty@tty1.service; do
  ln -sf /dev/null "$root/etc/systemd/system/$u"
done

cat > "$root/etc/systemd/system/conductor-vm-test.service" <<'EOF'
[Unit]
Description=conductor test-vm: run /payload/guest-run.sh, then power off
Wants=payload.mount results.mount
After=payload.mount results.mount local-fs.target remote-fs.target dbus.service systemd-logind.service systemd-user-sessions.service
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=oneshot
# A missing disk or share must end the VM at once, not leave it idle until
# the host's timeout: so Wants= above, not Requires=, and this check.
ExecStart=/bin/sh -c 'for m in /payload /results; do mountpoint -q $$m || { echo "test-vm: $$m is not mounted"; exit 1; }; done; exec /payload/guest-run.sh'
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=infinity
EOF
mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
ln -sf ../conductor-vm-test.service "$root/etc/systemd/system/multi-user.target.wants/conductor-vm-test.service"

cp "$root"/boot/vmlinuz-* "$out/vmlinuz"
cp "$root"/boot/initrd.img-* "$out/initrd.img"
chmod 0644 "$out/vmlinuz" "$out/initrd.img"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*

rm -f "$out/root.img"
mkfs.ext4 -q -F -L conductor-vm -d "$root" "$out/root.img" "$size" >/dev/null
chmod 0444 "$out/root.img"
echo "build-image: $out/root.img ($(du -h --apparent-size "$out/root.img" | cut -f1), $(du -h "$out/root.img" | cut -f1) used)"

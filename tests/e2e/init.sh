#!/bin/sh
# /init of the e2e guest (busybox): load virtio-blk, then run the scenario
# named by e2emode= on the kernel command line.  Every line the host waits
# for starts with "E2E-"; the host reads them from the serial console.
export PATH=/bin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /tmp
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk; do
    insmod /lib/modules/$m.ko || echo "E2E-FAIL insmod $m"
done
n=0
while [ ! -b /dev/vda ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done
[ -b /dev/vda ] || { echo "E2E-FAIL no /dev/vda"; poweroff -f; }
mode=$(sed -n 's/.*e2emode=\([a-z0-9-]*\).*/\1/p' /proc/cmdline)
echo "E2E-READY $mode"

drop() { echo 3 > /proc/sys/vm/drop_caches; }
memtotal() { awk '/^MemTotal/ { print $2 }' /proc/meminfo; }

# Pattern (/pattern, 1 MiB) at 4 KiB block $1 with O_DIRECT, read back
# with O_DIRECT and buffered after dropping caches; prints $2-OK or $2-FAIL.
pattern_io() {
    dd if=/pattern of=/dev/vda bs=4096 seek=$1 oflag=direct conv=notrunc,fsync 2>/tmp/err ||
        { echo "$2-FAIL write: $(cat /tmp/err)"; return; }
    drop
    dd if=/dev/vda of=/tmp/back bs=4096 skip=$1 count=256 iflag=direct 2>/tmp/err ||
        { echo "$2-FAIL direct read: $(cat /tmp/err)"; return; }
    cmp /pattern /tmp/back || { echo "$2-FAIL direct read differs"; return; }
    drop
    dd if=/dev/vda of=/tmp/back bs=4096 skip=$1 count=256 2>/tmp/err ||
        { echo "$2-FAIL buffered read: $(cat /tmp/err)"; return; }
    cmp /pattern /tmp/back || { echo "$2-FAIL buffered read differs"; return; }
    rm -f /tmp/back
    echo "$2-OK"
}

case "$mode" in
io)
    pattern_io 256 E2E-IO
    # one O_DIRECT read from each vCPU: blk-mq sends it down that CPU's queue
    for c in 0 1; do
        [ -d /sys/devices/system/cpu/cpu$c ] || continue
        taskset -c $c dd if=/dev/vda of=/dev/null bs=4096 count=16 iflag=direct 2>/dev/null ||
            echo "E2E-IO-FAIL read on cpu $c"
    done
    echo "E2E-SERIAL $(cat /sys/block/vda/serial)"
    echo "E2E-SIZE $(cat /sys/block/vda/size)"
    sync
    blockdev --flushbufs /dev/vda
    ;;
ro)
    n=0
    while [ ! -b /dev/vdb ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done
    for d in vda vdb; do
        echo "E2E-RO-FLAG $d $(cat /sys/block/$d/ro)"
        dd if=/dev/$d of=/tmp/back bs=4096 skip=256 count=256 iflag=direct 2>/dev/null &&
            cmp /pattern /tmp/back && echo "E2E-RO-READ-OK $d"
        if dd if=/dev/zero of=/dev/$d bs=4096 seek=256 count=1 oflag=direct conv=notrunc 2>/tmp/err; then
            echo "E2E-RO-WRITE-ACCEPTED $d"
        else
            echo "E2E-RO-WRITE-REFUSED $d $(head -1 /tmp/err)"
        fi
    done
    ;;
migrate)
    # background: buffered reads of 8 MiB of the disk (fresh page-cache pages
    # the back-end fills), page cache dropped every pass; paced, so that the
    # migration converges in a few rounds even on a slow host
    ( while :; do
        drop
        dd if=/dev/vda of=/dev/null bs=65536 count=128 2>/dev/null
        sleep 0.2
    done ) &
    # foreground: rewrite blocks with O_DIRECT and verify them
    i=0
    while :; do
        blk=$(( (i * 8) % 1024 ))
        dd if=/dev/urandom of=/tmp/b bs=4096 count=8 2>/dev/null
        dd if=/tmp/b of=/dev/vda bs=4096 seek=$blk oflag=direct conv=notrunc 2>/dev/null ||
            echo "E2E-VERIFY-FAIL write $i"
        dd if=/dev/vda of=/tmp/c bs=4096 skip=$blk count=8 iflag=direct 2>/dev/null ||
            echo "E2E-VERIFY-FAIL read $i"
        cmp -s /tmp/b /tmp/c || echo "E2E-VERIFY-FAIL differs $i"
        i=$((i + 1))
        [ $((i % 10)) = 0 ] && echo "E2E-PROGRESS $i"
    done
    ;;
hotplug)
    t0=$(memtotal)
    echo "E2E-HP-WAIT $t0"
    n=0
    while [ "$(memtotal)" -le "$t0" ] && [ $n -lt 1200 ]; do sleep 0.1; n=$((n + 1)); done
    t1=$(memtotal)
    [ "$t1" -gt "$t0" ] && echo "E2E-HP-ONLINE $t1" || echo "E2E-HP-FAIL no memory came ($t1)"
    pattern_io 512 E2E-HP-IO
    echo "E2E-HP-UNPLUG-WAIT"
    n=0
    while [ "$(memtotal)" -gt "$t0" ] && [ $n -lt 1200 ]; do sleep 0.1; n=$((n + 1)); done
    t2=$(memtotal)
    [ "$t2" -le "$t0" ] && echo "E2E-HP-OFFLINE $t2" || echo "E2E-HP-FAIL memory stayed ($t2)"
    pattern_io 768 E2E-HP-IO2
    ;;
*)
    echo "E2E-FAIL unknown mode '$mode'"
    ;;
esac
echo "E2E-DONE"
poweroff -f

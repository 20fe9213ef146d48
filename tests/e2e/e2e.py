#!/usr/bin/env python3
"""End-to-end test of vmmem-vhost-user-blk with QEMU (TCG) and a Linux guest.

Run by tests/e2e/run.sh (which installs QEMU and busybox, fetches the kernel
and builds the back-end); see docs/vhost-user.md.  Prints one line per check
and a closing "N passed, M failed"; exits 1 when any check failed.

Every wait is bounded: a check that cannot finish in time fails with the
reason and the tail of the relevant log, it never hangs the run.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MIB = 1 << 20
RAM = 256 * MIB
PAGE = 4096
PATTERN_BYTES = MIB
VGA_HOLE = (0xA0000, 0x100000)  # left out of the RAM comparison

results = []


def check(name, ok, detail=''):
    results.append((name, ok))
    print('%s %s%s' % ('PASS' if ok else 'FAIL', name, (': ' + detail) if detail else ''),
          flush=True)
    return ok


def tail(path, n=15):
    try:
        with open(path, errors='replace') as f:
            lines = f.read().splitlines()
        return '\n    | '.join([''] + lines[-n:])
    except OSError:
        return ' (no log)'


def pattern():
    """1 MiB of deterministic bytes (a xorshift stream)."""
    out = bytearray(PATTERN_BYTES)
    x = 0x9E3779B97F4A7C15
    for i in range(0, PATTERN_BYTES, 8):
        x ^= (x << 13) & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 7
        x ^= (x << 17) & 0xFFFFFFFFFFFFFFFF
        out[i:i + 8] = x.to_bytes(8, 'little')
    return bytes(out)


# ---- initramfs (newc cpio, uncompressed) -------------------------------------------

def cpio_newc(entries):
    """entries: (name, mode, data or None for a directory)."""
    out = bytearray()
    ino = 1
    for name, mode, data in entries + [('TRAILER!!!', 0, b'')]:
        data = data or b''
        nm = name.encode() + b'\0'
        hdr = '070701' + ''.join('%08x' % v for v in (
            ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(nm), 0))
        out += hdr.encode() + nm
        out += b'\0' * ((4 - len(out) % 4) % 4)
        out += data
        out += b'\0' * ((4 - len(out) % 4) % 4)
        ino += 1
    return bytes(out)


def build_initramfs(kroot, busybox, out_path, pat):
    mods = ['virtio_ring', 'virtio', 'virtio_pci_modern_dev', 'virtio_pci_legacy_dev',
            'virtio_pci', 'virtio_blk']
    found = {}
    for dirpath, _, files in os.walk(os.path.join(kroot, 'lib', 'modules')):
        for f in files:
            base = f.split('.ko')[0]
            if base in mods and f.endswith('.ko'):
                found[base] = os.path.join(dirpath, f)
    missing = [m for m in mods if m not in found]
    if missing:
        raise RuntimeError('kernel package has no %s (compressed modules are not handled)'
                           % ', '.join(missing))
    d, x, r = 0o040755, 0o100755, 0o100644
    entries = [('bin', d, None), ('dev', d, None), ('proc', d, None), ('sys', d, None),
               ('tmp', d, None), ('lib', d, None), ('lib/modules', d, None),
               ('bin/busybox', x, open(busybox, 'rb').read()),
               ('bin/sh', 0o120777, b'busybox'),
               ('init', x, open(os.path.join(HERE, 'init.sh'), 'rb').read()),
               ('pattern', r, pat)]
    for m in mods:
        entries.append(('lib/modules/%s.ko' % m, r, open(found[m], 'rb').read()))
    with open(out_path, 'wb') as f:
        f.write(cpio_newc(entries))


# ---- processes ----------------------------------------------------------------------

def wait_for(pred, timeout, step=0.2):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


class Backend:
    def __init__(self, cfg, name, image, extra=(), trace=None):
        self.sock = os.path.join(cfg.work, name + '.sock')
        self.log = os.path.join(cfg.work, name + '-backend.log')
        self.cmd = [cfg.backend, '--socket', self.sock, '--image', image,
                    '--serial', 'vmmem-e2e-serial'] + list(extra)
        env = dict(os.environ, VMMEM_PLUGIN_PATH=cfg.plugins)
        if trace:  # every guest range the back-end writes (docs/vhost-user.md)
            if os.path.exists(trace):
                os.unlink(trace)
            env['VMMEM_VUBLK_TRACE'] = trace
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        self.p = subprocess.Popen(self.cmd, stdout=open(self.log, 'w'), stderr=subprocess.STDOUT,
                                  env=env)
        ok = wait_for(lambda: os.path.exists(self.sock) or self.p.poll() is not None, 30)
        if not os.path.exists(self.sock):
            raise RuntimeError('back-end did not listen:' + tail(self.log))

    def text(self):
        with open(self.log, errors='replace') as f:
            return f.read()

    def wait(self, timeout):
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            if self.wait(20) is None:
                self.p.kill()
                self.p.wait()
        return self.p.returncode


class Qemu:
    def __init__(self, cfg, name, backends, mode, hotplug=False, incoming=None, queues=1):
        if isinstance(backends, Backend):
            backends = [backends]
        self.serial = os.path.join(cfg.work, name + '-serial.log')
        self.errlog = os.path.join(cfg.work, name + '-qemu.log')
        self.qmp_path = os.path.join(cfg.work, name + '.qmp')
        for p in (self.serial, self.qmp_path):
            if os.path.exists(p):
                os.unlink(p)
        mem = '256M,slots=2,maxmem=1G' if hotplug else '256M'
        append = ('console=ttyS0 panic=-1 e2emode=%s init_on_alloc=0 init_on_free=0 '
                  'memhp_default_state=online_movable' % mode)
        cmd = [cfg.qemu, '-machine', 'q35,accel=tcg,memory-backend=mem', '-cpu', 'max',
               '-smp', str(queues), '-m', mem,
               '-object', 'memory-backend-memfd,id=mem,size=256M,share=on',
               '-kernel', cfg.kernel, '-initrd', cfg.initrd, '-append', append]
        for i, be in enumerate(backends):
            cmd += ['-chardev', 'socket,id=vub%d,path=%s' % (i, be.sock),
                    '-device', 'vhost-user-blk-pci,chardev=vub%d,num-queues=%d' % (i, queues)]
        cmd += ['-nodefaults', '-display', 'none', '-no-reboot',
               '-serial', 'file:%s' % self.serial,
               '-qmp', 'unix:%s,server=on,wait=off' % self.qmp_path]
        if incoming:
            cmd += ['-S', '-incoming', incoming]
        self.p = subprocess.Popen(cmd, stdout=open(self.errlog, 'w'), stderr=subprocess.STDOUT)
        self.q = None
        self.buf = b''
        if not wait_for(lambda: os.path.exists(self.qmp_path) or self.p.poll() is not None, 60):
            raise RuntimeError('QEMU started no QMP socket:' + tail(self.errlog))
        if self.p.poll() is not None:
            raise RuntimeError('QEMU exited at once:' + tail(self.errlog))
        self.q = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.q.settimeout(60)
        self.q.connect(self.qmp_path)
        self._read()  # greeting
        self.cmd('qmp_capabilities')

    def _read(self):
        while b'\n' not in self.buf:
            chunk = self.q.recv(65536)
            if not chunk:
                raise RuntimeError('QMP connection closed')
            self.buf += chunk
        line, self.buf = self.buf.split(b'\n', 1)
        return json.loads(line)

    def cmd(self, name, **args):
        self.q.sendall(json.dumps({'execute': name, 'arguments': args}).encode() + b'\n')
        while True:
            r = self._read()
            if 'event' in r:
                continue
            if 'error' in r:
                raise RuntimeError('QMP %s: %s' % (name, r['error'].get('desc')))
            return r.get('return')

    def serial_text(self):
        try:
            with open(self.serial, errors='replace') as f:
                return f.read()
        except OSError:
            return ''

    def wait_serial(self, regex, timeout):
        """The first match of regex in the serial log, or raise with the reason."""
        rx = re.compile(regex)
        end = time.monotonic() + timeout
        while True:
            t = self.serial_text()
            m = rx.search(t)
            if m:
                return m
            if 'E2E-FAIL' in t:
                raise RuntimeError('guest failed:' + tail(self.serial))
            if self.p.poll() is not None:
                raise RuntimeError('QEMU exited (%d) before "%s":%s%s' % (
                    self.p.returncode, regex, tail(self.serial), tail(self.errlog, 5)))
            if time.monotonic() > end:
                raise RuntimeError('no "%s" within %d s:%s' % (regex, timeout, tail(self.serial)))
            time.sleep(0.2)

    def wait_exit(self, timeout):
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.q is not None:
            try:
                self.q.close()
            except OSError:
                pass
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def quit_qemu(vm):
    try:
        vm.cmd('quit')
    except Exception:
        pass
    if vm.wait_exit(30) is None:
        vm.kill()
    vm.kill()


# ---- checks -------------------------------------------------------------------------

def new_image(cfg, name, mib, fill=None):
    path = os.path.join(cfg.work, name + '.img')
    with open(path, 'wb') as f:
        f.truncate(mib * MIB)
        if fill:
            for off, data in fill:
                f.seek(off)
                f.write(data)
    return path


def run_io(cfg, pat):
    img = new_image(cfg, 'io', 16)
    be = Backend(cfg, 'io', img, ['--queues', '2'])
    vm = None
    try:
        vm = Qemu(cfg, 'io', be, 'io', queues=2)
        vm.wait_serial(r'E2E-DONE', cfg.boot_timeout)
        t = vm.serial_text()
        check('io: O_DIRECT write, O_DIRECT and buffered read back in the guest',
              'E2E-IO-OK' in t, re.search(r'E2E-IO-\S+.*', t).group(0) if 'E2E-IO' in t else
              'no result' + tail(vm.serial))
        m = re.search(r'E2E-SERIAL (\S*)', t)
        check('io: GET_ID serial in the guest', m is not None and m.group(1) == 'vmmem-e2e-serial',
              m.group(0) if m else 'no serial line')
        m = re.search(r'E2E-SIZE (\d+)', t)
        check('io: capacity in the guest', m is not None and int(m.group(1)) == 16 * MIB // 512,
              m.group(0) if m else 'no size line')
        vm.wait_exit(cfg.boot_timeout)
    except RuntimeError as e:
        check('io: guest run', False, str(e))
    finally:
        if vm:
            vm.kill()
    rc = be.wait(30)
    if rc is None:
        rc = be.stop()
    with open(img, 'rb') as f:
        f.seek(MIB)
        on_disk = f.read(PATTERN_BYTES)
    check('io: the image holds the guest\'s bytes', on_disk == pat,
          'differs' if on_disk != pat else '1 MiB at offset 1 MiB')
    text = be.text()
    m = re.search(r'exit: .*', text)
    stats = m.group(0) if m else ''
    flush = re.search(r'flush (\d+)', stats)
    check('io: back-end exits cleanly when QEMU goes, after IN/OUT/FLUSH/GET_ID requests',
          rc == 0 and flush is not None and int(flush.group(1)) > 0 and
          int(re.search(r'get-id (\d+)', stats).group(1)) > 0, 'exit %s, %s' % (rc, stats))
    per_queue = [int(n) for n in re.findall(r'queue \d+ served (\d+) requests', text)]
    check('io: both queues of a 2-queue device (2 vCPUs) served requests',
          len(per_queue) == 2 and min(per_queue) > 0, 'served per queue: %s' % per_queue)


def run_ro(cfg, pat):
    # vda: --read-only (VIRTIO_BLK_F_RO announced: the guest's kernel refuses
    # writes); vdb: --read-only-silent (writes reach the back-end: I/O errors)
    img = new_image(cfg, 'ro', 16, [(MIB, pat)])
    be = Backend(cfg, 'ro', img, ['--read-only'])
    be2 = Backend(cfg, 'ro-silent', img, ['--read-only', '--read-only-silent'])
    vm = None
    try:
        vm = Qemu(cfg, 'ro', [be, be2], 'ro')
        vm.wait_serial(r'E2E-DONE', cfg.boot_timeout)
        t = vm.serial_text()
        ok = ('E2E-RO-FLAG vda 1' in t and 'E2E-RO-READ-OK vda' in t and
              'E2E-RO-WRITE-REFUSED vda' in t)
        check('read-only: the guest sees a read-only disk, reads it, and its writes fail', ok,
              '; '.join(re.findall(r'E2E-RO-[^\n]*vda[^\n]*', t)))
        ok = ('E2E-RO-FLAG vdb 0' in t and 'E2E-RO-READ-OK vdb' in t and
              re.search(r'E2E-RO-WRITE-REFUSED vdb .*(I/O|Input/output) error', t) is not None)
        check('read-only: writes that reach the back-end fail with an I/O error in the guest',
              ok, '; '.join(re.findall(r'E2E-RO-[^\n]*vdb[^\n]*', t)))
        vm.wait_exit(cfg.boot_timeout)
    except RuntimeError as e:
        check('read-only: guest run', False, str(e))
    finally:
        if vm:
            vm.kill()
    be.stop()
    be2.stop()
    m = re.search(r'ioerr (\d+)', be2.text())
    check('read-only: the back-end answered those writes with VIRTIO_BLK_S_IOERR',
          m is not None and int(m.group(1)) > 0, m.group(0) if m else 'no stats')
    with open(img, 'rb') as f:
        f.seek(MIB)
        check('read-only: the image is unchanged', f.read(PATTERN_BYTES) == pat)


def compare_ram(a_path, b_path):
    """Pages that differ between two pmemsave dumps (the VGA window left out)."""
    diff = []
    with open(a_path, 'rb') as fa, open(b_path, 'rb') as fb:
        a = fa.read()
        b = fb.read()
    if len(a) != len(b):
        return None
    chunk = 64 * PAGE
    for off in range(0, len(a), chunk):
        if a[off:off + chunk] == b[off:off + chunk]:
            continue
        for p in range(off, min(off + chunk, len(a)), PAGE):
            if VGA_HOLE[0] <= p < VGA_HOLE[1]:
                continue
            if a[p:p + PAGE] != b[p:p + PAGE]:
                diff.append(p)
    return diff


def device_pages(trace):
    """Guest pages the back-end wrote after SET_LOG_BASE, until the log was
    detached (its write trace, VMMEM_VUBLK_TRACE)."""
    pages = set()
    logging = False
    try:
        with open(trace) as f:
            for line in f:
                w = line.split()
                if w[:2] == ['LOG', 'requested']:  # SET_LOG_BASE (attached or not)
                    logging = True
                elif w[:2] == ['LOG', 'detached']:
                    logging = False
                elif w and w[0] == 'W' and logging and len(w) >= 3:
                    a, n = int(w[1], 16), int(w[2], 16)
                    for p in range(a // PAGE, (a + n - 1) // PAGE + 1):
                        pages.add(p * PAGE)
    except OSError:
        pass
    return pages


def migrate_once(cfg, tag, skip_marking):
    """Migrate a guest doing I/O.  Returns a dict: log line, differing pages
    (all / written by the back-end while logging / only by the guest CPU),
    and whether the restored guest kept doing I/O.  Raises RuntimeError."""
    img = new_image(cfg, tag, 32)
    state = os.path.join(cfg.work, tag + '.state')
    src_ram = os.path.join(cfg.work, tag + '-src.ram')
    dst_ram = os.path.join(cfg.work, tag + '-dst.ram')
    trace = os.path.join(cfg.work, tag + '-src.trace')
    for p in (state, src_ram, dst_ram):
        if os.path.exists(p):
            os.unlink(p)
    extra = ['--skip-log-marking'] if skip_marking else []
    be = Backend(cfg, tag + '-src', img, extra, trace=trace)
    vm = dst = be2 = None
    r = {}
    try:
        vm = Qemu(cfg, tag + '-src', be, 'migrate')
        vm.wait_serial(r'E2E-PROGRESS 20\b', cfg.boot_timeout)
        vm.cmd('migrate-set-parameters', **{'max-bandwidth': 32 * MIB})
        t0 = time.monotonic()
        vm.cmd('migrate', uri='exec:cat > %s' % state)
        st = wait_for(lambda: (vm.cmd('query-migrate').get('status') in
                               ('completed', 'failed', 'cancelled')) and
                      vm.cmd('query-migrate'), cfg.migrate_timeout, 0.5)
        if not st or st.get('status') != 'completed':
            raise RuntimeError('migration did not complete: %s' % (st or 'timeout'))
        r['seconds'] = time.monotonic() - t0
        r['rounds'] = st.get('ram', {}).get('dirty-sync-count', '?')
        vm.cmd('pmemsave', val=0, size=RAM, filename=src_ram)
        text = be.text()
        m = re.search(r'SET_LOG_BASE.*', text)
        r['log_line'] = m.group(0) if m else None
        r['log_attached'] = m is not None and 'attached' in m.group(0) and 'NOT' not in m.group(0)
        r['src_verify_fail'] = 'E2E-VERIFY-FAIL' in vm.serial_text()
        quit_qemu(vm)
        vm = None
        be.stop()
        be2 = Backend(cfg, tag + '-dst', img)
        dst = Qemu(cfg, tag + '-dst', be2, 'migrate', incoming='exec:cat %s' % state)
        wait_for(lambda: dst.cmd('query-status').get('status') != 'inmigrate',
                 cfg.migrate_timeout, 0.5)
        if dst.cmd('query-status').get('status') == 'inmigrate':
            raise RuntimeError('destination still loading after %d s' % cfg.migrate_timeout)
        dst.cmd('pmemsave', val=0, size=RAM, filename=dst_ram)
        diff = compare_ram(src_ram, dst_ram)
        if diff is None:
            raise RuntimeError('RAM dumps differ in size')
        dev = device_pages(trace)
        r['cpu_detail'] = describe_pages(src_ram, dst_ram, [p for p in diff if p not in dev])
        r['diff'] = diff
        r['dev_diff'] = [p for p in diff if p in dev]
        r['cpu_diff'] = [p for p in diff if p not in dev]
        r['dev_pages'] = len(dev)
        if not skip_marking:
            dst.cmd('cont')
            try:
                seen = dst.wait_serial(r'E2E-PROGRESS (\d+)', cfg.boot_timeout)
                first = int(seen.group(1))
                dst.wait_serial(r'E2E-PROGRESS %d\b' % (first + 20), cfg.boot_timeout)
                t = dst.serial_text()
                m = re.search(r'E2E-VERIFY-FAIL.*', t)
                r['continued'] = m is None and not r['src_verify_fail']
                r['continued_detail'] = ('progress %d -> %d' % (first, first + 20) if m is None
                                         else m.group(0))
            except RuntimeError as e:
                r['continued'] = False
                r['continued_detail'] = str(e)
        return r
    finally:
        for v in (vm, dst):
            if v:
                quit_qemu(v)
        for b in (be, be2):
            if b:
                b.stop()
        for p in (state, src_ram, dst_ram, trace):
            if os.path.exists(p) and not cfg.keep:
                os.unlink(p)


def describe_pages(a_path, b_path, ps):
    """Where each page differs: 'page: N bytes from +off'."""
    out = []
    with open(a_path, 'rb') as fa, open(b_path, 'rb') as fb:
        for p in ps[:4]:
            fa.seek(p)
            fb.seek(p)
            a, b = fa.read(PAGE), fb.read(PAGE)
            offs = [i for i in range(PAGE) if a[i] != b[i]]
            out.append('0x%x: %d bytes from +0x%x' % (p, len(offs), offs[0] if offs else 0))
    return ', '.join(out) + (', ...' if len(ps) > 4 else '')


def pages(ps):
    return ', '.join('0x%x' % p for p in ps[:6]) + (', ...' if len(ps) > 6 else '')


def run_migration(cfg, label, skip_marking):
    """The migration checks.  The comparison that decides is over the pages
    the back-end wrote while the log was attached (its write trace): a
    differing page that only the guest CPU wrote is QEMU's own loss (QEMU 7.2
    under TCG drops guest CPU writes in some migrations, more often on a
    loaded host), not a missing back-end mark.  When that happens the
    restored guest may crash, so the migration is run once more (at most
    twice in all) before the checks are decided."""
    tag = 'mig-skip' if skip_marking else 'mig'
    r = None
    attempts = 3
    for attempt in range(1, attempts + 1):
        try:
            r = migrate_once(cfg, tag, skip_marking)
        except RuntimeError as e:
            check('%s: run' % label, False, str(e))
            return
        if skip_marking or not r['cpu_diff'] or attempt == attempts:
            break
        print('NOTE %s: QEMU lost guest-CPU writes in %d pages (%s; %s sync rounds; no '
              'back-end write among them): a QEMU/TCG loss, migrating again' % (
                  label, len(r['cpu_diff']), r['cpu_detail'], r['rounds']), flush=True)
    info = ('%d differing pages, %d of them written by the back-end while logging '
            '(of %d pages it wrote); migration %.1f s, %s sync rounds%s' % (
                len(r['diff']), len(r['dev_diff']), r['dev_pages'], r['seconds'], r['rounds'],
                (': ' + pages(r['diff'])) if r['diff'] else ''))
    if skip_marking:
        check('%s: with log marking off, pages the back-end wrote must differ' % label,
              len(r['dev_diff']) > 0, info)
        return
    check('%s: SET_LOG_BASE reached the back-end and the log was attached' % label,
          r['log_attached'], r['log_line'] or 'never')
    check('%s: no page the back-end wrote differs between source and destination RAM' % label,
          r['dev_pages'] > 0 and not r['dev_diff'], info)
    check('%s: the restored guest keeps doing I/O and verifying' % label, r['continued'],
          r['continued_detail'] + ('' if not r['cpu_diff'] else
                                   '; QEMU lost guest-CPU writes in every attempt'))


def run_hotplug(cfg, no_slots):
    tag = 'hp-noslots' if no_slots else 'hp'
    label = 'hot-plug (SET_MEM_TABLE, --no-mem-slots)' if no_slots else 'hot-plug (ADD/REM_MEM_REG)'
    img = new_image(cfg, tag, 16)
    be = Backend(cfg, tag, img, ['--no-mem-slots'] if no_slots else [])
    vm = None
    try:
        vm = Qemu(cfg, tag, be, 'hotplug', hotplug=True)
        vm.wait_serial(r'E2E-HP-WAIT', cfg.boot_timeout)
        before = be.text()
        vm.cmd('object-add', **{'qom-type': 'memory-backend-memfd', 'id': 'hp0',
                                'size': 128 * MIB, 'share': True})
        vm.cmd('device_add', driver='pc-dimm', id='dimm0', memdev='hp0')
        vm.wait_serial(r'E2E-HP-IO-(OK|FAIL)', cfg.boot_timeout)
        t = vm.serial_text()
        added = be.text()[len(before):]
        if no_slots:  # a new table holding the DIMM (QEMU merges what it can)
            plug_ok = re.search(r'SET_MEM_TABLE: \d+ regions\n(.*region gpa.*\n)*'
                                r'.*region gpa 0x\w+ size 0x8000000', added) is not None
        else:
            plug_ok = re.search(r'ADD_MEM_REG: gpa 0x\w+ size 0x8000000', added) is not None
        check('%s: the new DIMM reaches the back-end' % label, plug_ok,
              '; '.join(l.split('vhost-user-blk: ')[-1] for l in added.splitlines()
                        if 'MEM' in l)[:300])
        check('%s: the guest onlines it and I/O passes' % label,
              'E2E-HP-ONLINE' in t and 'E2E-HP-IO-OK' in t,
              '; '.join(re.findall(r'E2E-HP-(?:ONLINE|IO)[^\n]*', t)))
        mid = be.text()
        vm.cmd('device_del', id='dimm0')
        vm.wait_serial(r'E2E-DONE', cfg.boot_timeout)
        def table_without_dimm(text):
            tables = text.split('SET_MEM_TABLE:')[1:]
            return bool(tables) and 'size 0x8000000' not in tables[-1]
        wait_for(lambda: ('REM_MEM_REG' in be.text()[len(mid):]) or
                 table_without_dimm(be.text()[len(mid):]), 30)
        removed = be.text()[len(mid):]
        t = vm.serial_text()
        if no_slots:
            unplug_ok = table_without_dimm(removed)
        else:
            unplug_ok = re.search(r'REM_MEM_REG: gpa 0x\w+ size 0x8000000', removed) is not None
        check('%s: device_del removes it from the back-end, I/O still passes' % label,
              unplug_ok and 'E2E-HP-OFFLINE' in t and 'E2E-HP-IO2-OK' in t,
              '; '.join(re.findall(r'E2E-HP-(?:OFFLINE|IO2|FAIL)[^\n]*', t)) +
              ('' if unplug_ok else '; back-end saw no removal'))
        vm.wait_exit(cfg.boot_timeout)
    except RuntimeError as e:
        check('%s: run' % label, False, str(e))
    finally:
        if vm:
            vm.kill()
        be.stop()


def run_hostile(cfg):
    img = new_image(cfg, 'hostile', 4)
    env = dict(os.environ, VMMEM_PLUGIN_PATH=cfg.asan_plugins or cfg.plugins,
               ASAN_OPTIONS='detect_leaks=1:abort_on_error=0:exitcode=66',
               UBSAN_OPTIONS='print_stacktrace=1:halt_on_error=1:exitcode=66')
    sock = os.path.join(cfg.work, 'hostile.sock')
    log = os.path.join(cfg.work, 'hostile-backend.log')
    binary = cfg.asan_backend or cfg.backend
    p = subprocess.Popen([binary, '--socket', sock, '--image', img, '--reconnect',
                          '--serial', 'vmmem-e2e-serial'],
                         stdout=open(log, 'w'), stderr=subprocess.STDOUT, env=env)
    try:
        if not wait_for(lambda: os.path.exists(sock) or p.poll() is not None, 30) or \
                p.poll() is not None:
            check('hostile: back-end starts', False, tail(log))
            return
        sys.path.insert(0, HERE)
        import hostile
        for name, ok, detail in hostile.run(sock, p.pid, img):
            check('hostile: ' + name, ok, detail)
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = p.wait()
        text = open(log, errors='replace').read()
        san = re.search(r'(ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error).*', text)
        check('hostile: back-end survives, exits 0 on SIGTERM%s' %
              (' with no ASan/UBSan/LSan report' if cfg.asan_backend else ' (no ASan build)'),
              rc == 0 and san is None, 'exit %s%s' % (rc, (', ' + san.group(0)) if san else ''))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--backend', required=True)
    ap.add_argument('--asan-backend')
    ap.add_argument('--plugins', required=True)
    ap.add_argument('--asan-plugins')
    ap.add_argument('--kernel-root', required=True, help='the unpacked kernel package')
    ap.add_argument('--busybox', default='/bin/busybox')
    ap.add_argument('--qemu', default='qemu-system-x86_64')
    ap.add_argument('--work', required=True)
    ap.add_argument('--only', help='comma-separated: io,ro,migrate,sensitivity,hotplug,hostile')
    ap.add_argument('--repeat', type=int, default=1, help='migration runs (to measure)')
    ap.add_argument('--keep', action='store_true', help='keep RAM dumps')
    ap.add_argument('--boot-timeout', type=int, default=120)
    ap.add_argument('--migrate-timeout', type=int, default=120)
    cfg = ap.parse_args()
    os.makedirs(cfg.work, exist_ok=True)
    boot = os.path.join(cfg.kernel_root, 'boot')
    kernels = sorted(f for f in os.listdir(boot) if f.startswith('vmlinuz-'))
    if not kernels:
        print('FAIL setup: no vmlinuz in %s' % boot)
        return 1
    cfg.kernel = os.path.join(boot, kernels[-1])
    cfg.initrd = os.path.join(cfg.work, 'initramfs.cpio')
    pat = pattern()
    build_initramfs(cfg.kernel_root, cfg.busybox, cfg.initrd, pat)
    only = set(cfg.only.split(',')) if cfg.only else {'io', 'ro', 'migrate', 'sensitivity',
                                                      'hotplug', 'hostile'}
    t0 = time.monotonic()
    if 'io' in only:
        run_io(cfg, pat)
    if 'ro' in only:
        run_ro(cfg, pat)
    for _ in range(cfg.repeat):
        if 'migrate' in only:
            run_migration(cfg, 'migration', False)
        if 'sensitivity' in only:
            run_migration(cfg, 'migration sensitivity (--skip-log-marking)', True)
    if 'hotplug' in only:
        run_hotplug(cfg, False)
        run_hotplug(cfg, True)
    if 'hostile' in only:
        run_hostile(cfg)
    passed = sum(1 for _, ok in results if ok)
    failed = len(results) - passed
    print('%d passed, %d failed (%.0f s)' % (passed, failed, time.monotonic() - t0), flush=True)
    return 1 if failed or not results else 0


if __name__ == '__main__':
    sys.exit(main())

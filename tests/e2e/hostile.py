"""A hostile vhost-user front-end (Python standard library only).

Connects to a vmmem-vhost-user-blk started with --reconnect and sends broken
framing, malformed messages and malformed virtqueue chains.  The back-end
must answer (an error reply when REPLY_ACK asks for one) or drop the
connection, never crash, never leak a file descriptor, and complete every
malformed chain with VIRTIO_BLK_S_IOERR (or used length 0) without
following it.  run() returns (name, ok, detail) tuples, one per check.
"""
import array
import mmap
import os
import socket
import struct
import time

HDR = struct.Struct('<III')
V1, REPLY, NEED_REPLY = 0x1, 0x4, 0x8
(GET_FEATURES, SET_FEATURES, SET_OWNER, SET_MEM_TABLE, SET_LOG_BASE, SET_VRING_NUM,
 SET_VRING_ADDR, SET_VRING_BASE, GET_VRING_BASE, SET_VRING_KICK, SET_VRING_CALL,
 GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES, SET_VRING_ENABLE, GET_CONFIG, ADD_MEM_REG,
 REM_MEM_REG) = (1, 2, 3, 5, 6, 8, 9, 10, 11, 12, 13, 15, 16, 18, 24, 37, 38)
F_PROTOCOL = 1 << 30
F_VERSION_1 = 1 << 32
F_EVENT_IDX = 1 << 29
PF_REPLY_ACK = 1 << 3
PF_LOG_SHMFD = 1 << 1
PF_CONFIG = 1 << 9
PF_MEM_SLOTS = 1 << 15

GUEST = 1 << 20  # guest memory: one memfd region at gpa 0
UA = 0x7F0000000000  # its made-up front-end user address
NUM = 32
DESC, AVAIL, USED = 0x1000, 0x2000, 0x3000
SERIAL = b'vmmem-e2e-serial'


class Conn:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(10)
        self.s.connect(path)

    def send(self, req, payload=b'', fds=(), flags=V1, size=None):
        data = HDR.pack(req, flags, len(payload) if size is None else size) + payload
        if fds:
            self.s.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                     array.array('i', fds))])
        else:
            self.s.sendall(data)

    def _exact(self, n):
        out = b''
        while len(out) < n:
            c = self.s.recv(n - len(out))
            if not c:
                return None
            out += c
        return out

    def recv(self):
        """(request, flags, payload), or None when the back-end closed."""
        try:
            h = self._exact(12)
            if h is None:
                return None
            req, flags, size = HDR.unpack(h)
            p = self._exact(size) if size else b''
            return None if p is None else (req, flags, p)
        except (socket.timeout, ConnectionResetError):
            return None

    def ask(self, req, payload=b'', fds=()):
        """Send with NEED_REPLY; the reply's u64 (0 = success) or None."""
        self.send(req, payload, fds, V1 | NEED_REPLY)
        r = self.recv()
        if r is None or r[0] != req or r[1] != (V1 | REPLY) or len(r[2]) != 8:
            return None
        return struct.unpack('<Q', r[2])[0]

    def get(self, req, payload=b''):
        self.send(req, payload)
        r = self.recv()
        return r

    def closed_by_peer(self, timeout=10):
        self.s.settimeout(timeout)
        try:
            while True:
                c = self.s.recv(4096)
                if not c:
                    return True
        except (socket.timeout, BlockingIOError):
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True

    def close(self):
        self.s.close()


def count_fds(pid):
    try:
        return len(os.listdir('/proc/%d/fd' % pid))
    except OSError:
        return -1


def alive(path):
    """A fresh connection gets a sane GET_FEATURES reply."""
    try:
        c = Conn(path)
        r = c.get(GET_FEATURES)
        c.close()
        return r is not None and r[0] == GET_FEATURES and len(r[2]) == 8
    except OSError:
        return False


def memfd(size, name='hostile'):
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    os.ftruncate(fd, size)
    return fd


def region(gpa, size, ua, off):
    return struct.pack('<QQQQ', gpa, size, ua, off)


def negotiate(c):
    r = c.get(GET_FEATURES)
    feats = struct.unpack('<Q', r[2])[0]
    c.send(SET_OWNER)
    c.send(SET_FEATURES, struct.pack('<Q', feats & (F_PROTOCOL | F_VERSION_1 | F_EVENT_IDX)))
    r = c.get(GET_PROTOCOL_FEATURES)
    pf = struct.unpack('<Q', r[2])[0]
    c.send(SET_PROTOCOL_FEATURES,
           struct.pack('<Q', pf & (PF_REPLY_ACK | PF_LOG_SHMFD | PF_CONFIG | PF_MEM_SLOTS)))
    return feats


# ---- broken framing: each in its own connection --------------------------------------

def framing_cases(path):
    out = []

    def case(name, fn, want_drop):
        c = Conn(path)
        try:
            fn(c)
            dropped = c.closed_by_peer(10) if want_drop else True
        finally:
            c.close()
        ok = dropped and alive(path)
        out.append(('framing: ' + name, ok, 'dropped, back-end alive' if ok else
                    ('not dropped' if not dropped else 'back-end not answering')))

    def short_header(c):
        c.s.sendall(b'\x01\x00\x00\x00\x01')
        c.s.shutdown(socket.SHUT_WR)
    case('short header then EOF', short_header, True)
    case('size past any payload (1 MiB)',
         lambda c: c.send(GET_FEATURES, b'', size=1 << 20), True)

    def truncated(c):
        c.send(SET_VRING_ADDR, b'\0' * 10, size=40)
        c.s.shutdown(socket.SHUT_WR)
    case('payload shorter than its size, then EOF', truncated, True)
    case('bad version bits', lambda c: c.send(GET_FEATURES, flags=0x2), True)

    def many_fds(c):
        fds = [memfd(4096) for _ in range(12)]
        try:
            c.send(SET_MEM_TABLE, struct.pack('<II', 1, 0) + region(0, 4096, UA, 0), fds)
        finally:
            for f in fds:
                os.close(f)
    case('12 file descriptors on one message', many_fds, True)
    return out


# ---- malformed messages: one connection, REPLY_ACK ----------------------------------

def message_cases(c, mem_fd):
    out = []

    def want_error(name, req, payload=b'', fds=()):
        v = c.ask(req, payload, fds)
        out.append(('message: ' + name, v is not None and v != 0,
                    'error reply %s' % v if v else ('success?!' if v == 0 else 'no reply')))

    tbl = lambda n, regs: struct.pack('<II', n, 0) + b''.join(regs)
    want_error('unknown request 99', 99)
    want_error('SET_FEATURES with a bit never offered', SET_FEATURES, struct.pack('<Q', 1 << 63))
    want_error('SET_VRING_NUM on queue 5 of 1', SET_VRING_NUM, struct.pack('<II', 5, 8))
    want_error('SET_VRING_NUM of 3 (not a power of two)', SET_VRING_NUM, struct.pack('<II', 0, 3))
    want_error('SET_VRING_NUM of 65536', SET_VRING_NUM, struct.pack('<II', 0, 65536))
    want_error('SET_MEM_TABLE with 9 regions', SET_MEM_TABLE,
               tbl(9, [region(i << 20, 4096, UA + (i << 20), 0) for i in range(9)]))
    want_error('SET_MEM_TABLE: 1 region, no fd', SET_MEM_TABLE, tbl(1, [region(0, GUEST, UA, 0)]))
    want_error('SET_MEM_TABLE: payload shorter than its regions', SET_MEM_TABLE,
               struct.pack('<II', 1, 0) + b'\0' * 16, [mem_fd])
    want_error('SET_MEM_TABLE: region of size 0', SET_MEM_TABLE,
               tbl(1, [region(0, 0, UA, 0)]), [mem_fd])
    want_error('SET_MEM_TABLE: overlapping regions', SET_MEM_TABLE,
               tbl(2, [region(0, GUEST, UA, 0), region(4096, 4096, UA + GUEST, 0)]),
               [mem_fd, mem_fd])
    want_error('SET_MEM_TABLE: offset past the end of the fd', SET_MEM_TABLE,
               tbl(1, [region(0, GUEST, UA, GUEST)]), [mem_fd])
    want_error('SET_MEM_TABLE: gpa + size past 2^64', SET_MEM_TABLE,
               tbl(1, [region((1 << 64) - 4096, GUEST, UA, 0)]), [mem_fd])
    want_error('ADD_MEM_REG without an fd', ADD_MEM_REG,
               struct.pack('<Q', 0) + region(0, GUEST, UA, 0))
    want_error('REM_MEM_REG of a region never added', REM_MEM_REG,
               struct.pack('<Q', 0) + region(1 << 30, GUEST, UA, 0))
    want_error('SET_VRING_KICK on queue 200', SET_VRING_KICK, struct.pack('<Q', 200), [mem_fd])
    want_error('SET_VRING_KICK with no fd (polling)', SET_VRING_KICK, struct.pack('<Q', 0x100))
    # GET_* with a wrong payload: an empty reply (the error form), no crash
    r = c.get(GET_CONFIG, struct.pack('<III', 0, 300, 0) + b'\0' * 300)
    out.append(('message: GET_CONFIG of 300 bytes', r is not None and r[2] == b'',
                'empty reply' if r is not None and r[2] == b'' else 'reply %r' % (r,)))
    # SET_LOG_BASE is always answered: 0 when the log cannot be mapped
    rp, wp = os.pipe()
    try:
        c.send(SET_LOG_BASE, struct.pack('<QQ', 4096, 0), [rp])
        r = c.recv()
    finally:
        os.close(rp)
        os.close(wp)
    out.append(('message: SET_LOG_BASE with a pipe for a log',
                r is not None and r[0] == SET_LOG_BASE and r[2] == struct.pack('<Q', 0),
                'answered 0' if r and r[2] == struct.pack('<Q', 0) else 'reply %r' % (r,)))
    return out


# ---- virtqueue with malformed chains --------------------------------------------------

class Guest:
    def __init__(self, fd):
        self.m = mmap.mmap(fd, GUEST)

    def put(self, addr, data):
        self.m[addr:addr + len(data)] = data

    def desc(self, table, i, addr, length, flags, nxt=0):
        self.put(table + 16 * i, struct.pack('<QIHH', addr, length, flags, nxt))

    def hdr(self, addr, typ, sector):
        self.put(addr, struct.pack('<IIQ', typ, 0, sector))

    def u8(self, addr):
        return self.m[addr]

    def u16(self, addr):
        return struct.unpack('<H', self.m[addr:addr + 2])[0]

    def used(self, i):
        off = USED + 4 + 8 * (i % NUM)
        return struct.unpack('<II', self.m[off:off + 8])


def queue_cases(c, g, mem_fd, image):
    out = []
    N, W, I = 1, 2, 4
    IN, OUT, GET_ID = 0, 1, 8
    g.put(0x12000, b'\xff' * 0x1000)  # status bytes preset to 0xff
    # r0: GET_ID, direct
    g.hdr(0x10000, GET_ID, 0)
    g.desc(DESC, 0, 0x10000, 16, N, 1)
    g.desc(DESC, 1, 0x11000, 20, W | N, 2)
    g.desc(DESC, 2, 0x12000, 1, W)
    # r1: a loop 4 -> 5 -> 4 (writable)
    g.hdr(0x10100, IN, 0)
    g.desc(DESC, 3, 0x10100, 16, N, 4)
    g.desc(DESC, 4, 0x12100, 1, W | N, 5)
    g.desc(DESC, 5, 0x12101, 1, W | N, 4)
    # r2: next index past the table
    g.hdr(0x10200, IN, 0)
    g.desc(DESC, 6, 0x10200, 16, N, 40)
    # r3: a buffer past guest memory
    g.hdr(0x10300, IN, 0)
    g.desc(DESC, 7, 0x10300, 16, N, 8)
    g.desc(DESC, 8, 0xFFFF0000, 512, W | N, 9)
    g.desc(DESC, 9, 0x12300, 1, W)
    # r4: an indirect table holding an indirect descriptor
    g.hdr(0x10400, IN, 0)
    g.desc(DESC, 10, 0x20000, 48, I)
    g.desc(0x20000, 0, 0x10400, 16, N, 1)
    g.desc(0x20000, 1, 0x12400, 1, W | N, 2)
    g.desc(0x20000, 2, 0x20100, 16, I)
    # r5: a read past the end of the disk
    g.hdr(0x10500, IN, 1 << 40)
    g.desc(DESC, 11, 0x10500, 16, N, 12)
    g.desc(DESC, 12, 0x13000, 512, W | N, 13)
    g.desc(DESC, 13, 0x12500, 1, W)
    # r6: an unknown request type
    g.hdr(0x10600, 99, 0)
    g.desc(DESC, 14, 0x10600, 16, N, 15)
    g.desc(DESC, 15, 0x12600, 1, W)
    # r7: OUT of 512 bytes at sector 2 through a proper indirect table
    data = bytes((i * 13 + 7) & 0xFF for i in range(512))
    g.put(0x14000, data)
    g.hdr(0x10700, OUT, 2)
    g.desc(DESC, 16, 0x21000, 48, I)
    g.desc(0x21000, 0, 0x10700, 16, N, 1)
    g.desc(0x21000, 1, 0x14000, 512, N, 2)
    g.desc(0x21000, 2, 0x12700, 1, W)
    # r8: IN of the same sector, direct
    g.hdr(0x10800, IN, 2)
    g.desc(DESC, 17, 0x10800, 16, N, 18)
    g.desc(DESC, 18, 0x15000, 512, W | N, 19)
    g.desc(DESC, 19, 0x12800, 1, W)
    # r9: a readable buffer after a writable one
    g.hdr(0x10900, IN, 0)
    g.desc(DESC, 20, 0x10900, 16, N, 21)
    g.desc(DESC, 21, 0x12900, 1, W | N, 22)
    g.desc(DESC, 22, 0x14000, 16, 0)
    heads = [0, 3, 6, 7, 10, 11, 14, 16, 17, 20]
    for i, h in enumerate(heads):
        g.put(AVAIL + 4 + 2 * i, struct.pack('<H', h))
    g.put(AVAIL, struct.pack('<HH', 0, len(heads)))

    kick_r, kick_w = os.pipe()
    call_r, call_w = os.pipe()
    os.set_blocking(call_r, False)
    ok = (c.ask(SET_VRING_NUM, struct.pack('<II', 0, NUM)) == 0 and
          c.ask(SET_VRING_BASE, struct.pack('<II', 0, 0)) == 0 and
          c.ask(SET_VRING_ADDR, struct.pack('<IIQQQQ', 0, 0, UA + DESC, UA + USED, UA + AVAIL,
                                            0)) == 0 and
          c.ask(SET_VRING_CALL, struct.pack('<Q', 0), [call_w]) == 0 and
          c.ask(SET_VRING_KICK, struct.pack('<Q', 0), [kick_r]) == 0 and
          c.ask(SET_VRING_ENABLE, struct.pack('<II', 0, 1)) == 0)
    os.close(kick_r)
    os.close(call_w)
    out.append(('queue: set up a ring in guest memory', ok, ''))
    v = c.ask(SET_VRING_ADDR, struct.pack('<IIQQQQ', 0, 0, UA + (64 << 20), UA + USED,
                                         UA + AVAIL, 0))
    out.append(('message: SET_VRING_ADDR outside guest memory', v not in (None, 0),
                'error reply %s' % v))
    # put the good addresses back (the refused message left the queue unusable)
    c.ask(SET_VRING_ADDR, struct.pack('<IIQQQQ', 0, 0, UA + DESC, UA + USED, UA + AVAIL, 0))
    os.write(kick_w, struct.pack('<Q', 1))
    end = time.monotonic() + 15
    while g.u16(USED + 2) != len(heads) and time.monotonic() < end:
        time.sleep(0.05)
    n = g.u16(USED + 2)
    out.append(('queue: every request completed', n == len(heads), 'used idx %d' % n))
    used = {g.used(i)[0]: g.used(i)[1] for i in range(n)}

    def expect(name, cond, detail):
        out.append(('queue: ' + name, cond, detail))

    expect('GET_ID answered', g.u8(0x12000) == 0 and used.get(0) == 21 and
           bytes(g.m[0x11000:0x11000 + 20]) == SERIAL.ljust(20, b'\0'),
           'status %d len %s' % (g.u8(0x12000), used.get(0)))
    expect('descriptor loop: IOERR, not followed',
           1 in (g.u8(0x12100), g.u8(0x12101)) and used.get(3) == 1,
           'status %d/%d len %s' % (g.u8(0x12100), g.u8(0x12101), used.get(3)))
    expect('next index past the table: completed with length 0', used.get(6) == 0,
           'len %s' % used.get(6))
    expect('buffer past guest memory: not touched, length 0',
           used.get(7) == 0 and g.u8(0x12300) == 0xFF, 'len %s status 0x%x' % (
               used.get(7), g.u8(0x12300)))
    expect('nested indirect table: IOERR', g.u8(0x12400) == 1 and used.get(10) == 1,
           'status %d len %s' % (g.u8(0x12400), used.get(10)))
    expect('read past the end of the disk: IOERR', g.u8(0x12500) == 1,
           'status %d' % g.u8(0x12500))
    expect('unknown request type: UNSUPP', g.u8(0x12600) == 2, 'status %d' % g.u8(0x12600))
    with open(image, 'rb') as f:
        f.seek(1024)
        disk = f.read(512)
    expect('OUT through an indirect table reaches the image', g.u8(0x12700) == 0 and disk == data,
           'status %d, image %s' % (g.u8(0x12700), 'matches' if disk == data else 'differs'))
    expect('IN reads it back into guest memory', g.u8(0x12800) == 0 and used.get(17) == 513 and
           bytes(g.m[0x15000:0x15200]) == data, 'status %d len %s' % (g.u8(0x12800), used.get(17)))
    expect('readable after writable: IOERR', g.u8(0x12900) == 1 and used.get(20) == 1,
           'status %d len %s' % (g.u8(0x12900), used.get(20)))
    try:
        got = os.read(call_r, 8)
    except BlockingIOError:
        got = b''
    expect('the driver was interrupted', len(got) == 8, '%d bytes on the call fd' % len(got))
    # an available index that jumps past the ring stops the queue
    g.put(AVAIL + 2, struct.pack('<H', len(heads) + 1000))
    os.write(kick_w, struct.pack('<Q', 1))
    time.sleep(0.5)
    r = c.get(GET_VRING_BASE, struct.pack('<II', 0, 0))
    base = struct.unpack('<II', r[2]) if r and len(r[2]) == 8 else None
    expect('avail index jumping past the ring: queue stopped, state kept',
           base == (0, len(heads)) and g.u16(USED + 2) == len(heads), 'GET_VRING_BASE %s' % (base,))
    os.close(kick_w)
    os.close(call_r)
    # kick fds that are always "ready" but no eventfd: the queue must stop,
    # the back-end must keep answering (no busy loop that starves the socket)
    for what in ('a regular file', 'a pipe whose reader is gone'):
        c.ask(SET_VRING_BASE, struct.pack('<II', 0, 0))
        if what == 'a regular file':
            fd = os.open(image, os.O_RDONLY)
        else:
            rr, fd = os.pipe()
            os.close(rr)
        v = c.ask(SET_VRING_KICK, struct.pack('<Q', 0), [fd])
        os.close(fd)
        t0 = time.monotonic()
        r = c.get(GET_VRING_BASE, struct.pack('<II', 0, 0))
        dt = time.monotonic() - t0
        expect('kick fd that is %s: the back-end still answers' % what,
               v == 0 and r is not None and r[0] == GET_VRING_BASE, '%.2f s' % dt)
    return out


def run(path, pid, image):
    results = []
    fds_before = count_fds(pid)
    results += framing_cases(path)
    mem_fd = memfd(GUEST, 'hostile-guest')
    c = Conn(path)
    try:
        negotiate(c)
        results += message_cases(c, mem_fd)
        v = c.ask(SET_MEM_TABLE, struct.pack('<II', 1, 0) + region(0, GUEST, UA, 0), [mem_fd])
        results.append(('message: a valid SET_MEM_TABLE after all that', v == 0, 'reply %s' % v))
        g = Guest(mem_fd)
        results += queue_cases(c, g, mem_fd, image)
        g.m.close()
    finally:
        c.close()
        os.close(mem_fd)
    ok = alive(path)
    # the back-end resets between connections: give it a moment, then count
    fds_after = fds_before
    end = time.monotonic() + 10
    while time.monotonic() < end:
        fds_after = count_fds(pid)
        if fds_after == fds_before:
            break
        time.sleep(0.1)
    results.append(('no file descriptor leaked', ok and fds_after == fds_before,
                    '%d fds before, %d after' % (fds_before, fds_after)))
    return results

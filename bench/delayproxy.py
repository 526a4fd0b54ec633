#!/usr/bin/python3
"""A TCP proxy on loopback that adds a fixed one-way delay in both directions.

Every chunk read from one side is written to the other side DELAY milliseconds
after it was read, in order. Chunks are not serialized behind each other: a chunk
read at time t leaves at t + DELAY whatever is still waiting, so the delay adds
latency, not a limit on throughput (a stand-in for kernel netem, which these
machines do not have). With --delay-ms 10 a request and its reply take about
20 ms more than without the proxy.

    delayproxy.py --target 127.0.0.1:PORT [--listen 127.0.0.1:0] [--delay-ms 10]

Prints "listening 127.0.0.1 PORT" on stdout once it accepts connections, and
runs until it gets SIGTERM or SIGINT. It listens and connects on 127.0.0.0/8 only.
"""

import argparse
import asyncio
import collections
import ipaddress
import signal
import sys

HIGH_WATER = 8 * 1024 * 1024   # bytes waiting for their time before reading pauses


def loopback(hostport):
    host, _, port = hostport.rpartition(":")
    if not ipaddress.ip_address(host).is_loopback:
        raise argparse.ArgumentTypeError(f"{host} is not a loopback address")
    return host, int(port)


class Direction:
    """Bytes from src to dst, each chunk held until its time comes."""

    def __init__(self, loop, delay):
        self.loop = loop
        self.delay = delay
        self.src = None          # transport read from
        self.dst = None          # transport written to
        self.dst_side = None     # its Side
        self.pending = collections.deque()   # (deadline, bytes) in arrival order
        self.pending_bytes = 0
        self.timer = None
        self.eof_at = None       # deadline of the source's end of stream
        self.src_paused = False
        self.dst_full = False    # dst asked us to stop writing

    def feed(self, data):
        self.pending.append((self.loop.time() + self.delay, data))
        self.pending_bytes += len(data)
        self.arm()
        self.throttle()

    def feed_eof(self):
        self.eof_at = self.loop.time() + self.delay
        self.arm()

    def arm(self):
        if self.timer is not None or self.dst is None or self.dst_full:
            return
        if self.pending:
            when = self.pending[0][0]
        elif self.eof_at is not None:
            when = self.eof_at
        else:
            return
        self.timer = self.loop.call_at(when, self.flush)

    def flush(self):
        self.timer = None
        if self.dst is None or self.dst.is_closing():
            return
        now = self.loop.time()
        out = []
        while self.pending and self.pending[0][0] <= now:
            _, data = self.pending.popleft()
            self.pending_bytes -= len(data)
            out.append(data)
        if out:
            self.dst.write(b"".join(out))
        if not self.pending and self.eof_at is not None and self.eof_at <= now:
            self.eof_at = None
            self.dst_side.send_eof()
            return
        self.throttle()
        self.arm()

    def throttle(self):
        want_pause = self.pending_bytes > HIGH_WATER or self.dst_full
        if self.src is None or self.src.is_closing():
            return
        if want_pause and not self.src_paused:
            self.src.pause_reading()
            self.src_paused = True
        elif not want_pause and self.src_paused:
            self.src.resume_reading()
            self.src_paused = False

    def pause_dst(self):
        self.dst_full = True
        self.throttle()

    def resume_dst(self):
        self.dst_full = False
        self.throttle()
        self.arm()


class Side(asyncio.Protocol):
    """One of the two connections; incoming goes out through `out` (a Direction)."""

    def __init__(self, out, back, on_lost):
        self.out = out        # data read here goes this way
        self.back = back      # data written here comes this way
        self.on_lost = on_lost
        self.transport = None
        self.got_eof = False
        self.sent_eof = False

    def connection_made(self, transport):
        self.transport = transport
        self.out.src = transport
        self.back.dst = transport
        self.back.dst_side = self
        self.back.arm()

    def data_received(self, data):
        self.out.feed(data)

    def eof_received(self):
        self.got_eof = True
        self.out.feed_eof()
        if self.sent_eof:
            self.transport.close()
        return True           # keep the write side open for what is still coming

    def send_eof(self):
        self.sent_eof = True
        if self.transport.is_closing():
            return
        if self.got_eof or not self.transport.can_write_eof():
            self.transport.close()
            return
        try:
            self.transport.write_eof()
        except OSError:           # the peer has gone already
            self.transport.close()

    def pause_writing(self):
        self.back.pause_dst()

    def resume_writing(self):
        self.back.resume_dst()

    def connection_lost(self, exc):
        self.on_lost(self)


class Client(Side):
    """The accepted connection; opens the upstream one before reading."""

    def __init__(self, loop, delay, target):
        self.loop = loop
        self.target = target
        up = Direction(loop, delay)      # client -> server
        down = Direction(loop, delay)    # server -> client
        super().__init__(up, down, self.lost)
        self.server = Side(down, up, self.lost)
        self.closed = 0

    def connection_made(self, transport):
        super().connection_made(transport)
        transport.pause_reading()
        self.loop.create_task(self.connect())

    async def connect(self):
        try:
            await self.loop.create_connection(lambda: self.server, *self.target)
        except OSError:
            self.transport.close()
            return
        if not self.transport.is_closing():
            self.transport.resume_reading()

    def lost(self, side):
        # The other side is closed once what was already read from this one has gone.
        other = self.server if side is self else self
        direction = side.out
        if other.transport is None:
            return
        due = [direction.pending[-1][0]] if direction.pending else []
        if direction.eof_at is not None:
            due.append(direction.eof_at)
        last = max(due, default=None)
        if last is not None:
            # just after the last flush, whose timer is due at the same time
            self.loop.call_at(last + 0.001, other.transport.close)
        else:
            other.transport.close()


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", type=loopback, default=("127.0.0.1", 0))
    ap.add_argument("--target", type=loopback, required=True)
    ap.add_argument("--delay-ms", type=float, default=10.0, help="one-way delay (10)")
    a = ap.parse_args()
    loop = asyncio.get_running_loop()
    delay = a.delay_ms / 1000.0
    server = await loop.create_server(lambda: Client(loop, delay, a.target), *a.listen,
                                      backlog=1024)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"listening {host} {port}", flush=True)
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set_result, None)
    await stop
    server.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)

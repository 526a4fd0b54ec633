"""A real browser for the report page's tests: Debian's Chromium, headless.

Every run goes through a trap: Chromium's proxy is an HTTP server of the test's own on
127.0.0.1 (with loopback not bypassed and every host name resolving to nothing), so
whatever the page or the browser tries to fetch arrives there, is answered 403 and is
counted, and nothing leaves the machine. Chromium's own background traffic (updates,
safe browsing, metrics) is turned off by its switches.
"""

import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class _Trap(http.server.BaseHTTPRequestHandler):
    def _caught(self):
        self.server.requests.append(f"{self.command} {self.path}")
        self.send_response(403)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_HEAD = do_PUT = do_OPTIONS = do_CONNECT = _caught

    def log_message(self, *args):
        pass


class Browser:
    """Headless Chromium behind the trap. stop() when done."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="blast-browser-")
        self.trap = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Trap)
        self.trap.requests = []
        threading.Thread(target=self.trap.serve_forever, daemon=True).start()
        self.runs = 0

    @property
    def requests(self):
        """What reached the trap so far: 'METHOD target' strings."""
        return list(self.trap.requests)

    def _run(self, url, *extra, timeout=120):
        self.runs += 1
        profile = os.path.join(self.dir, f"profile-{self.runs}")
        netlog = os.path.join(self.dir, f"netlog-{self.runs}.json")
        args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--no-first-run",
                "--no-default-browser-check", "--disable-background-networking",
                "--disable-component-update", "--disable-default-apps", "--disable-extensions",
                "--disable-sync", "--disable-domain-reliability", "--no-pings",
                "--disable-client-side-phishing-detection", "--metrics-recording-only",
                "--disable-features=OptimizationHints,MediaRouter,Translate",
                f"--proxy-server=http://127.0.0.1:{self.trap.server_address[1]}",
                "--proxy-bypass-list=<-loopback>",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                f"--log-net-log={netlog}", "--virtual-time-budget=3000", *extra, url]
        p = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
        if p.returncode != 0:
            raise AssertionError(f"chromium exited {p.returncode}: "
                                 f"{p.stderr.decode(errors='replace')[-2000:]}")
        return p.stdout.decode("utf-8", errors="replace"), netlog

    def dump_dom(self, path):
        """The page's DOM after loading path (a file), as Chromium serialises it, and the
        URLs the network stack was asked for (from its net log)."""
        dom, netlog = self._run("file://" + os.path.abspath(path), "--dump-dom")
        return dom, net_log_urls(netlog)

    def screenshot(self, path, png, width=1200, height=2400):
        """A PNG of the page at width x height CSS pixels."""
        self._run("file://" + os.path.abspath(path), f"--screenshot={png}",
                  f"--window-size={width},{height}", "--hide-scrollbars")
        return png

    def print_pdf(self, path, pdf):
        """The page printed to PDF, as a browser's "Print" would (A4/Letter, no headers)."""
        self._run("file://" + os.path.abspath(path), f"--print-to-pdf={pdf}",
                  "--no-pdf-header-footer")
        return pdf

    def stop(self):
        self.trap.shutdown()
        self.trap.server_close()
        shutil.rmtree(self.dir, ignore_errors=True)


def net_log_urls(path):
    """Every URL Chromium's network stack was asked to fetch, from a net log file (a
    run cut short may leave it without its closing brackets)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return []
    try:
        log = json.loads(text)
    except ValueError:
        text = text.rstrip().rstrip(",")
        try:
            log = json.loads(text + "]}")
        except ValueError:
            return []
    urls = []
    for event in log.get("events", []):
        params = event.get("params") or {}
        url = params.get("url")
        if isinstance(url, str):
            urls.append(url)
    return urls


def not_blank(png):
    """How far a screenshot is from blank: (distinct colours, share of non-white pixels)."""
    from PIL import Image
    with Image.open(png) as im:
        im = im.convert("RGB")
        small = im.resize((im.width // 4, im.height // 4))
        pixels = list(small.getdata())
    colours = len(set(pixels))
    inked = sum(1 for p in pixels if min(p) < 240) / max(1, len(pixels))
    return colours, inked


def trim(png):
    """Cut a screenshot's blank bottom off and keep it small (64 colours), for docs/."""
    from PIL import Image
    with Image.open(png) as im:
        rgb = im.convert("RGB")
    bottom = rgb.height
    while bottom > 1 and all(min(p) >= 250 for p in rgb.crop((0, bottom - 1, rgb.width,
                                                               bottom)).getdata()):
        bottom -= 1
    rgb = rgb.crop((0, 0, rgb.width, min(rgb.height, bottom + 24)))
    rgb.quantize(colors=64).save(png, optimize=True)

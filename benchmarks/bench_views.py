"""What one view of the dashboard costs, next to Streamlit's own floor, in one run.

Starts two servers with ``streamlit run``: the dashboard (``app.py`` of ``--app-root``,
this checkout by default) and the floor (``benchmarks/floor_app``: a bare two-page
Streamlit app whose second page draws one 224x224 ``go.Image``), then drives a real
headless Chromium through ``--rounds`` rounds on each, alternating, every round in a
new browser context (a new visitor: a new Streamlit session, no browser cache):

    dashboard: open the app (Home drawn) -> Outputs -> Input -> Activations ->
               Attributions (Grad-CAM drawn) -> method LayerCAM -> method Grad-CAM ->
               colour map -> opacity -> Features
    floor:     open the app (Home drawn) -> the figure page (the image drawn)

For every step it reports

* **wall**: from the click (or the address typed) to the drawn figure, as the browser
  sees it (Plotly has drawn the title and the image);
* **server CPU**: user + system time of the server process (all threads, also those
  that ended), from the click until the server is idle again: the process's CPU clock
  read by the probe (``/proc/<pid>/stat``'s 10 ms ticks are kept as a cross-check in
  the JSON);
* **where the server's time goes**, from a probe installed in the server process
  (``--probe``, below): the script runs (CPU of the script thread), figure building
  (CPU inside :mod:`interpret.figures` or the floor's builder), serialization inside
  the script (``st.plotly_chart``'s ``to_dict``/``to_json``, ``st.image`` encoding) and
  of the messages (protobuf, on the event loop), and the bytes the browser received
  (websocket frames, media files; static files are listed apart).

The first round after the dashboard's server start is the **first visitor**; the
tables use the medians of the later rounds (steady state).  Ratios are to the floor
measured in the same run: other processes on the machine slow both alike.  CPU
pressure (``/proc/pressure/cpu``) during the run is printed with the table.

    .venv/bin/python benchmarks/bench_views.py --rounds 6 [--out docs/views-run.md]
    .venv/bin/python benchmarks/bench_views.py --app-root /tmp/before   # another checkout

Never a timed test: this prints numbers, it asserts nothing about them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
FLOOR = ROOT / "benchmarks" / "floor_app"
CHROMIUM = os.environ.get("INTERPRET_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
IDLE = "[data-testid=stApp][data-test-script-state=notRunning]"
TIMEOUT_MS = 180_000
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ==================================================================================
# The probe: runs inside the server process (``bench_views.py --probe FILE -- run ...``)


class _Probe:
    """Cumulative counters of the server process, written to a file on SIGUSR1."""

    def __init__(self, path: str):
        self.path = path
        self.seq = 0
        self.c: Dict[str, float] = dict(runs=0, run_wall=0.0, run_cpu=0.0, fig_cpu=0.0,
                                        ser_cpu=0.0, msg_cpu=0.0, msg_bytes=0, msgs=0)
        self.lock = threading.Lock()
        self.local = threading.local()

    def add(self, **kw) -> None:
        with self.lock:
            for k, v in kw.items():
                self.c[k] += v

    def timed(self, fn: Callable, counter: str) -> Callable:
        """``fn`` counting its thread CPU into ``counter`` (outermost call only)."""
        probe = self

        def wrapper(*a, **k):
            depth = getattr(probe.local, counter, 0)
            if depth:
                return fn(*a, **k)
            setattr(probe.local, counter, 1)
            c0 = time.thread_time()
            try:
                return fn(*a, **k)
            finally:
                setattr(probe.local, counter, 0)
                probe.add(**{counter: time.thread_time() - c0})

        wrapper.__wrapped__ = fn
        wrapper.__name__ = getattr(fn, "__name__", "wrapped")
        wrapper.__doc__ = getattr(fn, "__doc__", None)
        return wrapper

    def dump(self, *_):
        self.seq += 1
        with self.lock:
            # the process's CPU clock: every thread, also those that ended, in nanoseconds
            # (/proc/<pid>/stat counts 10 ms ticks, too coarse for a 40 ms view)
            data = dict(self.c, seq=self.seq, process_cpu=time.process_time())
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f)
        os.replace(tmp, self.path)


_FIGURE_MODULES = ("interpret.figures", "floor_figure")


def _wrap_figure_module(probe: _Probe, mod) -> None:
    for name in dir(mod):
        obj = getattr(mod, name)
        if name.startswith("_") or not callable(obj) or isinstance(obj, type):
            continue
        if getattr(obj, "__module__", "").startswith(("interpret.figures", "floor_figure")):
            setattr(mod, name, probe.timed(obj, "fig_cpu"))


class _WrapOnImport:
    """A meta-path finder that wraps the figure builders of the modules named in
    ``_FIGURE_MODULES`` as they are imported (so the probe imports nothing itself)."""

    def __init__(self, probe: _Probe):
        self.probe = probe

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in _FIGURE_MODULES:
            return None
        from importlib.machinery import PathFinder

        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            spec = PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        loader, probe = spec.loader, self.probe
        real_exec = loader.exec_module

        def exec_module(module):
            real_exec(module)
            _wrap_figure_module(probe, module)

        loader.exec_module = exec_module
        return spec


def run_probe(stats_file: str, streamlit_args: List[str]) -> None:
    probe = _Probe(stats_file)
    sys.meta_path.insert(0, _WrapOnImport(probe))

    from streamlit.runtime.scriptrunner import script_runner

    real_run = script_runner.ScriptRunner._run_script

    def _run_script(self, rerun_data):
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            return real_run(self, rerun_data)
        finally:
            probe.add(runs=1, run_wall=time.perf_counter() - t0, run_cpu=time.thread_time() - c0)

    script_runner.ScriptRunner._run_script = _run_script

    # serialization inside the script thread: st.plotly_chart's figure -> dict -> JSON,
    # st.image's encoding of an array or PIL image
    import plotly.io
    import plotly.tools

    plotly.io.to_json = probe.timed(plotly.io.to_json, "ser_cpu")
    plotly.tools.return_figure_from_figure_or_data = probe.timed(
        plotly.tools.return_figure_from_figure_or_data, "ser_cpu")
    from streamlit.elements.lib import image_utils

    image_utils.image_to_url = probe.timed(image_utils.image_to_url, "ser_cpu")

    # serialization of every message to the browser (protobuf, on the event loop)
    try:
        from streamlit.web.server.starlette import starlette_websocket as ws

        real_ser = ws.serialize_forward_msg

        def serialize_forward_msg(msg):
            c0 = time.thread_time()
            out = real_ser(msg)
            probe.add(msg_cpu=time.thread_time() - c0, msg_bytes=len(out), msgs=1)
            return out

        ws.serialize_forward_msg = serialize_forward_msg
    except ImportError:  # an older Streamlit: no message counts
        pass
    signal.signal(signal.SIGUSR1, probe.dump)
    probe.dump()

    from streamlit.web import cli

    sys.argv = ["streamlit", *streamlit_args]
    cli.main()


# ==================================================================================
# The driver


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, all threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_pressure() -> Optional[float]:
    """The kernel's total CPU stall time ("some"), in seconds."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        return int(line.split("total=")[1]) / 1e6
    except (OSError, IndexError, ValueError):
        return None


class Server:
    def __init__(self, name: str, root: Path, script: str, log_dir: Path, env_extra=None):
        sys.path.insert(0, str(ROOT / "tests"))
        from serving import free_port

        self.name, self.root, self.script = name, root, script
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stats = str(log_dir / f"{name}-probe.json")
        self.log = open(log_dir / f"{name}-server.log", "w")
        self.env = dict(os.environ, PYTHONUNBUFFERED="1", **(env_extra or {}))
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> float:
        """Start the server; seconds until its health endpoint answered."""
        from serving import wait_healthy

        t0 = time.monotonic()
        cmd = [sys.executable, str(Path(__file__).resolve()), "--probe", self.stats, "--",
               "run", self.script, "--server.port", str(self.port), "--server.address", "127.0.0.1",
               "--server.headless", "true", "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none"]
        self.proc = subprocess.Popen(cmd, cwd=self.root, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=self.env)
        wait_healthy(self.url, self.proc, timeout=300)
        return time.monotonic() - t0

    def stop(self) -> None:
        from serving import stop

        if self.proc is not None:
            stop(self.proc)
            self.proc = None

    def counters(self) -> Dict[str, float]:
        """The probe's counters now (asks the server to write them, waits for them)."""
        try:
            before = json.loads(Path(self.stats).read_text())["seq"]
        except (OSError, ValueError, KeyError):
            before = -1
        os.kill(self.proc.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                data = json.loads(Path(self.stats).read_text())
                if data["seq"] != before:
                    return data
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.01)
        raise TimeoutError(f"the probe of {self.name} did not answer")

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)


class Bytes:
    """What one browser page received: websocket frames, media files, static files."""

    def __init__(self, page):
        self.ws = self.media = self.static = 0
        page.on("websocket", self._on_ws)
        page.on("response", self._on_response)

    def _on_ws(self, ws) -> None:
        ws.on("framereceived", lambda payload: self._add_frame(payload))

    def _add_frame(self, payload) -> None:
        self.ws += len(payload) if payload is not None else 0

    def _on_response(self, resp) -> None:
        try:
            n = int(resp.headers.get("content-length") or 0)
        except ValueError:
            n = 0
        path = resp.url.split("://", 1)[-1].split("/", 1)[-1]
        if path.startswith("media/"):  # st.image's files (the fonts are in static/media/)
            self.media += n
        elif not path.startswith("_stcore/"):
            self.static += n

    def snapshot(self) -> Dict[str, int]:
        return {"ws": self.ws, "media": self.media, "static": self.static}


def settle(page, quiet: float = 0.4) -> None:
    page.wait_for_selector(IDLE, timeout=TIMEOUT_MS)
    time.sleep(quiet)
    page.wait_for_selector(IDLE, timeout=TIMEOUT_MS)


def wait_idle_cpu(server: Server, quiet: float = 0.25, limit: float = 10.0) -> None:
    """Wait until the server spends no CPU for ``quiet`` seconds (trailing work: media
    requests, garbage collection) or ``limit`` seconds passed."""
    deadline = time.monotonic() + limit
    last = server.cpu()
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = server.cpu()
        if now - last < 0.011:  # one clock tick at most
            return
        last = now


def measure(server: Server, page, nbytes: Bytes, action: Callable[[], None],
            drawn: Callable[[], None]) -> Dict[str, float]:
    """One view: ``action`` (a click, an address), then ``drawn`` waits for the figure."""
    wait_idle_cpu(server)
    c0, p0, b0 = server.cpu(), server.counters(), nbytes.snapshot()
    t0 = time.perf_counter()
    action()
    drawn()
    wall = time.perf_counter() - t0
    settle(page)
    wait_idle_cpu(server)
    c1, p1, b1 = server.cpu(), server.counters(), nbytes.snapshot()
    out = {"wall": wall, "cpu": p1["process_cpu"] - p0["process_cpu"], "cpu_proc_stat": c1 - c0}
    out.update({k: p1[k] - p0[k] for k in ("runs", "run_wall", "run_cpu", "fig_cpu", "ser_cpu",
                                           "msg_cpu", "msg_bytes", "msgs")})
    out.update({f"bytes_{k}": b1[k] - b0[k] for k in b0})
    return out


# ----------------------------------------------------------------------------------
# What a person does, and what "drawn" means for each step


def plot_with_title(page, pattern: str) -> None:
    """Wait until a Plotly figure whose title matches ``pattern`` has drawn its image."""
    plot = page.locator(".js-plotly-plot").filter(
        has=page.locator(".gtitle", has_text=re.compile(pattern)))
    plot.first.locator("g.imagelayer image, .layer-above image").first.wait_for(
        state="attached", timeout=TIMEOUT_MS)


def image_href(page, pattern: str) -> str:
    plot = page.locator(".js-plotly-plot").filter(
        has=page.locator(".gtitle", has_text=re.compile(pattern)))
    img = plot.first.locator("g.imagelayer image, .layer-above image").first
    return img.get_attribute("href") or ""


def wait_new_image(page, pattern: str, old: str) -> None:
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        try:
            if image_href(page, pattern) not in ("", old):
                return
        except Exception:  # noqa: BLE001 - redrawn while read
            pass
        time.sleep(0.02)
    raise TimeoutError("the figure was not redrawn")


def sidebar_link(page, label: str):
    return page.locator("[data-testid=stSidebar] [data-testid=stPageLink] a", has_text=label).first


def drawn_text_and_plot(page, text: str, selector: str) -> Callable[[], None]:
    def wait() -> None:
        page.get_by_text(text).first.wait_for(timeout=TIMEOUT_MS)
        page.locator(selector).first.wait_for(state="attached", timeout=TIMEOUT_MS)
    return wait


IMAGE = ".js-plotly-plot g.imagelayer image, .js-plotly-plot .layer-above image"


def dashboard_round(server: Server, browser, url: str) -> Dict[str, Dict[str, float]]:
    ctx = browser.new_context(viewport={"width": 1440, "height": 900})
    page = ctx.new_page()
    nbytes = Bytes(page)
    out: Dict[str, Dict[str, float]] = {}

    def step(name, action, drawn):
        out[name] = measure(server, page, nbytes, action, drawn)
        settle(page)

    try:
        step("home", lambda: page.goto(url),
             lambda: page.locator("h3", has_text="The model says").first.wait_for(timeout=TIMEOUT_MS))
        # straight to Attributions, as the floor goes straight to its figure: both pay
        # for loading Plotly's JavaScript in this new browser context
        step("attributions", lambda: sidebar_link(page, "Attributions").click(),
             lambda: plot_with_title(page, r"^Grad-CAM: "))
        radio = page.locator("[data-testid=stRadio] label")
        step("method_layercam", lambda: radio.filter(has_text="LayerCAM").first.click(),
             lambda: plot_with_title(page, r"^LayerCAM: "))
        step("method_gradcam", lambda: radio.filter(has_text=re.compile(r"^Grad-CAM$")).first.click(),
             lambda: plot_with_title(page, r"^Grad-CAM: "))

        old = image_href(page, r"^Grad-CAM: ")

        def pick_colormap() -> None:
            box = page.locator("[data-testid=stSelectbox]").filter(has_text="Colours").first
            box.locator("input").first.click()
            page.keyboard.type("viridis")
            page.keyboard.press("Enter")

        step("colormap", pick_colormap, lambda: wait_new_image(page, r"^Grad-CAM: ", old))
        old = image_href(page, r"^Grad-CAM: ")

        def nudge_opacity() -> None:
            slider = page.locator("[data-testid=stSlider]").filter(has_text="Opacity").first
            slider.locator("input[type=range]").first.focus()
            page.keyboard.press("ArrowRight")

        step("opacity", nudge_opacity, lambda: wait_new_image(page, r"^Grad-CAM: ", old))
        # the other pages, Plotly now loaded (compared with the floor's second visit)
        step("outputs", lambda: sidebar_link(page, "Outputs").click(),
             drawn_text_and_plot(page, "How sure is it?", ".js-plotly-plot g.barlayer"))
        step("input", lambda: sidebar_link(page, "Input").click(),
             drawn_text_and_plot(page, "What the model receives", IMAGE))
        step("activations", lambda: sidebar_link(page, "Activations").click(),
             drawn_text_and_plot(page, "One channel, enlarged", IMAGE))
        step("features", lambda: sidebar_link(page, "Features").click(),
             drawn_text_and_plot(page, "Painted by gradient ascent", IMAGE))
    finally:
        ctx.close()
    return out


def floor_round(server: Server, browser, url: str) -> Dict[str, Dict[str, float]]:
    ctx = browser.new_context(viewport={"width": 1440, "height": 900})
    page = ctx.new_page()
    nbytes = Bytes(page)
    out: Dict[str, Dict[str, float]] = {}
    try:
        out["home"] = measure(server, page, nbytes, lambda: page.goto(url),
                              lambda: page.locator("h1", has_text="Floor").first.wait_for(timeout=TIMEOUT_MS))
        settle(page)
        out["figure"] = measure(
            server, page, nbytes,
            lambda: page.locator("[data-testid=stMain] [data-testid=stPageLink] a", has_text="Figure").first.click(),
            lambda: plot_with_title(page, r"^Floor: "))
        settle(page)
        # back home and to the figure again: Plotly's JavaScript is loaded now
        main = page.locator("[data-testid=stMain] [data-testid=stPageLink] a")
        main.filter(has_text="Home").first.click()
        page.locator("h1", has_text="Floor").first.wait_for(timeout=TIMEOUT_MS)
        settle(page)
        out["figure_again"] = measure(
            server, page, nbytes, lambda: main.filter(has_text="Figure").first.click(),
            lambda: plot_with_title(page, r"^Floor: "))
    finally:
        ctx.close()
    return out


# ----------------------------------------------------------------------------------
# Report

STEPS = [  # (step, what a person does, the floor's step it is compared with)
    ("home", "open the app (Home drawn)", "home"),
    ("attributions", "click Attributions until the Grad-CAM figure is drawn", "figure"),
    ("method_layercam", "switch the method to LayerCAM (drawn)", None),
    ("method_gradcam", "switch the method back to Grad-CAM (drawn)", None),
    ("colormap", "change the colour map (redrawn)", None),
    ("opacity", "change the opacity (redrawn)", None),
    ("outputs", "click Outputs until the bars are drawn", "figure_again"),
    ("input", "click Input until the model's view is drawn", "figure_again"),
    ("activations", "click Activations until the enlarged channel is drawn", "figure_again"),
    ("features", "click Features until the optimized image is drawn", "figure_again"),
]


def med(rows: List[Dict[str, float]], key: str) -> float:
    vals = [r[key] for r in rows if key in r]
    return statistics.median(vals) if vals else float("nan")


def fmt_s(v: float) -> str:
    return "–" if v != v else (f"{v:.2f} s" if v < 10 else f"{v:.1f} s")


def fmt_ms(v: float) -> str:
    return "–" if v != v else f"{1000 * v:.0f} ms"


def fmt_kb(v: float) -> str:
    return "–" if v != v else f"{v / 1024:.0f} kB"


def ratio(a: float, b: float) -> str:
    return "–" if not (a == a and b == b) or b <= 0 else f"{a / b:.2f}x"


def report(result: dict) -> str:
    ours, floor = result["dashboard"], result["floor"]
    steady = ours[1:] if len(ours) > 1 else ours
    fsteady = floor[1:] if len(floor) > 1 else floor
    L = [f"Machine: {result['machine']}; {result['rounds']} rounds each (first dashboard round = "
         f"first visitor, tables: medians of the later rounds); CPU pressure during the run "
         f"{result['pressure']}; dashboard at `{result['app_root']}` "
         f"(server start to healthy: {result['start_s']:.1f} s).", ""]
    L += ["| step (steady median) | dashboard: wall | dashboard: server CPU | floor: wall | floor: server CPU | wall / floor | CPU / floor |",
          "|---|---:|---:|---:|---:|---:|---:|"]
    for key, label, fkey in STEPS:
        rows = [r[key] for r in steady if key in r]
        if not rows:
            continue
        w, c = med(rows, "wall"), med(rows, "cpu")
        if fkey:
            frows = [r[fkey] for r in fsteady]
            fw, fc = med(frows, "wall"), med(frows, "cpu")
            L.append(f"| {label} | {fmt_s(w)} | {fmt_s(c)} | {fmt_s(fw)} | {fmt_s(fc)} | "
                     f"{ratio(w, fw)} | {ratio(c, fc)} |")
        else:
            full = med([r["attributions"] for r in steady if "attributions" in r], "cpu")
            L.append(f"| {label} | {fmt_s(w)} | {fmt_s(c)} | | | | {ratio(c, full)} of a full Attributions view |")
    first = ours[0]
    L += ["", "| first visitor after a server start | wall | server CPU | x steady |", "|---|---:|---:|---:|"]
    for key in ("home", "attributions"):
        if key in first:
            rows = [r[key] for r in steady if key in r]
            L.append(f"| {dict((k, l) for k, l, _ in STEPS)[key]} | {fmt_s(first[key]['wall'])} | "
                     f"{fmt_s(first[key]['cpu'])} | {ratio(first[key]['wall'], med(rows, 'wall'))} wall, "
                     f"{ratio(first[key]['cpu'], med(rows, 'cpu'))} CPU |")
    L += ["", "Where the server's time goes (steady medians per view):", "",
          "| step | server CPU | script runs | script CPU | figure building | serialization in the script | message serialization | websocket bytes | media bytes | static files |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def split_row(label, rows):
        return (f"| {label} | {fmt_ms(med(rows, 'cpu'))} | {med(rows, 'runs'):.0f} | {fmt_ms(med(rows, 'run_cpu'))} | "
                f"{fmt_ms(med(rows, 'fig_cpu'))} | {fmt_ms(med(rows, 'ser_cpu'))} | "
                f"{fmt_ms(med(rows, 'msg_cpu'))} | {fmt_kb(med(rows, 'bytes_ws'))} | "
                f"{fmt_kb(med(rows, 'bytes_media'))} | {fmt_kb(med(rows, 'bytes_static'))} |")

    for key, label, _ in STEPS:
        rows = [r[key] for r in steady if key in r]
        if rows:
            L.append(split_row(label, rows))
    L.append(split_row("floor: open the app", [r["home"] for r in fsteady]))
    L.append(split_row("floor: the figure page", [r["figure"] for r in fsteady]))
    L.append(split_row("floor: the figure page again (Plotly loaded)", [r["figure_again"] for r in fsteady]))
    att = med([r["attributions"] for r in steady if "attributions" in r], "cpu")
    if att == att and att > 0:
        L += ["", f"Capacity: at {att:.2f} s of server CPU per Attributions view, one core serves "
                  f"about {60 / att:.0f} such views a minute (the floor: "
                  f"{60 / max(1e-9, med([r['figure'] for r in fsteady], 'cpu')):.0f})."]
    return "\n".join(L)


def main(argv=None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["--probe"]:
        rest = argv[2:]
        run_probe(argv[1], rest[1:] if rest[:1] == ["--"] else rest)
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--app-root", default=str(ROOT), help="the checkout whose app.py is measured")
    ap.add_argument("--out", help="also write the report (markdown) to this file")
    ap.add_argument("--json", help="also write every measurement (JSON) to this file")
    args = ap.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"error: {CHROMIUM} not found (install Debian's chromium or set INTERPRET_CHROMIUM)")
        return 2
    from playwright.sync_api import sync_playwright

    app_root = Path(args.app_root).resolve()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-views-") as tmp:
        ours = Server("dashboard", app_root, "app.py", Path(tmp))
        floor = Server("floor", FLOOR, "app.py", Path(tmp))
        result = {"dashboard": [], "floor": [], "rounds": args.rounds, "app_root": str(app_root)}
        p0, t0 = cpu_pressure(), time.monotonic()
        try:
            floor.start()
            result["start_s"] = ours.start()
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    # a throwaway visit warms the floor (its imports), not the dashboard:
                    # the dashboard's first round is its first visitor
                    floor_round(floor, browser, floor.url)
                    for r in range(args.rounds):
                        result["dashboard"].append(dashboard_round(ours, browser, ours.url))
                        result["floor"].append(floor_round(floor, browser, floor.url))
                        d, f = result["dashboard"][-1], result["floor"][-1]
                        print(f"round {r + 1}: dashboard Attributions {d['attributions']['wall']:.2f} s wall "
                              f"{d['attributions']['cpu']:.2f} s CPU; floor figure {f['figure']['wall']:.2f} s "
                              f"wall {f['figure']['cpu']:.2f} s CPU", flush=True)
                finally:
                    browser.close()
        finally:
            ours.stop()
            floor.stop()
        p1, t1 = cpu_pressure(), time.monotonic()
    result["pressure"] = (f"{100 * (p1 - p0) / (t1 - t0):.0f}%" if p0 is not None and p1 is not None
                          else "unknown")
    result["machine"] = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                         f"load average {load:.2f} at the start, Python {platform.python_version()}")
    text = report(result)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Load test: 8 people at once on one server, in real headless Chromium.

Starts the dashboard with ``python -m interpret app`` on a free loopback port, then
drives N concurrent browser sessions (separate Playwright contexts, i.e. separate
Streamlit sessions), each with its own photo, through

    open the app -> upload its photo -> open Attributions -> Grad-CAM drawn

repeatedly for a bounded time.  Reports requests completed, p50/p95 time to a drawn
heatmap, errors (must be 0), and whether every session saw only its own photo's result
(its own upload name in the sidebar, and the class predicted for its own photo in the
Grad-CAM title).  Traffic goes to 127.0.0.1 only; the loop stops by itself.

    python benchmarks/load_test.py --sessions 8 --seconds 180 [--out docs/load_test.md]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("INTERPRET_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
IDLE = "[data-testid=stApp][data-test-script-state=notRunning]"
STEP_TIMEOUT_MS = 90_000  # one step (upload, page switch, heatmap) may take this long


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError("server never became healthy")


def make_photos(n: int, folder: Path):
    """n distinct photos (sample gallery, mirrored when more are needed) and the class
    the bundled model predicts for each (what each session must see)."""
    from PIL import ImageOps

    import interpret

    model = interpret.load_model()
    samples = sorted((ROOT / "assets" / "samples").glob("*.jpg"))
    out = []
    for i in range(n):
        img = interpret.load_image(samples[i % len(samples)])
        if i >= len(samples):
            img = ImageOps.mirror(img)
        path = folder / f"session-{i}.jpg"
        img.save(path, quality=92)
        label = interpret.predict(model, interpret.load_image(path), top_k=1)[0].label
        out.append((path, label))
    return out


async def settle(page, timeout_s=90):
    await page.wait_for_selector(IDLE, timeout=timeout_s * 1000)
    await asyncio.sleep(0.4)
    await page.wait_for_selector(IDLE, timeout=timeout_s * 1000)


async def session(browser, url, idx, photo, label, stop_at, results):
    ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await ctx.new_page()
    times, errors, mixups = [], [], 0
    while time.monotonic() < stop_at:
        t0 = time.monotonic()
        try:
            await page.goto(url)
            await settle(page)
            await page.locator("[data-testid=stSidebar] [data-testid=stFileUploader] input[type=file]"
                               ).first.set_input_files(str(photo))
            await page.locator("h3", has_text="The model says").filter(has_text=label).first.wait_for(timeout=STEP_TIMEOUT_MS)
            await settle(page)
            await page.locator("[data-testid=stSidebar] [data-testid=stPageLink] a",
                               has_text="Attributions").first.click()
            await settle(page)
            title = page.locator(".js-plotly-plot .gtitle", has_text=re.compile(r"^Grad-CAM: "))
            await title.first.wait_for(timeout=STEP_TIMEOUT_MS)
            await page.wait_for_selector(".js-plotly-plot g.imagelayer image, .js-plotly-plot .layer-above image",
                                         state="attached", timeout=STEP_TIMEOUT_MS)
            elapsed = time.monotonic() - t0
            shown = (await title.first.text_content() or "").strip()
            sidebar = await page.locator("[data-testid=stSidebar]").inner_text()
            exceptions = await page.locator("[data-testid=stException]").count()
            if exceptions:
                errors.append(f"{exceptions} exception box(es)")
            # the view is on this session's upload, and the heatmap is
            # for the class the model predicts for *this* session's photo
            if shown != f"Grad-CAM: {label}" or "img=upload" not in page.url:
                mixups += 1
                errors.append(f"saw '{shown}' instead of 'Grad-CAM: {label}'")
            times.append(elapsed)
            print(f"session {idx}: heatmap drawn in {elapsed:.1f} s ({shown})", flush=True)
        except Exception as exc:  # noqa: BLE001 - counted and reported
            errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
            print(f"session {idx}: error {errors[-1]}", flush=True)
    results[idx] = {"times": times, "errors": errors, "mixups": mixups}
    await ctx.close()


async def drive(url, photos, seconds):
    from playwright.async_api import async_playwright

    results = {}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        stop_at = time.monotonic() + seconds
        await asyncio.gather(*(session(browser, url, i, ph, lab, stop_at, results)
                               for i, (ph, lab) in enumerate(photos)))
        await browser.close()
    return results


def pct(values, q):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=180, help="how long the sessions keep going")
    ap.add_argument("--out", help="also write the report (markdown) to this file")
    args = ap.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"error: {CHROMIUM} not found (install Debian's chromium or set INTERPRET_CHROMIUM)")
        return 2
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        photos = make_photos(args.sessions, Path(tmp))
        log = open(Path(tmp) / "server.log", "w")
        proc = subprocess.Popen([sys.executable, "-m", "interpret", "app", "--headless",
                                 "--port", str(port), "--address", "127.0.0.1"],
                                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_healthy(url, proc)
            t0 = time.monotonic()
            results = asyncio.run(drive(url, photos, args.seconds))
            wall = time.monotonic() - t0
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
    times = [t for r in results.values() for t in r["times"]]
    errors = [e for r in results.values() for e in r["errors"]]
    mixups = sum(r["mixups"] for r in results.values())
    lines = [
        f"# Load test: {args.sessions} concurrent browser sessions",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load average before start {os.getloadavg()[0]:.2f}; Python {platform.python_version()}; "
        f"{wall:.0f} s of driving; server `python -m interpret app` (default settings).",
        "",
        "| sessions | completed | p50 to drawn heatmap | p95 | max | errors | sessions that saw another's result |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {args.sessions} | {len(times)} | {pct(times, 50):.1f} s | {pct(times, 95):.1f} s | "
        f"{max(times) if times else float('nan'):.1f} s | {len(errors)} | {mixups} |",
        "",
        "Per session (completed / errors): " + ", ".join(
            f"#{i}: {len(results[i]['times'])}/{len(results[i]['errors'])}" for i in sorted(results)),
    ]
    if errors:
        lines += ["", "Errors:"] + [f"- {e}" for e in errors[:20]]
    report = "\n".join(lines)
    print(report)
    if args.out:
        Path(args.out).write_text(report + "\n")
    return 0 if not errors and mixups == 0 and times else 1


if __name__ == "__main__":
    sys.exit(main())

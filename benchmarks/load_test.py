"""Load test: 8 people at once on one server, in real headless Chromium.

Starts the dashboard with ``python -m interpret app`` on a free loopback port, then
drives N concurrent browser sessions (separate Playwright contexts, i.e. separate
Streamlit sessions), each with its own photo, through

    open the app -> upload its photo -> open Attributions -> Grad-CAM drawn

repeatedly for a bounded time.  Reports requests completed, p50/p95 time to a drawn
heatmap, errors (must be 0), and whether every session saw only its own photo's result
(every session's photo is chosen to have a different predicted class: the Grad-CAM
title must name its own photo's class, and the sidebar its own upload and nobody
else's).  It also reports the server's CPU (user + system time of the server process,
all threads, from ``/proc/<pid>/stat``) per completed round and what that means for
sizing a server: "one core serves N rounds a minute".  Traffic goes to 127.0.0.1 only;
the loop stops by itself.

    python benchmarks/load_test.py --sessions 8 --seconds 180 [--out docs/load_test.md]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from serving import free_port, stop, wait_healthy  # noqa: E402 - shared with the browser tests

CHROMIUM = os.environ.get("INTERPRET_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
IDLE = "[data-testid=stApp][data-test-script-state=notRunning]"
STEP_TIMEOUT_MS = 90_000  # one step (upload, page switch, heatmap) may take this long
CLK_TCK = os.sysconf("SC_CLK_TCK")
SHOTS = None  # --screenshots: a folder for a screenshot of the page at every error


def make_photos(n: int, folder: Path):
    """n photos, each with a *different* top-1 class (so a result shown to the wrong
    session cannot go unnoticed), and the class the bundled model predicts for each.

    Candidates are the sample gallery and simple variants of it (mirrored, halves,
    centre crop); they are taken in order, skipping any whose predicted class is
    already used."""
    from PIL import ImageOps

    import interpret

    model = interpret.load_model()
    samples = sorted((ROOT / "assets" / "samples").glob("*.jpg"))
    variants = [
        lambda im: im,
        lambda im: ImageOps.mirror(im),
        lambda im: im.crop((0, 0, im.width // 2, im.height)),
        lambda im: im.crop((im.width // 2, 0, im.width, im.height)),
        lambda im: im.crop((im.width // 4, im.height // 4, 3 * im.width // 4, 3 * im.height // 4)),
        lambda im: im.crop((0, 0, im.width, im.height // 2)),
        lambda im: im.crop((0, im.height // 2, im.width, im.height)),
    ]
    out, used = [], set()
    for variant in variants:
        for sample in samples:
            if len(out) == n:
                return out
            path = folder / f"session-{len(out):02d}.jpg"
            variant(interpret.load_image(sample)).convert("RGB").save(path, quality=92)
            label = interpret.predict(model, interpret.load_image(path), top_k=1)[0].label
            if label not in used:
                used.add(label)
                out.append((path, label))
    if len(out) < n:
        raise SystemExit(f"could only make {len(out)} photos with distinct predicted classes")
    return out


async def settle(page, timeout_s=90):
    await page.wait_for_selector(IDLE, timeout=timeout_s * 1000)
    await asyncio.sleep(0.4)
    await page.wait_for_selector(IDLE, timeout=timeout_s * 1000)


async def session(browser, url, idx, photo, label, others, stop_at, results):
    ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await ctx.new_page()
    times, errors, mixups = [], [], 0
    sidebar = page.locator("[data-testid=stSidebar]")
    while time.monotonic() < stop_at:
        t0 = time.monotonic()
        step = "open the app"
        try:
            await page.goto(url)
            await settle(page)
            step = "upload the photo"
            await sidebar.locator("[data-testid=stFileUploader] input[type=file]"
                                  ).first.set_input_files(str(photo))
            step = "prediction for the upload"
            # the picker names the upload (its chosen option is a combobox <input>'s value)
            await sidebar.locator("input").and_(page.locator(f"[value='Your upload: {photo.name}']")
                                                ).first.wait_for(state="attached", timeout=STEP_TIMEOUT_MS)
            await page.locator("h3", has_text="The model says").filter(has_text=label).first.wait_for(timeout=STEP_TIMEOUT_MS)
            await settle(page)
            step = "open Attributions"
            await sidebar.locator("[data-testid=stPageLink] a", has_text="Attributions").first.click()
            await settle(page)
            step = "Grad-CAM drawn"
            title = page.locator(".js-plotly-plot .gtitle", has_text=re.compile(r"^Grad-CAM: "))
            await title.first.wait_for(timeout=STEP_TIMEOUT_MS)
            await page.wait_for_selector(".js-plotly-plot g.imagelayer image, .js-plotly-plot .layer-above image",
                                         state="attached", timeout=STEP_TIMEOUT_MS)
            elapsed = time.monotonic() - t0
            step = "check what was drawn"
            await settle(page)
            shown = (await title.first.text_content() or "").strip()
            # the photo picker is a combobox: its chosen option is an <input>'s value
            side = await sidebar.inner_text() + "\n" + "\n".join(await sidebar.locator("input").evaluate_all(
                "els => els.map(e => e.value || '')"))
            exceptions = await page.locator("[data-testid=stException]").count()
            if exceptions:
                errors.append(f"{exceptions} exception box(es)")
            # the heatmap is for the class the model predicts for *this* session's photo
            # (every session's photo has a different class), and the sidebar names this
            # session's upload and no other session's
            foreign = [o for o in others if o in side]
            if shown != f"Grad-CAM: {label}" or photo.name not in side or foreign:
                mixups += 1
                errors.append(f"session {idx} saw '{shown}' (expected 'Grad-CAM: {label}'); "
                              f"own upload named: {photo.name in side}; others' uploads named: {foreign}; "
                              f"sidebar: {' | '.join(side.split()[:60])}")
            times.append(elapsed)
            print(f"session {idx}: heatmap drawn in {elapsed:.1f} s ({shown})", flush=True)
        except Exception as exc:  # noqa: BLE001 - counted and reported
            errors.append(f"session {idx}, step '{step}' after {time.monotonic() - t0:.0f} s: "
                          f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
            print(f"session {idx}: error {errors[-1]}", flush=True)
            if SHOTS:
                try:
                    await page.screenshot(path=str(Path(SHOTS) / f"error-{idx}-{len(errors)}.png"), full_page=True)
                except Exception:  # noqa: BLE001 - best effort
                    pass
    results[idx] = {"times": times, "errors": errors, "mixups": mixups}
    await ctx.close()


async def drive(url, photos, seconds):
    from playwright.async_api import async_playwright

    results = {}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        stop_at = time.monotonic() + seconds
        names = [ph.name for ph, _ in photos]
        await asyncio.gather(*(session(browser, url, i, ph, lab, [n for n in names if n != ph.name],
                                       stop_at, results)
                               for i, (ph, lab) in enumerate(photos)))
        await browser.close()
    return results


def server_cpu(pid: int) -> float:
    """User + system CPU seconds of the server process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


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
    ap.add_argument("--screenshots", help="save a screenshot of the page at every error in this folder")
    args = ap.parse_args(argv)
    global SHOTS
    SHOTS = args.screenshots
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
    if not Path(CHROMIUM).exists():
        print(f"error: {CHROMIUM} not found (install Debian's chromium or set INTERPRET_CHROMIUM)")
        return 2
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        photos = make_photos(args.sessions, Path(tmp))
        log = open(Path(tmp) / "server.log", "w")
        proc = subprocess.Popen([sys.executable, "-m", "interpret", "app", "--headless",
                                 "--port", str(port), "--address", "127.0.0.1"],
                                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_healthy(url, proc, timeout=180)
            cpu_start = server_cpu(proc.pid)  # after the warm start
            t0 = time.monotonic()
            results = asyncio.run(drive(url, photos, args.seconds))
            wall = time.monotonic() - t0
            cpu = server_cpu(proc.pid) - cpu_start
        finally:
            stop(proc)
            log.close()
    times = [t for r in results.values() for t in r["times"]]
    errors = [e for r in results.values() for e in r["errors"]]
    mixups = sum(r["mixups"] for r in results.values())
    cold = [r["times"][0] for r in results.values() if r["times"]]
    warm = [t for r in results.values() for t in r["times"][1:]]
    per_round = cpu / len(times) if times else float("nan")
    lines = [
        f"# Load test: {args.sessions} concurrent browser sessions",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load average before start {load_before:.2f}; Python {platform.python_version()}; "
        f"{wall:.0f} s of driving; server `python -m interpret app` (default settings).",
        "",
        "| sessions | completed | p50 to drawn heatmap | p95 | max | errors | sessions that saw another's result | server CPU per round | one core serves |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {args.sessions} | {len(times)} | {pct(times, 50):.1f} s | {pct(times, 95):.1f} s | "
        f"{max(times) if times else float('nan'):.1f} s | {len(errors)} | {mixups} | {per_round:.2f} s | "
        f"{60 / per_round if per_round > 0 else float('nan'):.0f} rounds a minute |",
        "",
        f"Server CPU: {cpu:.1f} s in {wall:.0f} s of driving ({cpu / wall:.0%} of one core; the "
        f"server process, all threads, from /proc), {per_round:.2f} s per round (open the app, "
        f"upload a photo, open Attributions until its Grad-CAM is drawn): one core serves "
        f"about {60 / per_round if per_round > 0 else float('nan'):.0f} such rounds a minute.",
        "",
        "| rounds | count | p50 | p95 | max |",
        "|---|---:|---:|---:|---:|",
        f"| first round of each session (cold: all browsers open the app at once) | {len(cold)} | "
        f"{pct(cold, 50):.1f} s | {pct(cold, 95):.1f} s | {max(cold) if cold else float('nan'):.1f} s |",
        f"| later rounds (steady state) | {len(warm)} | {pct(warm, 50):.1f} s | {pct(warm, 95):.1f} s | "
        f"{max(warm) if warm else float('nan'):.1f} s |",
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

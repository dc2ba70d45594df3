"""Load test with one hostile visitor: do 4 people working normally notice a 5th who
uploads the files of issue 18's review?

Two runs on the same machine, each with its own fresh server (``python -m interpret
app``, default settings):

* **baseline**: N normal sessions (real headless Chromium, the round of
  ``benchmarks/load_test.py``: open the app, upload its photo, open Attributions until
  the Grad-CAM is drawn), over and over for ``--seconds``;
* **hostile**: the same N sessions, plus one session that, over and over, uploads

  - a 1 x 10000 PNG (about 110 bytes) as its photo (resized to a shorter side of 256
    before the crop, it would be 256 x 2,560,000 pixels: 3.3 GB per prediction),
  - an ONNX file of about 110 bytes declaring a 1 x 3 x 13000 x 13000 input (6.7 GB and
    24 s per prediction in the review),
  - a state dict of 10^6 one-element tensors (about 270 MB, under the 500 MB upload
    limit; 103 s of CPU and 3 GB before its error in the review),

  through the app's own forms, and records what the app answered and how long it took.

Reported: the normal sessions' completed rounds, p50/p95/max time to a drawn heatmap and
errors in both runs, the server's peak memory (VmHWM of the server process, from
``/proc``) and CPU, and the hostile session's answers.  Traffic goes to 127.0.0.1 only.

    python benchmarks/load_test_hostile.py --sessions 4 --seconds 90 [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from serving import free_port, stop, wait_healthy  # noqa: E402

from load_test import CHROMIUM, CHROMIUM_ARGS, make_photos, pct, server_cpu, session, settle  # noqa: E402

TENSORS = 10**6
HOSTILE_TIMEOUT_S = 900  # the hostile session waits this long for an answer


# ----------------------------------------------------------------------------------
# The hostile files


def thin_png(folder: Path) -> Path:
    from PIL import Image

    p = folder / "thin.png"
    Image.new("RGB", (10000, 1), (120, 80, 40)).save(p, "PNG", optimize=True)
    return p


def huge_input_onnx(folder: Path) -> Path:
    """A valid ONNX classifier of 3 classes whose declared input is 1x3x13000x13000."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 13000, 13000])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    graph = helper.make_graph([helper.make_node("GlobalAveragePool", ["x"], ["p"]),
                               helper.make_node("Flatten", ["p"], ["y"])], "huge", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    p = folder / "huge_input.onnx"
    onnx.save(model, p)
    return p


def many_tensors(cache: Path, n: int = TENSORS) -> Path:
    """torch.save of ``n`` one-element tensors (kept in ``cache``: 10^6 take a minute)."""
    p = cache / f"tensors_{n}.pth"
    if not p.exists():
        import torch

        tmp = p.with_suffix(".tmp")
        torch.save({f"t{i}": torch.zeros(1) for i in range(n)}, tmp)
        os.replace(tmp, p)
    return p


# ----------------------------------------------------------------------------------
# The hostile session


ICONS = {"error", "warning", "info", "lock", "timer", "stop_circle", "block"}


async def _alerts(page) -> str:
    """The page's alert boxes, as text (without the Material icon's name)."""
    texts = []
    for t in await page.locator("[data-testid=stAlert]").all_inner_texts():
        words = t.split()
        texts.append(" ".join(words[1:] if words and words[0] in ICONS else words))
    return " | ".join(texts)[:300]


async def _choose(page, box, option: str) -> None:
    """Pick ``option`` in a selectbox (a combobox: its value is an <input>'s)."""
    await box.locator("input").click()
    await page.get_by_role("option", name=option).first.click()
    await settle(page)


async def hostile(browser, url, files, stop_at, results):
    ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await ctx.new_page()
    sidebar = page.locator("[data-testid=stSidebar]")
    answers = []
    while time.monotonic() < stop_at:
        for what, path in files:
            if time.monotonic() >= stop_at:
                break
            t0 = time.monotonic()
            try:
                await page.goto(url)
                await settle(page)
                if what == "thin PNG":
                    await sidebar.locator("[data-testid=stFileUploader] input[type=file]"
                                          ).first.set_input_files(str(path))
                else:
                    boxes = sidebar.locator("[data-testid=stSelectbox]")  # model, then library
                    await _choose(page, boxes.nth(0), "Upload a checkpoint")
                    if path.suffix == ".onnx":
                        await _choose(page, boxes.nth(1), "ONNX graph")
                    await sidebar.locator("[data-testid=stFileUploader]").filter(has_text="Checkpoint").locator(
                        "input[type=file]").first.set_input_files(str(path))
                    await page.wait_for_timeout(500)
                    await settle(page, timeout_s=HOSTILE_TIMEOUT_S)
                    await sidebar.get_by_role("button", name="Load model").first.click()
                await settle(page, timeout_s=HOSTILE_TIMEOUT_S)
                answers.append((what, time.monotonic() - t0, await _alerts(page)))
            except Exception as exc:  # noqa: BLE001 - recorded
                answers.append((what, time.monotonic() - t0,
                                f"driver error: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"))
            print(f"hostile: {answers[-1][0]} answered in {answers[-1][1]:.1f} s: {answers[-1][2][:160]}",
                  flush=True)
    results["hostile"] = answers
    await ctx.close()


async def drive(url, photos, seconds, files):
    from playwright.async_api import async_playwright

    results = {}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        stop_at = time.monotonic() + seconds
        names = [ph.name for ph, _ in photos]
        jobs = [session(browser, url, i, ph, lab, [n for n in names if n != ph.name], stop_at, results)
                for i, (ph, lab) in enumerate(photos)]
        if files:
            jobs.append(hostile(browser, url, files, stop_at, results))
        await asyncio.gather(*jobs)
        await browser.close()
    return results


# ----------------------------------------------------------------------------------
# One run: a fresh server, the sessions, its memory


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def one_run(photos, seconds: float, files, tmp: Path) -> dict:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp / f"server-{port}.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "interpret", "app", "--headless",
                             "--port", str(port), "--address", "127.0.0.1"],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_healthy(url, proc, timeout=300)
        rss_start = rss_kib(proc.pid, "VmRSS")
        cpu_start = server_cpu(proc.pid)
        t0 = time.monotonic()
        results = asyncio.run(drive(url, photos, seconds, files))
        wall = time.monotonic() - t0
        cpu = server_cpu(proc.pid) - cpu_start
        peak = rss_kib(proc.pid, "VmHWM")
        alive = proc.poll() is None
    finally:
        stop(proc)
        log.close()
    normal = {k: v for k, v in results.items() if k != "hostile"}
    return {"times": [t for r in normal.values() for t in r["times"]],
            "errors": [e for r in normal.values() for e in r["errors"]],
            "mixups": sum(r["mixups"] for r in normal.values()),
            "hostile": results.get("hostile", []), "wall": wall, "cpu": cpu,
            "rss_start_mib": rss_start / 1024, "peak_mib": peak / 1024, "alive": alive}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=4, help="normal sessions")
    ap.add_argument("--seconds", type=float, default=90, help="how long each run drives")
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "interpret-hostile"),
                    help="where the 270 MB state dict is kept between runs")
    ap.add_argument("--tensors", type=int, default=TENSORS,
                    help="tensors in the hostile state dict (smaller: a quick check of the driver)")
    ap.add_argument("--out", help="also write the report (markdown) to this file")
    args = ap.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"error: {CHROMIUM} not found (install Debian's chromium or set INTERPRET_CHROMIUM)")
        return 2
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        photos = make_photos(args.sessions, tmp)
        files = [("thin PNG", thin_png(tmp)), ("ONNX 13000x13000", huge_input_onnx(tmp)),
                 (f"{args.tensors:,}-tensor state dict", many_tensors(cache, args.tensors))]
        sizes = {what: p.stat().st_size for what, p in files}
        print(f"hostile files: {sizes}", flush=True)
        base = one_run(photos, args.seconds, None, tmp)
        print(f"baseline: {len(base['times'])} rounds", flush=True)
        bad = one_run(photos, args.seconds, files, tmp)
    rows = []
    for name, r in (("baseline: no hostile session", base), ("with the hostile session", bad)):
        t = r["times"]
        rows.append(f"| {name} | {args.sessions} | {len(t)} | {pct(t, 50):.1f} s | {pct(t, 95):.1f} s | "
                    f"{max(t) if t else float('nan'):.1f} s | {len(r['errors'])} | {r['mixups']} | "
                    f"{r['rss_start_mib']:.0f} MiB | {r['peak_mib']:.0f} MiB | {r['cpu']:.0f} s in {r['wall']:.0f} s | "
                    f"{'yes' if r['alive'] else 'no'} |")
    lines = [
        f"# Load test with one hostile session ({dt.date.today().isoformat()})",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
        f"before start {load_before:.2f}; Python {platform.python_version()}; {args.seconds:.0f} s of "
        "driving per run, each run on a fresh `python -m interpret app` (default settings).",
        "",
        "| run | normal sessions | completed rounds | p50 to drawn heatmap | p95 | max | errors | "
        "saw another's result | server memory after start | server peak memory | server CPU | server alive |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        *rows,
        "",
        "The hostile session's files: " + ", ".join(f"{w} ({s:,} bytes)" for w, s in sizes.items()) + ".",
        "",
        "| hostile upload | tries | p50 time to the app's answer | max | what the app said (first try) |",
        "|---|---:|---:|---:|---|",
    ]
    for what, _ in files:
        got = [a for a in bad["hostile"] if a[0] == what]
        secs = [a[1] for a in got]
        said = got[0][2].replace("|", "/") if got else "(not reached)"
        lines.append(f"| {what} | {len(got)} | {pct(secs, 50):.1f} s | "
                     f"{max(secs) if secs else float('nan'):.1f} s | {said} |")
    errors = base["errors"] + bad["errors"]
    if errors:
        lines += ["", "Errors of the normal sessions:"] + [f"- {e}" for e in errors[:20]]
    report = "\n".join(lines)
    print(report)
    if args.out:
        Path(args.out).write_text(report + "\n")
    return 0 if bad["alive"] and base["times"] and bad["times"] else 1


if __name__ == "__main__":
    sys.exit(main())

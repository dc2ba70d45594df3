"""The warm start: what the first visitor after a server start would otherwise wait for,
done while the server starts, before it answers its health check.

``streamlit run app.py`` (and ``python -m interpret app``, which runs it) serves
``app.py``'s ``st.App`` whose :func:`lifespan` calls :func:`warm_up`: the heavy imports
(torch, torchvision, Plotly's figure classes, every method module) happen with the
import of app.py; :func:`warm_up` then loads the bundled model into the same
``st.cache_resource`` the pages use, and builds the default views of every page
(predictions, the Grad-CAM capture, the layer maps, the figures) into the shared result
cache, so the first visitor is served like the hundredth.

It takes a few seconds of CPU once per server start; the setting ``warm_start = false``
(``INTERPRET_WARM_START=0``) turns it off.  Then everything loaded so far is frozen out
of the garbage collector's sight (``gc.freeze``): it lives as long as the server, and a
full collection no longer walks it.  A failure is logged and never stops the
server: the pages then do the same work on their first visit and show any error there.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from typing import Dict

import interpret
from interpret.settings import load_settings

from . import compute, state, views
from .samples import DEFAULT_SAMPLE, sample

log = logging.getLogger("interpret.app")


def default_image() -> compute.ImageChoice:
    """The photo a new visitor sees (the default sample), as the pages load it."""
    s = sample(DEFAULT_SAMPLE)
    img, h = compute._load_sample(str(s.path), s.path.stat().st_mtime)
    return compute.ImageChoice(img, h, s.title.lower(), f"sample:{s.key}")


def warm_up() -> Dict[str, float]:
    """Load the bundled model and build the default views; returns seconds per step."""
    times: Dict[str, float] = {}
    t = time.perf_counter()

    def done(step: str) -> None:
        nonlocal t
        now = time.perf_counter()
        times[step] = now - t
        t = now

    compute.runtime()  # torch threads and device, as the pages set them
    handle = compute._load_named(state.DEFAULT_MODEL, True)
    interpret.methods(handle)
    done("model")
    img = default_image()
    preds = compute.predictions(handle, img)
    top = preds[0].index
    views.top_bars(handle, img, preds, 10, top)
    views.distribution(handle, img, preds, False, 0)
    done("predictions")
    layer = interpret.default_layer(handle)
    spec = interpret.get_method(state.DEFAULTS["method"])
    e = compute.explain(handle, img, spec.name, layer, top, None, spec.defaults())
    views.attribution_figure(handle, img, e, f"{spec.label}: {e.target_label}",
                             state.DEFAULTS["cmap"], state.DEFAULTS["opacity"])
    for name in state.DEFAULT_COMPARE:
        s = interpret.get_method(name)
        if s.speed == "instant" and s.unavailable(handle) is None:
            ce = compute.explain(handle, img, name, layer if s.needs_layer else None, top, None,
                                 s.defaults())
            views.overlay_uri(handle, img, ce, state.DEFAULTS["cmap"], state.DEFAULTS["opacity"])
    done("attributions")
    compute.layer_maps(handle, img, layer)
    views.photo_with_crop(handle, img)
    views.model_view(handle, img)
    done("activations and input")
    log.info("warm start: %s", ", ".join(f"{k} {v:.1f} s" for k, v in times.items()))
    return times


@contextlib.asynccontextmanager
async def lifespan(app):
    """``st.App``'s lifespan: warm up before the server answers (in a worker thread, so
    the event loop stays free), then serve."""
    try:
        enabled = load_settings().warm_start
    except interpret.InputError as exc:  # the pages show the reason to every visitor
        log.error("invalid server settings, no warm start: %s", exc)
        enabled = False
    if enabled:
        try:
            await asyncio.to_thread(warm_up)
        except Exception:  # noqa: BLE001 - never stop the server: the pages do it later
            log.exception("the warm start failed; the first visitor will do its work")
    # what is loaded now (modules, the bundled model, the default views) lives as long as
    # the server: out of the garbage collector's sight, a full collection costs
    # milliseconds instead of ~0.4 s (it would walk ~400,000 objects)
    gc.collect()
    gc.freeze()
    sweeper = asyncio.create_task(_sweep_forever())
    try:
        yield
    finally:
        sweeper.cancel()


async def _sweep_forever() -> None:
    """Every ``perimeter.SWEEP_S`` seconds, drop the uploads of sessions that ended."""
    from .perimeter import SWEEP_S, sweep

    while True:
        await asyncio.sleep(SWEEP_S)
        try:
            sweep()
        except Exception:  # noqa: BLE001 - never stop the server over a sweep
            log.exception("dropping the uploads of ended sessions failed")

"""What a person is looking at ("the view"), kept in ``st.session_state`` and mirrored
in the URL so that a link reproduces it.

One canonical dict, ``st.session_state["view"]``, holds every choice that matters
across pages (model, image, layer, method, target, ...).  Widgets never own that
state: each widget has its own key (``w_<name>``), is seeded from the view before it
is drawn and writes back through an ``on_change`` callback (:func:`commit`).  So a
choice survives page switches (Streamlit forgets the state of widgets that are not
drawn) and a page can change the view for another page (Outputs -> "explain this
class").

The URL: on a session's first run the view is read from ``st.query_params``; after
that the view is written to the URL whenever it changes (:func:`sync_url`).  Uploaded
files are never put in the URL; a link to an upload says so.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

import streamlit as st

from interpret.words import link_note

from .samples import DEFAULT_SAMPLE, sample

DEFAULT_MODEL = "efficientnet_lite0"
DEFAULT_COMPARE = ("gradcam", "gradcam_plus_plus", "layercam", "eigencam")
#: most methods the Attributions page compares side by side (links included)
COMPARE_MAX = 8

DEFAULTS: Dict[str, Any] = {
    "model": DEFAULT_MODEL,      # "efficientnet_lite0" | "torchvision:<arch>" | "team:<name>" | "upload"
    "image": f"sample:{DEFAULT_SAMPLE}",  # "sample:<key>" | "upload" | "camera"
    "present": False,            # presentation mode
    "target": None,              # class index, None = the top prediction
    "contrast": None,            # class index or None
    "layer": None,               # module name, None = the backend's suggestion
    "method": "gradcam",
    "compare": DEFAULT_COMPARE,
    "cmap": "jet",
    "opacity": 0.5,
    "resolution": "input",       # overlay on the model's view or on the whole photo
    "channel": None,             # Activations: the enlarged channel
    "rank": "mean",              # Activations: rank channels by mean or max
    "scale": "channel",          # Activations: colour scale per channel or per layer
    "page_no": 1,                # Activations: page of channels
    "topk": 10,                  # Outputs
    "log": False,                # Outputs: log scale
    "params": {},                # {method: {param: value}} where they differ from defaults
}

# view key -> URL key
_URL_KEYS = {
    "model": "model", "image": "img", "present": "present", "target": "target",
    "contrast": "contrast", "layer": "layer", "method": "method", "compare": "compare",
    "cmap": "cmap", "opacity": "opacity", "resolution": "res", "channel": "channel",
    "rank": "rank", "scale": "scale", "page_no": "chpage", "topk": "topk", "log": "log",
}

# changing one of these makes others meaningless
_RESETS = {
    "model": ("layer", "target", "contrast", "channel", "page_no"),
    "image": ("target", "contrast", "channel"),
    "layer": ("channel", "page_no"),
    "rank": ("page_no",),
}


def view() -> Dict[str, Any]:
    """The current view (created with defaults, then from the URL, on first use)."""
    ss = st.session_state
    if "view" not in ss:
        ss["view"] = copy.deepcopy(DEFAULTS)
        ss["link_notes"] = _read_url(ss["view"])
    return ss["view"]


def get(name: str) -> Any:
    return view()[name]


def set(name: str, value: Any) -> None:  # noqa: A001 - mirrors get()
    """Change one field of the view, clearing the fields that depend on it."""
    v = view()
    if v.get(name) == value:
        return
    v[name] = value
    for dep in _RESETS.get(name, ()):
        v[dep] = copy.deepcopy(DEFAULTS[dep])


def wkey(name: str, options: Optional[Iterable[Any]] = None, fallback: Any = None) -> str:
    """The widget key for view field ``name``, seeded with the view's value (so the
    widget shows it).  With ``options``, a value that is not among them is shown as
    ``fallback`` (or the first option); the view itself is not changed."""
    key = f"w_{name}"
    value = view()[name]
    if options is not None:
        opts = list(options)
        if value not in opts:  # e.g. None = "the default": show the default option
            value = fallback if fallback in opts else (opts[0] if opts else None)
    if isinstance(value, tuple):
        value = list(value)
    st.session_state[key] = value
    return key


def commit(name: str, convert: Optional[Callable[[Any], Any]] = None,
           rerun: Optional[Sequence[str]] = None) -> None:
    """``on_change`` callback: copy widget ``w_<name>`` into the view; with ``rerun``
    (fragment keys), rerun just those fragments of the page."""
    value = st.session_state.get(f"w_{name}")
    if convert is not None:
        value = convert(value)
    set(name, value)
    if rerun:
        st.rerun(scope=list(rerun))


def bound(name: str, options: Optional[Iterable[Any]] = None, fallback: Any = None,
          convert: Optional[Callable[[Any], Any]] = None,
          rerun: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Keyword arguments that bind a widget to view field ``name``:
    ``st.selectbox("Colour map", COLORMAPS, **state.bound("cmap", COLORMAPS))``.
    ``rerun``: the keys of the fragments (``@st.fragment(key=...)``) a change reruns,
    when they are not just the one the widget is in (e.g. a heatmap and a comparison
    drawn in the same colours)."""
    return {"key": wkey(name, options, fallback), "on_change": commit, "args": (name, convert, rerun)}


def method_params(method: str) -> Dict[str, Any]:
    """Parameter values chosen for ``method`` (only those that differ from defaults)."""
    return dict(view()["params"].get(method, {}))


def set_method_param(method: str, name: str, value: Any, default: Any) -> None:
    params = view()["params"].setdefault(method, {})
    if value == default:
        params.pop(name, None)
    else:
        params[name] = value


def presentation() -> bool:
    return bool(view()["present"])


# ----------------------------------------------------------------------------------
# URL


def _url_value(name: str, value: Any) -> Optional[str]:
    if value is None or value == DEFAULTS.get(name):
        return None
    if name == "image":
        return value.split(":", 1)[1] if value.startswith("sample:") else value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def url_params() -> Dict[str, str]:
    """The view as query parameters (only what differs from the defaults)."""
    v = view()
    out = {}
    for name, key in _URL_KEYS.items():
        s = _url_value(name, v[name])
        if s is not None:
            out[key] = s
    for pname, pvalue in v["params"].get(v["method"], {}).items():
        out[f"p.{pname}"] = json.dumps(pvalue) if not isinstance(pvalue, str) else pvalue
    return out


def sync_url() -> None:
    """Write the view to the address bar (only when it changed, to avoid churn)."""
    want = url_params()
    try:
        have = st.query_params.to_dict()
    except Exception:  # noqa: BLE001 - no query params outside a script run
        return
    if have != want:
        st.query_params.from_dict(want)


def _parse_int(s: str) -> int:
    try:
        return int(s.strip())
    except ValueError:
        raise ValueError("not a whole number") from None


def _method_names() -> List[str]:
    import interpret

    return [m.name for m in interpret.methods()]


def _colormaps() -> List[str]:
    import interpret

    return list(interpret.COLORMAPS)


# URL values that must be one of a few words
_CHOICES: Dict[str, Callable[[], List[str]]] = {
    "cmap": _colormaps,
    "resolution": lambda: ["input", "original"],
    "rank": lambda: ["mean", "max"],
    "scale": lambda: ["channel", "layer"],
}


def _read_url(v: Dict[str, Any]) -> List[str]:
    """Apply the query parameters of a new session to the view; returns notes about
    values that could not be used (shown once at the top of the page), as markup whose
    parts from the link are escaped."""
    try:
        q = st.query_params.to_dict()
    except Exception:  # noqa: BLE001
        return []
    notes: List[str] = []

    def bad(key, value, why):
        # key, value and often why are the link's own text: escaped (interpret.words)
        notes.append(link_note(key, value, why))

    for name, key in _URL_KEYS.items():
        if key not in q:
            continue
        raw = q[key]
        try:
            if name == "image":
                if raw in ("upload", "camera"):
                    notes.append(
                        "The link points to a photo that was uploaded or taken with a camera; "
                        "uploads stay private to the session that made them, so the default "
                        "sample is shown instead. Upload the same photo to see the same view.")
                    continue
                if sample(raw) is None:
                    raise ValueError("no sample photo has that name")
                v[name] = f"sample:{raw}"
            elif name == "model":
                if raw == "upload":
                    notes.append("The link was made with an uploaded model, which links cannot "
                                 "carry; the bundled model is used instead.")
                    continue
                if raw != DEFAULT_MODEL and not raw.startswith(("torchvision:", "team:", "open_clip:")):
                    raise ValueError("unknown model")
                v[name] = raw
            elif name in ("present", "log"):
                v[name] = raw.lower() in ("1", "true", "yes", "on")
            elif name in ("target", "contrast", "channel", "page_no", "topk"):
                v[name] = _parse_int(raw)
            elif name == "opacity":
                val = float(raw)
                if not 0.0 <= val <= 1.0:
                    raise ValueError("opacity must be between 0 and 1")
                v[name] = val
            elif name == "compare":
                known = _method_names()
                items = [x for x in raw.split(",") if x]
                unknown = [x for x in items if x not in known]
                if unknown:
                    bad(key, ",".join(unknown), "no such method")
                v[name] = tuple(x for x in items if x in known)[:COMPARE_MAX]
            elif name == "method":
                if raw not in _method_names():
                    raise ValueError("no such method (see the Attributions page for the list)")
                v[name] = raw
            elif name in _CHOICES:
                if raw not in _CHOICES[name]():
                    raise ValueError(f"expected one of {', '.join(_CHOICES[name]())}")
                v[name] = raw
            else:
                v[name] = raw
        except ValueError as exc:
            bad(key, raw, str(exc) or "not a valid value")
    params = {k[2:]: val for k, val in q.items() if k.startswith("p.")}
    if params:
        import interpret

        spec = interpret.get_method(v["method"])
        known = {p.name: p for p in spec.params}
        decoded = {}
        for k, val in params.items():
            if k not in known:
                bad(f"p.{k}", val, f"{spec.label} has no such setting")
                continue
            try:
                decoded[k] = known[k].validate(json.loads(val) if known[k].kind != "choice" else val)
            except (ValueError, interpret.InputError) as exc:
                bad(f"p.{k}", val, str(exc))
        v["params"] = {v["method"]: decoded}
    return notes


def take_link_notes() -> List[str]:
    """Notes about a link's settings that could not be applied (returned once)."""
    return st.session_state.pop("link_notes", []) or []

"""Image-text and embedding models in the app: the sidebar's prompt box (one prompt per
line, a template offered), the Outputs page's probabilities over the prompts (or an
embedding's size), and the Attributions page's choice of what is explained: a prompt,
listed or typed, optionally "rather than" another; or "similar to" a reference photo.
Drawing only: the numbers come from :mod:`interpret.imagetext`."""

from __future__ import annotations

from typing import List, Optional

import streamlit as st

import interpret
from interpret import figures, imagetext
from interpret import words as w

from . import compute

#: open_clip models a visitor may pick (built from open_clip's configs; weights only from
#: the server's cache): small enough for a shared CPU server
OPEN_CLIP_MODELS = ("ViT-B-32", "ViT-B-16", "RN50")
DEFAULT_TEMPLATE = "a photo of a {}"
DEFAULT_PROMPTS = "cat\ndog\ncar"


def has_text_side(handle) -> bool:
    return isinstance(getattr(handle, "module", None), imagetext.ImageTextModel)


def prompts_from(text: str, template: str) -> List[str]:
    """The prompts of the box: one per non-empty line, each put into ``template`` where
    it has a ``{}`` (a line that already reads as a sentence is kept as typed when the
    template is empty)."""
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    t = (template or "").strip()
    if "{}" in t:
        return [t.replace("{}", ln) for ln in lines]
    return lines


@st.cache_resource(show_spinner=False, max_entries=16)
def _prompted(key: tuple, _handle, prompts: tuple):
    # the text tower runs once per (model, prompt set) for the whole server
    return imagetext.with_prompts(_handle, prompts)


def _keep(widget: str, key: str) -> None:
    st.session_state[key] = st.session_state[widget]


def prompts_box(choice: compute.ModelChoice) -> compute.ModelChoice:
    """The sidebar's prompt box under an image-text model; returns the choice with the
    handle whose classes are the prompts (an embedding of the image tower while the box
    is empty)."""
    h = choice.handle
    if h is None or not has_text_side(h):
        return choice
    ss = st.session_state
    # kept outside the widgets' keys: a widget's own state is dropped on a page switch
    ss.setdefault("prompts_text", DEFAULT_PROMPTS)
    ss.setdefault("prompt_template", DEFAULT_TEMPLATE)
    ss["w_prompts"], ss["w_prompt_template"] = ss["prompts_text"], ss["prompt_template"]
    st.text_area("Prompts (one per line)", key="w_prompts", height=110, on_change=_keep,
                 args=("w_prompts", "prompts_text"),
                 help=f"The classes of a zero-shot classifier: the model compares the photo with "
                      f"each prompt. At most {imagetext.MAX_PROMPTS} prompts of "
                      f"{imagetext.MAX_PROMPT_CHARS} characters.")
    st.text_input("Template", key="w_prompt_template", on_change=_keep,
                  args=("w_prompt_template", "prompt_template"),
                  help="Each line is put where {} stands (CLIP's authors found 'a photo of a {}' "
                       "better than the bare word). Leave it empty to use the lines as typed.")
    prompts = prompts_from(ss["prompts_text"], ss["prompt_template"])
    if not prompts:
        st.caption("No prompts: the model is explained as an embedding (similarity to a reference photo).")
        return choice
    try:
        checked = imagetext.check_prompts(prompts)
        key = (h.name, h.fingerprint(), checked)
        handle = compute.run_gated(lambda _p: _prompted(key, h, checked))
    except interpret.InputError as exc:
        st.error(w.text(str(exc)), icon=":material/error:")
        return choice
    return compute.ModelChoice(handle, choice.error, choice.note)


# ----------------------------------------------------------------------------------
# Outputs


def outputs(ctx) -> None:
    """The Outputs page for an image-text model (the probabilities over the prompts) or
    an embedding model (the embedding's size and length)."""
    h = ctx.handle
    if h.task == "embedding":
        emb = embedding_of(ctx)
        st.markdown(embedding_sentence(emb.size, emb.norm))
        st.caption("An embedding model has no classes. On the Attributions page, upload a reference "
                   "photo to see what makes this photo look like it to the model.")
        return
    preds = ctx.predictions
    st.markdown(zero_shot_sentence([(p.label, p.probability) for p in preds]))
    fig = figures.predictions_bar([p.label for p in preds], [p.probability for p in preds],
                                  title="Probability over the prompts")
    st.plotly_chart(fig, key="prompt_bars", config={"displayModeBar": False})
    st.caption("softmax(logit scale × cosine(photo, prompt)) over the prompts in the sidebar: "
               "they always sum to 100%, so the model's pick is only as good as the prompts offered.")


def embedding_of(ctx) -> "imagetext.Embedding":
    """The embedding of the page's photo (cached by model and photo content)."""
    h = ctx.handle
    return compute.cached(("embedding", h.fingerprint(), ctx.image.hash),
                          lambda: interpret.predict(h, ctx.image.image))


def zero_shot_sentence(rows) -> str:
    """The zero-shot answer in words (prompts escaped): the top prompt and its share."""
    if not rows:
        return "There are no prompts."
    label, p = rows[0]
    if len(rows) == 1:
        return (f"With one prompt, *{w.text(label)}* gets 100% by construction: add other prompts "
                "to compare.")
    return (f"Of the {len(rows)} prompts, the model finds the photo closest to *{w.text(label)}* "
            f"({w.percent(p)}).")


def embedding_sentence(size: int, norm: float) -> str:
    return f"The model turns this photo into an embedding of **{size}** numbers (length {norm:.3g})."


# ----------------------------------------------------------------------------------
# Attributions


def task_target(ctx, cls: int):
    """What the Attributions page explains for an image-text model (a prompt of the
    list or any typed text, optionally rather than another) or an embedding model (the
    similarity to a reference photo the visitor uploads)."""
    h = ctx.handle
    ref = reference_target()
    if h.task == "embedding":
        if ref is None:
            raise interpret.InputError("Upload a reference photo above: an embedding model is explained "
                                       "by what makes this photo look like another.")
        return ref
    labels = h.labels
    way = st.radio("Explain", ("a prompt", "similar to a photo"), horizontal=True, key="w_it_way")
    if way == "similar to a photo":
        if ref is None:
            raise interpret.InputError("Upload a reference photo above.")
        return ref
    typed = st.text_input("Or type any prompt", key="w_it_prompt",
                          help="Any text, listed in the sidebar or not.").strip()
    prompt = typed or labels[int(cls)]
    others = ["(none)"] + [p for p in labels if p != prompt]
    rather = st.selectbox("Rather than", others, key="w_it_contrast",
                          help="Explain what makes the photo closer to the prompt than to this one.")
    target = interpret.targets.text(prompt, None if rather == "(none)" else rather)
    st.caption(f"Explaining {target.sentence(labels)}.")
    return target


def reference_target():
    """``targets.similar_to`` the photo uploaded in the reference box, or None."""
    up = st.file_uploader("Reference photo", type=["jpg", "jpeg", "png", "webp"], key="w_it_reference",
                          help="Why does the model find the two photos alike? (cosine similarity of "
                               "their embeddings)")
    if up is None:
        st.session_state.pop("it_reference", None)
        return None
    img, _ = compute.decode_upload(up.getvalue())
    target = interpret.targets.similar_to(img, up.name)
    # for the comparison below (a fragment of its own): the same reference
    st.session_state["it_reference"] = target
    return target


def chosen_reference(handle):
    """The ``similar_to`` target of the reference photo uploaded above on this page, or None."""
    return st.session_state.get("it_reference")


def available() -> bool:
    """Whether open_clip is installed on this server (the optional extra ``clip``)."""
    import importlib.util

    return importlib.util.find_spec("open_clip") is not None

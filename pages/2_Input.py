"""Input: the photo next to exactly what the model receives."""

from __future__ import annotations

import streamlit as st

import ui
from interpret import words
from ui import compute, views


def _size(size) -> str:
    if size is None:
        return "none"
    if isinstance(size, int):
        return str(size)
    return f"({size[0]}, {size[1]})"


def _steps(pre) -> str:
    """The resize and crop steps in words."""
    steps = []
    if isinstance(pre.resize, int):
        steps.append(f"resized so that the shorter side is {pre.resize} px")
    elif pre.resize is not None:
        steps.append(f"resized to {pre.resize[0]}×{pre.resize[1]} px")
    if pre.crop is not None:
        ch, cw = pre.input_size
        steps.append(f"then the central {ch}×{cw} kept")
    return ", ".join(steps) + f" ({pre.interpolation} interpolation)"


def _torchvision_code(pre) -> str:
    """The same preprocessing written with torchvision transforms, to copy into code."""
    steps = []
    interp = pre.interpolation.upper()
    if pre.resize is not None:
        steps.append(f"T.Resize({_size(pre.resize)}, interpolation=T.InterpolationMode.{interp})")
    if pre.crop is not None:
        steps.append(f"T.CenterCrop({_size(pre.crop)})")
    steps.append("T.ToTensor()")
    mean = ", ".join(f"{m:.4f}" for m in pre.mean)
    std = ", ".join(f"{s:.4f}" for s in pre.std)
    steps.append(f"T.Normalize(mean=[{mean}], std=[{std}])")
    body = ",\n    ".join(steps)
    return f"import torchvision.transforms as T\n\npreprocess = T.Compose([\n    {body},\n])"


def main() -> None:
    ctx = ui.setup("Input", "🖼️",
                   "The photo next to exactly what the model receives: resized, cropped and "
                   "normalised.")
    if ctx is None:
        return
    pre = ctx.handle.preprocessing
    W, H = ctx.image.image.size
    h, w = ctx.handle.input_size

    with ui.guard("preparing the model's input"):
        if ctx.present:
            ui.plain(f"The model never sees the whole photo: it gets a small **{h}×{w}** "
                     f"square from the middle (inside the dashed frame), and nothing else.")

        left, right = st.columns(2, gap="large")
        with left:
            st.subheader("Your photo")
            st.plotly_chart(views.photo_with_crop(ctx.handle, ctx.image), key="original",
                            config={"displayModeBar": False})
            st.caption(f"Original: {W}×{H} pixels. The dashed frame is the part the model keeps.")
        with right:
            st.subheader("What the model receives")
            st.plotly_chart(views.model_view(ctx.handle, ctx.image), key="model_view",
                            config={"displayModeBar": False})
            st.caption(f"{h}×{w} pixels: {words.text(_steps(pre))}. Shown de-normalised, so that the "
                       "colours look natural.")

    if ctx.present:
        ui.finish()
        return

    with ui.guard("the channel views"):
        st.subheader("Colour channels")
        st.caption("The model receives three numbers per pixel, one per colour channel.")
        tint = st.toggle("Show each channel in its own colour", value=True, key="w_tint")
        st.plotly_chart(views.colour_channels(ctx.handle, ctx.image, tint), key="channels",
                        config={"displayModeBar": False})
        st.plotly_chart(views.input_histograms(ctx.handle, ctx.image), key="histograms",
                        config={"displayModeBar": False})
        values = compute.model_input(ctx.handle, ctx.image).values
        lo, hi = float(values.min()), float(values.max())
        st.caption(f"Normalisation subtracts the mean and divides by the standard deviation of "
                   f"each channel, so values run from {lo:.2f} to {hi:.2f} instead of 0-255.")

    with ui.guard("the preprocessing settings"):
        st.subheader("Preprocessing settings")
        a, b = st.columns(2, gap="large")
        with a:
            d = pre.as_dict()
            st.markdown(
                f"- **Resize**: {'shorter side to ' + str(d['resize']) + ' px' if isinstance(d['resize'], int) else _size(d['resize'])}\n"
                f"- **Crop**: centre {_size(d['crop'])}\n"
                f"- **Interpolation**: {d['interpolation']}\n"
                f"- **Scale**: pixel values / 255, to [0, 1]\n"
                f"- **Normalise**: mean ({', '.join(f'{m:.3f}' for m in d['mean'])}), "
                f"std ({', '.join(f'{s:.3f}' for s in d['std'])})\n"
                f"- **Input size**: {h}×{w}")
        with b:
            st.code(_torchvision_code(pre), language="python", wrap_lines=True)
    ui.finish()


with ui.guard("this page"):  # the last safety net: never a traceback
    main()

"""The floor's second page: one 224x224 image in one Plotly figure."""

from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image, ImageOps

from floor_figure import image_figure

PHOTO = Path(__file__).resolve().parents[3] / "assets" / "samples" / "cat.jpg"

st.set_page_config(page_title="Figure", layout="wide")
st.title("Figure")
with Image.open(PHOTO) as im:
    pixels = np.asarray(ImageOps.fit(im.convert("RGB"), (224, 224)))
st.plotly_chart(image_figure(pixels, "Floor: one image"), key="figure")
st.page_link("app.py", label="Home")

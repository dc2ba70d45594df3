"""The floor: a bare two-page Streamlit app, what Streamlit itself costs per view.

``benchmarks/bench_views.py`` runs it next to the dashboard, the same way, in the same
run: its home page is text and a link; its second page (pages/1_Figure.py) draws one
224x224 ``go.Image`` in ``st.plotly_chart``, the smallest page that shows a heatmap.
Nothing here is cached or tuned: it is what a first Streamlit app looks like.
"""

import streamlit as st

st.set_page_config(page_title="Floor", layout="wide")
st.title("Floor")
st.markdown("A bare two-page Streamlit app: the cost of Streamlit itself, for comparison.")
st.page_link("pages/1_Figure.py", label="Figure")

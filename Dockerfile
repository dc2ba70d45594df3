# interpret-dashboard: CPU image by default.
#   docker build -t interpret-dashboard .
#   docker run -p 8501:8501 interpret-dashboard
# GPU variant: build with --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128
# (any CUDA wheel index matching the host driver) and run with --gpus all and
# INTERPRET_DEVICE=cuda.
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    INTERPRET_SETTINGS=/config/interpret.toml

# libgl1 libglib2.0-0: OpenCV (cv2, pulled by ultralytics for YOLO) needs libGL.so.1 and glib
RUN apt-get update && apt-get install -y --no-install-recommends curl libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 app

WORKDIR /app
# torch first, from the chosen index (CPU wheels are ~10x smaller than CUDA ones)
RUN pip install --index-url "$TORCH_INDEX" "torch>=2.10" "torchvision>=0.25"
COPY pyproject.toml README.md ./
COPY interpret ./interpret
# the package with its default dependencies: every model source (timm, transformers,
# onnx and onnx2torch, ultralytics), as `make app` installs them
RUN pip install .
COPY app.py ./
COPY pages ./pages
COPY ui ./ui
COPY assets ./assets
COPY .streamlit ./.streamlit
COPY deploy/interpret.toml /config/interpret.toml

USER app
ENV TORCH_HOME=/home/app/.cache/torch
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD curl -fsS http://localhost:8501/_stcore/health || exit 1
CMD ["python", "-m", "interpret", "app", "--address", "0.0.0.0", "--port", "8501", "--headless"]

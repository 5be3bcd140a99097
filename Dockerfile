# One image for the server and the workers; the command picks the role:
#   docker run hpo-service server --host 0.0.0.0      docker run hpo-service worker
# CPU torch by default. For NVIDIA GPUs pick the CUDA wheel index, e.g.
#   docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu124 -t hpo-service .
FROM python:3.11-slim

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HPO_DATA_DIR=/data \
    PYTHONPATH=/app

# torch first, in its own layer: the largest download and the least often changed. The
# project asks only torch>=2.3, so the install below keeps this build (CPU or CUDA).
RUN pip install --index-url "${TORCH_INDEX_URL}" "torch>=2.3"

WORKDIR /app
# Only what the package needs (no .venv, tests or caches from the build context).
COPY pyproject.toml README.md ./
COPY hpo ./hpo
COPY server ./server
COPY worker ./worker
COPY search ./search
COPY models ./models
COPY migrations ./migrations
# The examples run as shipped: their specs, and the training code an entrypoint names
# (`examples.custom_train:train` imports from /app, on PYTHONPATH).
COPY examples ./examples
# The service and the worker (the image runs either), on PostgreSQL, with artifacts on
# a shared volume or object storage.
RUN pip install ".[all,postgres,s3]"

# Unprivileged user; /data holds the data directory (artifacts, checkpoints): mount a
# volume there, shared between server and workers when checkpoints must survive a worker.
RUN useradd --create-home --uid 1000 hpo \
    && mkdir -p /data \
    && chown hpo:hpo /data
USER hpo
WORKDIR /home/hpo

EXPOSE 8765
ENTRYPOINT ["hpo"]
CMD ["--help"]

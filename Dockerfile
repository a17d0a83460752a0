# syntax=docker/dockerfile:1
# One image for the server and the workers.
#   CPU (default):  docker build -t miles-dashboard .
#   CUDA:           docker build --build-arg TORCH_INDEX=cu126 -t miles-dashboard:cuda .
# TORCH_INDEX names a wheel index of download.pytorch.org/whl (cpu, cu126, cu128, ...);
# the CUDA wheels carry their own CUDA runtime, so the base image stays slim and the host
# only needs the NVIDIA driver and container toolkit.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
ARG TORCH_INDEX=cpu
ARG TORCH_VERSION=2.13.0
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/miles
ENV PATH=/opt/miles/bin:$PATH
# torch first, from the chosen index, so that installing the project keeps it.
RUN pip install --index-url "https://download.pytorch.org/whl/${TORCH_INDEX}" "torch==${TORCH_VERSION}"
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY trainer ./trainer
COPY server ./server
COPY worker ./worker
COPY web ./web
COPY migrations ./migrations
# The text extra (transformers) lets the workers train MM-IMDb's BERT encoder.
RUN pip install '.[text]' && pip check

FROM python:${PYTHON_VERSION}-slim AS runtime
# No compilers or build files in the final image; only the virtual environment.
# The artifact folder exists, owned by miles, so that a new named volume mounted there
# starts with that owner (Docker copies it from the image) and the worker can write to it.
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin miles \
    && mkdir -p /var/lib/miles/artifacts /datasets \
    && chown -R miles:miles /var/lib/miles
COPY --from=build /opt/miles /opt/miles
ENV PATH=/opt/miles/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MILES_HOME=/var/lib/miles \
    MILES_DATA_DIR=/datasets \
    MILES_HOST=0.0.0.0 \
    MILES_PORT=8000
USER miles
WORKDIR /var/lib/miles
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=5 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/api/v1/health' % os.environ.get('MILES_PORT', '8000'), timeout=2)"]
# No ENTRYPOINT: a compose `command:` is the whole command line (`miles worker ...`, `sh -c ...`).
CMD ["miles", "server"]

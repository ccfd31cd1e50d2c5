# One image for every hsqbo process; the command is the first argument:
#   docker build -t hsqbo:0.1.0 .
#   docker run hsqbo:0.1.0 receiver --host 0.0.0.0      (worker, poller, status, dlq list, ...)
# At the repository root because the build context must be: `pip install .` reads pyproject.toml, README.md and
# the packages, and .dockerignore is only read beside the context. deploy/ holds what runs the image.

# The base image is pinned by digest (python:3.11-slim's multi-platform index; deploy/README.md says how to move it),
# so a rebuild gets the same Python and Debian until the digest is changed on purpose.
FROM python:3.11-slim@sha256:90744cff8f32887f075c47d747a173ff333e9e98801667af93c357fa9f5e28ff AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# A virtualenv, copied whole into the runtime stage: no pip cache, sources or build leftovers in the final image.
RUN python -m venv /opt/hsqbo
WORKDIR /src
# The dependencies first, from the lock (`make lock`): exact versions, each file checked against its hash. Their
# layer is rebuilt only when the lock changes.
COPY requirements.lock ./
RUN /opt/hsqbo/bin/pip install --require-hashes --no-deps -r requirements.lock
# Then hsqbo itself, without resolving anything more: only what `pip install .` reads (README.md is the package's
# long description).
COPY pyproject.toml README.md ./
COPY services ./services
COPY shared ./shared
RUN /opt/hsqbo/bin/pip install --no-deps .

# The API emulators, a distribution of their own (sandbox/pyproject.toml), for Compose's sandbox profile only:
#   docker build --target sandbox -t hsqbo-sandbox:0.1.0 .
# They need nothing the lock lacks. hsqbo's image, the last stage, copies the `build` stage's venv: never this one.
FROM build AS sandbox-build
COPY sandbox ./sandbox
RUN /opt/hsqbo/bin/pip install --no-deps ./sandbox

FROM python:3.11-slim@sha256:90744cff8f32887f075c47d747a173ff333e9e98801667af93c357fa9f5e28ff AS sandbox
ENV PATH=/opt/hsqbo/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
RUN groupadd --system --gid 10001 hsqbo \
    && useradd --system --uid 10001 --gid hsqbo --home-dir /app --create-home --shell /usr/sbin/nologin hsqbo \
    && install -d -o hsqbo -g hsqbo /app/var
COPY --from=sandbox-build /opt/hsqbo /opt/hsqbo
WORKDIR /app
USER 10001:10001
ENTRYPOINT ["hsqbo-sandbox"]
CMD ["--help"]

FROM python:3.11-slim@sha256:90744cff8f32887f075c47d747a173ff333e9e98801667af93c357fa9f5e28ff
# OCI labels. VERSION is the package's (pyproject.toml); REVISION and CREATED are the build's:
#   docker build --build-arg REVISION=$(git rev-parse HEAD) --build-arg CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ) ...
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="hsqbo" \
      org.opencontainers.image.description="Two-way, event-driven sync between HubSpot and QuickBooks Online" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11-slim" \
      org.opencontainers.image.base.digest="sha256:90744cff8f32887f075c47d747a173ff333e9e98801667af93c357fa9f5e28ff"
ENV PATH=/opt/hsqbo/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
# A fixed numeric uid, so Kubernetes' runAsNonRoot can check it without resolving a name. /app/var is where the
# default store (sqlite:///var/hsqbo.db, relative to the working directory) goes.
RUN groupadd --system --gid 10001 hsqbo \
    && useradd --system --uid 10001 --gid hsqbo --home-dir /app --create-home --shell /usr/sbin/nologin hsqbo \
    && install -d -o hsqbo -g hsqbo /app/var
COPY --from=build /opt/hsqbo /opt/hsqbo
WORKDIR /app
USER 10001:10001
# Docker's own health check (Kubernetes ignores it and uses the manifests' probes; Compose's services set their
# own). By default the receiver's /healthz on its port; another command names its own URL in HEALTHCHECK_URL, e.g.
# http://127.0.0.1:9100/healthz for a worker or poller with HSQBO_METRICS_PORT=9100. The image has Python, not curl.
ENV HEALTHCHECK_URL=http://127.0.0.1:8080/healthz
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['HEALTHCHECK_URL'], timeout=3)"]
ENTRYPOINT ["hsqbo"]
CMD ["--help"]

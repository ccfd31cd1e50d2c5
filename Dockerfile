# One image for every hsqbo process; the command is the first argument:
#   docker build -t hsqbo:0.1.0 .
#   docker run hsqbo:0.1.0 receiver --host 0.0.0.0      (worker, poller, status, sandbox, dlq list, ...)
# At the repository root because the build context must be: `pip install .` reads pyproject.toml, README.md and
# the packages, and .dockerignore is only read beside the context. deploy/ holds what runs the image.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# A virtualenv, copied whole into the runtime stage: no pip cache, sources or build leftovers in the final image.
RUN python -m venv /opt/hsqbo
WORKDIR /src
# Only what `pip install .` reads (README.md is the package's long description); no test extras.
COPY pyproject.toml README.md ./
COPY services ./services
COPY shared ./shared
RUN /opt/hsqbo/bin/pip install .

FROM python:3.11-slim
ENV PATH=/opt/hsqbo/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
# A fixed numeric uid, so Kubernetes' runAsNonRoot can check it without resolving a name. /app/var is where the
# default store (sqlite:///var/hsqbo.db, relative to the working directory) and the sandbox's state go.
RUN groupadd --system --gid 10001 hsqbo \
    && useradd --system --uid 10001 --gid hsqbo --home-dir /app --create-home --shell /usr/sbin/nologin hsqbo \
    && install -d -o hsqbo -g hsqbo /app/var
COPY --from=build /opt/hsqbo /opt/hsqbo
WORKDIR /app
USER 10001:10001
ENTRYPOINT ["hsqbo"]
CMD ["--help"]

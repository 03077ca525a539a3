# Grok-Api gateway image: multi-stage, runs as an unprivileged user, configured by environment.
#
#   docker build -t grok-api .
#   docker run -p 8000:8000 -e XAI_API_KEY=xai-... -v grok-data:/data grok-api
#
# BASE is any Debian-family image with python3 (>= 3.11) and its venv module. CI, which cannot
# pull public images, builds from a local one: --build-arg BASE=local/debian-python:bookworm.
# The dependencies are exactly requirements-server.lock's (every version pinned, every file
# checked against its hashes; `make lock` writes it), then the project itself with --no-deps.
# With a wheelhouse/ folder in the build context (the project's wheel and the lock's, for the
# image's Python: `make container-test` makes one), the install is offline from it; without
# one, pip reaches the package index.
ARG BASE=python:3.12-slim-bookworm

FROM ${BASE} AS build
LABEL grok-api.stage=build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY . /src
RUN python3 -m venv /opt/grok-api \
 && if ls wheelhouse/*.whl >/dev/null 2>&1; then \
        from="--no-index --find-links wheelhouse" project=grok-api; \
    else \
        from="" project=.; \
    fi \
 && /opt/grok-api/bin/pip install $from --require-hashes -r requirements-server.lock \
 && /opt/grok-api/bin/pip install $from --no-deps "$project" \
 && /opt/grok-api/bin/pip uninstall -q -y pip setuptools \
 && /opt/grok-api/bin/python -m compileall -q /opt/grok-api/lib

FROM ${BASE}
LABEL org.opencontainers.image.title="grok-api" \
      org.opencontainers.image.description="An OpenAI-compatible API gateway for xAI's Grok"
COPY --from=build /opt/grok-api /opt/grok-api
RUN mkdir -p /data && chown 10001:10001 /data && chmod 700 /data
ENV PATH=/opt/grok-api/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOME=/data \
    GROK_API_HOST=0.0.0.0 \
    GROK_API_PORT=8000 \
    GROK_API_DATA_DIR=/data \
    GROK_API_LOG_FORMAT=json
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python3", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/health' % os.environ.get('GROK_API_PORT', '8000'), timeout=4)"]
ENTRYPOINT ["grok-api"]
CMD ["serve"]

# castproxy container: `castproxy serve` reading /etc/castproxy/cast.yaml, listening on 0.0.0.0:8080.
#
#   docker build -t castproxy .
#   docker run -p 8080:8080 -v "$PWD/cast.yaml:/etc/castproxy/cast.yaml:ro" \
#     -e CASTPROXY_PUBLIC_URL=https://mcp.example.com -e CASTPROXY_SECRET_KEY=... castproxy
#
# Mount the config's folder rather than the file when you want hot reload through editors or
# Kubernetes ConfigMaps (both replace the file). Point `store.path` at /var/lib/castproxy/state.db
# (the volume) or use the Redis store when running several replicas.

# ---- build: a wheel from the source, so the runtime image holds no build tools or sources ----
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY castproxy ./castproxy
RUN pip wheel --no-deps --wheel-dir /wheels .

# ---- runtime ----
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CASTPROXY_CONFIG=/etc/castproxy/cast.yaml \
    CASTPROXY_HOST=0.0.0.0 \
    CASTPROXY_PORT=8080

COPY --from=build /wheels /wheels
# With the otel extra: tracing is then one OTEL_EXPORTER_OTLP_ENDPOINT away (docs/operations.md).
RUN pip install --no-compile "$(echo /wheels/castproxy-*.whl)[otel]" \
    && rm -rf /wheels \
    && groupadd --system --gid 10001 castproxy \
    && useradd --system --uid 10001 --gid castproxy --home-dir /var/lib/castproxy --shell /usr/sbin/nologin castproxy \
    && mkdir -p /etc/castproxy /var/lib/castproxy \
    && chown castproxy:castproxy /var/lib/castproxy

WORKDIR /var/lib/castproxy
VOLUME ["/var/lib/castproxy"]
EXPOSE 8080
USER 10001:10001

# No curl in the image: Python itself asks /healthz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CASTPROXY_PORT', '8080'), timeout=4)"]

ENTRYPOINT ["castproxy", "serve"]

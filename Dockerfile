# syntax=docker/dockerfile:1
# Build: docker build -t scim-bridge .
# Run:   docker run -p 8080:8080 -e SCIM_BRIDGE_TOKENS=change-me -v scim-data:/data scim-bridge
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY scim_bridge ./scim_bridge
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check .

FROM python:3.11-slim
RUN groupadd --system --gid 10001 bridge \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --create-home bridge
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SCIM_BRIDGE_HOST=0.0.0.0 \
    SCIM_BRIDGE_PORT=8080 \
    SCIM_BRIDGE_STORE=sqlite:////data/scim-bridge.db
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
# Liveness, not readiness: a restart does not bring back a store that is down (/health/ready says that).
# `docker stop` allows 10 s by default; give it the drain and grace (-t 30) so SIGTERM ends cleanly.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/live' % os.environ.get('SCIM_BRIDGE_PORT', '8080'), timeout=2)"]
ENTRYPOINT ["scim-bridge"]
CMD ["serve"]

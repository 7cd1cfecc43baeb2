# The hub image used by deploy/compose.yaml.
FROM python:3.11-slim
WORKDIR /opt/fabcity
COPY pyproject.toml README.md ./
COPY fabcity ./fabcity
COPY edge ./edge
COPY hub ./hub
COPY firmware_bridge ./firmware_bridge
COPY dashboards ./dashboards
RUN pip install --no-cache-dir '.[hub]' \
 && useradd --system --home-dir /var/lib/fabcity --create-home fabcity
USER fabcity
WORKDIR /var/lib/fabcity
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/v1/health', timeout=4)"
ENTRYPOINT ["fabcity"]
CMD ["hub", "serve", "--config", "/etc/fabcity/hub.toml"]

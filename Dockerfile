# The Redress worker image. Rules are mounted at /app/rules by docker-compose so admins edit them in place.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

# The package `redress` is installed (pyproject.toml lists it); the engine runs from /app, on PYTHONPATH.
COPY pyproject.toml README.md ./
COPY redress ./redress
RUN pip install . && useradd --uid 10001 --create-home redress && mkdir -p /data /keys && chown redress /data /keys
COPY workflows ./workflows
COPY activities ./activities
COPY worker.py ./
COPY rules ./rules

USER redress
# payload keys are mounted at /keys (docker-compose), never baked into the image
ENV PYTHONPATH=/app REDRESS_RULES=/app/rules REDRESS_DATA=/data REDRESS_PAYLOAD_KEYS=/keys REDRESS_LOG_FORMAT=json
CMD ["redress", "worker"]

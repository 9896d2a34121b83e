# The Redress worker image. Rules are mounted at /app/rules by docker-compose so admins edit them in place.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

# The package `redress` with the engine's dependencies is installed; the engine itself (workflows/,
# activities/, worker.py) runs from /app, on PYTHONPATH. The package's source is copied only to build it.
COPY pyproject.toml README.md ./
COPY redress ./redress
RUN pip install '.[engine]' && rm -rf build redress.egg-info redress \
    && useradd --uid 10001 --create-home redress && mkdir -p /data /keys && chown redress /data /keys
COPY workflows ./workflows
COPY activities ./activities
COPY worker.py ./
COPY rules ./rules
# The workflow modules' bytecode, written now: the worker runs as `redress` and cannot write under /app,
# and without it the sandbox compiles them afresh for every case it starts (worker.cache_workflow_bytecode)
RUN python -m compileall -q workflows activities worker.py

USER redress
# payload keys are mounted at /keys (docker-compose), never baked into the image
ENV PYTHONPATH=/app REDRESS_RULES=/app/rules REDRESS_DATA=/data REDRESS_PAYLOAD_KEYS=/keys REDRESS_LOG_FORMAT=json
CMD ["redress", "worker"]

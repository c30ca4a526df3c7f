# Multi-stage image for the API, the workers and the migration step.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY api api
COPY workflows workflows
COPY activities activities
COPY connectors connectors
COPY persistence persistence
COPY cli cli
COPY worker.py config.py ./
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 backfills
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER backfills
WORKDIR /home/backfills
ENV BACKFILLS_DATA_DIR=/home/backfills/data
EXPOSE 8000
CMD ["backfills", "api"]

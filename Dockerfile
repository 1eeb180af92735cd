# warroom: `docker build -t warroom . && docker run -p 3000:3000 --env-file .env warroom`
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
    WARROOM_HOST=0.0.0.0 WARROOM_PORT=3000 WARROOM_DATA_DIR=/data \
    WARROOM_DATABASE_URL=sqlite:////data/warroom.db
WORKDIR /app
# The CPU build of torch first, so the pinned torch==2.13.0 does not pull CUDA wheels.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY skills ./skills
COPY knowledge ./knowledge
COPY models ./models
COPY migrations ./migrations
RUN pip install . && useradd --create-home --uid 10001 warroom && mkdir -p /data && chown warroom /data
USER warroom
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=2)" || exit 1
CMD ["warroom", "serve"]

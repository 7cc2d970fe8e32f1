# Infergo, CPU image: docker build -t infergo .
# docker run -p 8000:8000 -v hf:/data -e MODEL_ID=sentence-transformers/all-MiniLM-L6-v2 infergo
#
# The builder fetches ONNX Runtime from npm (make deps, checked by size and sha256) and builds the
# binary with scripts/build-release.sh, the same script `make build` and the tests run.
FROM golang:1.26.8-bookworm AS build
# The version infergo reports (docker build --build-arg VERSION=v1.2.3); .git is not in the context.
ARG VERSION=dev
RUN apt-get update \
 && apt-get install -y --no-install-recommends npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN make deps \
 && VERSION="$VERSION" scripts/build-release.sh /out/infergo

FROM debian:bookworm-slim
# libstdc++ for ONNX Runtime; CA certificates for the Hugging Face Hub.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libstdc++6 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin infergo \
 && mkdir -p /data \
 && chown infergo:infergo /data
COPY --from=build /out/infergo /usr/local/bin/infergo
COPY --from=build /src/.deps/onnxruntime/libonnxruntime.so.1 /opt/infergo/lib/libonnxruntime.so.1
# MODEL_ID (Hub id or directory) and TASK choose the model; empty serves the built-in one.
ENV HF_HUB_CACHE=/data \
    INFERGO_DATA_DIR=/data/infergo \
    INFERGO_ORT_LIB=/opt/infergo/lib/libonnxruntime.so.1 \
    PORT=8000
VOLUME /data
EXPOSE 8000 8443
USER infergo
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 CMD ["infergo", "healthcheck"]
ENTRYPOINT ["infergo", "serve"]

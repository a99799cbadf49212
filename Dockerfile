# Multi-stage build of both Passlink binaries.
#
#   docker build --target api -t passlink-api .
#   docker build --target worker -t passlink-worker .

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p passlink-api -p passlink-worker

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 passlink
USER passlink
WORKDIR /home/passlink

FROM runtime AS api
COPY --from=build /src/target/release/passlink-api /usr/local/bin/passlink-api
ENV PASSLINK_LISTEN=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["passlink-api"]

FROM runtime AS worker
COPY --from=build /src/target/release/passlink-worker /usr/local/bin/passlink-worker
ENV PASSLINK_WORKER_METRICS_LISTEN=0.0.0.0:9091
EXPOSE 9091
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:9091/healthz || exit 1
ENTRYPOINT ["passlink-worker"]

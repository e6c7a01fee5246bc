# Socket-Hub image: the web client is built with Node, embedded in the Rust binary,
# and the binary runs alone on a slim Debian.

FROM node:20-bookworm AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
RUN npm run build

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
COPY --from=web /src/web/dist web/dist
# The bundle is already built; do not look for npm in this stage.
ENV SOCKET_HUB_SKIP_WEB_BUILD=1
RUN cargo build --release -p socket-hub

FROM debian:bookworm-slim
RUN useradd --system --create-home --home-dir /var/lib/socket-hub socket-hub
COPY --from=build /src/target/release/socket-hub /usr/local/bin/socket-hub
USER socket-hub
ENV SOCKET_HUB_BIND=0.0.0.0:8080 \
    SOCKET_HUB_DATA_DIR=/var/lib/socket-hub \
    SOCKET_HUB_LOG_FORMAT=json
EXPOSE 8080
ENTRYPOINT ["socket-hub"]
CMD ["serve"]

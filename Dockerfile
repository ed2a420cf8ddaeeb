# syntax=docker/dockerfile:1
#
# rkms in a container: a static (musl) binary in an otherwise empty image, run as an
# unprivileged user, client database in the /data volume.
#
#   docker build -t rkms .
#   docker run -d --name rkms -p 1688:1688 -p 127.0.0.1:8080:8080 -v rkms-data:/data rkms
#   docker exec rkms /rkms clients            # the clients seen so far
#   docker run --rm rkms activate HOST        # the image is also a KMS test client
#
# Settings: RKMS_* variables (every long option of `rkms serve`, e.g. RKMS_LOG_LEVEL=debug),
# py-kms' IP, PORT, EPID, LCID, CLIENT_COUNT, ACTIVATION_INTERVAL, RENEWAL_INTERVAL, HWID,
# LOGLEVEL, or a file mounted at /etc/rkms/rkms.toml (read if present; the variables below win
# over it). compose.yaml has examples.
#
# The dashboard, API and /metrics listen on port 8080 of the container without a token
# (RKMS_WEB_PUBLIC=true): publish that port on 127.0.0.1 only, as above, or set
# RKMS_WEB_TOKEN (then every request needs it) before exposing it to a network.

ARG RUST_VERSION=1

# The build runs on the build machine's own platform and cross-compiles for the image's
# (TARGETARCH: amd64, arm64 or arm/v7 with `docker buildx build --platform ...`), with the
# recipe of the release archives: scripts/build-static.sh (Zig from PyPI links the static musl
# binary and compiles the C of ring and SQLite).
FROM --platform=$BUILDPLATFORM rust:${RUST_VERSION}-slim-bookworm AS build
# python3-venv for Zig and cargo-zigbuild (PyPI); file to check the binary is static.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-venv file ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
ARG TARGETARCH
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    case "${TARGETARCH:-amd64}" in \
      amd64) target=x86_64-unknown-linux-musl ;; \
      arm64) target=aarch64-unknown-linux-musl ;; \
      arm) target=armv7-unknown-linux-musleabihf ;; \
      *) echo "no rkms build for $TARGETARCH" >&2; exit 1 ;; \
    esac \
 && bin="$(scripts/build-static.sh "$target" full release | tail -n1)" \
 && file -b "$bin" | grep -q "statically linked" \
 && mkdir -p /out/data /out/tmp \
 && cp "$bin" /out/rkms \
 && chown 10001:10001 /out/data \
 && chmod 0700 /out/data \
 && chmod 1777 /out/tmp \
 && if [ "$target" = "$(uname -m)-unknown-linux-musl" ]; then /out/rkms --version; fi

FROM scratch
LABEL org.opencontainers.image.title="rkms" \
      org.opencontainers.image.description="KMS host emulator and test client" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
COPY --from=build /out/rkms /rkms
# /data belongs to the user below, so a new named volume is writable; for a bind mount,
# `chown 10001:10001` the host directory. /tmp for SQLite's temporary files.
COPY --from=build --chown=10001:10001 /out/data /data
COPY --from=build /out/tmp /tmp
# The public CAs, for TLS to a database whose certificate one of them signed
# (`sslrootcert=system` in the PostgreSQL URL).
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV RKMS_DB=/data/clients.db \
    RKMS_WEB=0.0.0.0:8080 \
    RKMS_WEB_PUBLIC=true
# The KMS port: rkms listens on [::]:1688, or 0.0.0.0:1688 where the container has no IPv6.
EXPOSE 1688/tcp 8080/tcp
VOLUME ["/data"]
USER 10001:10001
# A real activation over loopback, which rkms does not count as a client (exit 0 or 1). It
# checks port 1688: if RKMS_LISTEN or PORT moves the KMS port, override it with the address
# (docker run --health-cmd, or compose's healthcheck.test).
HEALTHCHECK --interval=30s --timeout=10s --start-period=10s --retries=3 \
    CMD ["/rkms", "healthcheck"]
ENTRYPOINT ["/rkms"]
CMD ["serve"]

# Blaine in a container: Debian bookworm (the release .ci/run's packages come
# from) with Bun and the external tools of .ci/debian-packages.txt.
#
#   docker build -t blaine .
#   docker run --rm -it --device /dev/fuse --cap-add SYS_ADMIN \
#     -v /data:/data:ro -v /mnt/archive1:/mnt/archive1 -v blaine-catalog:/var/lib/blaine \
#     blaine run --db /var/lib/blaine/catalog.db --dest /mnt/archive1 /data
ARG BUN_VERSION=1.4.5

FROM oven/bun:${BUN_VERSION}-debian AS bun

FROM debian:bookworm-slim
# The one list of Debian packages, shared with .ci/run (comments and blank lines skipped).
COPY .ci/debian-packages.txt /tmp/debian-packages.txt
RUN apt-get update \
 && grep -v -e '^#' -e '^[[:space:]]*$' /tmp/debian-packages.txt \
    | xargs env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* /tmp/debian-packages.txt
COPY --from=bun /usr/local/bin/bun /usr/local/bin/bun

WORKDIR /opt/blaine
COPY package.json bun.lock ./
RUN bun install --frozen-lockfile --production
COPY bin ./bin
COPY lib ./lib
COPY pipelines ./pipelines
RUN ln -s /opt/blaine/bin/blaine.ts /usr/local/bin/blaine

# blaine.toml, if any, is read from the working directory: mount it at /work.
WORKDIR /work
ENTRYPOINT ["bun", "/opt/blaine/bin/blaine.ts"]
CMD ["--help"]

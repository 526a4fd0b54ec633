# blast in a container: build on Debian 12, run on a slim Debian 12 with only the
# runtime libraries. Usage:
#   docker build -t blast .
#   docker run --rm -v "$PWD:/work" -w /work -e BLAST_PASSWORD blast send campaign.yml
FROM debian:12 AS build
RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends make gcc libc6-dev pkg-config libssl-dev libsodium-dev \
        libyaml-dev libjansson-dev libcsv-dev libidn2-dev libcurl4-openssl-dev libsqlite3-dev \
        libgmime-3.0-dev \
        ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make clean && make && make install PREFIX=/usr/local DESTDIR=/out

FROM debian:12-slim
RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends libssl3 libsodium23 libyaml-0-2 libjansson4 libcsv3 libidn2-0 \
        libcurl4 libsqlite3-0 libgmime-3.0-0 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/usr/local/ /usr/local/
USER nobody
ENTRYPOINT ["/usr/local/bin/blast"]
CMD ["help"]

# blast in a container, built the way its Debian package is: the build stage
# installs debian/control's Build-Depends (the one list of them) and builds
# blast_VERSION_ARCH.deb with dpkg-buildpackage; the runtime stage installs that
# .deb, which brings the libraries it needs through its Depends, and runs as a user
# of its own. Usage:
#
#   docker build -t blast .
#   docker run --rm -v "$PWD:/work" -e BLAST_PASSWORD blast send campaign.yml
#   docker run --rm -v "$PWD:/work" blast report reports/news.json
#
# tests/integration/test_container.py runs these steps (`make container-check`).

FROM debian:12 AS build
WORKDIR /src
# debian/ first, so that the layer of build dependencies is rebuilt only when
# debian/ changes. The unit tests run in `make test` and the package's own build;
# the image is built without them (the nocheck profile), and so without Criterion.
COPY debian/ debian/
RUN apt-get update -q \
    && DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -q --no-install-recommends \
        -P nocheck ./ \
    && rm -rf /var/lib/apt/lists/*
COPY . .
RUN DEB_BUILD_OPTIONS=nocheck DEB_BUILD_PROFILES=nocheck dpkg-buildpackage -us -uc -b \
    && mkdir /out && mv ../blast_*.deb /out/

FROM debian:12-slim
COPY --from=build /out/ /tmp/deb/
# ca-certificates: the system's store, which relays' and mailboxes' certificates are
# verified against unless a campaign names its own ca_file
RUN apt-get update -q \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        ca-certificates /tmp/deb/blast_*.deb \
    && rm -rf /var/lib/apt/lists/* /tmp/deb
# blast runs as a user of its own, uid and gid 10001, which owns its two volumes
RUN groupadd --gid 10001 blast \
    && useradd --uid 10001 --gid 10001 --home-dir /var/lib/blast --no-create-home \
        --shell /usr/sbin/nologin blast \
    && mkdir -p /work /var/lib/blast \
    && chown blast:blast /work /var/lib/blast
# /work: the campaign file, its list and templates, mounted from the host; blast's
# working directory, so relative paths on the command line are read from there, and,
# unless the campaign or --journal and --report say otherwise, its journal
# (.blast/NAME.journal) and report (reports/NAME.json) are written beside the campaign
# file there: mount it writable, and keep it from run to run, as the journal is what
# lets a rerun resume without sending anyone the message twice.
# /var/lib/blast: a place for journals, reports and the suppression database apart
# from a campaign mounted read-only (--journal /var/lib/blast/news.journal
# --report /var/lib/blast/news.json, suppression_db: /var/lib/blast/suppression.db).
VOLUME ["/work", "/var/lib/blast"]
WORKDIR /work
# by number, so that Kubernetes' runAsNonRoot can tell it is not root
USER 10001:10001
ENTRYPOINT ["/usr/bin/blast"]
CMD ["help"]

# syntax=docker/dockerfile:1
# The infersight image: one wheel, installed into a slim Python, run as a non-root user.
#
#   docker build -t infersight:0.1.0 .
#
# Both stages start from the same exact tag; for a reproducible build pin its digest too
# (docker buildx imagetools inspect python:3.11.11-slim-bookworm), e.g.
#   FROM python:3.11.11-slim-bookworm@sha256:<digest>
# The image works with a read-only root filesystem: everything it writes goes to /tmp (TMPDIR, the
# numba cache) and /var/lib/infersight (data, buffers, audit digests), both declared volumes that
# the Kubernetes manifests mount (emptyDir or a PersistentVolumeClaim).

FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m pip install "build==1.2.2.post1"
COPY pyproject.toml README.md LICENSE ./
COPY model/ model/
COPY sketch/ sketch/
COPY collector/ collector/
COPY exporters/ exporters/
COPY store/ store/
COPY query/ query/
COPY alerts/ alerts/
COPY dashboards/ dashboards/
COPY infersight/ infersight/
COPY simulator/ simulator/
COPY console/ console/
# The wheel, then every dependency as a wheel beside it: the final stage installs offline from
# /wheels and needs no compiler, no build front-end and no registry.
RUN python -m build --wheel --outdir /wheels . \
    && python -m pip wheel --wheel-dir /wheels /wheels/infersight-*.whl "kubernetes>=29"

FROM python:3.11.11-slim-bookworm
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    HOME=/var/lib/infersight TMPDIR=/tmp NUMBA_CACHE_DIR=/tmp/numba
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m pip install --no-index --find-links=/wheels /wheels/infersight-*.whl "kubernetes>=29" \
    && python -m pip uninstall --yes pip setuptools wheel \
    && groupadd --system --gid 10001 infersight \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/infersight --no-create-home \
       --shell /usr/sbin/nologin infersight \
    && mkdir -p /var/lib/infersight \
    && chown 10001:10001 /var/lib/infersight
VOLUME ["/tmp", "/var/lib/infersight"]
WORKDIR /var/lib/infersight
USER 10001:10001
EXPOSE 9091
ENTRYPOINT ["infersight"]
CMD ["server", "--listen", "0.0.0.0:9091", "--data", "/var/lib/infersight/data"]

# One image for every fakeblock stage; docker-compose.yml runs one container per stage.
FROM python:3.11-slim

# OpenCV's wheel links against libGL and GLib even without a screen; socat forwards the
# web view, which listens on the display container's loopback only (see docs/docker-compose.md).
RUN apt-get update \
    && apt-get install --yes --no-install-recommends libgl1 libglib2.0-0 socat \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . /src
# The base install: the stages run the model on LiteRT, so the image holds no TensorFlow.
RUN pip install --no-cache-dir /src

# Unbuffered, so `docker compose logs` shows every line as it is written.
ENV PYTHONUNBUFFERED=1
WORKDIR /work
# An unprivileged user by default (the Kubernetes pods run as it, on a read-only root
# filesystem). docker-compose.yml runs its services as root: its bind-mounted key folder
# is root's, and fakeblock accepts only key files of its own user or root.
RUN groupadd --system --gid 10001 fakeblock \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin fakeblock
USER 10001:10001
ENTRYPOINT ["fakeblock"]
CMD ["--help"]

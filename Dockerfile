# callwatch in a container: `callwatch run` (the scheduler, the dispatcher, the Telegram bot
# and the web app with /healthz on web.listen) as an unprivileged user. compose.yaml runs it
# with PostgreSQL 15; README "Going live" has the steps.
#
#   docker build -t callwatch .
#   callwatch init ./site      # or write ./site/callwatch.toml, profiles/ and subscribers/
#   docker run --rm -v "$PWD/site:/etc/callwatch:ro" -v callwatch-data:/var/lib/callwatch \
#       -p 127.0.0.1:8080:8080 -e CALLWATCH_WEB_SECRET=... callwatch
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# a system user without a login shell; /var/lib/callwatch holds the default SQLite database
RUN useradd --system --user-group --uid 10001 --home-dir /var/lib/callwatch --create-home \
        --shell /usr/sbin/nologin callwatch

# the package with its templates, static files, catalogs and the bundled example config
COPY pyproject.toml README.md /src/
COPY tracker /src/tracker
COPY scrapers /src/scrapers
COPY notifiers /src/notifiers
COPY config /src/config
RUN pip install /src && rm -rf /src

# The configuration is mounted at /etc/callwatch (callwatch.toml, profiles/, subscribers/;
# `callwatch init` writes a start). Any key can be set by CALLWATCH_<SECTION>__<KEY>, and
# the secrets only so (CALLWATCH_WEB_SECRET, CALLWATCH_TELEGRAM_TOKEN, CALLWATCH_SMTP_*).
# web.listen: every interface of the container, so a published port reaches it; publish it
# on the host's loopback (-p 127.0.0.1:8080:8080) behind a TLS reverse proxy.
ENV CALLWATCH_CONFIG=/etc/callwatch/callwatch.toml \
    CALLWATCH_WEB__LISTEN=0.0.0.0:8080 \
    XDG_DATA_HOME=/var/lib \
    XDG_CONFIG_HOME=/etc

USER callwatch
WORKDIR /var/lib/callwatch
VOLUME ["/var/lib/callwatch"]
EXPOSE 8080

# /healthz: 200 while the scheduler runs and no source is red (503 otherwise: urlopen
# raises, the check fails). No curl in the slim image: Python's own client.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]

# SIGTERM: the running step finishes, the web app closes, exit within 30 s (compose gives 35)
STOPSIGNAL SIGTERM
CMD ["callwatch", "run"]

"""The built-in web console at ``/``: services, monitoring, events, audit and alerts in a browser.

Static assets (``static/``, uPlot vendored with its licence) served by every ``infersight`` server;
the pages read the same HTTP APIs as Grafana and ``infersight query`` do, with the caller's key.
"""

"""Dashboards shipped with the hub: the citizen web page (``dashboards/web``)."""

"""Scraping a server's metrics endpoint (``metrics_listen``), parsed with ``prometheus_client``'s
own parser."""

import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def scrape(port, path="/metrics"):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        return response.read().decode("utf-8")


class Scrape:
    """One parsed scrape: ``value(name, **labels)`` sums the samples whose labels match."""

    def __init__(self, port):
        self.text = scrape(port)
        self.samples = []
        self.types = {}
        for family in text_string_to_metric_families(self.text):
            self.types[family.name] = family.type
            self.samples.extend(family.samples)

    def value(self, name, **labels):
        return sum(
            s.value
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def labels(self, name, key):
        return {s.labels[key] for s in self.samples if s.name == name and key in s.labels}
